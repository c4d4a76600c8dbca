//! Bad input at the network edge: every malformed request gets a 4xx with a JSON error body,
//! never a 5xx or a panic.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, web_claims, Answer};

async fn post_raw(
    app: &crate::helpers::TestApp,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let mut request = app.client.post(app.url("/register")).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    Answer::from(request.send().await.unwrap()).await
}

#[tokio::test]
async fn wrong_media_types_are_refused() {
    // RFC 7591 §3, §3.2.2 (conformance: registration-json-media-type-only)
    let app = spawn_app().await;
    let body = json!({"software_statement": app.authority.sign(web_claims())}).to_string();
    for content_type in [
        None,
        Some("text/plain"),
        // the types of signed requests (tests/api/signed_requests.rs): a JSON body sent as one
        // is not a JWS, and gets the same code
        Some("application/jwt"),
        Some("application/jose"),
        Some("application/x-www-form-urlencoded"),
        Some("application/json; charset=iso-8859-1"),
        Some("application/jsonx"),
    ] {
        post_raw(&app, content_type, body.clone().into_bytes())
            .await
            .assert_error(400, "invalid_client_metadata");
    }
    // parameters and case are tolerated
    post_raw(
        &app,
        Some("Application/JSON; charset=UTF-8"),
        body.into_bytes(),
    )
    .await
    .assert_created();
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_json_error() {
    let app = spawn_app().await;
    let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"string\"".to_vec(),
        b"42".to_vec(),
        b"{\"redirect_uris\": [\"https://a\"]} trailing".to_vec(),
        vec![0xff, 0xfe, 0x7b, 0x7d],
        b"{\"client_name\": \"\xc3\x28\"}".to_vec(),
        deep.into_bytes(),
        deep_object.into_bytes(),
    ];
    for body in bodies {
        let answer = post_raw(&app, Some("application/json"), body).await;
        answer.assert_error(400, "invalid_client_metadata");
    }
}

#[tokio::test]
async fn an_oversized_body_is_413_with_a_json_error() {
    let app = spawn_app().await;
    let big = json!({"client_name": "x".repeat(70 * 1024)}).to_string();
    let answer = post_raw(&app, Some("application/json"), big.into_bytes()).await;
    answer.assert_error(413, "invalid_request");
}

#[tokio::test]
async fn wrong_json_types_in_any_member_are_400() {
    let app = spawn_app_open().await;
    // every known member, plus the statement and a tagged name, each given values of every
    // JSON type but its own
    let mut members: Vec<&str> = stateless_dcr::metadata::KNOWN_MEMBERS.to_vec();
    members.extend(["software_statement", "client_name#en"]);
    let arrays = [
        "redirect_uris",
        "response_types",
        "grant_types",
        "contacts",
        "default_acr_values",
        "request_uris",
    ];
    for member in members {
        let wrong_values: Vec<Value> = match member {
            m if arrays.contains(&m) => {
                vec![
                    json!(true),
                    json!(12.5),
                    json!("x"),
                    json!({"a": 1}),
                    json!([[1]]),
                    json!([1]),
                ]
            }
            "jwks" => vec![json!(true), json!(12), json!("x"), json!([1])],
            "require_auth_time" | "tls_client_certificate_bound_access_tokens" => {
                vec![json!(1), json!("true"), json!({"a": 1}), json!([true])]
            }
            "default_max_age" => vec![
                json!(true),
                json!(12.5),
                json!(-1),
                json!("60"),
                json!([60]),
            ],
            _ => vec![
                json!(true),
                json!(12.5),
                json!(7),
                json!({"a": 1}),
                json!(["x"]),
            ],
        };
        for value in wrong_values {
            let mut body = json!({"redirect_uris": ["https://rp.example.com/cb"]});
            body[member] = value.clone();
            let answer = app.post_register(&body).await;
            assert_eq!(answer.status, 400, "{member}={value}: {}", answer.body);
            assert!(
                [
                    "invalid_client_metadata",
                    "invalid_redirect_uri",
                    "invalid_software_statement"
                ]
                .contains(&answer.error()),
                "{member}={value}: {}",
                answer.body
            );
        }
    }
}

async fn spawn_app_open() -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(|c| {
        c.require_software_statement = false;
        // hundreds of bodies from one address
        c.rate_limits.unlimited_open_registration = true;
    })
    .await
}

