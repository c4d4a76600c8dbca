//! The one set of helpers of the integration tests: a federation authority that signs
//! statements, test deployments (key files and configuration), the real server started on
//! port 0 (in process, or as the binary), request helpers, and a local https server (`https`).

pub mod https;
mod process;

pub use process::{free_port, raw_status, run_cli, ServerProcess};

use std::net::TcpListener;

use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use stateless_dcr::client_id::{self, ClientIdClaims};
use stateless_dcr::config::{Config, TrustedIssuer};
use stateless_dcr::jose;
use stateless_dcr::keys::{self, KeySource, PublishedKeys, RegistrarKeys, SigningAlg, VerifierSet};
use stateless_dcr::metadata::{ClientMetadata, SubjectType};
use stateless_dcr::resolve::{Resolver, ResolverOptions};
use stateless_dcr::Application;
use tempfile::TempDir;

pub const ISSUER: &str = "https://federation.test.example";

/// A federation authority the test server trusts: its private key signs statements.
#[derive(Clone)]
pub struct Authority {
    pub issuer: String,
    pub private: josekit::jwk::Jwk,
    /// The public JWK Set a registrar trusts it with.
    pub jwks: Value,
}

impl Authority {
    pub fn new(issuer: &str, alg: SigningAlg) -> Self {
        let (private, jwks) = keys::generate_authority_key(alg).unwrap();
        let private = josekit::jwk::Jwk::from_map(private.as_object().unwrap().clone()).unwrap();
        Authority {
            issuer: issuer.to_owned(),
            private,
            jwks,
        }
    }

    /// Sign `claims` (a JSON object) as a statement: `iss` and `iat` are added when absent.
    pub fn sign(&self, claims: Value) -> String {
        let mut claims = claims.as_object().unwrap().clone();
        claims
            .entry("iss")
            .or_insert(Value::String(self.issuer.clone()));
        claims.entry("iat").or_insert(Value::from(now()));
        let mut header = Map::new();
        let (alg, _) = keys::signer_for(&self.private).unwrap();
        header.insert("alg".into(), alg.into());
        header.insert("kid".into(), self.private.key_id().unwrap().into());
        self.sign_with_header(header, &Value::Object(claims))
    }

    pub fn sign_with_header(&self, header: Map<String, Value>, claims: &Value) -> String {
        let (_, signer) = keys::signer_for(&self.private).unwrap();
        jose::sign_compact(&header, claims.to_string().as_bytes(), signer.as_ref()).unwrap()
    }

    pub fn kid(&self) -> String {
        self.private.key_id().unwrap().to_owned()
    }
}

/// The OP's token for `POST /resolve` in tests that enable it (`resolve_api_tokens`).
pub const RESOLVE_API_TOKEN: &str = "op-token-0123456789-0123456789-0123456789";

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A running server, in process, with its request helpers ([`Api`], through `Deref`).
pub struct TestApp {
    pub api: Api,
    /// `http://127.0.0.1:PORT` of the metrics listener, when configured.
    pub metrics_address: Option<String>,
    pub dir: TempDir,
    pub config: Config,
    handle: actix_web::dev::ServerHandle,
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Requests to a running server, in process or as the binary, as one client of the federation
/// would make them.
pub struct Api {
    pub address: String,
    pub client: reqwest::Client,
    pub authority: Authority,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // stop the server without waiting: the test runtime is going away
        std::mem::drop(handle.stop(false));
    }
}

/// Files of a test deployment: a registrar key set and one trusted authority.
pub struct Deployment {
    pub dir: TempDir,
    pub authority: Authority,
    pub config: Config,
}

pub fn deployment() -> Deployment {
    deployment_for(ISSUER)
}

/// A deployment whose trusted authority is `issuer` (tests that read process-wide metrics use
/// an issuer of their own, so that tests running in parallel do not move their series).
pub fn deployment_for(issuer: &str) -> Deployment {
    let dir = tempfile::tempdir().unwrap();
    let keys_path = dir.path().join("registrar-keys.json");
    let key_set = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
    std::fs::write(&keys_path, key_set.to_string()).unwrap();
    let authority = Authority::new(issuer, SigningAlg::Es256);
    let jwks_path = dir.path().join("authority.jwks.json");
    std::fs::write(&jwks_path, authority.jwks.to_string()).unwrap();
    let config = Config {
        status_store: stateless_dcr::status::StatusStoreConfig {
            path: dir.path().join("status.redb"),
            ..Default::default()
        },
        keys: keys_path,
        trusted_issuers: vec![TrustedIssuer::with_jwks_file(issuer, jwks_path)],
        workers: Some(1),
        // these tests have no https servers for client jwks_uri values; tests/api/fetch.rs does
        check_client_jwks_uri: false,
        ..Config::default()
    };
    Deployment {
        dir,
        authority,
        config,
    }
}

