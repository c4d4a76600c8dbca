//! Update and delete (RFC 7592 §2, §2.2, §2.3, §3; OIDC DCR §7) on the embedded status store,
//! including a restart and a `kill -9` of the real server process.

use serde_json::{json, Value};

use crate::helpers::{
    deployment, free_port, spawn_app, update_body, web_claims, Answer, ServerProcess, TestApp,
};

fn uri(info: &Value) -> &str {
    info["registration_client_uri"].as_str().unwrap()
}

fn rat(info: &Value) -> &str {
    info["registration_access_token"].as_str().unwrap()
}

async fn registered(app: &TestApp) -> Value {
    app.register(web_claims(), json!({"contacts": ["ops@rp.example.com"]}))
        .await
        .assert_created()
        .clone()
}

#[tokio::test]
async fn update_replaces_metadata_keeps_the_client_id_and_rotates_the_token() {
    let app = spawn_app().await;
    let info = registered(&app).await;
    let mut body = update_body(&info);
    body["contacts"] = json!(["security@rp.example.com"]);
    body["logo_uri"] = json!("https://rp.example.com/logo.png");
    let answer = app.put_config(uri(&info), Some(rat(&info)), &body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let updated = answer.body;
    // RFC 7592 §2.2, §3 (conformance: update-keeps-client-id)
    assert_eq!(updated["client_id"], info["client_id"]);
    assert_eq!(updated["client_secret"], info["client_secret"]);
    assert_eq!(updated["contacts"], json!(["security@rp.example.com"]));
    assert_eq!(updated["logo_uri"], "https://rp.example.com/logo.png");
    assert_ne!(rat(&updated), rat(&info), "the RAT rotates");
    assert_eq!(uri(&updated), uri(&info));

    // the old token stops working, the new one reads the new metadata
    app.get_config(uri(&info), Some(rat(&info)))
        .await
        .assert_error(401, "invalid_token");
    let read = app.get_config(uri(&info), Some(rat(&updated))).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["contacts"], json!(["security@rp.example.com"]));

    // RFC 7592 §2.2: an omitted member is removed (conformance: update-replaces-whole)
    let mut body = update_body(&updated);
    body.as_object_mut().unwrap().remove("contacts");
    let again = app.put_config(uri(&info), Some(rat(&updated)), &body).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.get("contacts").is_none());
    assert_eq!(again.body["logo_uri"], "https://rp.example.com/logo.png");
}

#[tokio::test]
async fn update_refusals_follow_rfc_7592() {
    let app = spawn_app().await;
    let info = registered(&app).await;
    let token = rat(&info);
    let base = update_body(&info);
    let with = |member: &str, value: Value| {
        let mut b = base.clone();
        if value.is_null() {
            b.as_object_mut().unwrap().remove(member);
        } else {
            b[member] = value;
        }
        b
    };
    let refused = [
        // forbidden members (RFC 7592 §2.2)
        with("registration_access_token", json!("x")),
        with("registration_client_uri", json!("https://x.example")),
        with("client_secret_expires_at", json!(0)),
        with("client_id_issued_at", json!(1)),
        // RFC 7592 §2.2: client_id must be the current one
        // (conformance: update-client-id-must-match)
        with("client_id", json!("someone-else")),
        with("client_id", Value::Null),
        // RFC 7592 §2.2: a client_secret that is not the current one
        // (conformance: update-secret-must-match)
        with("client_secret", json!("chosen-by-the-client")),
        // a value fixed by the statement, changed without presenting a statement
        with("client_name", json!("Renamed")),
        with("software_id", json!("other-software")),
        // the whole validation applies
        with("grant_types", json!(["implicit"])),
    ];
    for body in &refused {
        let answer = app.put_config(uri(&info), Some(token), body).await;
        answer.assert_error(400, "invalid_client_metadata");
    }
    let answer = app
        .put_config(
            uri(&info),
            Some(token),
            &with("redirect_uris", json!(["http://rp.example.com/cb"])),
        )
        .await;
    // the statement fixed redirect_uris, so this is caught as a change first
    assert_eq!(answer.status, 400);
    // OIDC DCR §7: nothing was written: the original token still works and nothing changed
    // (conformance: failed-change-writes-nothing)
    let read = app.get_config(uri(&info), Some(token)).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["client_name"], "Test Client");
    // no token, a wrong token → 401
    app.put_config(uri(&info), None, &base)
        .await
        .assert_error(401, "invalid_token");
    app.put_config(uri(&info), Some("wrong"), &base)
        .await
        .assert_error(401, "invalid_token");
    // repeating the current secret is fine
    let ok = app
        .put_config(
            uri(&info),
            Some(token),
            &with("client_secret", info["client_secret"].clone()),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test]
