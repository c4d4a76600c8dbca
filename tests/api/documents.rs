//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document) at `POST /resolve`
//! and in the library: documents served by the local https test server, each outcome as
//! docs/api.md documents it, the cache, the policy modes, and statements vouching for documents.

use std::time::Duration;

use serde_json::{json, Value};
use stateless_dcr::config::Config;
use stateless_dcr::documents::DocumentsMode;

use crate::helpers::https::{json_reply, public_jwk, text_reply, Reply, TestServer};
use crate::helpers::{now, spawn_app_with, Answer, TestApp, RESOLVE_API_TOKEN};

const PATH: &str = "/oauth/client.json";
const ADMIN: &str = "admin-token-admin-token-admin-token-admin";

/// A registrar accepting documents, fetching from the test server (its CA trusted, loopback
/// allowed), with `change` applied last.
async fn app(server: &TestServer, change: impl FnOnce(&mut Config)) -> TestApp {
    let fetch = server.config();
    spawn_app_with(move |c| {
        c.resolve_api_tokens = vec![RESOLVE_API_TOKEN.into()];
        c.admin_api_tokens = vec![ADMIN.into()];
        c.fetch = fetch;
        c.client_id_metadata_documents.mode = DocumentsMode::On;
        change(c);
    })
    .await
}

/// What an MCP client publishes (the shape Claude Code and VS Code use): a public client with
/// loopback redirect URIs.
fn document(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Example MCP client",
        "client_uri": "https://mcp-client.example",
        "redirect_uris": ["http://127.0.0.1/callback", "http://localhost/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none"
    })
}

fn with(mut document: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            document.as_object_mut().unwrap().remove(name);
        } else {
            document[name] = value.clone();
        }
    }
    document
}

fn reply_with_headers(body: &Value, headers: &[(&str, &str)]) -> Reply {
    Reply::Body {
        status: 200,
        body: body.to_string(),
        delay: Duration::ZERO,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// The reply of a test route, given the URL it is served at.
type ReplyFor = Box<dyn Fn(&str) -> Reply>;

#[track_caller]
fn assert_refused(answer: &Answer, needle: &str) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["valid"], false, "{}", answer.body);
    assert_eq!(answer.body["error"], "invalid_client", "{}", answer.body);
    let description = answer.body["error_description"].as_str().unwrap();
    assert!(
        description.contains(needle),
        "{needle:?} not in {description:?}"
    );
}

#[tokio::test]
async fn a_document_client_resolves_and_is_fetched_once_within_its_cache_time() {
    let server = TestServer::start().await;
    let app = app(&server, |_| {}).await;
    let url = server.url(PATH);
    server.route(PATH, json_reply(&document(&url)));

    let discovery = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(discovery["client_id_metadata_document_supported"], true);

    for port in [50123, 61000] {
        // a native app in all but name: any loopback port (RFC 8252 §7.3)
        let answer = app
            .resolve_api(json!({
                "client_id": url,
                "redirect_uri": format!("http://127.0.0.1:{port}/callback"),
                "response_type": "code",
                "grant_type": "authorization_code",
            }))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["valid"], true, "{}", answer.body);
        assert_eq!(answer.body["source"], "metadata_document");
        assert_eq!(answer.body["client_type"], "public");
        assert_eq!(answer.body["authenticated"], true);
        assert_eq!(answer.body["client"]["client_id"], url.as_str());
        assert_eq!(answer.body["client"]["client_name"], "Example MCP client");
        assert_eq!(answer.body["client"]["application_type"], "native");
        assert!(answer.body["expires_at"].is_null());
    }
    // a second resolve within the cache time made no fetch
    assert_eq!(server.requests(PATH), 1);

    // a redirect URI the document does not list is refused without a redirect
    let answer = app
        .resolve_api(json!({"client_id": url, "redirect_uri": "https://evil.example/cb"}))
        .await;
    assert_eq!(answer.body["error"], "invalid_redirect_uri");
}