impl Deployment {
    /// The configuration as a TOML file (for running the binary), listening on `port`.
    pub fn write_config_file(&self, port: u16, extra: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(format!("config-{port}.toml"));
        let issuer = &self.config.trusted_issuers[0];
        std::fs::write(
            &path,
            format!(
                "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\nkeys = {:?}\nworkers = 1\n{extra}\n[status_store]\npath = {:?}\n\n[[trusted_issuers]]\nissuer = {:?}\njwks_file = {:?}\n",
                self.config.keys.display().to_string(),
                self.config.status_store.path.display().to_string(),
                issuer.issuer,
                issuer.jwks_file.as_ref().unwrap().display().to_string(),
            ),
        )
        .unwrap();
        path
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(change: impl FnOnce(&mut Config)) -> TestApp {
    let deployment = deployment();
    spawn_deployment(deployment, change).await
}

/// Another node of an existing deployment: the same key files and authority, its own port.
pub async fn spawn_config(config: Config, deployment: &Deployment) -> TestApp {
    let node = Deployment {
        dir: tempfile::tempdir().unwrap(),
        authority: deployment.authority.clone(),
        config,
    };
    spawn_deployment(node, |_| {}).await
}

pub async fn spawn_deployment(deployment: Deployment, change: impl FnOnce(&mut Config)) -> TestApp {
    spawn_deployment_at(deployment, stateless_dcr::clock::system(), change).await
}

/// A server whose every expiry check reads `clock` (tests set the time).
pub async fn spawn_deployment_at(
    deployment: Deployment,
    clock: stateless_dcr::clock::SharedClock,
    change: impl FnOnce(&mut Config),
) -> TestApp {
    let Deployment {
        dir,
        authority,
        mut config,
    } = deployment;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    config.listen = listener.local_addr().unwrap();
    config.public_url = format!("http://127.0.0.1:{port}");
    change(&mut config);
    let app = Application::with_clock(config.clone(), listener, clock)
        .await
        .expect("server starts");
    let handle = app.handle();
    let metrics_address = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
    tokio::spawn(app.run_until_stopped());
    TestApp {
        api: Api::new(&format!("http://127.0.0.1:{port}"), &authority),
        metrics_address,
        dir,
        config,
        handle,
    }
}

/// The answer to a request: status, headers and the JSON body (Null when empty).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "body is not JSON ({status}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// Assert a registration error: status 400 and the RFC 7591 error code, with an ASCII
    /// description (RFC 7591 §3.2.2; conformance: error-body-json) and the no-store headers
    /// (RFC 9111 §5.2.2.5; conformance: no-store-everywhere).
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.error(), code, "body: {}", self.body);
        let description = self.body["error_description"].as_str().unwrap();
        assert!(description.is_ascii() && !description.is_empty());
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.header("pragma"), Some("no-cache"));
        assert!(self
            .header("content-type")
            .unwrap()
            .starts_with("application/json"));
    }

    #[track_caller]
    pub fn assert_created(&self) -> &Value {
        assert_eq!(self.status, StatusCode::CREATED, "body: {}", self.body);
        &self.body
    }
}

impl Api {
    pub fn new(address: &str, authority: &Authority) -> Self {
        Api {
            address: address.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            authority: authority.clone(),
        }
    }

    /// The published JWK Set (`/jwks`).
    pub async fn jwks(&self) -> Value {
        self.get_json("/jwks").await
    }

    /// The JSON body of a GET of `path` on this server, whatever its status.
    pub async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `POST /resolve` with [`RESOLVE_API_TOKEN`] (set it in `resolve_api_tokens`).
    pub async fn resolve_api(&self, query: Value) -> Answer {
        let response = self
            .client
            .post(self.url("/resolve"))
            .bearer_auth(RESOLVE_API_TOKEN)
            .json(&query)
            .send()
            .await
            .unwrap();
        Answer::from(response).await
    }

    /// POST a JSON body to the registration endpoint.
    pub async fn post_register(&self, body: &Value) -> Answer {
        let response = self
            .client
            .post(self.url("/register"))
            .json(body)
            .send()
            .await
            .unwrap();
        Answer::from(response).await
    }

