//! The guarded outbound fetcher against a local https server whose CA the test makes itself.
//!
//! Positive cases turn on the two test-only switches (`extra_root_ca_file`,
//! `allow_private_addresses`), since the server listens on 127.0.0.1. Guard cases leave
//! `allow_private_addresses` off and check that the server saw no connection at all.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::{json, Value};
use stateless_dcr::fetch::{
    check_sector, DocumentKind, FetchConfig, FetchError, Fetcher, IssuerJwksSource,
};
use stateless_dcr::keys::{generate_authority_key, SigningAlg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

// ---------------------------------------------------------------------------------------------
// Test PKI and server
// ---------------------------------------------------------------------------------------------

/// A CA made for this test, and a server certificate for localhost / 127.0.0.1 signed by it.
struct TestPki {
    ca_file: tempfile::NamedTempFile,
    server: Arc<ServerConfig>,
}

fn test_pki() -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "stateless-dcr fetch test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &*ca).unwrap();

    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(ca.pem().as_bytes()).unwrap();

    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], key)
        .unwrap();
    TestPki {
        ca_file,
        server: Arc::new(server),
    }
}

#[derive(Clone)]
enum Reply {
    /// A body with Content-Length, optionally after a delay and with extra headers.
    Body {
        status: u16,
        body: String,
        delay: Duration,
        headers: Vec<(String, String)>,
    },
    /// A chunked body of `total` bytes, without Content-Length.
    Chunked { total: usize },
}

fn json_reply(body: &Value) -> Reply {
    text_reply(200, &body.to_string())
}

fn text_reply(status: u16, body: &str) -> Reply {
    Reply::Body {
        status,
        body: body.to_owned(),
        delay: Duration::ZERO,
        headers: Vec::new(),
    }
}

