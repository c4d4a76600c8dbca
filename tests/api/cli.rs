//! The command line, run as a real process: key generation, statement signing, client inspect
//! and start-up failures naming the bad option.

use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{run_cli, spawn_deployment};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stateless-dcr"))
}

#[test]
fn keys_generate_writes_a_loadable_key_set_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let status = bin()
        .args(["keys", "generate", "--alg", "EdDSA", "--out"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    stateless_dcr::keys::RegistrarKeys::load(&path).unwrap();
    let output = bin()
        .args(["keys", "generate", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
}

#[tokio::test]
async fn statement_sign_and_client_inspect_work_end_to_end() {
    let mut d = crate::helpers::deployment();
    // the authority made with the CLI
    let private = d.dir.path().join("authority.private.json");
    let jwks = d.dir.path().join("authority.jwks.json");
    std::fs::remove_file(&jwks).unwrap();
    let status = bin()
        .args(["statement", "keygen", "--private"])
        .arg(&private)
        .arg("--jwks")
        .arg(&jwks)
        .status()
        .unwrap();
    assert!(status.success());
    d.config.trusted_issuers[0].jwks_file = Some(jwks);
    let claims = d.dir.path().join("claims.json");
    std::fs::write(
        &claims,
        json!({"software_id": "cli", "redirect_uris": ["https://rp.example.com/cb"]}).to_string(),
    )
    .unwrap();
    let statement = run_cli([
        "statement".as_ref(),
        "sign".as_ref(),
        "--issuer".as_ref(),
        crate::helpers::ISSUER.as_ref(),
        "--lifetime".as_ref(),
        "3600".as_ref(),
        "--key".as_ref(),
        private.as_os_str(),
        "--claims".as_ref(),
        claims.as_os_str(),
    ]);

    let app = spawn_deployment(d, |_| {}).await;
    let body = app
        .post_register(&json!({ "software_statement": statement }))
        .await
        .assert_created()
        .clone();
    let client_id = body["client_id"].as_str().unwrap();

    // client inspect with a config file equivalent to the running server's
    let config_path = app.dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            "public_url = \"{}\"\nkeys = \"{}\"\n\n[[trusted_issuers]]\nissuer = \"{}\"\njwks_file = \"{}\"\n",
            app.address,
            app.config.keys.display(),
            crate::helpers::ISSUER,
            app.config.trusted_issuers[0].jwks_file.as_ref().unwrap().display()
        ),
    )
    .unwrap();
    let report = run_cli([
        "client".as_ref(),
        "inspect".as_ref(),
        "--config".as_ref(),
        config_path.as_os_str(),
        client_id.as_ref(),
    ]);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["metadata"]["software_id"], "cli");
    assert_eq!(report["software_statement"]["iss"], crate::helpers::ISSUER);
    // the client's list entry, as its client_id names it
    assert_eq!(
        report["status_list"]["uri"],
        format!("{}/status-lists/0", app.address)
    );
    assert!(report["status_list"]["idx"].is_u64());

    let output = bin()
        .args(["client", "inspect", "--config"])
        .arg(&config_path)
        .arg("not-a-client-id")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["valid"], false);
}

#[test]
fn serve_fails_at_start_up_naming_a_bad_option() {
    let dir = tempfile::tempdir().unwrap();
    for (text, option) in [
        (
            "listen = \"127.0.0.1:0\"\nmax_client_lifetime = 5\n",
            "max_client_lifetime",
        ),
        (
            "listen = \"127.0.0.1:0\"\nclient_id_max_length = 10\n",
            "client_id_max_length",
        ),
        (
            "listen = \"127.0.0.1:0\"\n[policy]\ngrant_types = [\"magic\"]\n",
            "policy.grant_types",
        ),
        ("listen = \"not an address\"\n", "listen"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, format!("keys = \"k.json\"\n{text}")).unwrap();
        let output = bin()
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(option), "{text}: {stderr}");
    }
    // a file must name its keys: never the development keys by default
    let path = dir.path().join("nokeys.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\n").unwrap();
    let output = bin()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("`keys`"));
}

