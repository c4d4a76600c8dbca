//! The guarded outbound fetcher against a local https server whose CA the test makes itself
//! (`helpers::https`), and the registration endpoint with real outbound fetches.
//!
//! Positive cases turn on the two test-only switches (`extra_root_ca_file`,
//! `allow_private_addresses`), since the server listens on 127.0.0.1. Guard cases leave
//! `allow_private_addresses` off and check that the server saw no connection at all.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stateless_dcr::fetch::{
    check_sector, DocumentKind, FetchConfig, FetchError, Fetcher, IssuerJwksSource,
};
use stateless_dcr::keys::{generate_authority_key, SigningAlg};
use tokio::task::JoinSet;

use crate::helpers::https::{json_reply, public_jwk, text_reply, Reply, TestServer};

// ---------------------------------------------------------------------------------------------
// sector_identifier_uri (OIDC DCR §5)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn good_sector_document_lists_the_redirect_uris() {
    let server = TestServer::start().await;
    server.route(
        "/sector.json",
        json_reply(&json!(["https://a.example/cb", "https://b.example/cb"])),
    );
    let fetcher = server.fetcher();

    let listed = fetcher
        .sector_redirect_uris(&server.url("/sector.json"))
        .await
        .unwrap();

    assert_eq!(listed, ["https://a.example/cb", "https://b.example/cb"]);
    let registered = vec![
        "https://b.example/cb".to_owned(),
        "https://a.example/cb".to_owned(),
    ];
    assert_eq!(check_sector(&registered, &listed), Ok(()));
}

#[tokio::test]
async fn redirect_uri_missing_from_the_sector_document_is_named() {
    let server = TestServer::start().await;
    server.route("/sector.json", json_reply(&json!(["https://a.example/cb"])));
    let listed = server
        .fetcher()
        .sector_redirect_uris(&server.url("/sector.json"))
        .await
        .unwrap();

    let registered = vec![
        "https://a.example/cb".to_owned(),
        "https://a.example/other".to_owned(),
    ];
    let err = check_sector(&registered, &listed).unwrap_err();

    assert!(err.contains("https://a.example/other"), "{err}");
}

#[tokio::test]
async fn sector_document_that_is_not_an_array_is_wrong_shape() {
    let server = TestServer::start().await;
    server.route(
        "/sector.json",
        json_reply(&json!({"redirect_uris": ["https://a.example/cb"]})),
    );

    let err = server
        .fetcher()
        .sector_redirect_uris(&server.url("/sector.json"))
        .await
        .unwrap_err();

    assert!(
        matches!(&err, FetchError::WrongShape(m) if m.contains("not a JSON array")),
        "{err}"
    );
}

#[tokio::test]
async fn sector_document_with_a_non_string_entry_is_wrong_shape() {
    let server = TestServer::start().await;
    server.route(
        "/sector.json",
        json_reply(&json!(["https://a.example/cb", 42])),
    );

    let err = server
        .fetcher()
        .sector_redirect_uris(&server.url("/sector.json"))
        .await
        .unwrap_err();

    assert!(
        matches!(&err, FetchError::WrongShape(m) if m.contains("entry 1")),
        "{err}"
    );
}

#[tokio::test]
async fn sector_document_that_is_not_json_is_not_json() {
    let server = TestServer::start().await;
    server.route("/sector.json", text_reply(200, "<html>hello</html>"));

    let err = server
        .fetcher()
        .sector_redirect_uris(&server.url("/sector.json"))
        .await
        .unwrap_err();

    assert_eq!(err, FetchError::NotJson);
}

// ---------------------------------------------------------------------------------------------
// Transport limits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn oversized_document_with_content_length_is_too_large() {
    let server = TestServer::start().await;
    let big = json!(["x".repeat(70 * 1024)]);
    server.route("/big.json", json_reply(&big));

    let err = server
        .fetcher()
        .fetch_json(&server.url("/big.json"), DocumentKind::SectorIdentifier)
        .await
        .unwrap_err();

    assert_eq!(err, FetchError::TooLarge(64 * 1024));
}

