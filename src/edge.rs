//! An edge node (`stateless-dcr edge`): `POST /resolve` for the OPs beside it, holding nothing
//! of the registrar but its public keys (its `/jwks`) and reading the
//! registrar's status lists over HTTP (draft-ietf-oauth-status-list-18): no status store, no
//! private key, no database. docs/operations.md, "Edge nodes".
//!
//! - A client_id is verified with the registrar's JWKS, fetched again every `jwks_refresh_secs`,
//!   on SIGHUP, and for an unknown `kid` (at most every 30 s).
//! - Its status list entry is read from the registrar's list, cached for the list's `ttl`
//!   within the `[fetch]` bounds: a deleted client is refused once the list shows it; an updated
//!   one gets its current metadata from the registrar's own `POST /resolve`
//!   (`registrar_resolve_token`).
//! - A client registered with a statement whose issuer keeps a status list is checked against
//!   that list too, with the issuer's keys (`trusted_issuers`).
//! - A status that cannot be read refuses the client (503 from `/resolve`): fail closed, unless
//!   `fetch.status_list_grace_secs` allows a last good list a while longer.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::client_id::ClientIdError;
use crate::clock::SharedClock;
use crate::config::{invalid, ConfigError, LogFormat, TrustedIssuer};
use crate::fetch::{FetchConfig, Fetcher};
use crate::http::errors::{ApiError, ProtectedApi};
use crate::http::handlers::{read_json_object, require_token};
use crate::http::resolve_api::{answer, ResolveQuery};
use crate::http::telemetry;
use crate::keys::{DerivationKeys, PublishedKeys, VerifierSet};
use crate::resolve::{
    InvalidClient, ListChecks, RemoteAmendments, ResolveError, Resolver, ResolverOptions,
};
use crate::secret::Secret;
use crate::startup::StartupError;
use crate::statement::TrustedIssuers;
use crate::status_list::client::{DirectLists, StatusListClient};

/// The edge node's configuration file (`stateless-dcr edge --config edge.toml`). Every option
/// is documented in docs/configuration.md, "Edge nodes".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// The registrar's public URL: its discovery document gives the issuer, the JWKS and the
    /// status lists. Operator configuration, so plain http is allowed (a registrar in the same
    /// network).
    pub registrar_url: String,
    /// Fetch the registrar's status lists from this base URL instead of the URIs in the
    /// client_ids (`{status_lists_url}{list id}`): for a node inside the registrar's network.
    /// Without it, lists are fetched through the guarded fetcher (https, public addresses).
    pub status_lists_url: Option<String>,
    /// Bearer tokens of the OPs allowed to call this node's `POST /resolve`.
    pub resolve_api_tokens: Vec<Secret>,
    /// A token of the registrar's `resolve_api_tokens`, to ask it for the current metadata of an
    /// updated client. Without it, updated clients are refused (503).
    pub registrar_resolve_token: Option<Secret>,
    /// A file with the registrar's `client_secret` key group, to check client secrets here.
    pub client_secret_keys: Option<PathBuf>,
    /// Accepted `aud` of client assertions (the OP's issuer, its token endpoint); default the
    /// registrar's issuer.
    pub audiences: Vec<String>,
    /// How often the registrar's discovery document and JWKS are fetched again, in seconds.
    pub jwks_refresh_secs: u64,
    /// How long the current metadata of an updated client is reused, in seconds.
    pub amendment_cache_secs: u64,
    /// The federation authorities whose status lists are checked for the statements clients
    /// registered with (`issuer`, `jwks_file` or `jwks_uri`, `status_list_uris`).
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// Entries in the cache of verified client_ids.
    pub client_cache_entries: u64,
    /// Memory the cache of verified client_ids may take, in bytes.
    pub client_cache_max_bytes: u64,
    /// Largest request body accepted, in bytes.
    pub max_request_bytes: usize,
    /// Seconds a client has to send a request's head, and again its body.
    pub request_timeout_secs: u64,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    pub shutdown_timeout_secs: u64,
    /// HTTP worker threads; defaults to the number of CPU cores.
    pub workers: Option<usize>,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Outbound fetches: status lists, issuers' and clients' JWK Sets, with their bounds.
    pub fetch: FetchConfig,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            registrar_url: String::new(),
            status_lists_url: None,
            resolve_api_tokens: Vec::new(),
            registrar_resolve_token: None,
            client_secret_keys: None,
            audiences: Vec::new(),
            jwks_refresh_secs: 300,
            amendment_cache_secs: 60,
            trusted_issuers: Vec::new(),
            client_cache_entries: 100_000,
            client_cache_max_bytes: 64 * 1024 * 1024,
            max_request_bytes: 64 * 1024,
            request_timeout_secs: 10,
            shutdown_timeout_secs: 30,
            workers: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            fetch: FetchConfig::default(),
        }
    }
}

