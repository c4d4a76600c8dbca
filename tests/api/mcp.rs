//! Open registration as MCP clients use it (docs/mcp.md): the metadata they really send,
//! loopback and private-use redirect URIs, the guards of open mode, browser access to the public
//! documents, and the answers that make a client register again.

use serde_json::{json, Value};

use crate::helpers::{now, spawn_app_with, TestApp, RESOLVE_API_TOKEN};

fn open_mode(c: &mut stateless_dcr::config::Config) {
    c.require_software_statement = false;
    c.resolve_api_tokens = vec![RESOLVE_API_TOKEN.into()];
    c.authorization_endpoint = Some("https://op.example.com/authorize".into());
    c.token_endpoint = Some("https://op.example.com/token".into());
}

async fn open_app() -> TestApp {
    spawn_app_with(open_mode).await
}

/// What the MCP SDKs (TypeScript and Python), Claude Code and VS Code send: no
/// `application_type`, a loopback redirect URI, a public client.
fn mcp_client(redirect_uri: &str) -> Value {
    json!({
        "client_name": "MCP CLI Client",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

#[tokio::test]
async fn mcp_clients_register_as_native_apps_and_match_any_loopback_port() {
    let app = open_app().await;
    for (registered, other_port, other_path) in [
        (
            "http://127.0.0.1:33418/callback",
            "http://127.0.0.1:50123/callback",
            "http://127.0.0.1:33418/other",
        ),
        (
            "http://localhost:6274/oauth/callback",
            "http://localhost:6275/oauth/callback",
            "http://localhost:6274/oauth/callback?x=1",
        ),
    ] {
        let info = app
            .post_register(&mcp_client(registered))
            .await
            .assert_created()
            .clone();
        // only a native app can use these URIs (RFC 8252 §7.3), so that is what it is
        assert_eq!(info["application_type"], "native", "{info}");
        assert_eq!(info["token_endpoint_auth_method"], "none");
        assert!(info.get("client_secret").is_none(), "{info}");
        assert!(info["client_id_issued_at"].is_u64());
        let client_id = info["client_id"].as_str().unwrap();

        // RFC 8252 §7.3: any port on the loopback interface, nothing else changed
        for (presented, valid) in [
            (registered, true),
            (other_port, true),
            (other_path, false),
            ("http://127.0.0.2:33418/callback", false),
            ("https://localhost:6274/oauth/callback", false),
        ] {
            let answer = app
                .resolve_api(json!({"client_id": client_id, "redirect_uri": presented}))
                .await;
            assert_eq!(answer.status, 200);
            assert_eq!(answer.body["valid"], valid, "{presented}: {}", answer.body);
            if !valid {
                assert_eq!(answer.body["error"], "invalid_redirect_uri");
            }
        }
        // a public client authenticates with its client_id alone
        let answer = app.resolve_api(json!({"client_id": client_id})).await;
        assert_eq!(answer.body["authenticated"], true, "{}", answer.body);
        assert_eq!(answer.body["client_type"], "public");
    }

    // a client that names its type keeps it: web matching is exact (OIDC Core §3.1.2.1)
    let mut web = mcp_client("http://127.0.0.1:33418/callback");
    web["application_type"] = json!("web");
    let info = app.post_register(&web).await.assert_created().clone();
    assert_eq!(info["application_type"], "web");
    let answer = app.resolve_api(json!({"client_id": info["client_id"], "redirect_uri": "http://127.0.0.1:50123/callback"}),
    )
    .await;
    assert_eq!(answer.body["valid"], false, "{}", answer.body);
    // one https redirect URI among them: a web client, as OIDC DCR §2 defaults
    let mut mixed = mcp_client("http://127.0.0.1:33418/callback");
    mixed["redirect_uris"] = json!([
        "http://127.0.0.1:33418/callback",
        "https://app.example.com/cb"
    ]);
    let info = app.post_register(&mixed).await.assert_created().clone();
    assert_eq!(info["application_type"], "web");
}

#[tokio::test]
async fn statement_less_clients_expire_after_the_open_lifetime() {
    let app = open_app().await;
    let before = now();
    let info = app
        .post_register(&mcp_client("http://127.0.0.1:1234/cb"))
        .await
        .assert_created()
        .clone();
    let answer = app
        .resolve_api(json!({"client_id": info["client_id"]}))
        .await;
    let expires_at = answer.body["expires_at"].as_u64().unwrap();
    let thirty_days = 30 * 86_400;
    assert!(
        (before + thirty_days..=now() + thirty_days).contains(&expires_at),
        "{expires_at}"
    );

    // the tighter of the general bound and the open one
    let app = spawn_app_with(|c| {
        open_mode(c);
        c.max_client_lifetime_secs = 3600;
    })
    .await;
    let info = app
        .post_register(&mcp_client("http://127.0.0.1:1234/cb"))
        .await
        .assert_created()
        .clone();
    let answer = app
        .resolve_api(json!({"client_id": info["client_id"]}))
        .await;
    let expires_at = answer.body["expires_at"].as_u64().unwrap();
    assert!(expires_at <= now() + 3600, "{expires_at}");

    // 0: no bound of its own
    let app = spawn_app_with(|c| {
        open_mode(c);
        c.max_open_client_lifetime_secs = 0;
    })
    .await;
    let info = app
        .post_register(&mcp_client("http://127.0.0.1:1234/cb"))
        .await
        .assert_created()
        .clone();
    let answer = app
        .resolve_api(json!({"client_id": info["client_id"]}))
        .await;
    assert_eq!(answer.body["expires_at"], Value::Null, "{}", answer.body);
}

#[tokio::test]
async fn deleted_and_unknown_clients_are_invalid_client_so_that_clients_register_again() {
    let app = open_app().await;
    let info = app
        .post_register(&mcp_client("http://127.0.0.1:1234/cb"))
        .await
        .assert_created()
        .clone();
    let uri = info["registration_client_uri"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    assert_eq!(app.delete_config(uri, Some(token)).await.status, 204);
    for client_id in [
        info["client_id"].as_str().unwrap(),
        "mcp-client-from-another-server",
        "",
    ] {
        let answer = app.resolve_api(json!({"client_id": client_id})).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["valid"], false);
        assert_eq!(answer.body["error"], "invalid_client", "{}", answer.body);
    }
}

#[tokio::test]
async fn private_use_schemes_that_are_not_reverse_domains_only_when_allowed() {
    // Cursor's registration (RFC 8252 §7.1 makes the reverse-domain form a SHOULD)
    let cursor = mcp_client("cursor://anysphere.cursor-mcp/oauth/callback");
    let app = open_app().await;
    app.post_register(&cursor)
        .await
        .assert_error(400, "invalid_redirect_uri");

    let app = spawn_app_with(|c| {
        open_mode(c);
        c.allowed_private_use_schemes = vec!["cursor".into()];
    })
    .await;
    let info = app.post_register(&cursor).await.assert_created().clone();
    assert_eq!(info["application_type"], "native");
    assert_eq!(
        info["redirect_uris"],
        json!(["cursor://anysphere.cursor-mcp/oauth/callback"])
    );
    // other schemes stay refused
    app.post_register(&mcp_client("vscode-x://cb"))
        .await
        .assert_error(400, "invalid_redirect_uri");
}

#[tokio::test]
async fn open_registration_is_rate_limited_per_address_by_default() {
    let app = open_app().await;
    let body = mcp_client("http://127.0.0.1:1234/cb");
    let burst = stateless_dcr::config::OPEN_REGISTRATION_PER_ADDRESS.burst;
    for _ in 0..burst {
        app.post_register(&body).await.assert_created();
    }
    let refused = app.post_register(&body).await;
    refused.assert_error(429, "too_many_requests");
    assert!(refused.header("retry-after").is_some());

    // waived explicitly
    let app = spawn_app_with(|c| {
        open_mode(c);
        c.rate_limits.unlimited_open_registration = true;
    })
    .await;
    for _ in 0..=burst {
        app.post_register(&body).await.assert_created();
    }
}

#[tokio::test]
async fn public_documents_pass_the_preflight_of_a_browser_mcp_client() {
    // the MCP Inspector runs in a browser and sends MCP-Protocol-Version on discovery
    let app = open_app().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/jwks",
        "/status-lists",
    ] {
        let preflight = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "http://localhost:6274")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "mcp-protocol-version")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 200, "{path}");
        let allowed = preflight.headers();
        assert!(
            allowed.get("access-control-allow-origin").is_some(),
            "{path}"
        );
        let headers = allowed
            .get("access-control-allow-headers")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            headers.contains("mcp-protocol-version"),
            "{path}: {headers}"
        );

        let get = app
            .client
            .get(app.url(path))
            .header("origin", "http://localhost:6274")
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), 200, "{path}");
        assert!(get.headers().get("access-control-allow-origin").is_some());
    }
    // registration too, with the headers an SDK adds
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/register"))
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, mcp-protocol-version",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
}

#[tokio::test]
async fn discovery_names_the_op_endpoints_strict_clients_require() {
    // RFC 8414 §2: required for the grant types advertised
    let app = open_app().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let document = app.get_json(path).await;
        assert_eq!(
            document["authorization_endpoint"],
            "https://op.example.com/authorize"
        );
        assert_eq!(document["token_endpoint"], "https://op.example.com/token");
        assert_eq!(document["registration_endpoint"], app.url("/register"));
        assert_eq!(document["software_statement_required"], false);
        assert!(document["code_challenge_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("S256")));
    }
}