async fn presenting_a_statement_again_can_change_fixed_values() {
    let app = spawn_app().await;
    let info = registered(&app).await;
    let mut claims = web_claims();
    claims["client_name"] = json!("Test Client 2");
    claims["redirect_uris"] = json!(["https://rp.example.com/cb2"]);
    let mut body = update_body(&info);
    body["software_statement"] = json!(app.authority.sign(claims));
    let answer = app.put_config(uri(&info), Some(rat(&info)), &body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["client_name"], "Test Client 2");
    assert_eq!(
        answer.body["redirect_uris"],
        json!(["https://rp.example.com/cb2"])
    );
    // a statement from an untrusted issuer is refused
    let stranger = crate::helpers::Authority::new(
        "https://stranger.example",
        stateless_dcr::keys::SigningAlg::Es256,
    );
    let mut body = update_body(&answer.body);
    body["software_statement"] = json!(stranger.sign(web_claims()));
    app.put_config(uri(&info), Some(rat(&answer.body)), &body)
        .await
        .assert_error(400, "unapproved_software_statement");
}

#[tokio::test]
async fn delete_makes_every_later_use_fail_and_cannot_be_undone() {
    let app = spawn_app().await;
    let info = registered(&app).await;
    let answer = app.delete_config(uri(&info), Some(rat(&info))).await;
    // RFC 7592 §2.3; RFC 9111 §5.2.2.5 (conformance: delete-204, no-store-everywhere)
    assert_eq!(answer.status, 204);
    assert_eq!(answer.body, Value::Null);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    // RFC 7592 §2.3, §5: read, update and delete all 401 afterwards
    // (conformance: delete-is-final)
    app.get_config(uri(&info), Some(rat(&info)))
        .await
        .assert_error(401, "invalid_token");
    app.put_config(uri(&info), Some(rat(&info)), &update_body(&info))
        .await
        .assert_error(401, "invalid_token");
    app.delete_config(uri(&info), Some(rat(&info)))
        .await
        .assert_error(401, "invalid_token");
    // a wrong token cannot delete someone else's client
    let other = registered(&app).await;
    app.delete_config(uri(&other), Some(rat(&info)))
        .await
        .assert_error(401, "invalid_token");
    assert_eq!(
        app.get_config(uri(&other), Some(rat(&other))).await.status,
        200
    );
}

#[tokio::test]
async fn concurrent_updates_with_one_token_cannot_both_win() {
    let app = spawn_app().await;
    let info = registered(&app).await;
    let mut a = update_body(&info);
    a["contacts"] = json!(["a@rp.example.com"]);
    let mut b = update_body(&info);
    b["contacts"] = json!(["b@rp.example.com"]);
    let (first, second) = tokio::join!(
        app.put_config(uri(&info), Some(rat(&info)), &a),
        app.put_config(uri(&info), Some(rat(&info)), &b)
    );
    let statuses = [first.status.as_u16(), second.status.as_u16()];
    assert!(statuses.contains(&200), "{statuses:?}");
    // the other either lost the race (401) or ran after it with a stale token (401)
    assert!(statuses.contains(&401), "{statuses:?}");
}

#[tokio::test]
async fn methods_the_configuration_endpoint_does_not_offer_answer_405_with_allow() {
    // RFC 7592 §2: GET, PUT and DELETE only (management = "none": see read.rs)
    let full = spawn_app().await;
    let info = registered(&full).await;
    let response = full
        .client
        .post(uri(&info))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let answer = Answer::from(response).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("allow"), Some("GET, HEAD, PUT, DELETE"));
}