    /// Register with a statement made of `claims` (signed by the trusted authority) and the
    /// extra `body` members.
    pub async fn register(&self, claims: Value, body: Value) -> Answer {
        let mut request = body.as_object().cloned().unwrap_or_default();
        request.insert(
            "software_statement".into(),
            Value::String(self.authority.sign(claims)),
        );
        self.post_register(&Value::Object(request)).await
    }

    /// Register a plain web client; returns the 201 body.
    pub async fn register_web_client(&self) -> Value {
        self.register(web_claims(), json!({}))
            .await
            .assert_created()
            .clone()
    }

    /// PUT `body` to a configuration URL (RFC 7592 §2.2).
    pub async fn put_config(&self, uri: &str, token: Option<&str>, body: &Value) -> Answer {
        let mut request = self.client.put(uri).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Answer::from(request.send().await.unwrap()).await
    }

    pub async fn delete_config(&self, uri: &str, token: Option<&str>) -> Answer {
        let mut request = self.client.delete(uri);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Answer::from(request.send().await.unwrap()).await
    }

    pub async fn get_config(&self, uri: &str, token: Option<&str>) -> Answer {
        let mut request = self.client.get(uri);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Answer::from(request.send().await.unwrap()).await
    }
}

/// The body of an update from a registration or read response: every member but the ones
/// RFC 7592 §2.2 forbids.
pub fn update_body(information: &Value) -> Value {
    let mut body = information.clone();
    let map = body.as_object_mut().unwrap();
    for member in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
        "software_statement",
    ] {
        map.remove(member);
    }
    body
}

/// Statement claims of a simple confidential web client.
pub fn web_claims() -> Value {
    json!({
        "software_id": "software-1",
        "software_version": "1.0",
        "client_name": "Test Client",
        "redirect_uris": ["https://rp.example.com/cb"],
    })
}

/// Claims of a client_id for `metadata` (a JSON object), as the registrar would sign them, with
/// a registration access token key when `keys` is given.
pub fn client_id_claims(
    issuer: &str,
    metadata: Value,
    exp: Option<u64>,
    keys: Option<&RegistrarKeys>,
) -> ClientIdClaims {
    ClientIdClaims {
        iss: issuer.to_owned(),
        jti: client_id::new_jti().unwrap(),
        iat: now() - 10,
        exp,
        client_secret_kid: None,
        access_token_kid: keys.map(|k| k.registration_access_token().active_kid().to_owned()),
        provenance: None,
        sector: None,
        status: None,
        metadata: ClientMetadata::parse(metadata.as_object().unwrap(), SubjectType::Public)
            .unwrap(),
    }
}

/// A resolver with nothing but the registrar's published JWKS, as an edge node has.
pub async fn edge_resolver(app: &TestApp) -> Resolver {
    let jwks = app.jwks().await;
    Resolver::new(ResolverOptions {
        issuer: app.address.clone(),
        keys: KeySource::Published(PublishedKeys::new(
            VerifierSet::from_jwks(&jwks).unwrap(),
            None,
        )),
        status: None,
        fetcher: None,
        audiences: vec![],
        cache_entries: 100,
        cache_max_bytes: 1 << 20,
        clock: stateless_dcr::clock::system(),
        lists: None,
    })
}

/// Rotate a deployment's key file by hand, as `stateless-dcr keys rotate` would: a new active
/// signing key, the old one still listed — with its private part, or only its public part
/// (a retired key that verifies and signs nothing). Returns the key set as it was before.
pub fn rotate_signing_key(
    deployment: &Deployment,
    alg: SigningAlg,
    keep_private: bool,
) -> RegistrarKeys {
    let path = &deployment.config.keys;
    let old_keys = RegistrarKeys::load(path).unwrap();
    let old: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let new = RegistrarKeys::generate(alg).unwrap();
    let old_key = if keep_private {
        old["signing"]["keys"][0].clone()
    } else {
        old_keys.public_jwks()["keys"][0].clone()
    };
    let mut rotated = old.clone();
    rotated["signing"] = json!({
        "active": new["signing"]["active"],
        "keys": [new["signing"]["keys"][0], old_key],
    });
    std::fs::write(path, rotated.to_string()).unwrap();
    old_keys
}

/// The decoded JOSE header of the client_id in a client information response.
pub fn client_id_header(information: &Value) -> Value {
    client_id_part(information, 0)
}

/// The decoded claims of the client_id in a client information response (not verified).
pub fn client_id_payload(information: &Value) -> Value {
    client_id_part(information, 1)
}

fn client_id_part(information: &Value, index: usize) -> Value {
    use base64::Engine;
    let part = information["client_id"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(index)
        .unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