impl EdgeConfig {
    /// Read the file, with `STATELESS_DCR_*` environment variables laid over it; relative
    /// paths are taken from the file's directory.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let parse = |message: String| ConfigError::Parse {
            path: shown.clone(),
            message,
        };
        let merged = crate::config::with_env(&text, env).map_err(parse)?;
        let mut config: EdgeConfig =
            toml::from_str(&merged).map_err(|e| parse(e.to_string().trim_end().to_owned()))?;
        if let Some(dir) = path.parent() {
            let resolve = |p: &mut PathBuf| {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            };
            if let Some(keys) = &mut config.client_secret_keys {
                resolve(keys);
            }
            if let Some(ca) = &mut config.fetch.extra_root_ca_file {
                resolve(ca);
            }
            for issuer in &mut config.trusted_issuers {
                if let Some(file) = &mut issuer.jwks_file {
                    resolve(file);
                }
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// What types cannot check; each error names its option.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = |option: &str, value: &str| -> Result<Url, ConfigError> {
            let url = Url::parse(value).map_err(|e| invalid(option, e.to_string()))?;
            if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
                return Err(invalid(option, "must be an http or https URL"));
            }
            Ok(url)
        };
        if self.registrar_url.is_empty() {
            return Err(invalid("registrar_url", "is required"));
        }
        url("registrar_url", &self.registrar_url)?;
        if let Some(lists) = &self.status_lists_url {
            url("status_lists_url", lists)?;
        }
        if self.resolve_api_tokens.is_empty() {
            return Err(invalid(
                "resolve_api_tokens",
                "an edge node serves only POST /resolve: give it at least one token",
            ));
        }
        if self.resolve_api_tokens.iter().any(|t| t.len() < 32) {
            return Err(invalid(
                "resolve_api_tokens",
                "every token must be at least 32 characters (make one with `openssl rand -base64 32`)",
            ));
        }
        if self.jwks_refresh_secs == 0 {
            return Err(invalid("jwks_refresh_secs", "must be at least 1"));
        }
        if self.amendment_cache_secs == 0 {
            return Err(invalid("amendment_cache_secs", "must be at least 1"));
        }
        if self.max_request_bytes < 1024 {
            return Err(invalid("max_request_bytes", "must be at least 1024"));
        }
        if self.request_timeout_secs == 0 {
            return Err(invalid("request_timeout_secs", "must be at least 1"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map_err(|e| invalid("log_level", e.to_string()))?;
        crate::config::validate_trusted_issuers(&self.trusted_issuers)
    }
}

/// What the registrar's discovery document says, and its keys.
struct RegistrarView {
    issuer: String,
    verifiers: VerifierSet,
    /// `{registrar}/status-lists/`, from `status_list_aggregation_endpoint`.
    status_list_base: Option<String>,
}

/// The plain client for the operator's own URLs (the registrar's discovery and JWKS).
fn operator_client(fetch: &FetchConfig) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_millis(fetch.connect_timeout_ms))
        .timeout(Duration::from_millis(fetch.total_timeout_ms))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let response = http
        .get(parsed.clone())
        .send()
        .await
        .map_err(|e| format!("{url}: {}", crate::fetch::transport_error(&e, &parsed)))?;
    let body = crate::fetch::read_capped(response, 256 * 1024, &parsed)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    serde_json::from_slice(&body).map_err(|_| format!("{url}: not JSON"))
}

async fn read_registrar(
    http: &reqwest::Client,
    registrar_url: &str,
) -> Result<RegistrarView, String> {
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        registrar_url.trim_end_matches('/')
    );
    let discovery = get_json(http, &discovery_url).await?;
    let text = |name: &str| {
        discovery[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{discovery_url}: no {name}"))
    };
    let issuer = text("issuer")?;
    // the registrar serves /jwks at the root of its listener, whatever its public URL: a node
    // inside the registrar's network reads it there, not at the published jwks_uri
    let jwks_uri = format!("{}/jwks", registrar_url.trim_end_matches('/'));
    let jwks = get_json(http, &jwks_uri).await?;
    let verifiers = VerifierSet::from_jwks(&jwks).map_err(|e| format!("{jwks_uri}: {e}"))?;
    let status_list_base = discovery["status_list_aggregation_endpoint"]
        .as_str()
        .map(|aggregation| format!("{}/", aggregation.trim_end_matches('/')));
    Ok(RegistrarView {
        issuer,
        verifiers,
        status_list_base,
    })
}