#[tokio::test]
async fn oversized_chunked_document_without_content_length_is_too_large() {
    let server = TestServer::start().await;
    server.route("/chunked.json", Reply::Chunked { total: 300 * 1024 });

    let fetcher = server.fetcher();
    let err = fetcher
        .fetch_json(&server.url("/chunked.json"), DocumentKind::ClientJwks)
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::TooLarge(64 * 1024));

    // The issuer cap is larger (256 KiB) and is enforced the same way.
    let err = fetcher
        .fetch_json(&server.url("/chunked.json"), DocumentKind::IssuerJwks)
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::TooLarge(256 * 1024));
}

#[tokio::test]
async fn slow_server_times_out() {
    let server = TestServer::start().await;
    server.route(
        "/slow.json",
        Reply::Body {
            status: 200,
            body: "[]".into(),
            delay: Duration::from_secs(5),
            headers: Vec::new(),
        },
    );
    let fetcher = Fetcher::new(FetchConfig {
        total_timeout_ms: 300,
        ..server.config()
    })
    .unwrap();

    let err = fetcher
        .fetch_json(&server.url("/slow.json"), DocumentKind::SectorIdentifier)
        .await
        .unwrap_err();

    assert_eq!(err, FetchError::Timeout);
}

#[tokio::test]
async fn redirect_is_not_followed() {
    let server = TestServer::start().await;
    server.route("/target.json", json_reply(&json!(["https://a.example/cb"])));
    server.route(
        "/moved",
        Reply::Body {
            status: 302,
            body: String::new(),
            delay: Duration::ZERO,
            headers: vec![("Location".into(), server.url("/target.json"))],
        },
    );

    let err = server
        .fetcher()
        .fetch_json(&server.url("/moved"), DocumentKind::SectorIdentifier)
        .await
        .unwrap_err();

    assert_eq!(err, FetchError::Redirect(302));
    assert_eq!(server.requests("/moved"), 1);
    assert_eq!(server.requests("/target.json"), 0);
}

#[tokio::test]
async fn http_url_is_refused_without_connecting() {
    let server = TestServer::start().await;
    let url = format!("http://localhost:{}/sector.json", server.port);

    let err = server
        .fetcher()
        .sector_redirect_uris(&url)
        .await
        .unwrap_err();

    assert_eq!(err, FetchError::NotHttps);
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn error_status_is_reported() {
    let server = TestServer::start().await;
    server.route("/gone.json", text_reply(410, "gone"));

    let err = server
        .fetcher()
        .fetch_json(&server.url("/gone.json"), DocumentKind::SectorIdentifier)
        .await
        .unwrap_err();

    assert_eq!(err, FetchError::Status(410));
}

#[tokio::test]
async fn server_certificate_from_an_unknown_ca_is_refused() {
    let server = TestServer::start().await;
    server.route("/sector.json", json_reply(&json!([])));
    // Loopback allowed, but only the web PKI roots trusted.
    let fetcher = Fetcher::new(FetchConfig {
        allow_private_addresses: true,
        ..FetchConfig::default()
    })
    .unwrap();

    let err = fetcher
        .fetch_json(&server.url("/sector.json"), DocumentKind::SectorIdentifier)
        .await
        .unwrap_err();

    assert!(matches!(err, FetchError::Connect(_)), "{err:?}");
    assert_eq!(server.requests("/sector.json"), 0);
}

// ---------------------------------------------------------------------------------------------
// The address guard (allow_private_addresses = false)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn host_resolving_to_loopback_is_refused_before_connecting() {
    let server = TestServer::start().await;
    server.route("/sector.json", json_reply(&json!([])));

    let err = server
        .guarded_fetcher()
        .fetch_json(&server.url("/sector.json"), DocumentKind::SectorIdentifier)
        .await
        .unwrap_err();

    assert_eq!(err, FetchError::Refused("resolves to a non-public address"));
    assert_eq!(err.to_string(), "refused: resolves to a non-public address");
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn special_ip_literals_are_refused_before_connecting() {
    let server = TestServer::start().await;
    server.route("/sector.json", json_reply(&json!([])));
    let fetcher = server.guarded_fetcher();
    let port = server.port;

    let cases = [
        (
            "https://169.254.169.254/latest/meta-data/".to_owned(),
            "link-local address",
        ),
        (
            format!("https://[::ffff:127.0.0.1]:{port}/sector.json"),
            "loopback address",
        ),
        (
            format!("https://127.0.0.1:{port}/sector.json"),
            "loopback address",
        ),
        (
            format!("https://[::1]:{port}/sector.json"),
            "loopback address",
        ),
        (
            format!("https://10.0.0.1:{port}/"),
            "private address (RFC 1918)",
        ),
    ];
    for (url, reason) in cases {
        let err = fetcher
            .fetch_json(&url, DocumentKind::SectorIdentifier)
            .await
            .unwrap_err();
        assert_eq!(err, FetchError::Refused(reason), "{url}");
    }

    assert_eq!(server.connections(), 0);
}

// ---------------------------------------------------------------------------------------------
// Sharing and caching
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fetches_of_one_url_share_one_request() {
    let server = TestServer::start().await;
    server.route(
        "/sector.json",
        Reply::Body {
            status: 200,
            body: json!(["https://a.example/cb"]).to_string(),
            delay: Duration::from_millis(200),
            headers: Vec::new(),
        },
    );
    let fetcher = server.fetcher();
    let url = server.url("/sector.json");

    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let fetcher = fetcher.clone();
        let url = url.clone();
        tasks.spawn(async move { fetcher.sector_redirect_uris(&url).await });
    }
    let mut answers = 0;
    while let Some(joined) = tasks.join_next().await {
        assert_eq!(joined.unwrap().unwrap(), ["https://a.example/cb"]);
        answers += 1;
    }

    assert_eq!(answers, 20);
    assert_eq!(server.requests("/sector.json"), 1);
}

