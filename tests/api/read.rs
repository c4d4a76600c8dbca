//! GET /register/{client_id} (RFC 7592 §2, §2.1, §3; OIDC DCR §4; RFC 6750 §3), with 405 for
//! methods not offered (RFC 9110 §15.5.6), client_id integrity and expiry (OIDC DCR §7;
//! RFC 7591 §3.2.1, §5) and retired signing keys (RFC 7517 §4.5).

use serde_json::json;
use stateless_dcr::client_id;
use stateless_dcr::clock::FixedClock;
use stateless_dcr::config::Management;
use stateless_dcr::keys::{RegistrarKeys, SigningAlg};

use crate::helpers::{
    client_id_claims, client_id_header, deployment, now, rotate_signing_key, spawn_app,
    spawn_app_with, spawn_deployment, spawn_deployment_at,
};

#[tokio::test]
async fn read_returns_the_current_configuration() {
    let app = spawn_app().await;
    let registered = app.register_web_client().await;
    let uri = registered["registration_client_uri"].as_str().unwrap();
    let token = registered["registration_access_token"].as_str().unwrap();
    let answer = app.get_config(uri, Some(token)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let body = answer.body;
    // RFC 7592 §2.1, §3; OIDC DCR §3.2: same client_id, the same secret, the RAT and the URI
    // (conformance: read-returns-client-information, client-secret-derived)
    for member in [
        "client_id",
        "client_secret",
        "client_secret_expires_at",
        "client_id_issued_at",
        "registration_access_token",
        "registration_client_uri",
        "redirect_uris",
        "client_name",
        "grant_types",
        "software_id",
    ] {
        assert_eq!(body[member], registered[member], "{member}");
    }
    // RFC 7592 §3: the statement is not kept, so reads do not echo it
    // (conformance: read-no-statement-echo)
    assert!(body.get("software_statement").is_none());
}

#[tokio::test]
async fn the_longest_client_id_allowed_still_works_at_its_registration_client_uri() {
    // conformance: client-id-vschar-and-size; the client_id rides in the request line
    let app = spawn_app_with(|c| c.client_id_max_length = 32_768).await;
    let mut name_length = 23_000;
    let registered = loop {
        let body = json!({"client_name#de": "n".repeat(name_length)});
        let answer = app.register(crate::helpers::web_claims(), body).await;
        if answer.status == 201 {
            break answer.body;
        }
        // too long for the limit: a little shorter, until it fits
        answer.assert_error(400, "invalid_client_metadata");
        name_length -= 500;
    };
    let client_id = registered["client_id"].as_str().unwrap();
    assert!(client_id.len() > 30_000, "{}", client_id.len());
    let uri = registered["registration_client_uri"].as_str().unwrap();
    let token = registered["registration_access_token"].as_str().unwrap();
    let answer = app.get_config(uri, Some(token)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["client_id"], client_id);
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let a = app.register_web_client().await;
    let b = app.register_web_client().await;
    let uri_a = a["registration_client_uri"].as_str().unwrap();
    let answer = app.get_config(uri_a, None).await;
    answer.assert_error(401, "invalid_token");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"stateless-dcr\"")
    );
    // RFC 6750 §3.1; RFC 7592 §2.1 (conformance: config-invalid-token-401)
    let answer = app.get_config(uri_a, Some("not-the-token")).await;
    answer.assert_error(401, "invalid_token");
    assert!(answer
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
    // OIDC DCR §4.4; RFC 7592 §2.1: client A's token on client B's URL, and the client secret
    // used as a RAT (conformance: foreign-token-same-as-unknown, config-invalid-token-401)
    let uri_b = b["registration_client_uri"].as_str().unwrap();
    let token_a = a["registration_access_token"].as_str().unwrap();
    app.get_config(uri_b, Some(token_a))
        .await
        .assert_error(401, "invalid_token");
    let secret_a = a["client_secret"].as_str().unwrap();
    app.get_config(uri_a, Some(secret_a))
        .await
        .assert_error(401, "invalid_token");
    // a Basic header is no bearer token
    let response = app
        .client
        .get(uri_a)
        .basic_auth("x", Some(token_a))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn invalid_client_ids_are_401_never_404() {
    // OIDC DCR §4.4, §7; RFC 7592 §2.1 (conformance: config-never-404,
    // config-invalid-token-401, client-id-verified-before-use)
    let app = spawn_app().await;
    let registered = app.register_web_client().await;
    let client_id = registered["client_id"].as_str().unwrap();
    let token = registered["registration_access_token"].as_str().unwrap();
    let mut flipped = client_id.as_bytes().to_vec();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let flipped = String::from_utf8(flipped).unwrap();
    let garbage = [
        flipped.as_str(),
        "garbage",
        "a.b.c",
        "a/b/c",
        "%00%ff",
        "eyJhbGciOiJub25lIn0.e30.",
        &"A".repeat(5000),
        "",
    ];
    for id in garbage {
        let uri = format!("{}/register/{id}", app.address);
        let answer = app.get_config(&uri, Some(token)).await;
        answer.assert_error(401, "invalid_token");
    }
}

#[tokio::test]
async fn expired_client_ids_are_refused_and_retired_keys_still_verify() {
    // RFC 7591 §3.2.1; RFC 7517 §4.5: mint with the deployment's own keys, directly
    // (conformance: client-id-expiry, retired-signing-key-verifies)
    let d = deployment();
    // rotate: a new active signing key, the old one still listed with its private part
    let old_keys = rotate_signing_key(&d, SigningAlg::EdDsa, true);
    let new_keys = RegistrarKeys::load(&d.config.keys).unwrap();
    let app = spawn_deployment(d, |_| {}).await;
    let issuer = app.address.clone();

    // a client_id signed with the old key, and its configuration URL and token
    let minted = |exp: Option<u64>| {
        let claims = client_id_claims(
            &issuer,
            json!({"redirect_uris": ["https://rp.example.com/cb"]}),
            exp,
            Some(&old_keys),
        );
        let id = client_id::mint(&old_keys, &claims, 4096).unwrap();
        let token = client_id::registration_access_token(
            old_keys.registration_access_token(),
            claims.access_token_kid.as_deref().unwrap(),
            &claims.jti,
            0,
        )
        .unwrap();
        (format!("{issuer}/register/{id}"), token)
    };
    let (uri, token) = minted(None);
    let answer = app.get_config(&uri, Some(token.expose())).await;
    assert_eq!(
        answer.status, 200,
        "retired but listed key: {}",
        answer.body
    );

    let (uri, token) = minted(Some(now() - 1));
    app.get_config(&uri, Some(token.expose()))
        .await
        .assert_error(401, "invalid_token");

    // new registrations are signed with the new active key
    let body = app.register_web_client().await;
    let header = client_id_header(&body);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], new_keys.signing_key().kid);
    assert_eq!(header["typ"], "client-id+jwt");
}

