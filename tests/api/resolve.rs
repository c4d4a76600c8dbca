//! Resolution for OPs and edge nodes (issue: "the client_id in use"): every resolve outcome,
//! redirect URI matching, each client authentication method, the HTTP API for OPs, and the
//! example front door run against real registrations.

use serde_json::{json, Map, Value};
use stateless_dcr::client_id::{self, ClientIdError};
use stateless_dcr::jose;
use stateless_dcr::keys::{RegistrarKeys, SigningAlg};
use stateless_dcr::resolve::{InvalidClient, ResolveError};

use crate::helpers::{
    client_id_claims, deployment, edge_resolver, now, rotate_signing_key, spawn_app_with,
    spawn_deployment, web_claims, Answer, TestApp, RESOLVE_API_TOKEN,
};

async fn app() -> TestApp {
    spawn_app_with(|c| {
        c.resolve_api_tokens = vec![RESOLVE_API_TOKEN.into()];
        c.token_endpoint = Some("https://op.example.com/token".into());
    })
    .await
}

#[tokio::test]
async fn every_resolve_outcome_with_only_the_public_jwks() {
    let app = app().await;
    let resolver = edge_resolver(&app).await;
    let info = app.register_web_client().await;
    let id = info["client_id"].as_str().unwrap();

    // valid, twice (the second from the cache)
    for _ in 0..2 {
        let client = resolver.resolve(id).await.unwrap();
        assert_eq!(
            client.metadata().redirect_uris,
            ["https://rp.example.com/cb"]
        );
        assert!(client.redirect_uri_matches("https://rp.example.com/cb"));
    }
    // wrong signature (OIDC DCR §7; conformance: client-id-verified-before-use)
    let mut flipped = id.as_bytes().to_vec();
    let i = flipped.len() - 10;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert!(matches!(
        resolver.resolve(&flipped).await,
        Err(ResolveError::InvalidClient(InvalidClient::ClientId(
            ClientIdError::BadSignature
        )))
    ));
    // garbage
    for garbage in ["", "x", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
        assert!(matches!(
            resolver.resolve(garbage).await,
            Err(ResolveError::InvalidClient(_))
        ));
    }
    // unknown kid: minted by another registrar's keys
    let stranger = RegistrarKeys::from_json(
        RegistrarKeys::generate(SigningAlg::Es256)
            .unwrap()
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let claims = |exp: Option<u64>| {
        client_id_claims(
            &app.address,
            json!({"redirect_uris": ["https://rp.example.com/cb"]}),
            exp,
            None,
        )
    };
    let foreign = client_id::mint(&stranger, &claims(None), 4096).unwrap();
    assert!(matches!(
        resolver.resolve(&foreign).await,
        Err(ResolveError::InvalidClient(InvalidClient::ClientId(
            ClientIdError::UnknownKey
        )))
    ));
    // expired
    let keys = RegistrarKeys::load(&app.config.keys).unwrap();
    let expired = client_id::mint(&keys, &claims(Some(now() - 1)), 4096).unwrap();
    assert!(matches!(
        resolver.resolve(&expired).await,
        Err(ResolveError::InvalidClient(InvalidClient::ClientId(
            ClientIdError::Expired
        )))
    ));
}

#[tokio::test]
async fn a_retired_but_listed_key_still_verifies() {
    // rotate, keeping only the public part of the old key: it verifies, it signs nothing
    let d = deployment();
    let old_keys = rotate_signing_key(&d, SigningAlg::Es256, false);
    let app = spawn_deployment(d, |_| {}).await;
    let resolver = edge_resolver(&app).await;
    let claims = client_id_claims(
        &app.address,
        json!({"grant_types": ["client_credentials"]}),
        None,
        None,
    );
    let old_id = client_id::mint(&old_keys, &claims, 4096).unwrap();
    resolver
        .resolve(&old_id)
        .await
        .expect("retired key still listed");
    let fresh = app.register_web_client().await;
    resolver
        .resolve(fresh["client_id"].as_str().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_http_api_reports_revoked_and_amended_clients() {
    let app = app().await;
    let info = app.register_web_client().await;
    let id = info["client_id"].as_str().unwrap();
    let uri = info["registration_client_uri"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();

    let answer = app.resolve_api(json!({"client_id": id})).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["valid"], true);
    assert_eq!(answer.body["client_type"], "confidential");
    assert_eq!(answer.body["client"]["client_name"], "Test Client");

    // amended: the new metadata is what resolves
    let mut body = crate::helpers::update_body(&info);
    body["contacts"] = json!(["amended@rp.example.com"]);
    let updated = app.put_config(uri, Some(token), &body).await;
    assert_eq!(updated.status, 200);
    let answer = app.resolve_api(json!({"client_id": id})).await;
    assert_eq!(
        answer.body["client"]["contacts"],
        json!(["amended@rp.example.com"])
    );

    // revoked
    let new_token = updated.body["registration_access_token"].as_str().unwrap();
    assert_eq!(app.delete_config(uri, Some(new_token)).await.status, 204);
    let answer = app.resolve_api(json!({"client_id": id})).await;
    assert_eq!(answer.body["valid"], false);
    assert_eq!(answer.body["error"], "invalid_client");
}

#[tokio::test]
async fn the_http_api_is_protected_and_parses_strictly() {
    let app = app().await;
    let response = app
        .client
        .post(app.url("/resolve"))
        .json(&json!({"client_id": "x"}))
        .send()
        .await
        .unwrap();
    let answer = Answer::from(response).await;
    answer.assert_error(401, "invalid_token");
    let response = app
        .client
        .post(app.url("/resolve"))
        .bearer_auth("wrong-token-wrong-token-wrong-token")
        .json(&json!({"client_id": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    for bad in [
        json!({}),
        json!({"client_id": 5}),
        json!({"client_id": "x", "client_assertion": "a.b.c"}),
    ] {
        app.resolve_api(bad)
            .await
            .assert_error(400, "invalid_request");
    }
    // a body that is not a JSON object, or not JSON at all, is a malformed call too
    for (content_type, body) in [
        ("application/json", "not json"),
        ("application/json", "[1, 2]"),
        ("text/plain", "{\"client_id\": \"x\"}"),
    ] {
        let response = app
            .client
            .post(app.url("/resolve"))
            .bearer_auth(RESOLVE_API_TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        Answer::from(response)
            .await
            .assert_error(400, "invalid_request");
    }
    // disabled when no token is configured
    let closed = crate::helpers::spawn_app().await;
    let response = closed
        .client
        .post(closed.url("/resolve"))
        .bearer_auth(RESOLVE_API_TOKEN)
        .json(&json!({"client_id": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn redirect_uri_response_type_and_grant_type_checks() {
    let app = app().await;
    let native = app
        .register(
            json!({
                "software_id": "native-app",
                "application_type": "native",
                "token_endpoint_auth_method": "none",
                "redirect_uris": ["http://127.0.0.1:8080/cb", "com.example.app:/cb"],
            }),
            json!({}),
        )
        .await
        .assert_created()
        .clone();
    let id = native["client_id"].as_str().unwrap();
    let check = |uri: &str| json!({"client_id": id, "redirect_uri": uri});
    for ok in [
        "http://127.0.0.1:8080/cb",
        "http://127.0.0.1:51234/cb",
        "http://127.0.0.1/cb",
        "com.example.app:/cb",
    ] {
        let answer = app.resolve_api(check(ok)).await;
        assert_eq!(answer.body["valid"], true, "{ok}");
        // a public client is authenticated by its client_id alone
        assert_eq!(answer.body["authenticated"], true);
        assert_eq!(answer.body["client_type"], "public");
    }
    for near in [
        "http://127.0.0.1:8080/cb/",
        "http://127.0.0.1:8080/CB",
        "http://127.0.0.1:8080/c%62",
        "http://127.0.0.1:8080/cb?x=1",
        "http://localhost:8080/cb",
        "https://127.0.0.1:8080/cb",
        "com.example.app:/cb/",
        // a port is a number from 1 to 65535 (RFC 3986 §3.2.3; RFC 6335 §6)
        "http://127.0.0.1:99999/cb",
        "http://127.0.0.1:12345678901234567890/cb",
        "http://127.0.0.1:/cb",
        "http://127.0.0.1:0/cb",
    ] {
        let answer = app.resolve_api(check(near)).await;
        assert_eq!(answer.body["error"], "invalid_redirect_uri", "{near}");
    }
    let web = app.register_web_client().await;
    let web_id = web["client_id"].as_str().unwrap();
    let answer = app.resolve_api(json!({"client_id": web_id, "redirect_uri": "https://rp.example.com/cb", "response_type": "code", "grant_type": "authorization_code"})).await;
    assert_eq!(answer.body["valid"], true);
    let answer = app
        .resolve_api(json!({"client_id": web_id, "response_type": "token"}))
        .await;
    assert_eq!(answer.body["error"], "unsupported_response_type");
    let answer = app
        .resolve_api(json!({"client_id": web_id, "grant_type": "client_credentials"}))
        .await;
    assert_eq!(answer.body["error"], "unauthorized_client");
}

fn assertion(client_id: &str, exp: u64, jti: &str) -> Value {
    json!({"iss": client_id, "sub": client_id, "aud": "https://op.example.com/token", "exp": exp, "jti": jti})
}

fn sign_hs256(secret: &str, claims: &Value) -> String {
    let signer = josekit::jws::HS256
        .signer_from_bytes(secret.as_bytes())
        .unwrap();
    let mut header = Map::new();
    header.insert("alg".into(), "HS256".into());
    jose::sign_compact(&header, claims.to_string().as_bytes(), &signer).unwrap()
}

#[tokio::test]
async fn client_secret_basic_and_post() {
    let app = app().await;
    for method in ["client_secret_basic", "client_secret_post"] {
        let mut claims = web_claims();
        claims["token_endpoint_auth_method"] = json!(method);
        let info = app
            .register(claims, json!({}))
            .await
            .assert_created()
            .clone();
        let id = info["client_id"].as_str().unwrap();
        let secret = info["client_secret"].as_str().unwrap();
        let good = app
            .resolve_api(
                json!({"client_id": id, "client_secret": secret, "client_auth_method": method}),
            )
            .await;
        assert_eq!(good.body["authenticated"], true, "{method}: {}", good.body);
        let bad = app
            .resolve_api(
                json!({"client_id": id, "client_secret": "nope", "client_auth_method": method}),
            )
            .await;
        assert_eq!(bad.body["error"], "invalid_client");
        let other = if method == "client_secret_basic" {
            "client_secret_post"
        } else {
            "client_secret_basic"
        };
        let wrong_method = app
            .resolve_api(
                json!({"client_id": id, "client_secret": secret, "client_auth_method": other}),
            )
            .await;
        assert_eq!(
            wrong_method.body["error"], "invalid_client",
            "{method} via {other}"
        );
        // without credentials a confidential client is not authenticated
        let none = app.resolve_api(json!({"client_id": id})).await;
        assert_eq!(none.body["authenticated"], false);
    }
}

#[tokio::test]
async fn client_secret_jwt_assertions() {
    let app = app().await;
    let mut claims = web_claims();
    claims["token_endpoint_auth_method"] = json!("client_secret_jwt");
    claims["token_endpoint_auth_signing_alg"] = json!("HS256");
    let info = app
        .register(claims, json!({}))
        .await
        .assert_created()
        .clone();
    let id = info["client_id"].as_str().unwrap();
    let secret = info["client_secret"].as_str().unwrap();
    let call = |assertion: String| json!({"client_id": id, "client_assertion": assertion, "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"});
    let good = sign_hs256(secret, &assertion(id, now() + 60, "a-1"));
    let answer = app.resolve_api(call(good.clone())).await;
    assert_eq!(answer.body["authenticated"], true, "{}", answer.body);
    // replayed
    assert_eq!(
        app.resolve_api(call(good)).await.body["error"],
        "invalid_client"
    );
    // expired, wrong key, wrong audience, iss != client_id
    for bad in [
        sign_hs256(secret, &assertion(id, now() - 3600, "a-2")),
        sign_hs256(
            "not-the-secret-not-the-secret-not-the-secret",
            &assertion(id, now() + 60, "a-3"),
        ),
        sign_hs256(
            secret,
            &json!({"iss": id, "sub": id, "aud": "https://elsewhere.example", "exp": now() + 60, "jti": "a-4"}),
        ),
        sign_hs256(
            secret,
            &json!({"iss": "someone", "sub": id, "aud": "https://op.example.com/token", "exp": now() + 60, "jti": "a-5"}),
        ),
        sign_hs256(
            secret,
            &json!({"iss": id, "sub": id, "aud": "https://op.example.com/token", "exp": now() + 60}),
        ),
        "not.an.assertion".into(),
    ] {
        assert_eq!(
            app.resolve_api(call(bad)).await.body["error"],
            "invalid_client"
        );
    }
}

#[tokio::test]
async fn private_key_jwt_assertions_with_registered_keys() {
    let app = app().await;
    let (private, jwks) = stateless_dcr::keys::generate_authority_key(SigningAlg::Es256).unwrap();
    let private = josekit::jwk::Jwk::from_map(private.as_object().unwrap().clone()).unwrap();
    let mut claims = web_claims();
    claims["token_endpoint_auth_method"] = json!("private_key_jwt");
    claims["jwks"] = jwks;
    let info = app
        .register(claims, json!({}))
        .await
        .assert_created()
        .clone();
    let id = info["client_id"].as_str().unwrap();
    assert!(info.get("client_secret").is_none());
    let sign = |claims: &Value, key: &josekit::jwk::Jwk| {
        let (alg, signer) = stateless_dcr::keys::signer_for(key).unwrap();
        let mut header = Map::new();
        header.insert("alg".into(), alg.into());
        header.insert("kid".into(), private.key_id().unwrap().into());
        jose::sign_compact(&header, claims.to_string().as_bytes(), signer.as_ref()).unwrap()
    };
    let call = |assertion: String| json!({"client_id": id, "client_assertion": assertion, "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"});
    let good = sign(&assertion(id, now() + 60, "p-1"), &private);
    assert_eq!(
        app.resolve_api(call(good.clone())).await.body["authenticated"],
        true
    );
    assert_eq!(
        app.resolve_api(call(good)).await.body["error"],
        "invalid_client",
        "replay"
    );
    let (other, _) = stateless_dcr::keys::generate_authority_key(SigningAlg::Es256).unwrap();
    let other = josekit::jwk::Jwk::from_map(other.as_object().unwrap().clone()).unwrap();
    for bad in [
        sign(&assertion(id, now() - 3600, "p-2"), &private),
        sign(&assertion(id, now() + 60, "p-3"), &other),
        // a MAC keyed with anything is never accepted for private_key_jwt
        sign_hs256(
            "whatever-whatever-whatever-whatever",
            &assertion(id, now() + 60, "p-4"),
        ),
    ] {
        assert_eq!(
            app.resolve_api(call(bad)).await.body["error"],
            "invalid_client"
        );
    }
    // a secret presented by a private_key_jwt client is the wrong method
    let answer = app
        .resolve_api(json!({"client_id": id, "client_secret": "x"}))
        .await;
    assert_eq!(answer.body["error"], "invalid_client");
}

#[tokio::test]
async fn the_example_front_door_validates_real_registrations() {
    let app = app().await;
    let info = app.register_web_client().await;
    let id = info["client_id"].as_str().unwrap();
    let port = crate::helpers::free_port();
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("front_door");
    let mut child = std::process::Command::new(&example)
        .args([
            "--registrar",
            &app.address,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo test builds examples)", example.display()));
    let base = format!("http://127.0.0.1:{port}/authorize");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if client.get(&base).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let result = async {
        assert!(ready, "the front door did not start");
        let get = |query: Vec<(&str, &str)>| {
            let request = client.get(&base).query(&query);
            async move { request.send().await.unwrap() }
        };
        // valid
        let ok = get(vec![
            ("client_id", id),
            ("redirect_uri", "https://rp.example.com/cb"),
            ("response_type", "code"),
            ("state", "s1"),
        ])
        .await;
        assert_eq!(ok.status(), 200);
        assert!(ok.text().await.unwrap().contains("Test Client"));
        // invalid client and unregistered redirect URI: an error page, never a redirect
        // (RFC 6749 §4.1.2.1; conformance: unregistered-redirect-never-followed)
        for query in [
            vec![
                ("client_id", "not-a-client"),
                ("redirect_uri", "https://rp.example.com/cb"),
                ("response_type", "code"),
            ],
            vec![
                ("client_id", id),
                ("redirect_uri", "https://attacker.example/cb"),
                ("response_type", "code"),
            ],
            vec![
                ("client_id", id),
                ("redirect_uri", "https://rp.example.com/cb/"),
                ("response_type", "code"),
            ],
        ] {
            let answer = get(query).await;
            assert_eq!(answer.status(), 400);
            assert!(answer.headers().get("location").is_none());
        }
        // an unregistered response type goes back to the client with the error and state
        let answer = get(vec![
            ("client_id", id),
            ("redirect_uri", "https://rp.example.com/cb"),
            ("response_type", "token"),
            ("state", "s2"),
        ])
        .await;
        assert_eq!(answer.status(), 302);
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with("https://rp.example.com/cb?"),
            "{location}"
        );
        assert!(
            location.contains("error=unsupported_response_type") && location.contains("state=s2")
        );
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    result
}