#[tokio::test]
async fn random_bodies_never_cause_a_server_error() {
    let app = spawn_app_open().await;
    // a small deterministic generator (xorshift) so failures reproduce
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let fragments = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"redirect_uris\"",
        "\"https://a.example/cb\"",
        "null",
        "true",
        "1e999",
        "-0",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"grant_types\"",
        "\"jwks\"",
        "\"software_statement\"",
        "\"a.b.c\"",
        "\"client_name#x\"",
        " ",
    ];
    for _ in 0..300 {
        let len = (next() % 24) as usize;
        let mut body = String::from("{");
        for _ in 0..len {
            body.push_str(fragments[(next() % fragments.len() as u64) as usize]);
        }
        let answer = post_raw(&app, Some("application/json"), body.clone().into_bytes()).await;
        assert!(
            answer.status.as_u16() < 500,
            "{body} -> {} {}",
            answer.status,
            answer.body
        );
        assert!(
            answer.body["error"].is_string() || answer.status == 201,
            "{body}"
        );
    }
}

#[tokio::test]
async fn other_methods_and_paths() {
    let app = spawn_app().await;
    let answer = Answer::from(app.client.get(app.url("/register")).send().await.unwrap()).await;
    answer.assert_error(405, "invalid_request");
    assert_eq!(answer.header("allow"), Some("POST"));
    let answer = Answer::from(app.client.get(app.url("/nowhere")).send().await.unwrap()).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["error"], "not_found");
    // RFC 9110 §15.5.6: a resource that exists answers other methods with 405 and Allow
    for path in ["/jwks", "/.well-known/openid-configuration", "/health/live"] {
        for method in [
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let response = app.client.request(method.clone(), app.url(path)).send();
            let answer = Answer::from(response.await.unwrap()).await;
            answer.assert_error(405, "invalid_request");
            assert_eq!(answer.header("allow"), Some("GET, HEAD"), "{method} {path}");
        }
    }
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    // RFC 9110 §9.1, §9.3.2: GET resources support HEAD, with the same header fields
    let app = spawn_app().await;
    let registered = app.register_web_client().await;
    let uri = registered["registration_client_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = registered["registration_access_token"].as_str().unwrap();
    for path in [
        app.url("/jwks"),
        app.url("/.well-known/openid-configuration"),
        app.url("/health/live"),
        app.url("/health/ready"),
        uri,
    ] {
        let get = app
            .client
            .get(&path)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let head = app
            .client
            .head(&path)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert_eq!(head.status(), get.status(), "{path}");
        for name in ["content-type", "cache-control"] {
            assert_eq!(
                head.headers().get(name),
                get.headers().get(name),
                "{name} of {path}"
            );
        }
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} sent a body"
        );
    }
    // without the token, HEAD of the configuration endpoint is refused like GET
    let uri = registered["registration_client_uri"].as_str().unwrap();
    let head = app.client.head(uri).send().await.unwrap();
    assert_eq!(head.status(), 401);
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    // OIDC DCR §3, §4 (conformance: cors-on-registration-endpoints)
    let app = spawn_app().await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/register"))
        .header("origin", "https://spa.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_some());
    let registered = app.register_web_client().await;
    let uri = registered["registration_client_uri"].as_str().unwrap();
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, uri)
        .header("origin", "https://spa.example.com")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let response = app
        .client
        .get(uri)
        .header("origin", "https://spa.example.com")
        .bearer_auth(registered["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_some());
    let _: Value = response.json().await.unwrap();
}

#[tokio::test]
async fn refused_and_accepted_preflights_answer_like_the_endpoints() {
    // a refusal is the JSON error of every other answer, and nothing of it is cached
    // (conformance: error-body-json, no-store-everywhere)
    let app = spawn_app().await;
    let preflight = |path: String, method: &'static str, headers: &'static str| {
        let request = app
            .client
            .request(reqwest::Method::OPTIONS, path)
            .header("origin", "https://spa.example.com")
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers);
        async move { Answer::from(request.send().await.unwrap()).await }
    };
    for (path, method, headers) in [
        (app.url("/register"), "PATCH", "content-type"),
        (app.url("/register/abc"), "PATCH", "x-foo"),
    ] {
        let answer = preflight(path.clone(), method, headers).await;
        answer.assert_error(400, "invalid_request");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{path}");
        assert!(answer.header("x-request-id").is_some(), "{path}");
    }
    let accepted = preflight(app.url("/register"), "POST", "content-type").await;
    assert_eq!(accepted.status, 200);
    assert_eq!(accepted.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn garbage_at_the_configuration_endpoint_and_the_resolve_api_never_causes_a_server_error() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.resolve_api_tokens = vec!["resolve-token-resolve-token-resolve-token".into()];
    })
    .await;
    let info = app.register_web_client().await;
    let uri = info["registration_client_uri"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"[]".to_vec(),
        b"{\"client_id\": 5}".to_vec(),
        b"{\"client_id\": null, \"redirect_uris\": {}}".to_vec(),
        vec![0xc3, 0x28],
        format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes(),
        json!({"client_id": info["client_id"], "redirect_uris": [1, 2]}).to_string().into_bytes(),
        json!({"client_id": info["client_id"], "software_statement": ["x"]}).to_string().into_bytes(),
        json!({"client_id": "x".repeat(10_000), "client_assertion": "a", "client_assertion_type": 3}).to_string().into_bytes(),
    ];
    for body in bodies {
        let put = app
            .client
            .put(uri)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let put = Answer::from(put).await;
        assert!(put.status.is_client_error(), "PUT {}", put.status);
        assert!(put.body["error"].is_string());
        let resolve = app
            .client
            .post(app.url("/resolve"))
            .bearer_auth("resolve-token-resolve-token-resolve-token")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let resolve = Answer::from(resolve).await;
        // unknown members are ignored there too, so some of these are valid queries
        assert!(resolve.status.as_u16() < 500, "resolve {}", resolve.status);
        assert!(resolve.body["error"].is_string() || resolve.body["valid"].is_boolean());
    }
    // garbage tokens in the Authorization header
    for header in ["Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "Bearer a b c"] {
        let response = app
            .client
            .get(uri)
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{header:?}");
    }
    // bytes an HTTP client refuses to send in a header value (DEL, a lone non-UTF-8 byte)
    let path = uri.trim_start_matches(&app.address);
    for value in [&b"bearer \x7f"[..], b"Bearer \xff\xfe"] {
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: ").into_bytes();
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        let status = crate::helpers::raw_status(&app.address, &request).await;
        assert!(
            status == 401 || status == 400,
            "{}: {status}",
            String::from_utf8_lossy(value)
        );
    }
}