#[tokio::test]
async fn a_failing_url_is_fetched_once_while_the_failure_is_cached() {
    let server = TestServer::start().await;
    let fetcher = server.fetcher();
    let url = server.url("/missing.json");

    let first = fetcher
        .fetch_json(&url, DocumentKind::SectorIdentifier)
        .await
        .unwrap_err();
    let second = fetcher
        .fetch_json(&url, DocumentKind::SectorIdentifier)
        .await
        .unwrap_err();

    assert_eq!(first, FetchError::Status(404));
    assert_eq!(second, FetchError::Status(404));
    assert_eq!(server.requests("/missing.json"), 1);
}

// ---------------------------------------------------------------------------------------------
// JWK Sets
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_jwks_must_hold_public_keys_only() {
    let server = TestServer::start().await;
    let (private, public) = generate_authority_key(SigningAlg::EdDsa).unwrap();
    server.route("/public.json", json_reply(&public));
    server.route("/private.json", json_reply(&json!({ "keys": [private] })));
    server.route("/empty.json", json_reply(&json!({ "keys": [] })));
    let fetcher = server.fetcher();

    let jwks = fetcher
        .jwks(&server.url("/public.json"), DocumentKind::ClientJwks)
        .await
        .unwrap();
    assert_eq!(*jwks, public);

    for path in ["/private.json", "/empty.json"] {
        let err = fetcher
            .jwks(&server.url(path), DocumentKind::ClientJwks)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::WrongShape(_)), "{path}: {err:?}");
    }
}

