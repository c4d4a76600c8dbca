//! Mutual-TLS clients at registration (RFC 8705 §2): `tls_client_auth` with exactly one
//! certificate field, each validated in its form; `self_signed_tls_client_auth` with keys; no
//! secret for either; certificate-bound access tokens asked for; the client_id carries it all,
//! and discovery says what the OP offers. At `POST /resolve`, the certificate the OP took from
//! its TLS terminator authenticates the client (RFC 8705 §2.1, §2.2) and comes back as the
//! `x5t#S256` thumbprint that binds its tokens (§3.1).

use base64::Engine;
use rcgen::{CertificateParams, DnType, DnValue, KeyPair, SanType};
use serde_json::{json, Value};

use crate::helpers::https::public_jwk;
use crate::helpers::{spawn_app, spawn_app_with, web_claims, TestApp, RESOLVE_API_TOKEN};

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

/// A self-signed certificate (made with rcgen, so with a real signature) for `subject`, a list
/// of RDNs in ASN.1 order (the first is the outermost, written last in RFC 4514), and `sans`.
pub fn certificate(
    subject: &[(DnType, &str)],
    sans: Vec<SanType>,
) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    // rcgen starts with a CN of its own
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (kind, value) in subject {
        params
            .distinguished_name
            .push(kind.clone(), DnValue::Utf8String(value.to_string()));
    }
    params.subject_alt_names = sans;
    let certificate = params.self_signed(&key).unwrap();
    (certificate, key)
}

pub fn der_base64(certificate: &rcgen::Certificate) -> String {
    base64::engine::general_purpose::STANDARD.encode(certificate.der())
}

/// RFC 8705 §3.1: base64url SHA-256 of the DER.
pub fn thumbprint(certificate: &rcgen::Certificate) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, certificate.der());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The public JWK of an rcgen P-256 key pair.
fn public_jwk_of(key: &KeyPair) -> Value {
    let raw = key.public_key_raw();
    assert_eq!(raw.len(), 65, "an uncompressed P-256 point");
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    json!({"kty": "EC", "crv": "P-256", "x": b64(&raw[1..33]), "y": b64(&raw[33..]), "kid": "tls"})
}

async fn register_tls_client(app: &TestApp, extra: Value) -> String {
    let answer = app
        .register(
            with(json!({"token_endpoint_auth_method": "tls_client_auth"})),
            extra,
        )
        .await;
    answer.assert_created()["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

const OB_SUBJECT: [(DnType, &str); 4] = [
    (DnType::CountryName, "GB"),
    (DnType::OrganizationName, "OpenBanking"),
    (DnType::OrganizationalUnitName, "0015800001HQQrZAAX"),
    (DnType::CommonName, "tpp.example.com"),
];

#[tokio::test]
async fn the_resolver_authenticates_a_certificate_by_its_subject_dn() {
    let app = spawn_app_with(|c| c.resolve_api_tokens = vec![RESOLVE_API_TOKEN.into()]).await;
    // registered in another attribute order, other case and spacing: the same name
    let client_id = register_tls_client(
        &app,
        json!({"tls_client_auth_subject_dn": "cn=TPP.example.com, ou=0015800001HQQrZAAX,O=OpenBanking ,C=gb"}),
    )
    .await;
    let (matching, _) = certificate(&OB_SUBJECT, vec![]);
    for presented in [der_base64(&matching), matching.pem()] {
        let answer = app
            .resolve_api(json!({"client_id": client_id, "client_certificate": presented}))
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["valid"], true, "{}", answer.body);
        assert_eq!(answer.body["authenticated"], true, "{}", answer.body);
        assert_eq!(answer.body["cnf"]["x5t#S256"], thumbprint(&matching));
    }
    // the same attributes in another RDN order are another name
    let mut reordered = OB_SUBJECT.to_vec();
    reordered.reverse();
    let (wrong_order, _) = certificate(&reordered, vec![]);
    let (other_ou, _) = certificate(
        &[
            (DnType::CountryName, "GB"),
            (DnType::OrganizationName, "OpenBanking"),
            (DnType::OrganizationalUnitName, "0015800001ZZZZZZZZ"),
            (DnType::CommonName, "tpp.example.com"),
        ],
        vec![],
    );
    // a SAN with the subject's text is not the subject
    let (san_only, _) = certificate(
        &[(DnType::CommonName, "someone")],
        vec![SanType::DnsName("tpp.example.com".try_into().unwrap())],
    );
    for refused in [wrong_order, other_ou, san_only] {
        let answer = app
            .resolve_api(
                json!({"client_id": client_id, "client_certificate": der_base64(&refused)}),
            )
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["valid"], false, "{}", answer.body);
        assert_eq!(answer.body["error"], "invalid_client");
    }
    // without a certificate the client is known but not authenticated
    let answer = app.resolve_api(json!({"client_id": client_id})).await;
    assert_eq!(answer.body["valid"], true);
    assert_eq!(answer.body["authenticated"], false);
    assert!(answer.body.get("cnf").is_none());
}