#[tokio::test]
async fn a_body_that_never_arrives_is_timed_out_with_408() {
    // the head arrives, the announced body does not: after request_timeout_secs (its default,
    // as a user runs the server) the server answers 408 and closes the connection instead of
    // holding it open
    let app = spawn_app().await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(
            b"POST /register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 65000\r\n\r\n{",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    // a deadline only so that a regression fails instead of hanging: the server's own timeout
    // is ten seconds
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the connection was never closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"invalid_request\""), "{answer}");
}

/// Client identifier URLs made of random pieces at `POST /resolve` with metadata documents on:
/// every answer is a verdict (200) or a 4xx, never a 5xx. Only `localhost` may be fetched, on a
/// port where nothing listens, so no query leaves the machine.
#[tokio::test]
async fn random_client_identifier_urls_at_the_resolve_api_never_cause_a_server_error() {
    const TOKEN: &str = "resolve-token-resolve-token-resolve-token";
    let app = crate::helpers::spawn_app_with(|c| {
        c.resolve_api_tokens = vec![TOKEN.into()];
        c.client_id_metadata_documents.mode = stateless_dcr::documents::DocumentsMode::AllowedHosts;
        c.client_id_metadata_documents.allowed_hosts = vec!["localhost".into()];
        c.fetch.allow_private_addresses = true;
        c.fetch.total_timeout_ms = 300;
    })
    .await;
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let pieces = [
        "https://",
        "HTTPS://",
        "localhost",
        "LocalHost",
        ":1",
        ":443",
        ":99999",
        "/",
        "//",
        ".",
        "..",
        "%2e",
        "%2E%2e",
        "?",
        "#",
        "@",
        "user:pw",
        "[::1]",
        "127.0.0.1",
        "é",
        "%00",
        "%zz",
        " ",
        "\t",
        "\\",
        "client.json",
        "a",
        "evil.example",
        "*.",
        "\u{202e}",
    ];
    for _ in 0..200 {
        let len = 1 + (next() % 10) as usize;
        let mut client_id = String::from("https://");
        for _ in 0..len {
            client_id.push_str(pieces[(next() % pieces.len() as u64) as usize]);
        }
        let response = app
            .client
            .post(app.url("/resolve"))
            .bearer_auth(TOKEN)
            .json(&json!({"client_id": client_id}))
            .send()
            .await
            .unwrap();
        let answer = Answer::from(response).await;
        assert!(
            answer.status.as_u16() < 500,
            "{client_id:?} -> {} {}",
            answer.status,
            answer.body
        );
        assert_eq!(
            answer.body["valid"], false,
            "{client_id:?}: {}",
            answer.body
        );
        assert_eq!(answer.body["error"], "invalid_client", "{client_id:?}");
    }
}
