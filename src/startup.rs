//! Building and running the HTTP server (Zero To Production style): the listener is bound first,
//! so tests bind port 0 and learn the real port before the server runs. Also the metrics
//! listener, built-in TLS, graceful shutdown and key reloading.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};

use crate::clock::SharedClock;
use crate::config::{Config, ConfigError, TlsConfig};
use crate::http::{configure, telemetry, AddressLimits, AppState};
use crate::keys::{KeyError, RegistrarKeys};
use crate::registrar::Registrar;
use crate::status::StoreError;

/// Why the service could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("status_store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot bind {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
    metrics: Option<Server>,
    registrar: Arc<Registrar>,
    keys_path: PathBuf,
    keys_reload: Duration,
}

impl Application {
    /// Validate the configuration, load the keys, bind the listener.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        raise_open_file_limit();
        let listener = bind(config.listen).map_err(|source| StartupError::Bind {
            address: config.listen.to_string(),
            source,
        })?;
        Self::with_listener(config, listener).await
    }

    /// Run on a listener bound by the caller (tests bind port 0 and set `public_url` to the
    /// port they got).
    pub async fn with_listener(
        config: Config,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        Self::with_clock(config, listener, crate::clock::system()).await
    }

    /// [`Application::with_listener`] with a time source of the caller's (tests set the time).
    pub async fn with_clock(
        config: Config,
        listener: TcpListener,
        clock: SharedClock,
    ) -> Result<Self, StartupError> {
        let registrar = Arc::new(Registrar::open_with_clock(&config, clock).await?);
        let keys = registrar.keys();
        if keys.development_only {
            tracing::warn!(
                keys = %config.keys.display(),
                "DEVELOPMENT KEYS IN USE: their private parts are public; generate your own with `stateless-dcr keys generate` before any real deployment"
            );
        }
        let missing = config.missing_op_endpoints();
        if !missing.is_empty() {
            // allowed on a loopback public_url only (Config::validate)
            tracing::warn!(
                missing = %missing.join(", "),
                "discovery omits OP endpoints it should name: strict clients (the MCP SDKs among them) reject such a document; set them to the OP's endpoints"
            );
        }
        crate::metrics::set_signing_kid(&keys.signing_key().kid);
        let bind_error = |address: String| move |source| StartupError::Bind { address, source };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let state = AppState {
            registrar: registrar.clone(),
            limits: Arc::new(AddressLimits::from_config(&config)),
        };
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(telemetry::log_requests))
                .configure(configure(state.clone()))
        })
        .shutdown_timeout(config.shutdown_timeout_secs)
        // the head of a request; handlers bound the body by the same time
        .client_request_timeout(Duration::from_secs(config.request_timeout_secs))
        // actix stops at once on SIGINT; both SIGTERM and SIGINT drain here (`run_until_stopped`)
        .disable_signals();
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        let server = match &config.tls {
            Some(tls) => {
                let tls_config = tls_config(tls)?;
                server
                    .listen_rustls_0_23(listener, tls_config)
                    .map_err(bind_error(config.listen.to_string()))?
            }
            None => server
                .listen(listener)
                .map_err(bind_error(config.listen.to_string()))?,
        }
        .run();

        let (metrics, metrics_port) = match config.metrics.listen {
            Some(address) => {
                let listener =
                    TcpListener::bind(address).map_err(bind_error(address.to_string()))?;
                let metrics_port = listener.local_addr().map(|a| a.port()).ok();
                let server = HttpServer::new(|| {
                    App::new().route(
                        "/metrics",
                        web::get().to(|| async {
                            HttpResponse::Ok()
                                .content_type("text/plain; version=0.0.4")
                                .body(crate::metrics::render())
                        }),
                    )
                })
                .workers(1)
                .shutdown_timeout(config.shutdown_timeout_secs)
                .listen(listener)
                .map_err(bind_error(address.to_string()))?
                .run();
                (Some(server), metrics_port)
            }
            None => (None, None),
        };
        if config.fetch.allow_private_addresses || config.fetch.extra_root_ca_file.is_some() {
            tracing::warn!("TEST-ONLY fetch settings are on (allow_private_addresses or extra_root_ca_file): never in production");
        }
        tracing::info!(
            port,
            tls = config.tls.is_some(),
            registration_endpoint = registrar.registration_endpoint(),
            "stateless-dcr listening"
        );
        Ok(Application {
            port,
            metrics_port,
            server,
            metrics,
            registrar,
            keys_path: config.keys.clone(),
            keys_reload: Duration::from_secs(config.keys_reload_secs),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    pub fn registrar(&self) -> Arc<Registrar> {
        self.registrar.clone()
    }

    /// A handle to stop the server (graceful by default).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serve until stopped (SIGTERM or SIGINT drain in-flight requests within
    /// `shutdown_timeout_secs`). The key file is reloaded on SIGHUP and when it changes.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let reloader = tokio::spawn(reload_keys(
            self.registrar.clone(),
            self.keys_path.clone(),
            self.keys_reload,
        ));
        let metrics_handle = self.metrics.as_ref().map(Server::handle);
        if let Some(metrics) = self.metrics {
            tokio::spawn(metrics);
        }
        let stopper = tokio::spawn(stop_on_signal(self.server.handle()));
        let result = self.server.await;
        reloader.abort();
        stopper.abort();
        // Close the status store now: worker threads may still hold the registrar while the
        // process exits, and a redb file that is not closed needs a repair at the next start.
        if let Some(store) = self.registrar.status_service() {
            if let Err(e) = store.close().await {
                tracing::error!(error = %e, "closing the status store failed");
            }
        }
        if let Some(handle) = metrics_handle {
            handle.stop(true).await;
        }
        result
    }
}