#[tokio::test]
async fn http_caching_is_honoured_within_the_configured_bounds() {
    let server = TestServer::start().await;
    let app = app(&server, |c| {
        c.client_id_metadata_documents.min_cache_secs = 0;
    })
    .await;
    let url = server.url(PATH);
    server.route(
        PATH,
        reply_with_headers(&document(&url), &[("Cache-Control", "no-store")]),
    );
    for _ in 0..2 {
        let answer = app.resolve_api(json!({"client_id": url})).await;
        assert_eq!(answer.body["valid"], true, "{}", answer.body);
    }
    // no-store with a lower bound of 0: every resolve fetches
    assert_eq!(server.requests(PATH), 2);

    // max-age is kept (here well within the default bounds)
    let other = server.url("/cached.json");
    server.route(
        "/cached.json",
        reply_with_headers(&document(&other), &[("Cache-Control", "max-age=600")]),
    );
    for _ in 0..3 {
        let answer = app.resolve_api(json!({"client_id": other})).await;
        assert_eq!(answer.body["valid"], true, "{}", answer.body);
    }
    assert_eq!(server.requests("/cached.json"), 1);
}

#[tokio::test]
async fn every_unusable_document_is_an_invalid_client() {
    let server = TestServer::start().await;
    let app = app(&server, |c| {
        c.fetch.total_timeout_ms = 500;
    })
    .await;
    let cases: Vec<(&str, ReplyFor, &str)> = vec![
        (
            "/mismatch",
            Box::new(|_| json_reply(&document("https://other.example/client"))),
            "not the URL it was fetched from",
        ),
        (
            "/no-client-id",
            Box::new(|url| json_reply(&with(document(url), json!({"client_id": null})))),
            "client_id is required",
        ),
        (
            "/redirect",
            Box::new(|_| Reply::Body {
                status: 302,
                body: String::new(),
                delay: Duration::ZERO,
                headers: vec![("Location".into(), "https://localhost/elsewhere".into())],
            }),
            "redirect",
        ),
        (
            "/not-found",
            Box::new(|_| text_reply(404, "no")),
            "HTTP 404",
        ),
        (
            "/too-large",
            Box::new(|url| {
                json_reply(&with(
                    document(url),
                    json!({"client_name": "x".repeat(6000)}),
                ))
            }),
            "larger than 5120 bytes",
        ),
        (
            "/chunked",
            Box::new(|_| Reply::Chunked { total: 100_000 }),
            "larger than",
        ),
        (
            "/not-json",
            Box::new(|_| text_reply(200, "<html>hello</html>")),
            "not valid JSON",
        ),
        (
            "/array",
            Box::new(|_| text_reply(200, "[1,2,3]")),
            "not a JSON object",
        ),
        (
            "/secret-method",
            Box::new(|url| {
                json_reply(&with(
                    document(url),
                    json!({"token_endpoint_auth_method": "client_secret_basic"}),
                ))
            }),
            "needs a shared secret",
        ),
        (
            "/secret-jwt",
            Box::new(|url| {
                json_reply(&with(
                    document(url),
                    json!({"token_endpoint_auth_method": "client_secret_jwt"}),
                ))
            }),
            "needs a shared secret",
        ),
        (
            "/default-method",
            Box::new(|url| {
                json_reply(&with(
                    document(url),
                    json!({"token_endpoint_auth_method": null}),
                ))
            }),
            "token_endpoint_auth_method is required",
        ),
        (
            "/hs256",
            Box::new(|url| {
                json_reply(&with(
                    document(url),
                    json!({"id_token_signed_response_alg": "HS256"}),
                ))
            }),
            "cannot use HS*",
        ),
        (
            "/hs256-confidential",
            Box::new(|url| {
                json_reply(&with(
                    document(url),
                    json!({
                        "token_endpoint_auth_method": "private_key_jwt",
                        "jwks": {"keys": [public_jwk("k1")]},
                        "id_token_signed_response_alg": "HS256",
                    }),
                ))
            }),
            "MAC",
        ),
        (
            "/client-secret",
            Box::new(|url| json_reply(&with(document(url), json!({"client_secret": "s3cret"})))),
            "client_secret must not appear",
        ),
        (
            "/bad-redirect",
            Box::new(|url| {
                json_reply(&with(
                    document(url),
                    json!({"redirect_uris": ["https://rp.example/cb#fragment"]}),
                ))
            }),
            "invalid_redirect_uri",
        ),
        (
            "/private-key",
            Box::new(|url| {
                json_reply(&with(
                    document(url),
                    json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{
                        "kty": "EC", "crv": "P-256", "kid": "k",
                        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
                        "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
                    }]}}),
                ))
            }),
            "invalid_client_metadata",
        ),
        (
            "/slow",
            Box::new(|url| Reply::Body {
                status: 200,
                body: document(url).to_string(),
                delay: Duration::from_secs(3),
                headers: Vec::new(),
            }),
            "did not answer in time",
        ),
    ];
    for (path, reply, needle) in &cases {
        let url = server.url(path);
        server.route(path, reply(&url));
        let answer = app.resolve_api(json!({"client_id": url})).await;
        assert_refused(&answer, needle);
    }
    // the server still answers, and a good document still resolves
    let url = server.url(PATH);
    server.route(PATH, json_reply(&document(&url)));
    let answer = app.resolve_api(json!({"client_id": url})).await;
    assert_eq!(answer.body["valid"], true, "{}", answer.body);
}

