//! A local https server with a CA the test makes itself, for the outbound fetcher: sector
//! documents, client and issuer JWK Sets. It answers from a route table tests can change and
//! counts connections and requests, so a test can tell that the guard stopped a fetch before
//! any connection was made.

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
use stateless_dcr::fetch::{FetchConfig, Fetcher};
use stateless_dcr::keys::{generate_authority_key, SigningAlg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// A CA made for this test, and a server certificate for localhost / 127.0.0.1 signed by it.
pub struct TestPki {
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
pub enum Reply {
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

pub fn json_reply(body: &Value) -> Reply {
    text_reply(200, &body.to_string())
}

pub fn text_reply(status: u16, body: &str) -> Reply {
    Reply::Body {
        status,
        body: body.to_owned(),
        delay: Duration::ZERO,
        headers: Vec::new(),
    }
}

/// A tiny https server: one request per connection, answers from a route table that tests can
/// change, and counts accepted connections and requests per path.
pub struct TestServer {
    pub port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<HashMap<String, usize>>>,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    pki: TestPki,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start() -> TestServer {
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

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    pub fn requests(&self, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Trusts the test CA and allows loopback: for fetches that should reach this server.
    pub fn config(&self) -> FetchConfig {
        FetchConfig {
            extra_root_ca_file: Some(PathBuf::from(self.pki.ca_file.path())),
            allow_private_addresses: true,
            ..FetchConfig::default()
        }
    }

    pub fn fetcher(&self) -> Fetcher {
        Fetcher::new(self.config()).unwrap()
    }

    /// The production guard, but trusting the test CA, so that only the address check can
    /// stop the fetch.
    pub fn guarded_fetcher(&self) -> Fetcher {
        Fetcher::new(FetchConfig {
            allow_private_addresses: false,
            ..self.config()
        })
        .unwrap()
    }

    /// Stop accepting connections; later fetches find nothing listening.
    pub async fn stop(&mut self) {
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
pub fn public_jwk(kid: &str) -> Value {
    let (_, jwks) = generate_authority_key(SigningAlg::Es256).unwrap();
    let mut key = jwks["keys"][0].clone();
    key["kid"] = json!(kid);
    key
}