#[derive(Clone)]
struct EdgeState {
    resolver: Arc<Resolver>,
    keys: Arc<RegistrarKeyRefresh>,
    tokens: Arc<Vec<Secret>>,
    max_request_bytes: usize,
    request_timeout: Duration,
}

/// A client_id signed with a key this node does not know triggers one refetch of the
/// registrar's keys (it may have rotated), at most once per this many seconds.
const UNKNOWN_KID_REFETCH_SECS: u64 = 30;

/// The registrar's keys as this node holds them, and how they are fetched again: every
/// `jwks_refresh_secs`, on SIGHUP, and for a client_id with an unknown `kid`.
struct RegistrarKeyRefresh {
    http: reqwest::Client,
    registrar_url: String,
    issuer: String,
    keys: PublishedKeys,
    resolver: std::sync::OnceLock<Arc<Resolver>>,
    last_forced: std::sync::Mutex<Option<std::time::Instant>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl RegistrarKeyRefresh {
    async fn refresh(&self) {
        let _one_at_a_time = self.refreshing.lock().await;
        match read_registrar(&self.http, &self.registrar_url).await {
            Ok(view) if view.issuer == self.issuer => {
                self.keys.replace_verifiers(view.verifiers);
                if let Some(resolver) = self.resolver.get() {
                    resolver.clear_cache();
                }
            }
            Ok(view) => tracing::error!(
                expected = %self.issuer,
                found = %view.issuer,
                "the registrar's issuer changed; keeping the keys of the old one"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "refreshing the registrar's keys failed; keeping the last ones")
            }
        }
    }

    /// Refetch for a `kid` this node lacks, unless one was fetched for that reason lately.
    async fn refresh_for_unknown_kid(&self) {
        let due = {
            let mut last = self
                .last_forced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due =
                last.is_none_or(|at| at.elapsed() >= Duration::from_secs(UNKNOWN_KID_REFETCH_SECS));
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if due {
            self.refresh().await;
        }
    }
}

/// `POST /resolve`, as on the registrar (docs/api.md).
async fn resolve(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<EdgeState>,
) -> Result<HttpResponse, ApiError> {
    require_token(&request, &state.tokens, ProtectedApi::Resolve)?;
    let body = read_json_object(
        &request,
        payload,
        state.max_request_bytes,
        state.request_timeout,
    )
    .await
    .map_err(|e| match e {
        ApiError::UnsupportedMediaType | ApiError::MalformedJson(_) => {
            ApiError::InvalidRequest(e.to_string())
        }
        other => other,
    })?;
    let query = ResolveQuery::from_json(&body)?;
    if let Err(ResolveError::InvalidClient(InvalidClient::ClientId(ClientIdError::UnknownKey))) =
        state.resolver.verify(query.client_id())
    {
        state.keys.refresh_for_unknown_kid().await;
    }
    let answer = answer(&state.resolver, &query).await?;
    let mut response = HttpResponse::Ok();
    crate::http::errors::no_store(&mut response);
    Ok(response.json(&answer))
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready once the registrar's keys are loaded, which they are before the node listens; a
/// status list that cannot be fetched shows in `/resolve` answers (503), not here, so that a
/// load balancer does not take every edge node out when the registrar is briefly away.
async fn ready() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
}

fn get_or_head() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// A running edge node.
pub struct EdgeNode {
    port: u16,
    server: Server,
    refresher: tokio::task::JoinHandle<()>,
}

impl EdgeNode {
    pub async fn build(config: EdgeConfig) -> Result<Self, StartupError> {
        crate::startup::raise_open_file_limit();
        let listener =
            crate::startup::bind(config.listen).map_err(|source| StartupError::Bind {
                address: config.listen.to_string(),
                source,
            })?;
        Self::with_listener(config, listener, crate::clock::system()).await
    }

