//! The operator withdraws software (`/admin/withdrawals`, `stateless-dcr revoke`): every client
//! of a software_id or of a statement with one record, permanent (INVALID) or lifted later
//! (SUSPENDED), seen by every read, update and resolve, on every node.

use serde_json::{json, Value};

use crate::helpers::{now, run_cli, spawn_app_with, web_claims, Answer, TestApp};

const ADMIN: &str = "admin-token-admin-token-admin-token-admin";
const RESOLVE: &str = "resolve-token-resolve-token-resolve-token";

async fn admin(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    Answer::from(request.send().await.unwrap()).await
}

async fn works(app: &TestApp, info: &Value) -> bool {
    let uri = info["registration_client_uri"].as_str().unwrap();
    let token = info["registration_access_token"].as_str();
    let read = app.get_config(uri, token).await.status == 200;
    let resolved: Value = app
        .client
        .post(app.url("/resolve"))
        .bearer_auth(RESOLVE)
        .json(&json!({"client_id": info["client_id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read, resolved["valid"] == true, "read and resolve agree");
    read
}

fn with(software_id: &str, jti: &str) -> Value {
    let mut claims = web_claims();
    claims["software_id"] = software_id.into();
    claims["jti"] = jti.into();
    claims
}

#[tokio::test]
async fn a_suspension_withdraws_every_client_of_the_software_until_it_is_lifted() {
    let app = spawn_app_with(|c| {
        c.admin_api_tokens = vec![ADMIN.into()];
        c.resolve_api_tokens = vec![RESOLVE.into()];
    })
    .await;
    let issuer = app.authority.issuer.clone();
    let first = app
        .register(with("app-a", "s1"), json!({}))
        .await
        .assert_created()
        .clone();
    let second = app
        .register(with("app-a", "s2"), json!({}))
        .await
        .assert_created()
        .clone();
    let other = app
        .register(with("app-b", "s3"), json!({}))
        .await
        .assert_created()
        .clone();
    let created = admin(
        &app,
        reqwest::Method::POST,
        "/admin/withdrawals",
        Some(json!({"issuer": issuer, "software_id": "app-a", "status": "suspended", "reason": "audit"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["status"], "suspended");
    assert!(!works(&app, &first).await);
    assert!(!works(&app, &second).await);
    assert!(works(&app, &other).await);
    // an update is refused like a read
    let update = app
        .put_config(
            first["registration_client_uri"].as_str().unwrap(),
            first["registration_access_token"].as_str(),
            &crate::helpers::update_body(&first),
        )
        .await;
    update.assert_error(401, "invalid_token");
    // and the software gets no new client while it is withdrawn
    let refused = app.register(with("app-a", "s4"), json!({})).await;
    refused.assert_error(400, "unapproved_software_statement");
    assert!(
        refused.body["error_description"]
            .as_str()
            .unwrap()
            .contains("withdrawn by this server's operator (suspended)"),
        "{}",
        refused.body
    );
    let listed = admin(&app, reqwest::Method::GET, "/admin/withdrawals", None).await;
    assert_eq!(listed.body["withdrawals"][0]["id"], id.as_str());
    // lifted: the clients come back
    let lifted = admin(
        &app,
        reqwest::Method::DELETE,
        &format!("/admin/withdrawals/{id}"),
        None,
    )
    .await;
    assert_eq!(lifted.status, 204);
    assert!(works(&app, &first).await);
    assert!(works(&app, &second).await);
    app.register(with("app-a", "s4"), json!({}))
        .await
        .assert_created();
    let gone = admin(
        &app,
        reqwest::Method::DELETE,
        &format!("/admin/withdrawals/{id}"),
        None,
    )
    .await;
    gone.assert_error(404, "not_found");
}

#[tokio::test]
async fn a_permanent_withdrawal_of_one_statement_before_a_time_stays() {
    let app = spawn_app_with(|c| {
        c.admin_api_tokens = vec![ADMIN.into()];
        c.resolve_api_tokens = vec![RESOLVE.into()];
    })
    .await;
    let issuer = app.authority.issuer.clone();
    let before = app
        .register(with("app-a", "shared"), json!({}))
        .await
        .assert_created()
        .clone();
    // only clients registered before this second are covered
    let cutoff = now() + 1;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let after = app
        .register(with("app-a", "shared"), json!({}))
        .await
        .assert_created()
        .clone();
    let created = admin(
        &app,
        reqwest::Method::POST,
        "/admin/withdrawals",
        Some(json!({"issuer": issuer, "statement_jti": "shared", "registered_before": cutoff})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["status"], "invalid");
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(!works(&app, &before).await);
    assert!(works(&app, &after).await);
    // permanent: neither lifted nor turned into a suspension
    let lift = admin(
        &app,
        reqwest::Method::DELETE,
        &format!("/admin/withdrawals/{id}"),
        None,
    )
    .await;
    lift.assert_error(409, "invalid_request");
    let weaker = admin(
        &app,
        reqwest::Method::POST,
        "/admin/withdrawals",
        Some(json!({"issuer": issuer, "statement_jti": "shared", "status": "suspended"})),
    )
    .await;
    weaker.assert_error(409, "invalid_request");
    // nor narrowed to fewer clients by posting the same target with an earlier bound
    let narrower = admin(
        &app,
        reqwest::Method::POST,
        "/admin/withdrawals",
        Some(json!({"issuer": issuer, "statement_jti": "shared", "registered_before": 1})),
    )
    .await;
    narrower.assert_error(409, "invalid_request");
    // widening it is allowed: now it covers every client of the statement
    let wider = admin(
        &app,
        reqwest::Method::POST,
        "/admin/withdrawals",
        Some(json!({"issuer": issuer, "statement_jti": "shared"})),
    )
    .await;
    assert_eq!(wider.status, 201, "{}", wider.body);
    assert!(!works(&app, &before).await);
    assert!(!works(&app, &after).await);
}

#[tokio::test]
async fn the_admin_api_needs_its_token_and_refuses_garbage() {
    let app = spawn_app_with(|c| c.admin_api_tokens = vec![ADMIN.into()]).await;
    for token in [None, Some("wrong"), Some(RESOLVE)] {
        let mut request = app.client.get(app.url("/admin/withdrawals"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = Answer::from(request.send().await.unwrap()).await;
        answer.assert_error(401, "invalid_token");
        let challenge = answer.header("www-authenticate").unwrap();
        assert!(challenge.contains("admin"));
        // RFC 6750 §3.1: no error code when no token was presented
        assert_eq!(challenge.contains("error="), token.is_some(), "{challenge}");
    }
    // other methods: 405 with Allow (404 while the API is off, below)
    for (method, path, allow) in [
        (
            reqwest::Method::PUT,
            "/admin/withdrawals",
            "GET, HEAD, POST",
        ),
        (reqwest::Method::GET, "/admin/withdrawals/some-id", "DELETE"),
    ] {
        let answer = admin(&app, method, path, None).await;
        answer.assert_error(405, "invalid_request");
        assert_eq!(answer.header("allow"), Some(allow));
    }
    for body in [
        json!({}),
        json!({"issuer": "i"}),
        json!({"issuer": "i", "software_id": "a", "statement_jti": "b"}),
        json!({"issuer": "i", "software_id": "a", "status": "deleted"}),
        json!({"issuer": 5, "software_id": "a"}),
        json!([1, 2]),
    ] {
        let answer = admin(
            &app,
            reqwest::Method::POST,
            "/admin/withdrawals",
            Some(body.clone()),
        )
        .await;
        answer.assert_error(400, "invalid_request");
    }
    let off = spawn_app_with(|_| {}).await;
    let answer = Answer::from(
        off.client
            .get(off.url("/admin/withdrawals"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_error(404, "not_found");
    let answer = Answer::from(
        off.client
            .put(off.url("/admin/withdrawals"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_error(404, "not_found");
}

#[tokio::test]
async fn stateless_dcr_revoke_calls_the_running_server() {
    let app = spawn_app_with(|c| {
        c.admin_api_tokens = vec![ADMIN.into()];
        c.resolve_api_tokens = vec![RESOLVE.into()];
    })
    .await;
    let info = app
        .register(with("app-cli", "s-cli"), json!({}))
        .await
        .assert_created()
        .clone();
    let issuer = app.authority.issuer.clone();
    let common = ["--server", app.address.as_str(), "--token", ADMIN];
    let out = run_cli(
        [
            "revoke",
            "--issuer",
            issuer.as_str(),
            "--software-id",
            "app-cli",
            "--suspend",
        ]
        .into_iter()
        .chain(common),
    );
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["status"], "suspended");
    assert!(!works(&app, &info).await);
    let listed: Value =
        serde_json::from_str(&run_cli(["revoke", "--list"].into_iter().chain(common))).unwrap();
    assert_eq!(listed["withdrawals"][0]["software_id"], "app-cli");
    let id = created["id"].as_str().unwrap();
    run_cli(["revoke", "--lift", id].into_iter().chain(common));
    assert!(works(&app, &info).await);
}

#[tokio::test]
async fn a_withdrawal_on_one_node_is_seen_by_the_other() {
    use crate::redis::{redis_store, RedisServer};
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let d = crate::helpers::deployment();
    let mut config = d.config.clone();
    config.status_store = redis_store(&redis.url, 3600);
    config.admin_api_tokens = vec![ADMIN.into()];
    config.resolve_api_tokens = vec![RESOLVE.into()];
    let a = crate::helpers::spawn_config(config.clone(), &d).await;
    let b = crate::helpers::spawn_config(config, &d).await;
    let info = b
        .register(with("app-r", "s-r"), json!({}))
        .await
        .assert_created()
        .clone();
    assert!(works(&b, &info).await);
    let created = admin(
        &a,
        reqwest::Method::POST,
        "/admin/withdrawals",
        Some(json!({"issuer": d.authority.issuer, "software_id": "app-r"})),
    )
    .await;
    assert_eq!(created.status, 201);
    // B's set of withdrawals is dropped by the Redis notification
    let mut refused = false;
    for _ in 0..100 {
        if !works(&b, &info).await {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(refused, "B never saw the withdrawal");
}

/// Whether the server's JWKS comes to list exactly `kids`, in order, within 10 s.
async fn publishes(app: &TestApp, kids: &[&str]) -> bool {
    for _ in 0..100 {
        let jwks = app.jwks().await;
        let listed: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        if listed == kids {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn withdrawals_are_signed_again_after_a_key_rotation_and_outlive_the_old_key() {
    use stateless_dcr::keys::{RegistrarKeys, SigningAlg};
    let d = crate::helpers::deployment();
    let keys_path = d.config.keys.clone();
    let app = crate::helpers::spawn_deployment(d, |c| {
        c.admin_api_tokens = vec![ADMIN.into()];
        c.resolve_api_tokens = vec![RESOLVE.into()];
        c.keys_reload_secs = 1;
    })
    .await;
    let issuer = app.authority.issuer.clone();
    let posted = admin(
        &app,
        reqwest::Method::POST,
        "/admin/withdrawals",
        Some(json!({"issuer": issuer, "software_id": "app-r"})),
    )
    .await;
    assert_eq!(posted.status, 201, "{}", posted.body);

    // rotate: a new active key, the old one listed with its private part; the file is reloaded
    let keys: Value = serde_json::from_slice(&std::fs::read(&keys_path).unwrap()).unwrap();
    let old_kid = keys["signing"]["active"].as_str().unwrap().to_owned();
    let fresh = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
    let new_kid = fresh["signing"]["active"].as_str().unwrap().to_owned();
    let mut rotated = keys.clone();
    rotated["signing"] = json!({
        "active": new_kid,
        "keys": [fresh["signing"]["keys"][0], keys["signing"]["keys"][0]],
    });
    std::fs::write(&keys_path, rotated.to_string()).unwrap();
    assert!(
        publishes(&app, &[&new_kid, &old_kid]).await,
        "the rotated key file was never loaded"
    );
    // the withdrawal is signed again in the background: give it a moment
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // retire the old key altogether: nothing it signed verifies any more
    let mut retired = rotated.clone();
    retired["signing"]["keys"] = json!([fresh["signing"]["keys"][0]]);
    std::fs::write(&keys_path, retired.to_string()).unwrap();
    assert!(
        publishes(&app, &[&new_kid]).await,
        "the key file without the old key was never loaded"
    );

    // the withdrawal still verifies and still applies to clients signed with the new key
    let listed = admin(&app, reqwest::Method::GET, "/admin/withdrawals", None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["withdrawals"][0]["id"], posted.body["id"]);
    // (registration reads the same records: refused, not a server error)
    app.register(with("app-r", "r1"), json!({}))
        .await
        .assert_error(400, "unapproved_software_statement");
    let other = app
        .register(with("app-s", "s1"), json!({}))
        .await
        .assert_created()
        .clone();
    assert!(works(&app, &other).await);
}