#[tokio::test]
async fn client_inspect_reads_the_status_of_a_running_server_and_writes_nothing() {
    use crate::helpers::{deployment, free_port, ServerProcess};
    // the server holds the redb file: inspect asks it, with one of resolve_api_tokens
    let d = deployment();
    let port = free_port();
    let config = d.write_config_file(
        port,
        "resolve_api_tokens = [\"op-token-0123456789-0123456789-0123456789\"]",
    );
    let server = ServerProcess::start(&config, port).await;
    let api = server.api(&d.authority);
    let info = api.register_web_client().await;
    let client_id = info["client_id"].as_str().unwrap();
    let inspect = || {
        let output = bin()
            .args(["client", "inspect", "--config"])
            .arg(&config)
            .arg(client_id)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        (output.status.success(), report)
    };
    let store_file = &d.config.status_store.path;
    let before = std::fs::read(store_file).unwrap();
    let (ok, report) = inspect();
    assert!(ok, "{report}");
    assert_eq!(report["status"], "active", "{report}");
    assert_eq!(
        std::fs::read(store_file).unwrap(),
        before,
        "inspect wrote to the store"
    );

    let uri = info["registration_client_uri"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    let mut body = crate::helpers::update_body(&info);
    body["contacts"] = json!(["inspected@rp.example.com"]);
    let updated = api.put_config(uri, Some(token), &body).await;
    assert_eq!(updated.status, 200);
    let (ok, report) = inspect();
    assert!(ok);
    assert_eq!(report["status"], "updated", "{report}");
    assert_eq!(
        report["metadata"]["contacts"],
        json!(["inspected@rp.example.com"])
    );

    let token = updated.body["registration_access_token"].as_str().unwrap();
    assert_eq!(api.delete_config(uri, Some(token)).await.status, 204);
    let (ok, report) = inspect();
    assert!(!ok);
    assert_eq!(
        report["status"], "refused by the running server",
        "{report}"
    );
    assert_eq!(report["valid"], false);

    // with the server stopped, inspect reads the file itself, read-only (after a kill -9 the
    // file must first be repaired by the next server start, and inspect says so)
    server.signal("TERM");
    assert!(server.wait().success());
    let before = std::fs::read(store_file).unwrap();
    let (ok, report) = inspect();
    assert!(!ok, "{report}");
    assert_eq!(report["status"], "deleted", "{report}");
    assert_eq!(
        std::fs::read(store_file).unwrap(),
        before,
        "inspect wrote to the store"
    );
}

#[tokio::test]
async fn iat_issue_mints_a_token_the_running_server_accepts_within_its_policy() {
    use crate::helpers::{deployment, free_port, ServerProcess};
    let d = deployment();
    let port = free_port();
    let config = d.write_config_file(port, "registration_requires = \"initial-access-token\"");
    let issue = |extra: &[&str]| {
        bin()
            .args(["iat", "issue", "--config"])
            .arg(&config)
            .args(extra)
            .output()
            .unwrap()
    };
    let output = issue(&[
        "--expires-in",
        "600",
        "--max-uses",
        "1",
        "--redirect-uri-prefix",
        "http://127.0.0.1:",
        "--grant-type",
        "authorization_code",
        "--label",
        "cli test",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    // bad arguments are refused with a message, never a token
    for bad in [
        &["--grant-type", "magic"][..],
        &["--auth-method", "password"][..],
        &["--max-uses", "0"][..],
        &["--expires-in", "0"][..],
    ] {
        let output = issue(bad);
        assert!(!output.status.success(), "{bad:?}");
        assert!(output.stdout.is_empty());
    }

    let server = ServerProcess::start(&config, port).await;
    let api = server.api(&d.authority);
    let register = |body: Value| {
        let request = api
            .client
            .post(api.url("/register"))
            .bearer_auth(&token)
            .json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let outside = json!({"redirect_uris": ["https://rp.example.com/cb"]});
    assert_eq!(register(outside).await, 400);
    let inside =
        json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"});
    assert_eq!(register(inside.clone()).await, 201);
    // its one use is spent
    assert_eq!(register(inside).await, 401);
}
