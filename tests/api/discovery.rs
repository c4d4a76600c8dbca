//! Discovery and the published JWKS (OIDC Discovery §3, §4; RFC 8414 §2, §3; OIDC Core §8;
//! RFC 7517 §5).

use serde_json::Value;
use stateless_dcr::keys::VerifierSet;

use crate::helpers::{spawn_app, Answer};

#[tokio::test]
async fn discovery_advertises_what_the_validator_enforces() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let answer = Answer::from(app.client.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(answer.status, 200);
        let doc = &answer.body;
        assert_eq!(doc["issuer"], app.address);
        assert_eq!(
            doc["registration_endpoint"],
            format!("{}/register", app.address)
        );
        assert_eq!(doc["jwks_uri"], format!("{}/jwks", app.address));
        assert!(doc["subject_types_supported"]
            .as_array()
            .unwrap()
            .contains(&"public".into()));
        assert!(doc["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&"RS256".into()));
        assert!(!doc["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&"none".into()));
        assert_eq!(doc["client_id_max_length"], 4096);
        for list in [
            "response_types_supported",
            "grant_types_supported",
            "token_endpoint_auth_methods_supported",
            "code_challenge_methods_supported",
        ] {
            assert!(!doc[list].as_array().unwrap().is_empty(), "{list}");
        }
    }
}

#[tokio::test]
async fn the_jwks_holds_public_keys_that_verify_client_ids() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/jwks")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let jwks: Value = response.json().await.unwrap();
    let text = jwks.to_string();
    assert!(
        !text.contains("\"d\""),
        "private key material published: {text}"
    );
    assert!(!text.contains("\"k\""), "derivation key published: {text}");
    // an OP in any language verifies a client_id offline with these keys
    let verifiers = VerifierSet::from_jwks(&jwks).unwrap();
    let registered = app.register_web_client().await;
    let client_id = registered["client_id"].as_str().unwrap();
    let jws = stateless_dcr::jose::CompactJws::parse(client_id).unwrap();
    let verifier = verifiers.select(jws.kid(), jws.alg().unwrap()).unwrap();
    let payload: Value = serde_json::from_slice(&jws.verify(verifier).unwrap()).unwrap();
    assert_eq!(
        payload["metadata"]["redirect_uris"][0],
        "https://rp.example.com/cb"
    );
    // RFC 6749 §2.2: decoding reveals no secret (conformance: client-id-holds-no-secret)
    let secret = registered["client_secret"].as_str().unwrap();
    let rat = registered["registration_access_token"].as_str().unwrap();
    assert!(!payload.to_string().contains(secret));
    assert!(!payload.to_string().contains(rat));
}