#[tokio::test]
async fn client_identifier_urls_are_checked_before_any_fetch() {
    let server = TestServer::start().await;
    let app = app(&server, |_| {}).await;
    let port = server.port;
    for (client_id, needle) in [
        (format!("https://localhost:{port}/a/../client"), ". or .."),
        (format!("https://localhost:{port}/client#x"), "fragment"),
        (format!("https://user@localhost:{port}/client"), "user name"),
        (format!("https://LOCALHOST:{port}/client"), "normal form"),
        (format!("https://localhost:{port}"), "normal form"),
        ("https://".to_owned(), "valid absolute URL"),
        (
            format!("https://localhost/{}", "a".repeat(3000)),
            "longer than",
        ),
    ] {
        let answer = app.resolve_api(json!({"client_id": client_id})).await;
        assert_refused(&answer, needle);
    }
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn private_addresses_are_refused_without_a_connection() {
    let server = TestServer::start().await;
    let app = app(&server, |c| c.fetch.allow_private_addresses = false).await;
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}{PATH}", server.port);
        server.route(PATH, json_reply(&document(&url)));
        let answer = app.resolve_api(json!({"client_id": url})).await;
        assert_refused(&answer, "refused");
    }
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn a_failure_is_remembered_only_for_failure_cache_secs() {
    let server = TestServer::start().await;
    // remembered: the fixed document is not seen before the failure expires
    let app_remembering = app(&server, |c| {
        c.client_id_metadata_documents.failure_cache_secs = 3600;
    })
    .await;
    let url = server.url("/remembered");
    server.route("/remembered", text_reply(500, "oops"));
    assert_refused(
        &app_remembering.resolve_api(json!({"client_id": url})).await,
        "HTTP 500",
    );
    server.route("/remembered", json_reply(&document(&url)));
    assert_refused(
        &app_remembering.resolve_api(json!({"client_id": url})).await,
        "HTTP 500",
    );
    assert_eq!(server.requests("/remembered"), 1);

    // not remembered (failure_cache_secs = 0, as the draft's §5.2 asks)
    let app_forgetting = app(&server, |c| {
        c.client_id_metadata_documents.failure_cache_secs = 0;
    })
    .await;
    let url = server.url("/forgotten");
    server.route("/forgotten", text_reply(500, "oops"));
    assert_refused(
        &app_forgetting.resolve_api(json!({"client_id": url})).await,
        "HTTP 500",
    );
    server.route("/forgotten", json_reply(&document(&url)));
    let answer = app_forgetting.resolve_api(json!({"client_id": url})).await;
    assert_eq!(answer.body["valid"], true, "{}", answer.body);
}