#[tokio::test]
async fn updates_and_deletes_survive_a_restart_and_a_kill_9() {
    let d = deployment();
    let port = free_port();
    let config = d.write_config_file(port, "");
    let server = ServerProcess::start(&config, port).await;
    let api = server.api(&d.authority);

    let kept = api.register_web_client().await;
    let updated = api.register_web_client().await;
    let deleted = api.register_web_client().await;
    let mut body = update_body(&updated);
    body["contacts"] = json!(["after-update@rp.example.com"]);
    let answer = api
        .put_config(uri(&updated), Some(rat(&updated)), &body)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let new_token = rat(&answer.body).to_owned();
    assert_eq!(
        api.delete_config(uri(&deleted), Some(rat(&deleted)))
            .await
            .status,
        204
    );

    // SIGKILL right after the answers: nothing gets a chance to flush
    server.kill9();
    let server = ServerProcess::start(&config, port).await;
    let read = |info: &Value, token: &str| {
        let (uri, token) = (uri(info).to_owned(), token.to_owned());
        let api = &api;
        async move { api.get_config(&uri, Some(&token)).await }
    };
    assert_eq!(read(&kept, rat(&kept)).await.status, 200);
    assert_eq!(
        read(&updated, rat(&updated)).await.status,
        401,
        "old token after update"
    );
    let current = read(&updated, &new_token).await;
    assert_eq!(current.status, 200);
    assert_eq!(
        current.body["contacts"],
        json!(["after-update@rp.example.com"])
    );
    assert_eq!(
        read(&deleted, rat(&deleted)).await.status,
        401,
        "deleted stays deleted"
    );

    // and once more
    server.kill9();
    let _server = ServerProcess::start(&config, port).await;
    assert_eq!(read(&deleted, rat(&deleted)).await.status, 401);
    assert_eq!(read(&updated, &new_token).await.status, 200);
}

#[tokio::test]
async fn an_update_whose_answer_was_lost_can_be_sent_again_for_it() {
    // the store recorded the update, then the answer never reached the client (a timeout):
    // the same request with the same token gets the same answer, so the client learns its new
    // token; anything else with the rotated token stays 401 (RFC 7592 §2.2)
    let start = crate::helpers::now();
    let clock = stateless_dcr::clock::FixedClock::new(start);
    let app = crate::helpers::spawn_deployment_at(deployment(), clock.clone(), |_| {}).await;
    let info = registered(&app).await;
    let mut body = update_body(&info);
    body["contacts"] = json!(["retry@rp.example.com"]);
    let first = app.put_config(uri(&info), Some(rat(&info)), &body).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let new_token = rat(&first.body).to_owned();
    assert_ne!(new_token, rat(&info));

    clock.set(start + 60);
    let again = app.put_config(uri(&info), Some(rat(&info)), &body).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(rat(&again.body), new_token);
    assert_eq!(again.body["contacts"], json!(["retry@rp.example.com"]));

    // another body with the old token is refused
    let mut other = body.clone();
    other["contacts"] = json!(["someone-else@rp.example.com"]);
    app.put_config(uri(&info), Some(rat(&info)), &other)
        .await
        .assert_error(401, "invalid_token");
    // and so is the same body once the retry window has passed
    clock.set(start + 61);
    app.put_config(uri(&info), Some(rat(&info)), &body)
        .await
        .assert_error(401, "invalid_token");
    // the new token works as usual
    assert_eq!(
        app.get_config(uri(&info), Some(&new_token)).await.status,
        200
    );
}

#[tokio::test]
async fn a_member_the_statement_set_to_null_stays_absent() {
    // the statement fixed client_uri as absent; an update without a new statement cannot set
    // it (RFC 7591 §2.3: the statement's values take precedence)
    let app = spawn_app().await;
    let mut claims = web_claims();
    claims["client_uri"] = Value::Null;
    let info = app
        .register(claims, json!({}))
        .await
        .assert_created()
        .clone();
    assert!(info.get("client_uri").is_none());
    let mut body = update_body(&info);
    body["client_uri"] = json!("https://evil.example/");
    app.put_config(uri(&info), Some(rat(&info)), &body)
        .await
        .assert_error(400, "invalid_client_metadata");
    // left out, or null, it stays absent
    body["client_uri"] = Value::Null;
    let updated = app.put_config(uri(&info), Some(rat(&info)), &body).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert!(updated.body.get("client_uri").is_none());
}

#[tokio::test]
async fn an_update_cannot_store_more_than_a_client_id_can_carry() {
    // the same size rule as at registration (docs/design.md, "The client_id"): a body within
    // max_request_bytes but with metadata no client_id could carry is refused, never stored
    let app = spawn_app().await;
    let info = registered(&app).await;
    let mut body = update_body(&info);
    body["contacts"] = json!(vec!["x".repeat(100); 60]);
    app.put_config(uri(&info), Some(rat(&info)), &body)
        .await
        .assert_error(400, "invalid_client_metadata");
    // nothing was written: the token still works
    assert_eq!(
        app.get_config(uri(&info), Some(rat(&info))).await.status,
        200
    );
}
