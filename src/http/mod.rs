//! The HTTP face of the registrar (actix-web): routes, handlers and the error mapping. Nothing
//! here knows JOSE; everything protocol-related is a call into [`crate::registrar::Registrar`].

mod admin;
pub mod errors;
pub(crate) mod handlers;
pub(crate) mod resolve_api;
pub mod telemetry;

use std::sync::Arc;

use actix_cors::Cors;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{from_fn, Next};
use actix_web::{guard, web, ResponseError};

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
    pub fn from_config(config: &crate::config::Config) -> Self {
        let limits = &config.rate_limits;
        let open = config.requirement().is_open();
        AddressLimits {
            registration: limits
                .effective_registration_per_address(open)
                .map(RateLimiter::new),
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
            // Public documents, readable from browsers (the MCP Inspector runs in one): CORS
            // with any origin and any request header, so that the preflight for the headers
            // the MCP SDK adds (MCP-Protocol-Version) passes.
            .service(
                readable("/.well-known/openid-configuration")
                    .to(handlers::discovery)
                    .wrap(public_document_cors())
                    .wrap(from_fn(cors_answers)),
            )
            .service(
                readable("/.well-known/oauth-authorization-server")
                    .to(handlers::discovery)
                    .wrap(public_document_cors())
                    .wrap(from_fn(cors_answers)),
            )
            .service(
                readable("/jwks")
                    .to(handlers::jwks)
                    .wrap(public_document_cors())
                    .wrap(from_fn(cors_answers)),
            )
            .route("/resolve", web::post().to(handlers::resolve))
            .service(
                web::resource("/admin/withdrawals")
                    .route(
                        web::route()
                            .guard(guard::Any(guard::Get()).or(guard::Head()))
                            .to(admin::list),
                    )
                    .route(web::post().to(admin::create))
                    .default_service(web::to(admin::collection_method_not_allowed)),
            )
            .service(
                web::resource("/admin/withdrawals/{id}")
                    .route(web::delete().to(admin::lift))
                    .default_service(web::to(admin::item_method_not_allowed)),
            )
            .service(
                // draft-ietf-oauth-status-list-18 §8.1: readable from browsers too
                web::scope("/status-lists")
                    .wrap(public_document_cors())
                    .wrap(from_fn(cors_answers))
                    .service(readable("").to(handlers::status_list_aggregation))
                    .service(readable("/{id}").to(handlers::status_list)),
            )
            .service(readable("/health/live").to(handlers::live))
            .service(readable("/health/ready").to(handlers::ready))
            .service(
                // OIDC DCR §3, §4: both endpoints should support CORS. Bearer tokens travel in a
                // header, never in cookies, so any origin may call them.
                web::scope("/register")
                    .wrap(cors())
                    .wrap(from_fn(cors_answers))
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

/// A resource answering GET and HEAD (RFC 9110 §9.1: a server that supports GET supports HEAD;
/// actix sends the head of the GET answer without its body), and 405 with `Allow` to any other
/// method (RFC 9110 §15.5.6).
struct Readable(&'static str);

fn readable(path: &'static str) -> Readable {
    Readable(path)
}

impl Readable {
    fn to<F, Args>(self, handler: F) -> actix_web::Resource
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        web::resource(self.0)
            .route(
                web::route()
                    .guard(guard::Any(guard::Get()).or(guard::Head()))
                    .to(handler),
            )
            .default_service(web::to(handlers::read_only_method_not_allowed))
    }
}

/// Preflight answers of the CORS middleware: a refusal becomes the JSON error every other
/// endpoint answers with, and every preflight answer is `no-store` like the endpoints
/// themselves (conformance: error-body-json, no-store-everywhere).
async fn cors_answers(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let preflight = request.method() == actix_web::http::Method::OPTIONS;
    let response = next.call(request).await?;
    let refusal = response
        .response()
        .error()
        .and_then(|e| e.as_error::<actix_cors::CorsError>())
        .map(|e| errors::ApiError::CorsRefused(e.to_string()));
    if let Some(refusal) = refusal {
        let (request, _) = response.into_parts();
        return Ok(ServiceResponse::new(request, refusal.error_response()));
    }
    let mut response = response.map_into_boxed_body();
    if preflight {
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        headers.insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    }
    Ok(response)
}

/// CORS of the registration and configuration endpoints. Credentials travel in
/// `Authorization`, never in cookies (no `Access-Control-Allow-Credentials`), so any origin and
/// any request header may be allowed: a browser client that adds its own headers (the MCP
/// SDK's `MCP-Protocol-Version`) passes the preflight.
fn cors() -> Cors {
    Cors::default()
        .allow_any_origin()
        .allowed_methods(["GET", "HEAD", "POST", "PUT", "DELETE"])
        .allow_any_header()
        .max_age(3600)
}

/// CORS of the public documents: discovery, the JWK Set and the status lists.
fn public_document_cors() -> Cors {
    Cors::default()
        .allow_any_origin()
        .allowed_methods(["GET", "HEAD"])
        .allow_any_header()
        .max_age(3600)
}
