//! POST /register: the client metadata rules through the real endpoint (RFC 7591 §2, §2.1,
//! §2.2, §3.2.1, §3.2.2; OIDC DCR §2, §2.1, §3.2, §5, §6; RFC 6749 §3.1.2; RFC 8252 §7,
//! §8.4; OIDC Core §8.1, §9, §10).

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, web_claims};

/// `web_claims()` with `extra` members merged in (null removes a member).
fn claims_with(extra: Value) -> Value {
    let mut claims = web_claims();
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

#[tokio::test]
async fn registration_with_a_statement_returns_201_and_the_client_information() {
    let app = spawn_app().await;
    let statement = app.authority.sign(web_claims());
    let answer = app
        .post_register(&json!({ "software_statement": statement }))
        .await;
    let body = answer.assert_created();
    // RFC 7591 §3.2.1; RFC 9111 §5.2.2.5
    // (conformance: registration-created-201, no-store-everywhere)
    assert!(answer
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
    // RFC 7591 §3.2.1; RFC 6749 §2.2, App. A.1: a client_id of VSCHAR characters within the
    // limit (conformance: response-has-client-id-and-issued-at, client-id-vschar-and-size)
    let client_id = body["client_id"].as_str().unwrap();
    assert!(client_id.len() <= 4096);
    assert!(client_id.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    // RFC 7591 §3.2.1: the statement echoed byte for byte, and its values as top-level members
    // (conformance: statement-echoed)
    assert_eq!(body["software_statement"], statement);
    assert_eq!(body["software_id"], "software-1");
    assert_eq!(body["client_name"], "Test Client");
    // RFC 7591 §3.2.1: defaults listed (conformance: response-lists-registered-metadata)
    assert_eq!(body["grant_types"], json!(["authorization_code"]));
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["application_type"], "web");
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(body["id_token_signed_response_alg"], "RS256");
    assert_eq!(body["subject_type"], "public");
    // RFC 7591 §3.2.1; OIDC Core §16.19: a secret of 256 bits with its expiry; 0 = never
    // (conformance: client-secret-derived, client-secret-expiry-present)
    assert_eq!(body["client_secret"].as_str().unwrap().len(), 43);
    assert_eq!(body["client_secret_expires_at"], 0);
    assert!(body["client_id_issued_at"].as_u64().unwrap() > 0);
    // RFC 7592 §3; OIDC DCR §4.1: RAT and configuration URL together
    // (conformance: rat-issued-with-uri, registration-client-uri-form)
    assert_eq!(
        body["registration_access_token"].as_str().unwrap().len(),
        43
    );
    assert_eq!(
        body["registration_client_uri"],
        format!("{}/register/{client_id}", app.address)
    );
}

#[tokio::test]
async fn two_identical_requests_get_different_clients() {
    // OIDC DCR §3.2 (conformance: client-id-unique, client-secret-derived, rat-derived)
    let app = spawn_app().await;
    let statement = app.authority.sign(web_claims());
    let request = json!({ "software_statement": statement });
    let a = app.post_register(&request).await.assert_created().clone();
    let b = app.post_register(&request).await.assert_created().clone();
    assert_ne!(a["client_id"], b["client_id"]);
    assert_ne!(a["client_secret"], b["client_secret"]);
    assert_ne!(
        a["registration_access_token"],
        b["registration_access_token"]
    );
}

#[tokio::test]
async fn statement_claims_override_the_body_and_body_only_members_are_kept() {
    // RFC 7591 §2, §3.1.1 (conformance: statement-overrides-body)
    let app = spawn_app().await;
    let body = json!({
        "client_name": "From the body",
        "software_id": "impostor",
        "contacts": ["@ops on chat"],
        "client_name#fr": "Client de test",
    });
    let answer = app.register(web_claims(), body).await;
    let body = answer.assert_created();
    assert_eq!(body["client_name"], "Test Client");
    assert_eq!(body["software_id"], "software-1");
    // RFC 7591 §2: any contact string (conformance: contacts-any-string)
    assert_eq!(body["contacts"], json!(["@ops on chat"]));
    assert_eq!(body["client_name#fr"], "Client de test");
}

#[tokio::test]
async fn a_malformed_body_is_refused_even_where_the_statement_sets_the_member() {
    // RFC 7591 §3.2.2: a body member of the wrong type makes the request invalid; the
    // statement's value for the same member does not hide it
    let app = spawn_app().await;
    for (member, value) in [
        ("software_id", json!(1)),
        ("client_name", json!(["x"])),
        ("redirect_uris", json!("https://rp.example.com/cb")),
        ("grant_types", json!(["not-a-grant"])),
    ] {
        let answer = app.register(web_claims(), json!({ member: value })).await;
        assert_eq!(answer.status, 400, "{member}: {}", answer.body);
        assert!(
            ["invalid_client_metadata", "invalid_redirect_uri"].contains(&answer.error()),
            "{member}: {}",
            answer.body
        );
    }
}

#[tokio::test]
async fn response_only_and_unknown_members_are_ignored() {
    // RFC 7591 §2, §3.2.1 (conformance: response-only-members-ignored, unknown-members-ignored)
    let app = spawn_app().await;
    let body = json!({
        "client_id": "chosen-by-client",
        "client_secret": "chosen-secret",
        "registration_access_token": "x",
        "something_unknown": {"nested": [1, 2]},
        "x-extension#en": 5,
    });
    let answer = app.register(web_claims(), body).await;
    let body = answer.assert_created();
    assert_ne!(body["client_id"], "chosen-by-client");
    assert_ne!(body["client_secret"], "chosen-secret");
    assert!(body.get("something_unknown").is_none());
}

#[tokio::test]
async fn a_statement_is_required_by_default_and_open_registration_can_be_enabled() {
    let app = spawn_app().await;
    let request = json!({"redirect_uris": ["https://rp.example.com/cb"]});
    app.post_register(&request)
        .await
        .assert_error(400, "invalid_software_statement");

    let open = spawn_app_with(|c| c.require_software_statement = false).await;
    let body = open.post_register(&request).await.assert_created().clone();
    assert!(body.get("software_statement").is_none());
}

#[tokio::test]
async fn grant_and_response_type_consistency() {
    let app = spawn_app().await;
    let cases = [
        // OIDC DCR §2: implicit with the default ["code"] (conformance: response-type-needs-grant)
        (
            json!({"grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"response_types": ["id_token"]}),
            "invalid_client_metadata",
        ),
        (json!({"response_types": []}), "invalid_client_metadata"),
        // OIDC DCR §2: code id_token needs implicit too (conformance: response-type-needs-grant)
        (
            json!({"response_types": ["code id_token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"response_types": ["code bogus"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["password"]}),
            "invalid_client_metadata",
        ),
    ];
    for (extra, code) in cases {
        app.register(claims_with(extra.clone()), json!({}))
            .await
            .assert_error(400, code);
    }
    let ok = [
        json!({"response_types": ["code id_token"], "grant_types": ["authorization_code", "implicit"]}),
        json!({"response_types": ["id_token code"], "grant_types": ["authorization_code", "implicit"]}),
        json!({"response_types": ["id_token"], "grant_types": ["implicit"]}),
        json!({"grant_types": ["authorization_code", "refresh_token"]}),
    ];
    for extra in ok {
        app.register(claims_with(extra.clone()), json!({}))
            .await
            .assert_created();
    }
    // RFC 7591 §2.1: client_credentials alone: response_types defaults to [], no redirect URIs
    // needed (conformance: response-types-default-empty)
    let answer = app
        .register(
            json!({"software_id": "svc", "grant_types": ["client_credentials"]}),
            json!({}),
        )
        .await;
    assert_eq!(answer.assert_created()["response_types"], json!([]));
    // RFC 7591 §2, §5; OIDC DCR §2: a redirect-based grant without redirect_uris
    // (conformance: redirect-uris-required-for-redirect-grants)
    app.register(json!({"software_id": "svc"}), json!({}))
        .await
        .assert_error(400, "invalid_redirect_uri");
}

#[tokio::test]
async fn redirect_uri_rules() {
    let app = spawn_app().await;
    let refused = [
        // RFC 6749 §3.1.2 (conformance: redirect-uri-absolute, redirect-uri-no-fragment),
        // RFC 7591 §5 (conformance: redirect-uri-http-loopback-only), RFC 6749 §10.15 and
        // RFC 3986 §3.2.1 (conformance: redirect-uri-forbidden-schemes, redirect-uri-no-userinfo)
        (json!(["/cb"]), "web"),
        (json!(["https://rp.example.com/cb#frag"]), "web"),
        (json!(["http://rp.example.com/cb"]), "web"),
        (json!(["javascript:alert(1)"]), "web"),
        (json!(["https://user:pw@rp.example.com/cb"]), "web"),
        (json!(["com.example.app:/cb"]), "web"),
        (json!([]), "web"),
        (json!("https://rp.example.com/cb"), "web"),
        (json!([42]), "web"),
        // OIDC DCR §2: every entry is checked, not just the first
        // (conformance: redirect-uris-every-entry)
        (
            json!(["https://rp.example.com/cb", "http://rp.example.com/cb"]),
            "web",
        ),
        // RFC 8252 §7.1, §7.3, §8.4 (conformance: redirect-uri-http-loopback-only,
        // native-private-scheme-reverse-domain)
        (json!(["http://app.example.com/cb"]), "native"),
        (json!(["myapp:/cb"]), "native"),
    ];
    for (uris, application_type) in refused {
        app.register(
            claims_with(json!({"redirect_uris": uris, "application_type": application_type})),
            json!({}),
        )
        .await
        .assert_error(400, "invalid_redirect_uri");
    }
    // OIDC DCR §2: web + implicit → https, not localhost
    // (conformance: web-implicit-https-not-loopback)
    for uri in ["http://127.0.0.1/cb", "https://localhost/cb"] {
        app.register(
            claims_with(json!({"redirect_uris": [uri], "grant_types": ["implicit"], "response_types": ["id_token"]})),
            json!({}),
        )
        .await
        .assert_error(400, "invalid_redirect_uri");
    }
    // RFC 7591 §5; OIDC DCR §2: loopback http for a web client without implicit
    // (conformance: web-loopback-http-allowed)
    app.register(
        claims_with(json!({"redirect_uris": ["http://127.0.0.1:8080/cb"]})),
        json!({}),
    )
    .await
    .assert_created();
    // RFC 8252 §7.1, §7.2, §7.3: all three native kinds, claimed https on by default
    // (conformance: native-private-scheme-reverse-domain, native-localhost-accepted,
    // native-claimed-https)
    let native = app
        .register(
            claims_with(json!({
                "application_type": "native",
                "token_endpoint_auth_method": "none",
                "redirect_uris": [
                    "com.example.app:/oauth2redirect/example-provider",
                    "http://127.0.0.1/cb",
                    "http://[::1]:51000/cb",
                    "http://localhost/cb",
                    "https://app.example.com/oauth2redirect"
                ]
            })),
            json!({}),
        )
        .await;
    let body = native.assert_created();
    assert_eq!(body["application_type"], "native");
    // OIDC DCR §3.2; RFC 8252 §8.4, §8.5: a public native client gets no secret
    // (conformance: client-secret-when-needed)
    assert!(body.get("client_secret").is_none());
    // values are stored exactly as received (OIDC DCR §6)
    assert_eq!(body["redirect_uris"][2], "http://[::1]:51000/cb");
}

#[tokio::test]
async fn claimed_https_for_native_clients_can_be_switched_off() {
    // RFC 8252 §7.2 (conformance: native-claimed-https)
    let app = spawn_app_with(|c| c.allow_native_https_redirects = false).await;
    app.register(
        claims_with(
            json!({"application_type": "native", "redirect_uris": ["https://app.example.com/cb"]}),
        ),
        json!({}),
    )
    .await
    .assert_error(400, "invalid_redirect_uri");
}

#[tokio::test]
async fn redirect_uris_are_kept_without_normalisation() {
    // OIDC DCR §6; RFC 3986 §6.2.1 (registration side): precomposed and decomposed forms are
    // different URIs, percent-encoded as RFC 3986 §2.1 writes them, and so are other spellings
    // of one resource (conformance: redirect-uris-stored-exactly)
    let app = spawn_app().await;
    let uris = json!([
        "https://rp.example.com/caf%C3%A9",
        "https://rp.example.com/cafe%CC%81",
        "https://rp.example.com/caf%c3%a9",
        "https://RP.example.com/Caf%C3%A9"
    ]);
    let body = app
        .register(
            claims_with(json!({"redirect_uris": uris.clone()})),
            json!({}),
        )
        .await
        .assert_created()
        .clone();
    assert_eq!(body["redirect_uris"], uris);
    // unencoded, they are not URIs (RFC 3986 §2): refused, never stored as something else
    for raw in [
        "https://rp.example.com/caf\u{e9}",
        "https://rp.example.com/\u{202E}fdp.exe",
    ] {
        app.register(claims_with(json!({"redirect_uris": [raw]})), json!({}))
            .await
            .assert_error(400, "invalid_redirect_uri");
    }
}

#[tokio::test]
async fn keys_and_cross_field_rules() {
    let app = spawn_app().await;
    let public_jwk = json!({"kty": "EC", "crv": "P-256", "use": "sig", "kid": "k1",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
    let refused = [
        // RFC 7591 §2; OIDC DCR §2 (conformance: jwks-xor-jwks-uri)
        json!({"jwks": {"keys": [public_jwk.clone()]}, "jwks_uri": "https://rp.example.com/jwks"}),
        // OIDC DCR §2 (conformance: jwks-uri-https)
        json!({"jwks_uri": "http://rp.example.com/jwks"}),
        // RFC 7517 §5; RFC 7518 §6.2.2, §6.3.2, §6.4 (conformance: jwks-public-keys-only)
        json!({"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}]}}),
        json!({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
        json!({"jwks": {"keys": []}}),
        json!({"jwks": [public_jwk.clone()]}),
        // OIDC DCR §2 (conformance: encryption-enc-needs-alg)
        json!({"userinfo_encrypted_response_enc": "A128GCM"}),
        json!({"request_object_encryption_enc": "A128GCM"}),
        // OIDC DCR §2 (conformance: id-token-alg-none-only-without-id-token)
        json!({"grant_types": ["authorization_code", "implicit"], "response_types": ["code id_token"], "id_token_signed_response_alg": "none"}),
        // OIDC DCR §2; RFC 8414 §2 (conformance: token-auth-alg-none-refused)
        json!({"token_endpoint_auth_signing_alg": "none"}),
        // OIDC DCR §5: sector_identifier_uri must be https (conformance: sector-uri-https)
        json!({"sector_identifier_uri": "http://rp.example.com/sector.json"}),
        // OIDC DCR §2 (conformance: initiate-login-uri-https, request-uris-https)
        json!({"initiate_login_uri": "http://rp.example.com/login"}),
        json!({"request_uris": ["http://rp.example.com/request.jwt"]}),
        // private_key_jwt needs keys (OIDC Core §9; conformance: private-key-jwt-needs-keys)
        json!({"token_endpoint_auth_method": "private_key_jwt"}),
        // OIDC Core §10.1, §10.2: public client with a MAC or symmetric JWE alg
        // (conformance: public-client-no-symmetric-algs)
        json!({"token_endpoint_auth_method": "none", "id_token_signed_response_alg": "HS256"}),
        json!({"token_endpoint_auth_method": "none", "request_object_encryption_alg": "dir"}),
        // not advertised in discovery (RFC 8414 §2; conformance: values-within-policy)
        json!({"id_token_signed_response_alg": "ES999"}),
        json!({"token_endpoint_auth_method": "tls_client_auth"}),
        json!({"subject_type": "anonymous"}),
        // OIDC Core §8.1: pairwise across hosts without a sector
        // (conformance: pairwise-multi-host-needs-sector)
        json!({"subject_type": "pairwise", "redirect_uris": ["https://a.example.com/cb", "https://b.example.com/cb"]}),
        // URLs and scope syntax
        json!({"logo_uri": "not a url"}),
        json!({"policy_uri#fr": "javascript:alert(1)"}),
        json!({"scope": "openid  profile"}),
        json!({"scope": "openid \"x\""}),
        json!({"default_max_age": "3600"}),
    ];
    for extra in refused {
        app.register(claims_with(extra.clone()), json!({}))
            .await
            .assert_error(400, "invalid_client_metadata");
    }
    // OIDC DCR §3.2; OIDC Core §9: a secret exactly when needed
    // (conformance: client-secret-when-needed)
    let private_key_jwt = app
        .register(
            claims_with(json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [public_jwk.clone()]}})),
            json!({}),
        )
        .await;
    let body = private_key_jwt.assert_created();
    assert!(body.get("client_secret").is_none());
    assert!(body.get("client_secret_expires_at").is_none());
    assert_eq!(body["jwks"]["keys"][0]["kid"], "k1");
    let with_hs = app
        .register(
            claims_with(json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://rp.example.com/jwks", "id_token_signed_response_alg": "HS256"})),
            json!({}),
        )
        .await;
    assert!(with_hs.assert_created()["client_secret"].is_string());
    let post = app
        .register(
            claims_with(json!({"token_endpoint_auth_method": "client_secret_post"})),
            json!({}),
        )
        .await;
    assert!(post.assert_created()["client_secret"].is_string());
    // pairwise on one host is fine
    let pairwise = app
        .register(claims_with(json!({"subject_type": "pairwise"})), json!({}))
        .await;
    assert_eq!(pairwise.assert_created()["subject_type"], "pairwise");
    // encryption with its default enc (OIDC DCR §2)
    let encrypted = app
        .register(
            claims_with(json!({"jwks_uri": "https://rp.example.com/jwks", "id_token_encrypted_response_alg": "RSA-OAEP"})),
            json!({}),
        )
        .await;
    assert_eq!(
        encrypted.assert_created()["id_token_encrypted_response_enc"],
        "A128CBC-HS256"
    );
}

#[tokio::test]
async fn language_tagged_members_are_kept_byte_exact() {
    // RFC 7591 §2.2; OIDC DCR §2.1; RFC 5646 §2.1, §2.1.1 (conformance: lang-tag-members,
    // lang-tag-well-formed, lang-tag-case-duplicates-refused, lang-tag-names-kept,
    // lang-tag-value-like-base)
    let app = spawn_app().await;
    let answer = app
        .register(
            claims_with(json!({
                "client_name#ja-Jpan-JP": "クライアント名",
                "tos_uri#de": "https://rp.example.com/agb",
            })),
            json!({}),
        )
        .await;
    let body = answer.assert_created();
    assert_eq!(body["client_name#ja-Jpan-JP"], "クライアント名");
    assert_eq!(body["tos_uri#de"], "https://rp.example.com/agb");
    for bad in [
        json!({"client_name#en-US": "a", "client_name#en-us": "b"}),
        json!({"client_name#not_a_tag": "x"}),
        json!({"client_name#fr": 7}),
    ] {
        app.register(claims_with(bad), json!({}))
            .await
            .assert_error(400, "invalid_client_metadata");
    }
}

#[tokio::test]
async fn an_oversized_client_id_is_refused_naming_the_limit() {
    // RFC 6749 §2.2, App. A.1; docs/design.md: never truncated
    // (conformance: client-id-vschar-and-size)
    let app = spawn_app().await;
    let uris: Vec<String> = (0..60)
        .map(|i| format!("https://rp.example.com/callback/number/{i}"))
        .collect();
    let answer = app
        .register(claims_with(json!({"redirect_uris": uris})), json!({}))
        .await;
    answer.assert_error(400, "invalid_client_metadata");
    let description = answer.body["error_description"].as_str().unwrap();
    assert!(description.contains("4096"), "{description}");
}

#[tokio::test]
async fn issuer_policy_limits_software_grants_and_scopes() {
    // RFC 7591 §3.2.2, §5 (conformance: issuer-policy)
    let app = spawn_app_with(|c| {
        c.trusted_issuers[0].allowed_software_ids = Some(vec!["software-1".into()]);
        c.trusted_issuers[0].allowed_scopes = Some(vec!["openid".into(), "profile".into()]);
    })
    .await;
    app.register(web_claims(), json!({})).await.assert_created();
    app.register(claims_with(json!({"software_id": "software-2"})), json!({}))
        .await
        .assert_error(400, "unapproved_software_statement");
    app.register(claims_with(json!({"scope": "openid admin"})), json!({}))
        .await
        .assert_error(400, "unapproved_software_statement");
}

#[tokio::test]
async fn policy_scopes_are_enforced() {
    let app = spawn_app_with(|c| c.policy.scopes = Some(vec!["openid".into()])).await;
    app.register(claims_with(json!({"scope": "openid"})), json!({}))
        .await
        .assert_created();
    app.register(claims_with(json!({"scope": "openid email"})), json!({}))
        .await
        .assert_error(400, "invalid_client_metadata");
}

#[tokio::test]
async fn a_sector_identifier_uri_that_cannot_be_fetched_is_refused() {
    // OIDC DCR §5; RFC 7591 §3.2.2: fetched at registration; here it resolves to a loopback
    // address, which the guarded fetcher refuses before connecting (tests/api/fetch.rs covers
    // the rest; conformance: sector-uri-fetched, sector-uri-unusable-is-metadata-error)
    let app = spawn_app().await;
    let answer = app
        .register(
            claims_with(json!({"sector_identifier_uri": "https://localhost/sector.json"})),
            json!({}),
        )
        .await;
    answer.assert_error(400, "invalid_client_metadata");
    assert!(answer.body["error_description"]
        .as_str()
        .unwrap()
        .contains("sector_identifier_uri"));
}