/// Connections a listener queues before they are accepted; the standard library's bind queues
/// 128, which a burst of clients fills.
const LISTEN_BACKLOG: u32 = 2048;

/// Bind the service listener with [`LISTEN_BACKLOG`] (the system's own cap,
/// `net.core.somaxconn`, still applies).
pub(crate) fn bind(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)?.into_std()
}

/// Raise the soft limit of open files to the hard limit: every connection is a file, and
/// distributions often start services with a soft limit of 1024, which a few hundred idle
/// connections would exhaust. The hard limit is the operator's to set (docs/operations.md).
pub(crate) fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
        let raised = unsafe {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
                && (limit.rlim_cur >= limit.rlim_max || {
                    let wanted = libc::rlimit {
                        rlim_cur: limit.rlim_max,
                        rlim_max: limit.rlim_max,
                    };
                    libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0
                })
        };
        if !raised {
            tracing::warn!(
                soft = limit.rlim_cur,
                hard = limit.rlim_max,
                "could not raise the open-file limit; see docs/operations.md"
            );
        }
    }
}

/// SIGTERM or SIGINT: stop accepting, let in-flight requests finish (`shutdown_timeout_secs`).
pub(crate) async fn stop_on_signal(handle: actix_web::dev::ServerHandle) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot listen for SIGTERM and SIGINT");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining in-flight requests"),
            _ = int.recv() => tracing::info!("SIGINT: draining in-flight requests"),
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
    }
    handle.stop(true).await;
}

/// Built-in HTTPS with rustls (ring), from PEM files.
fn tls_config(tls: &TlsConfig) -> Result<rustls::ServerConfig, StartupError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |option: &str, message: String| {
        StartupError::Config(ConfigError::Invalid {
            option: option.into(),
            message,
        })
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid("tls.cert_file", format!("{}: {e}", tls.cert_file.display())))?;
    if certs.is_empty() {
        return Err(invalid(
            "tls.cert_file",
            "no certificate in the file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| invalid("tls.key_file", format!("{}: {e}", tls.key_file.display())))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| invalid("tls", e.to_string()))
}

/// Reload the key file on SIGHUP and, every `every` (unless zero), when its modification time
/// changes. A file that does not load leaves the keys in force as they are.
async fn reload_keys(registrar: Arc<Registrar>, path: PathBuf, every: Duration) {
    let modified = |path: &PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut last: Option<SystemTime> = modified(&path);
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(e) => {
            // keys are still reloaded when the file changes (unless keys_reload_secs = 0)
            tracing::error!(
                error = %e,
                "cannot listen for SIGHUP: the key file is not reloaded on SIGHUP"
            );
            None
        }
    };
    let poll = if every.is_zero() {
        Duration::from_secs(3600)
    } else {
        every
    };
    loop {
        #[cfg(unix)]
        let signalled = {
            let hup = async {
                match hangup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = hup => true,
                _ = tokio::time::sleep(poll) => false,
            }
        };
        #[cfg(not(unix))]
        let signalled = {
            tokio::time::sleep(poll).await;
            false
        };
        let now_modified = modified(&path);
        let changed = !every.is_zero() && now_modified != last;
        if !(signalled || changed) {
            continue;
        }
        match RegistrarKeys::load(&path) {
            Ok(keys) => {
                // remembered only once loaded, so that a file that could not be read yet
                // (permissions, half-copied) is tried again at the next poll
                last = now_modified;
                let kid = keys.signing_key().kid.clone();
                registrar.replace_keys(keys);
                crate::metrics::set_signing_kid(&kid);
                tracing::info!(active_kid = %kid, "registrar keys reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "registrar keys not reloaded; keeping the keys in force")
            }
        }
    }
}
