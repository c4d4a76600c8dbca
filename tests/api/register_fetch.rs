//! The registration endpoint with real outbound fetches: a trusted issuer's jwks_uri, a
//! client's sector_identifier_uri and jwks_uri, all served by the local https test server
//! (`helpers::https`).

use serde_json::{json, Value};
use stateless_dcr::keys::SigningAlg;

use crate::helpers::https::{json_reply, public_jwk, TestServer};
use crate::helpers::{deployment_for, spawn_deployment, Authority, TestApp};

const ISSUER: &str = "https://federation.fetch-test.example";

/// A registrar trusting `ISSUER` through its jwks_uri on the test server, with fetches that
/// trust the test CA and may reach loopback.
async fn registrar(server: &TestServer) -> TestApp {
    let deployment = deployment_for(ISSUER);
    spawn_deployment(deployment, |c| {
        c.fetch = server.config();
        c.check_client_jwks_uri = true;
        c.trusted_issuers[0].jwks_file = None;
        c.trusted_issuers[0].jwks_uri = Some(server.url("/issuer/jwks"));
    })
    .await
}

fn authority() -> Authority {
    Authority::new(ISSUER, SigningAlg::Es256)
}

async fn register(registrar: &TestApp, statement: String) -> (u16, Value) {
    let answer = registrar
        .post_register(&json!({ "software_statement": statement }))
        .await;
    (answer.status.as_u16(), answer.body)
}

fn claims(extra: Value) -> Value {
    let mut claims = json!({
        "software_id": "fetch-test",
        "redirect_uris": ["https://a.rp.example/cb", "https://b.rp.example/cb"],
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

#[tokio::test]
async fn sector_identifier_uri_is_fetched_and_checked_at_registration() {
    let server = TestServer::start().await;
    let authority = authority();
    server.route("/issuer/jwks", json_reply(&authority.jwks));
    server.route(
        "/sector.json",
        json_reply(&json!([
            "https://a.rp.example/cb",
            "https://b.rp.example/cb"
        ])),
    );
    server.route(
        "/partial.json",
        json_reply(&json!(["https://a.rp.example/cb"])),
    );
    server.route("/object.json", json_reply(&json!({"redirect_uris": []})));
    let registrar = registrar(&server).await;

    // pairwise across two hosts needs the sector document (OIDC Core §8.1), and it holds
    let (status, body) = register(
        &registrar,
        authority.sign(claims(json!({"subject_type": "pairwise", "sector_identifier_uri": server.url("/sector.json")}))),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["subject_type"], "pairwise");
    // OIDC DCR §5, §6: a redirect URI missing from the document
    // (conformance: sector-uri-lists-every-redirect)
    let (status, body) = register(
        &registrar,
        authority.sign(claims(
            json!({"sector_identifier_uri": server.url("/partial.json")}),
        )),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_redirect_uri")),
        "{body}"
    );
    // OIDC DCR §5: not an array, and not fetchable
    // (conformance: sector-uri-unusable-is-metadata-error)
    for path in ["/object.json", "/missing.json"] {
        let (status, body) = register(
            &registrar,
            authority.sign(claims(json!({"sector_identifier_uri": server.url(path)}))),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "{body}"
        );
    }
}

#[tokio::test]
async fn issuer_key_rotation_is_picked_up_with_one_refetch() {
    let server = TestServer::start().await;
    let first = authority();
    server.route("/issuer/jwks", json_reply(&first.jwks));
    let registrar = registrar(&server).await;
    let (status, body) = register(&registrar, first.sign(claims(json!({})))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(server.requests("/issuer/jwks"), 1);

    // the issuer rotates: a new key appears at its jwks_uri
    let second = authority();
    let mut both = first.jwks.clone();
    both["keys"]
        .as_array_mut()
        .unwrap()
        .push(second.jwks["keys"][0].clone());
    server.route("/issuer/jwks", json_reply(&both));
    let (status, body) = register(&registrar, second.sign(claims(json!({})))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(server.requests("/issuer/jwks"), 2, "exactly one refetch");
    // the old key still works, without another fetch
    let (status, _) = register(&registrar, first.sign(claims(json!({})))).await;
    assert_eq!(status, 201);
    assert_eq!(server.requests("/issuer/jwks"), 2);
}

#[tokio::test]
async fn a_client_jwks_uri_is_checked_when_the_client_needs_keys() {
    let server = TestServer::start().await;
    let authority = authority();
    server.route("/issuer/jwks", json_reply(&authority.jwks));
    server.route(
        "/client/jwks",
        json_reply(&json!({"keys": [public_jwk("c1")]})),
    );
    server.route(
        "/client/private-jwks",
        json_reply(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})),
    );
    let registrar = registrar(&server).await;
    let private_key_jwt = |uri: String| {
        authority.sign(claims(
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri}),
        ))
    };
    let (status, body) = register(&registrar, private_key_jwt(server.url("/client/jwks"))).await;
    assert_eq!(status, 201, "{body}");
    for path in ["/client/private-jwks", "/client/none"] {
        let (status, body) = register(&registrar, private_key_jwt(server.url(path))).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "{path}: {body}"
        );
    }
    // a client that needs no keys is not fetched for
    let before = server.requests("/client/none");
    let (status, _) = register(
        &registrar,
        authority.sign(claims(json!({"jwks_uri": server.url("/client/none")}))),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(server.requests("/client/none"), before);
}