#[tokio::test]
async fn the_mode_decides_which_urls_are_looked_at() {
    let server = TestServer::start().await;
    let url = server.url(PATH);
    server.route(PATH, json_reply(&document(&url)));

    let off = app(&server, |c| {
        c.client_id_metadata_documents.mode = DocumentsMode::Off;
    })
    .await;
    let discovery = off.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["client_id_metadata_document_supported"], false);
    assert_refused(
        &off.resolve_api(json!({"client_id": url})).await,
        "does not accept client ID metadata documents",
    );

    let elsewhere = app(&server, |c| {
        c.client_id_metadata_documents.mode = DocumentsMode::AllowedHosts;
        c.client_id_metadata_documents.allowed_hosts = vec!["*.clients.example".into()];
    })
    .await;
    assert_refused(
        &elsewhere.resolve_api(json!({"client_id": url})).await,
        "from localhost are not accepted",
    );
    assert_eq!(server.connections(), 0);

    let here = app(&server, |c| {
        c.client_id_metadata_documents.mode = DocumentsMode::AllowedHosts;
        c.client_id_metadata_documents.allowed_hosts = vec!["localhost".into()];
    })
    .await;
    let answer = here.resolve_api(json!({"client_id": url})).await;
    assert_eq!(answer.body["valid"], true, "{}", answer.body);
}

#[tokio::test]
async fn a_statement_vouches_for_a_document_that_it_names() {
    let server = TestServer::start().await;
    let app = app(&server, |c| {
        c.client_id_metadata_documents.require_software_statement = true;
        c.trusted_issuers[0].allowed_software_ids = Some(vec!["mcp-client".into()]);
    })
    .await;
    let url = server.url(PATH);
    let statement = |claims: Value| app.authority.sign(claims);

    // without a statement: refused, this deployment approves clients by URL
    server.route(PATH, json_reply(&document(&url)));
    assert_refused(
        &app.resolve_api(json!({"client_id": url})).await,
        "only documents that carry a software statement",
    );

    // a statement naming the document, whose claims take precedence
    let exp = now() + 3600;
    let vouched = server.url("/vouched.json");
    server.route(
        "/vouched.json",
        json_reply(&with(
            document(&vouched),
            json!({"software_statement": statement(json!({
                "client_id": vouched,
                "software_id": "mcp-client",
                "client_name": "Approved MCP client",
                "exp": exp,
            }))}),
        )),
    );
    let answer = app.resolve_api(json!({"client_id": vouched})).await;
    assert_eq!(answer.body["valid"], true, "{}", answer.body);
    assert_eq!(answer.body["client"]["client_name"], "Approved MCP client");
    assert_eq!(answer.body["client"]["software_id"], "mcp-client");
    assert_eq!(answer.body["expires_at"], exp);
    assert_eq!(
        answer.body["software_statement"]["iss"],
        app.authority.issuer.as_str()
    );

    // copied into another document: it does not name that one
    let copied = server.url("/copied.json");
    let stolen = statement(json!({"client_id": vouched, "software_id": "mcp-client"}));
    server.route(
        "/copied.json",
        json_reply(&with(
            document(&copied),
            json!({"software_statement": stolen}),
        )),
    );
    assert_refused(
        &app.resolve_api(json!({"client_id": copied})).await,
        "does not name this document",
    );

    // the issuer's policy applies: a software_id it did not approve
    let unapproved = server.url("/unapproved.json");
    server.route(
        "/unapproved.json",
        json_reply(&with(
            document(&unapproved),
            json!({"software_statement": statement(json!({
                "client_id": unapproved, "software_id": "other-client"
            }))}),
        )),
    );
    assert_refused(
        &app.resolve_api(json!({"client_id": unapproved})).await,
        "unapproved_software_statement",
    );

    // a statement of an issuer nobody trusts
    let forged = server.url("/forged.json");
    let stranger = crate::helpers::Authority::new(
        "https://stranger.example",
        stateless_dcr::keys::SigningAlg::Es256,
    );
    server.route(
        "/forged.json",
        json_reply(&with(
            document(&forged),
            json!({"software_statement": stranger.sign(json!({
                "client_id": forged, "software_id": "mcp-client"
            }))}),
        )),
    );
    assert_refused(
        &app.resolve_api(json!({"client_id": forged})).await,
        "are not accepted here",
    );

    // the operator withdraws the software: refused at once, although the document is cached
    let withdrawn = app
        .client
        .post(app.url("/admin/withdrawals"))
        .bearer_auth(ADMIN)
        .json(&json!({"issuer": app.authority.issuer, "software_id": "mcp-client"}))
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), 201);
    assert_refused(
        &app.resolve_api(json!({"client_id": vouched})).await,
        "withdrawn by the operator",
    );
    assert_eq!(server.requests("/vouched.json"), 1);
}