/// A tiny https server: one request per connection, answers from a route table that tests can
/// change, and counts accepted connections and requests per path.
struct TestServer {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<HashMap<String, usize>>>,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    pki: TestPki,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    async fn start() -> TestServer {
        let pki = test_pki();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(HashMap::new()));
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::new(Mutex::new(HashMap::new()));
        let acceptor = TlsAcceptor::from(Arc::clone(&pki.server));
        let task = {
            let connections = Arc::clone(&connections);
            let requests = Arc::clone(&requests);
            let routes = Arc::clone(&routes);
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let acceptor = acceptor.clone();
                    let requests = Arc::clone(&requests);
                    let routes = Arc::clone(&routes);
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let Some(path) = read_request_path(&mut tls).await else {
                            return;
                        };
                        *requests.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                        let reply = routes.lock().unwrap().get(&path).cloned();
                        let reply = reply.unwrap_or_else(|| text_reply(404, "not found"));
                        let _ = write_reply(&mut tls, reply).await;
                    });
                }
            })
        };
        TestServer {
            port,
            connections,
            requests,
            routes,
            pki,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    fn requests(&self, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Trusts the test CA and allows loopback: for fetches that should reach this server.
    fn config(&self) -> FetchConfig {
        FetchConfig {
            extra_root_ca_file: Some(PathBuf::from(self.pki.ca_file.path())),
            allow_private_addresses: true,
            ..FetchConfig::default()
        }
    }

    fn fetcher(&self) -> Fetcher {
        Fetcher::new(self.config()).unwrap()
    }

    /// The production guard, but trusting the test CA, so that only the address check can
    /// stop the fetch.
    fn guarded_fetcher(&self) -> Fetcher {
        Fetcher::new(FetchConfig {
            allow_private_addresses: false,
            ..self.config()
        })
        .unwrap()
    }

    /// Stop accepting connections; later fetches find nothing listening.
    async fn stop(&mut self) {
        self.task.abort();
        // Wait until the listener is dropped.
        let _ = (&mut self.task).await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request_path<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let line = head.lines().next()?;
    line.split(' ').nth(1).map(str::to_owned)
}

async fn write_reply<S: AsyncWriteExt + Unpin>(
    stream: &mut S,
    reply: Reply,
) -> std::io::Result<()> {
    match reply {
        Reply::Body {
            status,
            body,
            delay,
            headers,
        } => {
            tokio::time::sleep(delay).await;
            let mut head = format!(
                "HTTP/1.1 {status} Test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
        }
        Reply::Chunked { total } => {
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                )
                .await?;
            let chunk = vec![b' '; 4096];
            let mut sent = 0;
            while sent < total {
                let n = chunk.len().min(total - sent);
                stream.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                stream.write_all(&chunk[..n]).await?;
                stream.write_all(b"\r\n").await?;
                sent += n;
            }
            stream.write_all(b"0\r\n\r\n").await?;
        }
    }
    stream.flush().await?;
    stream.shutdown().await
}

/// A public JWK Set of one fresh key with the given `kid`.
fn public_jwk(kid: &str) -> Value {
    let (_, jwks) = generate_authority_key(SigningAlg::Es256).unwrap();
    let mut key = jwks["keys"][0].clone();
    key["kid"] = json!(kid);
    key
}

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

// ---------------------------------------------------------------------------------------------
// The registration endpoint with real outbound fetches
// ---------------------------------------------------------------------------------------------

mod registration {
    use super::*;
    use stateless_dcr::config::{Config, TrustedIssuer};
    use stateless_dcr::keys::RegistrarKeys;
    use stateless_dcr::Application;

    const ISSUER: &str = "https://federation.fetch-test.example";

    /// A federation authority with one key.
    struct Authority {
        private: josekit::jwk::Jwk,
        jwks: Value,
    }

    impl Authority {
        fn new() -> Self {
            let (private, jwks) = generate_authority_key(SigningAlg::Es256).unwrap();
            Authority {
                private: josekit::jwk::Jwk::from_map(private.as_object().unwrap().clone()).unwrap(),
                jwks,
            }
        }

        fn sign(&self, mut claims: Value) -> String {
            claims["iss"] = ISSUER.into();
            let (alg, signer) = stateless_dcr::keys::signer_for(&self.private).unwrap();
            let mut header = serde_json::Map::new();
            header.insert("alg".into(), alg.into());
            header.insert("kid".into(), self.private.key_id().unwrap().into());
            stateless_dcr::jose::sign_compact(
                &header,
                claims.to_string().as_bytes(),
                signer.as_ref(),
            )
            .unwrap()
        }
    }

    struct Registrar {
        address: String,
        _dir: tempfile::TempDir,
        handle: actix_web::dev::ServerHandle,
    }

    impl Drop for Registrar {
        fn drop(&mut self) {
            std::mem::drop(self.handle.stop(false));
        }
    }

    /// A registrar trusting `ISSUER` through its jwks_uri on the test server, with fetches that
    /// trust the test CA and may reach loopback.
    async fn registrar(server: &TestServer) -> Registrar {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys.json");
        std::fs::write(
            &keys,
            RegistrarKeys::generate(SigningAlg::Es256)
                .unwrap()
                .to_string(),
        )
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = Config {
            listen: listener.local_addr().unwrap(),
            public_url: format!("http://127.0.0.1:{port}"),
            keys,
            workers: Some(1),
            fetch: server.config(),
            status_store: stateless_dcr::status::StatusStoreConfig {
                path: dir.path().join("status.redb"),
                ..Default::default()
            },
            trusted_issuers: vec![TrustedIssuer {
                issuer: ISSUER.into(),
                jwks_file: None,
                jwks_uri: Some(server.url("/issuer/jwks")),
                allowed_software_ids: None,
                allowed_grant_types: None,
                allowed_scopes: None,
            }],
            ..Config::default()
        };
        let app = Application::with_listener(config, listener).await.unwrap();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        Registrar {
            address: format!("http://127.0.0.1:{port}"),
            _dir: dir,
            handle,
        }
    }

    async fn register(registrar: &Registrar, statement: String) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/register", registrar.address))
            .json(&json!({ "software_statement": statement }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    fn claims(extra: Value) -> Value {
        let mut claims = json!({
            "software_id": "fetch-test",
            "redirect_uris": ["https://a.rp.example/cb", "https://b.rp.example/cb"],
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    }

    #[tokio::test]
    async fn sector_identifier_uri_is_fetched_and_checked_at_registration() {
        let server = TestServer::start().await;
        let authority = Authority::new();
        server.route("/issuer/jwks", json_reply(&authority.jwks));
        server.route(
            "/sector.json",
            json_reply(&json!([
                "https://a.rp.example/cb",
                "https://b.rp.example/cb"
            ])),
        );
        server.route(
            "/partial.json",
            json_reply(&json!(["https://a.rp.example/cb"])),
        );
        server.route("/object.json", json_reply(&json!({"redirect_uris": []})));
        let registrar = registrar(&server).await;

        // pairwise across two hosts needs the sector document (OIDC Core §8.1), and it holds
        let (status, body) = register(
            &registrar,
            authority.sign(claims(json!({"subject_type": "pairwise", "sector_identifier_uri": server.url("/sector.json")}))),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["subject_type"], "pairwise");
        // R33: a redirect URI missing from the document
        let (status, body) = register(
            &registrar,
            authority.sign(claims(
                json!({"sector_identifier_uri": server.url("/partial.json")}),
            )),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_redirect_uri")),
            "{body}"
        );
        // R93: not an array, and not fetchable
        for path in ["/object.json", "/missing.json"] {
            let (status, body) = register(
                &registrar,
                authority.sign(claims(json!({"sector_identifier_uri": server.url(path)}))),
            )
            .await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_client_metadata")),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn issuer_key_rotation_is_picked_up_with_one_refetch() {
        let server = TestServer::start().await;
        let first = Authority::new();
        server.route("/issuer/jwks", json_reply(&first.jwks));
        let registrar = registrar(&server).await;
        let (status, body) = register(&registrar, first.sign(claims(json!({})))).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(server.requests("/issuer/jwks"), 1);

        // the issuer rotates: a new key appears at its jwks_uri
        let second = Authority::new();
        let mut both = first.jwks.clone();
        both["keys"]
            .as_array_mut()
            .unwrap()
            .push(second.jwks["keys"][0].clone());
        server.route("/issuer/jwks", json_reply(&both));
        let (status, body) = register(&registrar, second.sign(claims(json!({})))).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(server.requests("/issuer/jwks"), 2, "exactly one refetch");
        // the old key still works, without another fetch
        let (status, _) = register(&registrar, first.sign(claims(json!({})))).await;
        assert_eq!(status, 201);
        assert_eq!(server.requests("/issuer/jwks"), 2);
    }

    #[tokio::test]
    async fn a_client_jwks_uri_is_checked_when_the_client_needs_keys() {
        let server = TestServer::start().await;
        let authority = Authority::new();
        server.route("/issuer/jwks", json_reply(&authority.jwks));
        server.route(
            "/client/jwks",
            json_reply(&json!({"keys": [public_jwk("c1")]})),
        );
        server.route(
            "/client/private-jwks",
            json_reply(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})),
        );
        let registrar = registrar(&server).await;
        let private_key_jwt = |uri: String| {
            authority.sign(claims(
                json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri}),
            ))
        };
        let (status, body) =
            register(&registrar, private_key_jwt(server.url("/client/jwks"))).await;
        assert_eq!(status, 201, "{body}");
        for path in ["/client/private-jwks", "/client/none"] {
            let (status, body) = register(&registrar, private_key_jwt(server.url(path))).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_client_metadata")),
                "{path}: {body}"
            );
        }
        // a client that needs no keys is not fetched for
        let before = server.requests("/client/none");
        let (status, _) = register(
            &registrar,
            authority.sign(claims(json!({"jwks_uri": server.url("/client/none")}))),
        )
        .await;
        assert_eq!(status, 201);
        assert_eq!(server.requests("/client/none"), before);
    }
}
