//! The HTTP face of the registrar (actix-web): routes, handlers and the error mapping. Nothing
//! here knows JOSE; everything protocol-related is a call into [`crate::registrar::Registrar`].

pub mod errors;
mod handlers;
pub(crate) mod resolve_api;
pub mod telemetry;

use std::sync::Arc;

use actix_cors::Cors;
use actix_web::web;

use crate::ratelimit::RateLimiter;
use crate::registrar::Registrar;

/// Shared state of every worker.
#[derive(Debug, Clone)]
pub struct AppState {
    pub registrar: Arc<Registrar>,
    pub limits: Arc<AddressLimits>,
}

/// The per-address rate limits of the HTTP endpoints.
#[derive(Default)]
pub struct AddressLimits {
    pub registration: Option<RateLimiter>,
    pub configuration: Option<RateLimiter>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub ipv6_prefix_len: u8,
}

impl std::fmt::Debug for AddressLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressLimits").finish_non_exhaustive()
    }
}

impl AddressLimits {
    pub fn from_config(limits: &crate::config::RateLimits) -> Self {
        AddressLimits {
            registration: limits.registration_per_address.map(RateLimiter::new),
            configuration: limits.configuration_per_address.map(RateLimiter::new),
            trusted_proxies: limits.trusted_proxies.clone(),
            ipv6_prefix_len: limits.ipv6_prefix_len,
        }
    }
}

/// The token of an `Authorization: Bearer` header value (RFC 6750 §2.1): the scheme in any case,
/// then one space and a non-empty token.
pub fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Register every route on an actix `App` / `ServiceConfig`.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state))
            .route(
                "/.well-known/openid-configuration",
                web::get().to(handlers::discovery),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                web::get().to(handlers::discovery),
            )
            .route("/jwks", web::get().to(handlers::jwks))
            .route("/resolve", web::post().to(handlers::resolve))
            .route("/health/live", web::get().to(handlers::live))
            .route("/health/ready", web::get().to(handlers::ready))
            .service(
                // OIDC DCR §3, §4: both endpoints should support CORS. Bearer tokens travel in a
                // header, never in cookies, so any origin may call them.
                web::scope("/register")
                    .wrap(cors())
                    .service(
                        web::resource("")
                            .route(web::post().to(handlers::register))
                            .default_service(web::to(handlers::registration_method_not_allowed)),
                    )
                    // Everything under /register/ is the configuration endpoint, garbage included:
                    // it gets its 401, never a 404 (OIDC DCR §4.4). The client_id is taken
                    // from the path directly: a route pattern would run a regex with captures over
                    // a kilobyte-long client_id on every request (docs/benchmarks.md).
                    .default_service(web::to(handlers::configuration)),
            )
            .default_service(web::to(handlers::not_found));
    }
}

fn cors() -> Cors {
    Cors::default()
        .allow_any_origin()
        .allowed_methods(["GET", "POST", "PUT", "DELETE"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        .max_age(3600)
}