    /// Run on a listener bound by the caller (tests bind port 0).
    pub async fn with_listener(
        config: EdgeConfig,
        listener: TcpListener,
        clock: SharedClock,
    ) -> Result<Self, StartupError> {
        config.validate()?;
        let upstream = |message: String| StartupError::Config(invalid("registrar_url", message));
        let http = operator_client(&config.fetch).map_err(upstream)?;
        let view = read_registrar(&http, &config.registrar_url)
            .await
            .map_err(|e| {
                upstream(format!(
                    "cannot read the registrar's discovery and keys: {e}"
                ))
            })?;
        let secret_keys = match &config.client_secret_keys {
            Some(path) => Some(DerivationKeys::load_client_secret_keys(path)?),
            None => None,
        };
        let keys = PublishedKeys::new(view.verifiers, secret_keys);
        let fetcher = Fetcher::new(config.fetch.clone())
            .map_err(|e| StartupError::Config(invalid("fetch", e.to_string())))?;
        let direct = match (&config.status_lists_url, &view.status_list_base) {
            (Some(to), Some(from)) => {
                let to = Url::parse(&format!("{}/", to.trim_end_matches('/'))).map_err(|e| {
                    StartupError::Config(invalid("status_lists_url", e.to_string()))
                })?;
                Some(
                    DirectLists::new(from.clone(), to, &config.fetch).map_err(|e| {
                        StartupError::Config(invalid("status_lists_url", e.to_string()))
                    })?,
                )
            }
            _ => None,
        };
        if view.status_list_base.is_none() {
            tracing::warn!(
                "the registrar publishes no status lists: deletes and updates are not seen here"
            );
        }
        let issuers = if config.trusted_issuers.is_empty() {
            None
        } else {
            Some(Arc::new(TrustedIssuers::load(
                &config.trusted_issuers,
                0,
                &fetcher,
            )?))
        };
        let amendments = match &config.registrar_resolve_token {
            Some(token) => {
                let url = Url::parse(&format!(
                    "{}/resolve",
                    config.registrar_url.trim_end_matches('/')
                ))
                .map_err(|e| StartupError::Config(invalid("registrar_url", e.to_string())))?;
                Some(Arc::new(
                    RemoteAmendments::new(
                        url,
                        token.clone(),
                        &config.fetch,
                        config.amendment_cache_secs,
                    )
                    .map_err(|e| StartupError::Config(invalid("registrar_resolve_token", e)))?,
                ))
            }
            None => None,
        };
        let audiences = if config.audiences.is_empty() {
            vec![view.issuer.clone()]
        } else {
            config.audiences.clone()
        };
        let resolver = Arc::new(Resolver::new(ResolverOptions {
            issuer: view.issuer.clone(),
            keys: keys.clone().into(),
            status: None,
            fetcher: Some(fetcher.clone()),
            audiences,
            cache_entries: config.client_cache_entries,
            cache_max_bytes: config.client_cache_max_bytes,
            clock: clock.clone(),
            lists: Some(ListChecks {
                client: Arc::new(StatusListClient::new(fetcher, direct, clock)),
                registrar_lists: true,
                issuers,
                amendments,
            }),
        }));
        let key_refresh = Arc::new(RegistrarKeyRefresh {
            http,
            registrar_url: config.registrar_url.clone(),
            issuer: view.issuer,
            keys,
            resolver: std::sync::OnceLock::new(),
            last_forced: std::sync::Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        });
        let _ = key_refresh.resolver.set(resolver.clone());
        let refresher = tokio::spawn(refresh_keys(
            key_refresh.clone(),
            Duration::from_secs(config.jwks_refresh_secs),
        ));
        let state = EdgeState {
            resolver,
            keys: key_refresh,
            tokens: Arc::new(config.resolve_api_tokens.clone()),
            max_request_bytes: config.max_request_bytes,
            request_timeout: Duration::from_secs(config.request_timeout_secs),
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(telemetry::log_requests))
                .app_data(web::Data::new(state.clone()))
                .route("/resolve", web::post().to(resolve))
                .route("/health/live", get_or_head().to(live))
                .route("/health/ready", get_or_head().to(ready))
                .default_service(web::to(not_found))
        })
        .shutdown_timeout(config.shutdown_timeout_secs)
        .client_request_timeout(Duration::from_secs(config.request_timeout_secs))
        .disable_signals();
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                address: config.listen.to_string(),
                source,
            })?
            .run();
        tracing::info!(port, registrar = %config.registrar_url, "stateless-dcr edge node listening");
        Ok(EdgeNode {
            port,
            server,
            refresher,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serve until SIGTERM or SIGINT (in-flight requests drain).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopper = tokio::spawn(crate::startup::stop_on_signal(self.server.handle()));
        let result = self.server.await;
        stopper.abort();
        self.refresher.abort();
        result
    }
}

/// Fetch the registrar's keys again every `every`, and at once on SIGHUP (the registrar rotated
/// its key: make this node see the new one now).
async fn refresh_keys(keys: Arc<RegistrarKeyRefresh>, every: Duration) {
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(e) => {
            // the keys are still fetched every `every` and for an unknown kid
            tracing::error!(error = %e, "cannot listen for SIGHUP: the registrar's keys are not fetched again on SIGHUP");
            None
        }
    };
    loop {
        #[cfg(unix)]
        {
            let hangup_received = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = hangup_received => tracing::info!("SIGHUP: fetching the registrar's keys again"),
            }
        }
        #[cfg(not(unix))]
        tokio::time::sleep(every).await;
        keys.refresh().await;
    }
}
