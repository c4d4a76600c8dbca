//! Mutual-TLS clients at registration (RFC 8705 §2): `tls_client_auth` with exactly one
//! certificate field, each validated in its form; `self_signed_tls_client_auth` with keys; no
//! secret for either; certificate-bound access tokens asked for; the client_id carries it all,
//! and discovery says what the OP offers.

use serde_json::{json, Value};

use crate::helpers::https::public_jwk;
use crate::helpers::{spawn_app, spawn_app_with, web_claims, RESOLVE_API_TOKEN};

fn with(extra: Value) -> Value {
    let mut claims = web_claims();
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

#[tokio::test]
async fn tls_client_auth_registers_with_one_certificate_field() {
    let app = spawn_app_with(|c| c.resolve_api_tokens = vec![RESOLVE_API_TOKEN.into()]).await;
    for (member, value) in [
        (
            "tls_client_auth_subject_dn",
            "CN=tpp.example.com,OU=0015800001HQQrZAAX,O=OpenBanking,C=GB",
        ),
        ("tls_client_auth_san_dns", "client.tpp.example.com"),
        ("tls_client_auth_san_uri", "https://tpp.example.com/client"),
        ("tls_client_auth_san_ip", "2001:db8::10"),
        ("tls_client_auth_san_email", "ops@tpp.example.com"),
    ] {
        let answer = app
            .register(
                with(json!({
                    "token_endpoint_auth_method": "tls_client_auth",
                    member: value,
                    "tls_client_certificate_bound_access_tokens": true,
                })),
                json!({}),
            )
            .await;
        let body = answer.assert_created();
        assert_eq!(body[member], value);
        assert_eq!(body["tls_client_certificate_bound_access_tokens"], true);
        // RFC 8705 §2: the certificate is the credential; no secret is issued
        assert!(body.get("client_secret").is_none(), "{body}");
        // the client_id carries it: the resolver gives it back
        let resolved = app
            .resolve_api(json!({"client_id": body["client_id"]}))
            .await;
        assert_eq!(resolved.body["valid"], true, "{}", resolved.body);
        assert_eq!(resolved.body["client_type"], "confidential");
        assert_eq!(resolved.body["client"][member], value);
        assert_eq!(
            resolved.body["client"]["tls_client_certificate_bound_access_tokens"],
            true
        );
    }
}

#[tokio::test]
async fn mutual_tls_metadata_is_validated() {
    let app = spawn_app().await;
    for (extra, needle) in [
        (
            json!({"token_endpoint_auth_method": "tls_client_auth"}),
            "exactly one",
        ),
        (
            json!({"token_endpoint_auth_method": "tls_client_auth",
                   "tls_client_auth_subject_dn": "CN=a", "tls_client_auth_san_dns": "a.example"}),
            "exactly one",
        ),
        (
            json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=a;O=b"}),
            "RFC 4514",
        ),
        (
            json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": ""}),
            "empty",
        ),
        (
            json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_dns": "*.example.com"}),
            "DNS name",
        ),
        (
            json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_uri": "not a uri"}),
            "absolute URI",
        ),
        (
            json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_ip": "10.0.0.256"}),
            "IPv4 or IPv6",
        ),
        (
            json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_email": "no-at-sign"}),
            "email",
        ),
        (
            json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_dns": 5}),
            "must be a string",
        ),
        (
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [public_jwk("k")]},
                   "tls_client_auth_subject_dn": "CN=a"}),
            "only with token_endpoint_auth_method tls_client_auth",
        ),
        (
            json!({"token_endpoint_auth_method": "self_signed_tls_client_auth"}),
            "requires jwks or jwks_uri",
        ),
        (
            json!({"tls_client_certificate_bound_access_tokens": "yes"}),
            "tls_client_certificate_bound_access_tokens",
        ),
    ] {
        let answer = app.register(with(extra.clone()), json!({})).await;
        answer.assert_error(400, "invalid_client_metadata");
        let description = answer.body["error_description"].as_str().unwrap();
        assert!(description.contains(needle), "{extra}: {description}");
    }
    // self-signed certificates registered as keys
    let answer = app
        .register(
            with(json!({
                "token_endpoint_auth_method": "self_signed_tls_client_auth",
                "jwks": {"keys": [public_jwk("cert-key")]},
            })),
            json!({}),
        )
        .await;
    let body = answer.assert_created();
    assert!(body.get("client_secret").is_none());
    assert!(body
        .get("tls_client_certificate_bound_access_tokens")
        .is_none());
}

#[tokio::test]
async fn discovery_lists_the_methods_and_the_ops_mtls_endpoints_when_configured() {
    let plain = spawn_app().await;
    let document = plain
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let methods = document["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    for method in ["tls_client_auth", "self_signed_tls_client_auth"] {
        assert!(methods.iter().any(|m| m == method), "{method}");
    }
    assert!(document.get("mtls_endpoint_aliases").is_none());
    assert!(document
        .get("tls_client_certificate_bound_access_tokens")
        .is_none());

    let with_aliases = spawn_app_with(|c| {
        c.mtls_endpoint_aliases = Some(
            [(
                "token_endpoint".to_owned(),
                "https://mtls.op.example.com/token".to_owned(),
            )]
            .into_iter()
            .collect(),
        );
    })
    .await;
    let document = with_aliases
        .get_json("/.well-known/openid-configuration")
        .await;
    assert_eq!(
        document["mtls_endpoint_aliases"]["token_endpoint"],
        "https://mtls.op.example.com/token"
    );
    assert_eq!(document["tls_client_certificate_bound_access_tokens"], true);
}