#[tokio::test]
async fn issuer_key_rotation_triggers_exactly_one_refetch() {
    let server = TestServer::start().await;
    let k1 = public_jwk("k1");
    let k2 = public_jwk("k2");
    server.route("/jwks", json_reply(&json!({ "keys": [k1] })));
    let source = IssuerJwksSource::new(server.fetcher(), &server.url("/jwks")).unwrap();

    let keys = source.keys_for_kid("k1").await.unwrap();
    assert!(keys.has_kid("k1"));
    assert_eq!(server.requests("/jwks"), 1);

    // The issuer rotates: k2 appears. A known kid is served from the cache...
    server.route("/jwks", json_reply(&json!({ "keys": [k1, k2] })));
    let keys = source.keys_for_kid("k1").await.unwrap();
    assert!(!keys.has_kid("k2"));
    assert_eq!(server.requests("/jwks"), 1);

    // ...and the first statement signed with k2 triggers one refetch that finds it.
    let keys = source.keys_for_kid("k2").await.unwrap();
    assert!(keys.has_kid("k2"));
    assert!(keys.verifiers().select(Some("k2"), "ES256").is_some());
    assert_eq!(server.requests("/jwks"), 2);

    // Unknown kids right after are rate-limited: no further fetch.
    let keys = source.keys_for_kid("k3").await.unwrap();
    assert!(!keys.has_kid("k3"));
    let keys = source.keys_for_kid("k4").await.unwrap();
    assert!(keys.has_kid("k2"));
    assert_eq!(server.requests("/jwks"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unknown_kid_lookups_share_one_refetch() {
    let server = TestServer::start().await;
    server.route("/jwks", json_reply(&json!({ "keys": [public_jwk("k1")] })));
    let source = IssuerJwksSource::new(server.fetcher(), &server.url("/jwks")).unwrap();
    source.keys().await.unwrap();
    server.route(
        "/jwks",
        json_reply(&json!({ "keys": [public_jwk("k1"), public_jwk("k2")] })),
    );

    let mut tasks = JoinSet::new();
    for _ in 0..10 {
        let source = source.clone();
        tasks.spawn(async move { source.keys_for_kid("k2").await });
    }
    while let Some(joined) = tasks.join_next().await {
        assert!(joined.unwrap().unwrap().has_kid("k2"));
    }

    assert_eq!(server.requests("/jwks"), 2);
}

#[tokio::test]
async fn failing_issuer_jwks_uri_keeps_the_last_good_keys() {
    let server = TestServer::start().await;
    server.route("/jwks", json_reply(&json!({ "keys": [public_jwk("k1")] })));
    let source = IssuerJwksSource::new(server.fetcher(), &server.url("/jwks")).unwrap();
    assert!(source.keys().await.unwrap().has_kid("k1"));

    // The issuer breaks; an unknown kid makes the source try, and it keeps k1.
    server.route("/jwks", text_reply(503, "down"));
    let keys = source.keys_for_kid("k2").await.unwrap();

    assert_eq!(server.requests("/jwks"), 2);
    assert!(keys.has_kid("k1"));
    assert!(source.keys_for_kid("k1").await.unwrap().has_kid("k1"));
}

#[tokio::test]
async fn unreachable_issuer_jwks_uri_keeps_the_last_good_keys() {
    let mut server = TestServer::start().await;
    server.route("/jwks", json_reply(&json!({ "keys": [public_jwk("k1")] })));
    let source = IssuerJwksSource::new(server.fetcher(), &server.url("/jwks")).unwrap();
    let before = source.keys().await.unwrap();

    server.stop().await;
    let after = source.keys_for_kid("k2").await.unwrap();

    assert!(Arc::ptr_eq(&before, &after));
    assert!(after.has_kid("k1"));
}

#[tokio::test]
async fn issuer_jwks_that_never_loaded_is_an_error() {
    let server = TestServer::start().await;
    let source = IssuerJwksSource::new(server.fetcher(), &server.url("/nothing")).unwrap();

    let err = source.keys().await.unwrap_err();
    let again = source.keys().await.unwrap_err();

    assert_eq!(err, FetchError::Status(404));
    assert_eq!(again, FetchError::Status(404));
    // The failure is remembered for failure_cache_secs: one request.
    assert_eq!(server.requests("/nothing"), 1);
}

#[tokio::test]
async fn issuer_jwks_with_a_private_key_is_refused() {
    let server = TestServer::start().await;
    let (private, _) = generate_authority_key(SigningAlg::Es256).unwrap();
    server.route("/jwks", json_reply(&json!({ "keys": [private] })));
    let source = IssuerJwksSource::new(server.fetcher(), &server.url("/jwks")).unwrap();

    let err = source.keys().await.unwrap_err();

    assert!(matches!(err, FetchError::WrongShape(_)), "{err:?}");
}