#[tokio::test]
async fn san_entries_match_exactly_without_wildcards() {
    let app = spawn_app_with(|c| c.resolve_api_tokens = vec![RESOLVE_API_TOKEN.into()]).await;
    let cases: Vec<(&str, &str, SanType, Vec<SanType>)> = vec![
        (
            "tls_client_auth_san_dns",
            "client.tpp.example.com",
            SanType::DnsName("CLIENT.tpp.example.com".try_into().unwrap()),
            vec![
                SanType::DnsName("*.tpp.example.com".try_into().unwrap()),
                SanType::DnsName("tpp.example.com".try_into().unwrap()),
            ],
        ),
        (
            "tls_client_auth_san_uri",
            "https://tpp.example.com/client",
            SanType::URI("https://tpp.example.com/client".try_into().unwrap()),
            vec![SanType::URI(
                "https://tpp.example.com/client/".try_into().unwrap(),
            )],
        ),
        (
            "tls_client_auth_san_ip",
            "2001:db8::10",
            SanType::IpAddress("2001:db8:0:0::10".parse().unwrap()),
            vec![SanType::IpAddress("2001:db8::11".parse().unwrap())],
        ),
        (
            "tls_client_auth_san_email",
            "ops@tpp.example.com",
            SanType::Rfc822Name("ops@TPP.example.com".try_into().unwrap()),
            vec![SanType::Rfc822Name(
                "OPS@tpp.example.com".try_into().unwrap(),
            )],
        ),
    ];
    for (member, value, matching, others) in cases {
        let client_id = register_tls_client(&app, json!({ member: value })).await;
        let (good, _) = certificate(&[(DnType::CommonName, "client")], vec![matching]);
        let answer = app
            .resolve_api(json!({"client_id": client_id, "client_certificate": der_base64(&good)}))
            .await;
        assert_eq!(
            answer.body["authenticated"], true,
            "{member}: {}",
            answer.body
        );
        let (bad, _) = certificate(&[(DnType::CommonName, value)], others);
        let answer = app
            .resolve_api(json!({"client_id": client_id, "client_certificate": der_base64(&bad)}))
            .await;
        assert_eq!(answer.body["valid"], false, "{member}: {}", answer.body);
    }
}

#[tokio::test]
async fn a_self_signed_certificate_authenticates_with_a_registered_key() {
    let app = spawn_app_with(|c| c.resolve_api_tokens = vec![RESOLVE_API_TOKEN.into()]).await;
    let (certificate_a, key_a) = certificate(&[(DnType::CommonName, "self-signed")], vec![]);
    let (certificate_b, _) = certificate(&[(DnType::CommonName, "self-signed")], vec![]);
    let answer = app
        .register(
            with(json!({
                "token_endpoint_auth_method": "self_signed_tls_client_auth",
                "jwks": {"keys": [public_jwk("other"), public_jwk_of(&key_a)]},
            })),
            json!({}),
        )
        .await;
    let client_id = answer.assert_created()["client_id"].clone();
    let answer = app
        .resolve_api(json!({"client_id": client_id, "client_certificate": certificate_a.pem()}))
        .await;
    assert_eq!(answer.body["authenticated"], true, "{}", answer.body);
    assert_eq!(answer.body["cnf"]["x5t#S256"], thumbprint(&certificate_a));
    // the same subject with another key is not the client
    let answer = app
        .resolve_api(json!({"client_id": client_id, "client_certificate": certificate_b.pem()}))
        .await;
    assert_eq!(answer.body["valid"], false, "{}", answer.body);
}

#[tokio::test]
async fn a_certificate_binds_tokens_of_any_client_and_garbage_is_invalid_request() {
    let app = spawn_app_with(|c| c.resolve_api_tokens = vec![RESOLVE_API_TOKEN.into()]).await;
    // a public client with certificate-bound tokens (RFC 8705 §4): the thumbprint, no more
    let answer = app
        .register(
            with(json!({
                "token_endpoint_auth_method": "none",
                "tls_client_certificate_bound_access_tokens": true,
            })),
            json!({}),
        )
        .await;
    let client_id = answer.assert_created()["client_id"].clone();
    let (bound, _) = certificate(&[(DnType::CommonName, "app")], vec![]);
    let answer = app
        .resolve_api(json!({"client_id": client_id, "client_certificate": der_base64(&bound)}))
        .await;
    assert_eq!(answer.body["authenticated"], true);
    assert_eq!(answer.body["cnf"]["x5t#S256"], thumbprint(&bound));
    // a client_secret client cannot authenticate with a certificate
    let secret_client = app.register_web_client().await;
    let answer = app
        .resolve_api(json!({
            "client_id": secret_client["client_id"],
            "client_certificate": der_base64(&bound),
        }))
        .await;
    assert_eq!(answer.body["authenticated"], false, "{}", answer.body);
    let mut trailing = bound.der().to_vec();
    trailing.push(0);
    for garbage in [
        json!("not a certificate"),
        json!("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
        json!(base64::engine::general_purpose::STANDARD.encode(&trailing)),
        json!(base64::engine::general_purpose::STANDARD.encode(&bound.der()[..100])),
        json!(42),
    ] {
        let answer = app
            .resolve_api(json!({"client_id": client_id, "client_certificate": garbage}))
            .await;
        answer.assert_error(400, "invalid_request");
    }
}
