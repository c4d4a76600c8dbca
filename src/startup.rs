//! Building and running the HTTP server (Zero To Production style): the listener is bound first,
//! so tests bind port 0 and learn the real port before the server runs.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer};

use crate::config::Config;
use crate::http::{configure, AppState};
use crate::registrar::{Registrar, StartupError};

pub struct Application {
    port: u16,
    server: Server,
    registrar: Arc<Registrar>,
}

impl Application {
    /// Validate the configuration, load the keys, bind the listener.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(config.listen).map_err(|source| StartupError::Bind {
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
        let registrar = Arc::new(Registrar::open(&config).await?);
        if registrar.keys().development_only {
            tracing::warn!(
                keys = %config.keys.display(),
                "DEVELOPMENT KEYS IN USE: their private parts are public; generate your own with `stateless-dcr keys generate` before any real deployment"
            );
        }
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let state = AppState {
            registrar: registrar.clone(),
            max_request_bytes: config.max_request_bytes,
            resolve_api_tokens: Arc::new(config.resolve_api_tokens.clone()),
        };
        let mut server = HttpServer::new(move || App::new().configure(configure(state.clone())));
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
        tracing::info!(
            port,
            registration_endpoint = registrar.registration_endpoint(),
            "stateless-dcr listening"
        );
        Ok(Application {
            port,
            server,
            registrar,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn registrar(&self) -> Arc<Registrar> {
        self.registrar.clone()
    }

    /// A handle to stop the server (graceful by default).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
