//! A federation authority withdraws a software statement through its own status list
//! (draft-ietf-oauth-status-list-18 §6.2, §8.3): checked at registration, and again at every
//! read, update and resolve, with no write per client.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::https::{text_reply, Reply, TestServer};
use crate::helpers::{deployment, spawn_deployment, web_claims};
use crate::status_lists::authority_list;

const RESOLVE_TOKEN: &str = "statement-status-resolve-token-0123456789";

fn list_reply(token: String) -> Reply {
    Reply::Body {
        status: 200,
        body: token,
        delay: Duration::ZERO,
        headers: vec![("Cache-Control".into(), "max-age=1".into())],
    }
}

#[tokio::test]
async fn a_withdrawn_statement_refuses_its_clients_everywhere_without_a_write_per_client() {
    let server = TestServer::start().await;
    let list_path = "/federation/status/1";
    let list_uri = server.url(list_path);
    let d = deployment();
    let authority = d.authority.clone();
    server.route(
        list_path,
        list_reply(authority_list(&authority, &list_uri, 64, &[])),
    );
    let app = spawn_deployment(d, |c| {
        c.fetch = server.config();
        c.fetch.status_list_min_cache_secs = 1;
        c.trusted_issuers[0].status_list_uris = vec![server.url("/federation/status/")];
        c.resolve_api_tokens = vec![RESOLVE_TOKEN.into()];
    })
    .await;
    let claims = |idx: u64, uri: &str| {
        let mut claims = web_claims();
        claims["jti"] = format!("statement-{idx}").into();
        claims["status"] = json!({"status_list": {"idx": idx, "uri": uri}});
        claims
    };
    let registered = app
        .register(claims(3, &list_uri), json!({}))
        .await
        .assert_created()
        .clone();
    let other = app
        .register(claims(4, &list_uri), json!({}))
        .await
        .assert_created()
        .clone();
    let read = |info: &Value| {
        let uri = info["registration_client_uri"].as_str().unwrap().to_owned();
        let token = info["registration_access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let app = &app;
        async move { app.get_config(&uri, Some(&token)).await }
    };
    let resolve = |info: &Value| {
        let request = app
            .client
            .post(app.url("/resolve"))
            .bearer_auth(RESOLVE_TOKEN)
            .json(&json!({"client_id": info["client_id"]}));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(read(&registered).await.status, 200);
    assert_eq!(resolve(&registered).await["valid"], true);

    // the authority withdraws statement 3: one bit in its list, nothing at the registrar
    server.route(
        list_path,
        list_reply(authority_list(&authority, &list_uri, 64, &[3])),
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    read(&registered).await.assert_error(401, "invalid_token");
    let answer = resolve(&registered).await;
    assert_eq!(answer["valid"], false);
    assert!(answer["error_description"]
        .as_str()
        .unwrap()
        .contains("withdrawn by its issuer"));
    let again = app.register(claims(3, &list_uri), json!({})).await;
    again.assert_error(400, "unapproved_software_statement");
    // the other statement of the same list is untouched
    assert_eq!(read(&other).await.status, 200);
    assert_eq!(resolve(&other).await["valid"], true);
}

#[tokio::test]
async fn a_statement_status_the_registrar_cannot_trust_is_refused() {
    let server = TestServer::start().await;
    let d = deployment();
    let authority = d.authority.clone();
    let app = spawn_deployment(d, |c| {
        c.fetch = server.config();
        c.fetch.status_list_min_cache_secs = 1;
        c.trusted_issuers[0].status_list_uris = vec![server.url("/lists/")];
    })
    .await;
    let with_status = |status: Value| {
        let mut claims = web_claims();
        claims["status"] = status;
        claims
    };
    // a list outside the issuer's status_list_uris: refused before any fetch
    for uri in [
        server.url("/elsewhere/1"),
        "https://attacker.example/lists/1".to_owned(),
        server.url("/lists"),
        // under the prefix as text, elsewhere once fetched
        server.url("/lists/../elsewhere/1"),
        server.url("/lists/%2e%2e/elsewhere/1"),
    ] {
        let claims = with_status(json!({"status_list": {"idx": 0, "uri": uri}}));
        let answer = app.register(claims, json!({})).await;
        answer.assert_error(400, "invalid_software_statement");
        assert!(answer.body["error_description"]
            .as_str()
            .unwrap()
            .contains("status_list_uris"));
    }
    // a malformed status claim, and one naming only another mechanism
    for status in [
        json!("x"),
        json!({"status_list": {"idx": -1, "uri": "https://a"}}),
        json!({"other": {}}),
    ] {
        let answer = app.register(with_status(status), json!({})).await;
        answer.assert_error(400, "invalid_software_statement");
    }
    assert_eq!(server.connections(), 0, "nothing was fetched");

    // lists that do not hold up: cannot be checked now (503), never accepted
    let other_key =
        crate::helpers::Authority::new(&authority.issuer, stateless_dcr::keys::SigningAlg::Es256);
    let cases: Vec<(&str, Reply)> = vec![
        ("/lists/unsigned", text_reply(200, "not a jwt")),
        ("/lists/missing", text_reply(404, "gone")),
        (
            "/lists/other-key",
            list_reply(authority_list(
                &other_key,
                &server.url("/lists/other-key"),
                8,
                &[],
            )),
        ),
        (
            "/lists/wrong-sub",
            list_reply(authority_list(
                &authority,
                &server.url("/lists/else"),
                8,
                &[],
            )),
        ),
        (
            "/lists/bomb",
            list_reply(bomb(&authority, &server.url("/lists/bomb"))),
        ),
    ];
    for (path, reply) in cases {
        server.route(path, reply);
        let claims = with_status(json!({"status_list": {"idx": 0, "uri": server.url(path)}}));
        let answer = app.register(claims, json!({})).await;
        answer.assert_error(503, "temporarily_unavailable");
        assert!(answer.header("retry-after").is_some(), "{path}");
    }
    // an index past the end of a good list can say nothing: refused (§8.3 step 6)
    let path = "/lists/short";
    server.route(
        path,
        list_reply(authority_list(&authority, &server.url(path), 8, &[])),
    );
    let claims = with_status(json!({"status_list": {"idx": 8, "uri": server.url(path)}}));
    let answer = app.register(claims, json!({})).await;
    answer.assert_error(400, "invalid_software_statement");
}

/// A list whose `lst` inflates to 32 MiB, twice the default cap: a zlib bomb.
fn bomb(authority: &crate::helpers::Authority, uri: &str) -> String {
    let list = stateless_dcr::status_list::StatusArray::new(
        stateless_dcr::status_list::Bits::new(8).unwrap(),
        32 << 20,
    );
    let mut header = serde_json::Map::new();
    header.insert("alg".into(), "ES256".into());
    header.insert("kid".into(), authority.kid().into());
    header.insert("typ".into(), "statuslist+jwt".into());
    authority.sign_with_header(
        header,
        &json!({"sub": uri, "iat": crate::helpers::now(), "status_list": {"bits": 8, "lst": list.encode().unwrap()}}),
    )
}
