//! Operating the service: metrics, logs without secrets, audit events, rate limits, health,
//! built-in TLS, key rotation without restart and graceful shutdown.

use std::time::Duration;

use serde_json::{json, Value};
use stateless_dcr::config::{Limit, MetricsConfig};

use crate::helpers::{
    client_id_header, deployment, free_port, run_cli, spawn_app, spawn_app_with, spawn_config,
    update_body, web_claims, Answer, ServerProcess,
};

/// The value of one series in a Prometheus text exposition (0 when absent).
fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// This test's own issuer: the registry is process-wide and other tests register in parallel.
const METRICS_ISSUER: &str = "https://federation.metrics-test.example";

#[tokio::test]
async fn metrics_expose_the_named_series_and_they_move() {
    let app =
        crate::helpers::spawn_deployment(crate::helpers::deployment_for(METRICS_ISSUER), |c| {
            c.metrics = MetricsConfig {
                listen: Some("127.0.0.1:0".parse().unwrap()),
            }
        })
        .await;
    let metrics_url = format!("{}/metrics", app.metrics_address.as_ref().unwrap());
    let scrape = || async {
        app.client
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let ok = format!("stateless_dcr_registrations_total{{error=\"\",issuer=\"{METRICS_ISSUER}\",outcome=\"ok\"}}");
    let refused = format!("stateless_dcr_registrations_total{{error=\"invalid_redirect_uri\",issuer=\"{METRICS_ISSUER}\",outcome=\"refused\"}}");
    let before = scrape().await;
    app.register_web_client().await;
    let mut bad = web_claims();
    bad["redirect_uris"] = json!(["http://rp.example.com/cb"]);
    app.register(bad, json!({}))
        .await
        .assert_error(400, "invalid_redirect_uri");
    let after = scrape().await;
    assert_eq!(series(&after, &ok), series(&before, &ok) + 1.0, "{after}");
    assert_eq!(series(&after, &refused), series(&before, &refused) + 1.0);
    for name in [
        "stateless_dcr_http_request_duration_seconds_bucket",
        "stateless_dcr_signing_key_active",
        "stateless_dcr_cache_lookups_total",
    ] {
        assert!(after.contains(name), "{name} missing from\n{after}");
    }
    // metrics are not on the public listener
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn health_endpoints() {
    let app = spawn_app().await;
    for path in ["/health/live", "/health/ready"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn readiness_fails_while_redis_is_away() {
    let Some(mut redis) = crate::redis::RedisServer::start().await else {
        return;
    };
    let d = deployment();
    let mut config = d.config.clone();
    config.status_store = crate::redis::redis_store(&redis.url, 5);
    let app = spawn_config(config, &d).await;
    let ready = || async {
        app.client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ready().await, 200);
    redis.stop();
    assert_eq!(ready().await, 503);
    // liveness is not readiness
    let live = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
}

#[tokio::test]
async fn rate_limits_answer_429_and_recover() {
    let app = spawn_app_with(|c| {
        c.rate_limits.registration_per_address = Some(Limit {
            burst: 3,
            per_second: 0.5,
        });
        c.rate_limits.configuration_per_address = Some(Limit {
            burst: 2,
            per_second: 0.1,
        });
    })
    .await;
    let statement = app.authority.sign(web_claims());
    let request = json!({ "software_statement": statement });
    let mut info = Value::Null;
    for _ in 0..3 {
        info = app.post_register(&request).await.assert_created().clone();
    }
    let limited = app.post_register(&request).await;
    limited.assert_error(429, "too_many_requests");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    // after the window, registration works again
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    app.post_register(&request).await.assert_created();

    let uri = info["registration_client_uri"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    assert_eq!(app.get_config(uri, Some(token)).await.status, 200);
    assert_eq!(app.get_config(uri, Some(token)).await.status, 200);
    app.get_config(uri, Some(token))
        .await
        .assert_error(429, "too_many_requests");
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    let limit = Limit {
        burst: 1,
        per_second: 0.01,
    };
    let untrusted = spawn_app_with(|c| c.rate_limits.registration_per_address = Some(limit)).await;
    let trusted = spawn_app_with(|c| {
        c.rate_limits.registration_per_address = Some(limit);
        c.rate_limits.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for (app, second_status) in [(&untrusted, 429), (&trusted, 201)] {
        let statement = app.authority.sign(web_claims());
        let mut statuses = Vec::new();
        for forwarded in ["198.51.100.1", "198.51.100.2"] {
            let response = app
                .client
                .post(app.url("/register"))
                .header("x-forwarded-for", forwarded)
                .json(&json!({ "software_statement": statement }))
                .send()
                .await
                .unwrap();
            statuses.push(response.status().as_u16());
        }
        assert_eq!(statuses, [201, second_status]);
    }
}

#[tokio::test]
async fn ipv6_clients_share_a_bucket_per_prefix() {
    // one subscriber usually holds a whole /64 (RFC 6177 §3): addresses inside it share the
    // bucket, another /64 has its own
    let app = spawn_app_with(|c| {
        c.rate_limits.registration_per_address = Some(Limit {
            burst: 1,
            per_second: 0.01,
        });
        c.rate_limits.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let statement = app.authority.sign(web_claims());
    let mut statuses = Vec::new();
    for forwarded in ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"] {
        let response = app
            .client
            .post(app.url("/register"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({ "software_statement": statement }))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [201, 429, 201]);
}

#[tokio::test]
async fn the_per_issuer_limit_counts_verified_statements() {
    let app = spawn_app_with(|c| {
        c.rate_limits.registration_per_issuer = Some(Limit {
            burst: 2,
            per_second: 0.01,
        })
    })
    .await;
    for _ in 0..2 {
        app.register(web_claims(), json!({})).await.assert_created();
    }
    app.register(web_claims(), json!({}))
        .await
        .assert_error(429, "too_many_requests");
    // an unverifiable statement naming the issuer does not spend its budget, nor get through
    app.post_register(&json!({"software_statement": "a.b.c"}))
        .await
        .assert_error(400, "invalid_software_statement");
}

#[tokio::test]
async fn tls_is_built_in() {
    use rcgen::{CertificateParams, KeyPair};
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let d = deployment();
    let cert_file = d.dir.path().join("cert.pem");
    let key_file = d.dir.path().join("key.pem");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let app = crate::helpers::spawn_deployment(d, |c| {
        c.tls = Some(stateless_dcr::config::TlsConfig {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        });
        c.public_url = c.public_url.replace("http://", "https://");
    })
    .await;
    let https = app.address.replace("http://", "https://");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let statement = app.authority.sign(web_claims());
    let response = client
        .post(format!("{https}/register"))
        .json(&json!({ "software_statement": statement }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body["registration_client_uri"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    // the TLS port never answers plain http (RFC 7591 §5: registration over TLS only)
    let plain = app
        .client
        .post(app.url("/register"))
        .json(&json!({ "software_statement": app.authority.sign(web_claims()) }))
        .send()
        .await;
    assert!(plain.is_err(), "plain http was answered: {plain:?}");
}

#[tokio::test]
async fn secrets_never_reach_the_log_and_audit_events_do() {
    let d = deployment();
    let port = free_port();
    let config = d.write_config_file(port, "log_level = \"debug\"\nlog_format = \"json\"");
    let log = d.dir.path().join("server.log");
    let server = ServerProcess::start_logging(&config, port, Some(&log)).await;
    let client = reqwest::Client::new();
    let statement = d.authority.sign(web_claims());
    let response = client
        .post(format!("{}/register", server.address))
        .header("x-request-id", "req-under-test")
        .json(&json!({ "software_statement": statement }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-under-test");
    let info: Value = Answer::from(response).await.assert_created().clone();
    let uri = info["registration_client_uri"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    let secret = info["client_secret"].as_str().unwrap();
    let api = server.api(&d.authority);
    assert_eq!(api.get_config(uri, Some(token)).await.status, 200);
    let updated = api.put_config(uri, Some(token), &update_body(&info)).await;
    let new_token = updated.body["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(api.get_config(uri, Some("guessed-token")).await.status, 401);
    assert_eq!(api.delete_config(uri, Some(&new_token)).await.status, 204);
    server.kill9();

    let text = std::fs::read_to_string(&log).unwrap();
    let keys: Value = serde_json::from_slice(&std::fs::read(&d.config.keys).unwrap()).unwrap();
    let mut secrets = vec![secret.to_owned(), token.to_owned(), new_token.clone()];
    for group in ["signing", "client_secret", "registration_access_token"] {
        for key in keys[group]["keys"].as_array().unwrap() {
            for member in ["d", "k"] {
                if let Some(value) = key[member].as_str() {
                    secrets.push(value.to_owned());
                }
            }
        }
    }
    if let Some(d_value) = d.authority.private.parameter("d").and_then(Value::as_str) {
        secrets.push(d_value.to_owned());
    }
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret reached the log");
    }
    // one JSON object per line, request lines with their id, audit events for each operation
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["request_id"] == "req-under-test" && l["route"] == "/register"));
    for event in ["register", "update", "delete"] {
        if !lines
            .iter()
            .any(|l| l["target"] == "audit" && l["event"] == event)
        {
            eprintln!("{text}");
        }
        assert!(
            lines
                .iter()
                .any(|l| l["target"] == "audit" && l["event"] == event && l["outcome"] == "ok"),
            "no audit event for {event}"
        );
    }
    assert!(lines.iter().any(|l| l["target"] == "audit"
        && l["event"] == "register"
        && l["issuer"] == crate::helpers::ISSUER
        && l["software_id"] == "software-1"));
}

#[tokio::test]
async fn key_rotation_without_restart() {
    let d = deployment();
    let port = free_port();
    let config = d.write_config_file(port, "keys_reload_secs = 0");
    let server = ServerProcess::start(&config, port).await;
    let api = server.api(&d.authority);
    let kid_of = |info: &Value| client_id_header(info)["kid"].as_str().unwrap().to_owned();
    let old = api.register_web_client().await;
    let old_kid = kid_of(&old);

    let new_kid = run_cli([
        std::ffi::OsStr::new("keys"),
        "rotate".as_ref(),
        "--keys".as_ref(),
        d.config.keys.as_os_str(),
    ]);
    assert_ne!(new_kid, old_kid);
    server.signal("HUP");
    let mut rotated = false;
    for _ in 0..200 {
        let jwks = api.jwks().await;
        if jwks["keys"].as_array().unwrap().len() == 2 && jwks["keys"][0]["kid"] == new_kid.as_str()
        {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        rotated,
        "the published JWKS never showed the new active key"
    );
    let fresh = api.register_web_client().await;
    assert_eq!(kid_of(&fresh), new_kid);
    // the client_id signed by the previous key still works
    let read = api
        .get_config(
            old["registration_client_uri"].as_str().unwrap(),
            old["registration_access_token"].as_str(),
        )
        .await;
    assert_eq!(read.status, 200);
}

#[tokio::test]
async fn sigterm_during_load_drains_without_errors() {
    drain_on("TERM").await;
}

#[tokio::test]
async fn sigint_during_load_drains_without_errors() {
    drain_on("INT").await;
}

async fn drain_on(signal: &str) {
    let d = deployment();
    let port = free_port();
    let config = d.write_config_file(port, "shutdown_timeout_secs = 10");
    let server = ServerProcess::start(&config, port).await;
    let address = server.address.clone();
    let statement = d.authority.sign(web_claims());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let address = address.clone();
        let statement = statement.clone();
        tasks.spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = Vec::new();
            // bounded: at most 2,000 requests per task
            for _ in 0..2000 {
                match client
                    .post(format!("{address}/register"))
                    .json(&json!({ "software_statement": statement }))
                    .send()
                    .await
                {
                    Ok(response) => statuses.push(response.status().as_u16()),
                    // the listener is closed: the server stopped accepting
                    Err(_) => break,
                }
            }
            statuses
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal(signal);
    let mut answered = 0;
    while let Some(statuses) = tasks.join_next().await {
        let statuses = statuses.unwrap();
        answered += statuses.len();
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    }
    assert!(answered > 0);
    let status = server.wait();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn start_up_raises_the_open_file_limit_to_the_hard_limit() {
    // every connection is a file: a soft limit of 256 would let a few hundred idle connections
    // stop the service
    let d = deployment();
    let port = free_port();
    let config = d.write_config_file(port, "");
    let mut command = std::process::Command::new("bash");
    command
        .args([
            "-c",
            "ulimit -S -n 256 && exec \"$0\" serve --config \"$1\"",
        ])
        .arg(env!("CARGO_BIN_EXE_stateless-dcr"))
        .arg(&config)
        .stderr(std::process::Stdio::null());
    let server = ServerProcess::spawn(command, port).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_owned();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_ne!(numbers[0], "256", "{line}");
    assert_eq!(
        numbers[0], numbers[1],
        "soft limit not raised to the hard one: {line}"
    );
}

#[tokio::test]
async fn unauthenticated_reads_fill_no_cache() {
    // a verified client_id is cached only once its caller has been authenticated: anyone with
    // a list of client_ids and wrong tokens cannot fill the server's memory with them
    let d = deployment();
    let (port, metrics_port) = (free_port(), free_port());
    let config = d.write_config_file(
        port,
        &format!("[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"),
    );
    let server = ServerProcess::start(&config, port).await;
    let api = server.api(&d.authority);
    let info = api.register_web_client().await;
    let uri = info["registration_client_uri"].as_str().unwrap();
    let hits = || async {
        let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.contains("cache=\"client_id\"") && l.contains("result=\"hit\""))
            .and_then(|l| l.rsplit(' ').next())
            .map(|n| n.parse::<u64>().unwrap())
            .unwrap_or(0)
    };
    for _ in 0..3 {
        api.get_config(uri, Some("wrong-token"))
            .await
            .assert_error(401, "invalid_token");
    }
    assert_eq!(hits().await, 0, "a wrong token put the client in the cache");
    let token = info["registration_access_token"].as_str();
    assert_eq!(api.get_config(uri, token).await.status, 200);
    assert_eq!(api.get_config(uri, token).await.status, 200);
    assert_eq!(hits().await, 1, "an authenticated read is cached");
}
