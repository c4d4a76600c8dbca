//! POST /register: the metadata rules of digest §1–§6 through the real endpoint.

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
    // R5, R91
    assert!(answer
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
    // R6, R104: a client_id of VSCHAR characters within the limit
    let client_id = body["client_id"].as_str().unwrap();
    assert!(client_id.len() <= 4096);
    assert!(client_id.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    // R15: the statement echoed byte for byte; R16: its values as top-level members
    assert_eq!(body["software_statement"], statement);
    assert_eq!(body["software_id"], "software-1");
    assert_eq!(body["client_name"], "Test Client");
    // R11: defaults listed
    assert_eq!(body["grant_types"], json!(["authorization_code"]));
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["application_type"], "web");
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(body["id_token_signed_response_alg"], "RS256");
    assert_eq!(body["subject_type"], "public");
    // R9, R75: a secret of 256 bits with its expiry; 0 = never
    assert_eq!(body["client_secret"].as_str().unwrap().len(), 43);
    assert_eq!(body["client_secret_expires_at"], 0);
    assert!(body["client_id_issued_at"].as_u64().unwrap() > 0);
    // R24, R64: RAT and configuration URL together
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
    // R7, R10
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
    // R17, digest §8 merge
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
    // R96: any contact string
    assert_eq!(body["contacts"], json!(["@ops on chat"]));
    assert_eq!(body["client_name#fr"], "Client de test");
}

#[tokio::test]
async fn response_only_and_unknown_members_are_ignored() {
    // R8, R14
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
        // R95: implicit with the default ["code"]
        (
            json!({"grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"response_types": ["id_token"]}),
            "invalid_client_metadata",
        ),
        (json!({"response_types": []}), "invalid_client_metadata"),
        // R42: code id_token needs implicit too
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
    // R94: client_credentials alone: response_types defaults to [] (C14), no redirect URIs needed
    let answer = app
        .register(
            json!({"software_id": "svc", "grant_types": ["client_credentials"]}),
            json!({}),
        )
        .await;
    assert_eq!(answer.assert_created()["response_types"], json!([]));
    // R41: a redirect-based grant without redirect_uris
    app.register(json!({"software_id": "svc"}), json!({}))
        .await
        .assert_error(400, "invalid_redirect_uri");
}

#[tokio::test]
async fn redirect_uri_rules() {
    let app = spawn_app().await;
    let refused = [
        // R40, R39, digest §3.1 step 3
        (json!(["/cb"]), "web"),
        (json!(["https://rp.example.com/cb#frag"]), "web"),
        (json!(["http://rp.example.com/cb"]), "web"),
        (json!(["javascript:alert(1)"]), "web"),
        (json!(["https://user:pw@rp.example.com/cb"]), "web"),
        (json!(["com.example.app:/cb"]), "web"),
        (json!([]), "web"),
        (json!("https://rp.example.com/cb"), "web"),
        (json!([42]), "web"),
        // R38: every entry is checked, not just the first
        (
            json!(["https://rp.example.com/cb", "http://rp.example.com/cb"]),
            "web",
        ),
        // R37, S6
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
    // R36: web + implicit → https, not localhost
    for uri in ["http://127.0.0.1/cb", "https://localhost/cb"] {
        app.register(
            claims_with(json!({"redirect_uris": [uri], "grant_types": ["implicit"], "response_types": ["id_token"]})),
            json!({}),
        )
        .await
        .assert_error(400, "invalid_redirect_uri");
    }
    // O3: loopback http for a web client without implicit
    app.register(
        claims_with(json!({"redirect_uris": ["http://127.0.0.1:8080/cb"]})),
        json!({}),
    )
    .await
    .assert_created();
    // R67: all three native kinds, R97: claimed https on by default
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
    // R107, R70: a public native client gets no secret
    assert!(body.get("client_secret").is_none());
    // values are stored exactly as received (OIDC DCR §6)
    assert_eq!(body["redirect_uris"][2], "http://[::1]:51000/cb");
}

#[tokio::test]
async fn claimed_https_for_native_clients_can_be_switched_off() {
    // R97
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
    // R44 (registration side): precomposed and decomposed forms are different URIs
    let app = spawn_app().await;
    let uris = json!([
        "https://rp.example.com/caf\u{e9}",
        "https://rp.example.com/cafe\u{301}"
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
}

#[tokio::test]
async fn keys_and_cross_field_rules() {
    let app = spawn_app().await;
    let public_jwk = json!({"kty": "EC", "crv": "P-256", "use": "sig", "kid": "k1",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
    let refused = [
        // R26
        json!({"jwks": {"keys": [public_jwk.clone()]}, "jwks_uri": "https://rp.example.com/jwks"}),
        // R27
        json!({"jwks_uri": "http://rp.example.com/jwks"}),
        // R28
        json!({"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}]}}),
        json!({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
        json!({"jwks": {"keys": []}}),
        json!({"jwks": [public_jwk.clone()]}),
        // R29
        json!({"userinfo_encrypted_response_enc": "A128GCM"}),
        json!({"request_object_encryption_enc": "A128GCM"}),
        // R30
        json!({"grant_types": ["authorization_code", "implicit"], "response_types": ["code id_token"], "id_token_signed_response_alg": "none"}),
        // R31
        json!({"token_endpoint_auth_signing_alg": "none"}),
        // R32 (sector_identifier_uri must be https)
        json!({"sector_identifier_uri": "http://rp.example.com/sector.json"}),
        // R34, R35
        json!({"initiate_login_uri": "http://rp.example.com/login"}),
        json!({"request_uris": ["http://rp.example.com/request.jwt"]}),
        // private_key_jwt needs keys (digest §6)
        json!({"token_endpoint_auth_method": "private_key_jwt"}),
        // R106: public client with a MAC or symmetric JWE alg
        json!({"token_endpoint_auth_method": "none", "id_token_signed_response_alg": "HS256"}),
        json!({"token_endpoint_auth_method": "none", "request_object_encryption_alg": "dir"}),
        // not advertised in discovery (O6)
        json!({"id_token_signed_response_alg": "ES999"}),
        json!({"token_endpoint_auth_method": "tls_client_auth"}),
        json!({"subject_type": "anonymous"}),
        // R43: pairwise across hosts without a sector
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
    // R107: a secret exactly when needed
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
    // digest §4
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
    // R104, design.md: never truncated
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
    // digest §8 step 7
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
    // OIDC DCR §5, C12: fetched at registration; here it resolves to a loopback address, which
    // the guarded fetcher refuses before connecting (tests/fetch.rs covers the rest)
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