#[tokio::test]
async fn read_only_management_offers_only_get() {
    // RFC 7592 §2; RFC 9110 §15.5.6: 405 with Allow (conformance: config-methods-405)
    let app = spawn_app_with(|c| c.management = Management::ReadOnly).await;
    let registered = app.register_web_client().await;
    let uri = registered["registration_client_uri"].as_str().unwrap();
    let token = registered["registration_access_token"].as_str().unwrap();
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::POST,
        reqwest::Method::PATCH,
    ] {
        let response = app
            .client
            .request(method.clone(), uri)
            .bearer_auth(token)
            .json(&registered)
            .send()
            .await
            .unwrap();
        let answer = crate::helpers::Answer::from(response).await;
        answer.assert_error(405, "invalid_request");
        assert_eq!(answer.header("allow"), Some("GET, HEAD"), "{method}");
    }
}

#[tokio::test]
async fn management_none_issues_no_registration_access_token() {
    // OIDC DCR §3.2, §8.2; RFC 7592 §3 (conformance: rat-issued-with-uri, config-methods-405)
    let app = spawn_app_with(|c| c.management = Management::None).await;
    let body = app.register_web_client().await;
    assert!(body.get("registration_access_token").is_none());
    assert!(body.get("registration_client_uri").is_none());
    // the configuration endpoint offers nothing: every method is 405 (never 404)
    let uri = format!(
        "{}/register/{}",
        app.address,
        body["client_id"].as_str().unwrap()
    );
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = app
            .client
            .request(method.clone(), &uri)
            .bearer_auth("anything")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        crate::helpers::Answer::from(response)
            .await
            .assert_error(405, "invalid_request");
    }
}

#[tokio::test]
async fn a_client_id_expires_at_the_exact_second_everywhere() {
    // max_client_lifetime_secs fixes exp; the configuration endpoint and POST /resolve refuse
    // the client from that second on (RFC 7519 §4.1.4: not accepted on or after exp)
    let start = now();
    let clock = FixedClock::new(start);
    let token_for_op = "op-token-0123456789-0123456789-0123456789";
    let app = spawn_deployment_at(deployment(), clock.clone(), |c| {
        c.max_client_lifetime_secs = 100;
        c.resolve_api_tokens = vec![token_for_op.into()];
    })
    .await;
    let registered = app.register_web_client().await;
    assert_eq!(registered["client_secret_expires_at"], start + 100);
    let uri = registered["registration_client_uri"].as_str().unwrap();
    let token = registered["registration_access_token"].as_str().unwrap();
    let resolve = || async {
        let response = app
            .client
            .post(app.url("/resolve"))
            .bearer_auth(token_for_op)
            .json(&json!({"client_id": registered["client_id"]}))
            .send()
            .await
            .unwrap();
        crate::helpers::Answer::from(response).await.body["valid"].clone()
    };

    clock.set(start + 99);
    assert_eq!(app.get_config(uri, Some(token)).await.status, 200);
    assert_eq!(resolve().await, true);

    clock.set(start + 100);
    app.get_config(uri, Some(token))
        .await
        .assert_error(401, "invalid_token");
    assert_eq!(resolve().await, false);
}