#[tokio::test]
async fn a_private_key_jwt_document_client_authenticates_with_its_published_key() {
    use stateless_dcr::jose;
    use stateless_dcr::keys::{self, SigningAlg};

    let server = TestServer::start().await;
    let app = app(&server, |c| {
        c.token_endpoint = Some("https://op.example.com/token".into());
    })
    .await;
    let (private, public) = keys::generate_authority_key(SigningAlg::Es256).unwrap();
    let private = josekit::jwk::Jwk::from_map(private.as_object().unwrap().clone()).unwrap();
    server.route("/jwks.json", json_reply(&public));
    let url = server.url(PATH);
    server.route(
        PATH,
        json_reply(&with(
            document(&url),
            json!({
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": server.url("/jwks.json"),
                "redirect_uris": ["https://mcp-client.example/cb"],
            }),
        )),
    );
    let assertion = |audience: &str, jti: &str| {
        let (alg, signer) = keys::signer_for(&private).unwrap();
        let mut header = serde_json::Map::new();
        header.insert("alg".into(), alg.into());
        header.insert("kid".into(), private.key_id().unwrap().into());
        let claims = json!({
            "iss": url, "sub": url, "aud": audience, "jti": jti,
            "iat": now(), "exp": now() + 60,
        });
        jose::sign_compact(&header, claims.to_string().as_bytes(), signer.as_ref()).unwrap()
    };
    let query = |assertion: String| {
        json!({
            "client_id": url,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        })
    };
    let answer = app
        .resolve_api(query(assertion("https://op.example.com/token", "a-1")))
        .await;
    assert_eq!(answer.body["valid"], true, "{}", answer.body);
    assert_eq!(answer.body["authenticated"], true);
    assert_eq!(answer.body["client_type"], "confidential");
    // replayed, and for another audience: refused
    for refused in [
        assertion("https://op.example.com/token", "a-1"),
        assertion("https://other.example/token", "a-2"),
    ] {
        let answer = app.resolve_api(query(refused)).await;
        assert_refused(&answer, "authentication failed");
    }
}

#[tokio::test]
async fn the_library_resolver_answers_document_clients() {
    let server = TestServer::start().await;
    let url = server.url(PATH);
    server.route(PATH, json_reply(&document(&url)));
    let mut config = Config::default();
    config.fetch = server.config();
    config.client_id_metadata_documents.mode = DocumentsMode::On;
    let registrar = stateless_dcr::Registrar::without_store(&config).unwrap();
    let client = registrar.resolver().resolve(&url).await.unwrap();
    assert!(client.is_metadata_document());
    assert!(client.is_public());
    assert!(client.redirect_uri_matches("http://localhost:7777/callback"));
    assert!(!client.redirect_uri_matches("http://localhost:7777/other"));
    assert!(registrar.resolver().accepts_metadata_documents());
}
