//! Request handlers: parse the HTTP request into typed values, call the registrar, answer.

use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{Map, Value};

use super::errors::{no_store, ApiError, ProtectedApi};
use super::AppState;
use crate::config::Management;
use crate::registrar::{RegistrationBody, RegistrationError};

/// Take a token from a per-address limit, or refuse with 429 and `Retry-After`.
fn limit(
    limiter: &Option<crate::ratelimit::RateLimiter>,
    name: &str,
    request: &HttpRequest,
    state: &AppState,
) -> Result<(), ApiError> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    let forwarded = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let peer = request.peer_addr().map(|a| a.ip());
    let Some(address) =
        crate::ratelimit::client_address(peer, forwarded, &state.limits.trusted_proxies)
    else {
        return Ok(());
    };
    let key = crate::ratelimit::address_key(address, state.limits.ipv6_prefix_len);
    match limiter.check(&key.to_string()) {
        crate::ratelimit::Decision::Allowed => Ok(()),
        crate::ratelimit::Decision::Limited(wait) => {
            crate::metrics::METRICS
                .rate_limited
                .with_label_values(&[name])
                .inc();
            Err(ApiError::RateLimited {
                retry_after: crate::ratelimit::retry_after_secs(wait),
            })
        }
    }
}

/// `GET /health/live`: the process answers.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /health/ready`: keys are loaded (they are, once the server runs) and the configured
/// status store answers.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.registrar.status_service() {
        Some(store) => match store.ping().await {
            Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
            Err(e) => {
                tracing::warn!(error = %e, "not ready: status store unreachable");
                HttpResponse::ServiceUnavailable().json(serde_json::json!({
                    "status": "not_ready",
                    "reason": "the status store is unreachable",
                }))
            }
        },
        None => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
    }
}

/// `POST /register` (RFC 7591 §3.1, OIDC DCR §3.1).
pub async fn register(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    limit(
        &state.limits.registration,
        "registration_per_address",
        &request,
        &state,
    )?;
    let token = bearer_token(&request);
    let registered = if is_signed_request(&request) {
        let jws = signed_body(payload, &state).await?;
        state
            .registrar
            .register_body(RegistrationBody::Signed(&jws), token)
            .await?
    } else {
        let body = json_body(&request, payload, &state).await?;
        state.registrar.register(&body, token).await?
    };
    // RFC 7591 §3.2.1: 201 with one application/json object
    Ok(json_response(HttpResponse::Created(), &registered))
}

/// The client configuration endpoint (RFC 7592 §2): every path under `/register/`, by method.
/// Methods the configured management mode does not offer answer 405 with `Allow`.
pub async fn configuration(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let offered = matches!(
        (request.method(), state.registrar.management()),
        (
            &Method::GET | &Method::HEAD,
            Management::Full | Management::ReadOnly
        ) | (&Method::PUT | &Method::DELETE, Management::Full)
    );
    if !offered {
        return Err(configuration_not_allowed(&state));
    }
    limit(
        &state.limits.configuration,
        "configuration_per_address",
        &request,
        &state,
    )?;
    let token = bearer_token(&request);
    match *request.method() {
        Method::PUT => {
            // A caller without any token gets its 401 before the body is read.
            if token.is_none() {
                return Err(RegistrationError::MissingToken.into());
            }
            let information = if is_signed_request(&request) {
                let jws = signed_body(payload, &state).await?;
                state
                    .registrar
                    .update_body(client_id(&request), token, RegistrationBody::Signed(&jws))
                    .await?
            } else {
                let body = json_body(&request, payload, &state).await?;
                state
                    .registrar
                    .update(client_id(&request), token, &body)
                    .await?
            };
            Ok(json_response(HttpResponse::Ok(), &information))
        }
        Method::DELETE => {
            state.registrar.delete(client_id(&request), token).await?;
            // RFC 7592 §2.3: 204 with an empty body
            let mut response = HttpResponse::NoContent();
            no_store(&mut response);
            Ok(response.finish())
        }
        _ => {
            let information = state.registrar.read(client_id(&request), token).await?;
            Ok(json_response(HttpResponse::Ok(), &information))
        }
    }
}

/// The client_id: the rest of the path after `/register/` (empty for garbage such as
/// `/register`, which then fails like any invalid client_id).
fn client_id(request: &HttpRequest) -> &str {
    request
        .path()
        .strip_prefix("/register/")
        .unwrap_or_default()
}

/// A JSON object body of at most `max_request_bytes`, read within `request_timeout_secs`: a
/// body that never arrives must not hold its connection open.
pub(super) async fn json_body_of(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Map<String, Value>, ApiError> {
    json_body(request, payload, state).await
}

async fn json_body(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Map<String, Value>, ApiError> {
    let config = state.registrar.config();
    read_json_object(
        request,
        payload,
        config.max_request_bytes,
        std::time::Duration::from_secs(config.request_timeout_secs),
    )
    .await
}

/// A JSON object body of at most `limit` bytes, read within `timeout`.
pub(crate) async fn read_json_object(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Map<String, Value>, ApiError> {
    require_json(request)?;
    json_object(&read_limited(payload, limit, timeout).await?)
}

/// The body, at most `limit` bytes, read within `timeout`.
async fn read_limited(
    payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<actix_web::web::Bytes, ApiError> {
    match tokio::time::timeout(timeout, payload.to_bytes_limited(limit)).await {
        Ok(Ok(Ok(bytes))) => Ok(bytes),
        Ok(Ok(Err(_))) => Err(ApiError::PayloadRead),
        Ok(Err(_)) => Err(ApiError::PayloadTooLarge { limit }),
        Err(_) => Err(ApiError::RequestTimeout),
    }
}

/// `POST /resolve`: for OPs not written in Rust, the answer of [`crate::resolve::Resolver`]
/// about a client_id, with optional checks of a redirect URI, a response type, a grant type and
/// client credentials. The request is JSON; see docs/api.md.
pub async fn resolve(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tokens = &state.registrar.config().resolve_api_tokens;
    if tokens.is_empty() {
        return Err(ApiError::NotFound);
    }
    require_token(&request, tokens, ProtectedApi::Resolve)?;
    // the OP-facing API answers malformed calls with invalid_request (RFC 6749 §5.2), not the
    // registration endpoint's invalid_client_metadata
    let body = json_body(&request, payload, &state)
        .await
        .map_err(|e| match e {
            ApiError::UnsupportedMediaType | ApiError::MalformedJson(_) => {
                ApiError::InvalidRequest(e.to_string())
            }
            other => other,
        })?;
    let query = super::resolve_api::ResolveQuery::from_json(&body)?;
    let answer = super::resolve_api::answer(state.registrar.resolver(), &query).await?;
    Ok(json_response(HttpResponse::Ok(), &answer))
}

/// Any method but GET and HEAD on a read-only resource (discovery, `/jwks`, health).
pub async fn read_only_method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
}

pub async fn registration_method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { allow: "POST" })
}

fn configuration_not_allowed(state: &AppState) -> ApiError {
    let allow = match state.registrar.management() {
        Management::Full => "GET, HEAD, PUT, DELETE",
        Management::ReadOnly => "GET, HEAD",
        Management::None => "",
    };
    ApiError::MethodNotAllowed { allow }
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// OpenID Provider Metadata (OIDC Discovery §4) / RFC 8414 §3 metadata.
pub async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.registrar.discovery())
}

/// The registrar's public keys, for anyone verifying client_ids offline.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type("application/jwk-set+json")
        .json(state.registrar.jwks())
}

/// `GET /status-lists/{id}`: a Status List Token (draft-ietf-oauth-status-list-18 §8.2), with
/// caching headers that agree with its `ttl` (§8.2 puts the claims first; they say the same).
pub async fn status_list(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let lists = state.registrar.status_lists().ok_or(ApiError::NotFound)?;
    // §8.1: HTTP content negotiation; only the JWT form is offered (RFC 9110 §15.5.7)
    if !accepts_status_list_jwt(&request) {
        return Err(ApiError::NotAcceptable(crate::status_list::MEDIA_TYPE));
    }
    let id = request.match_info().get("id").unwrap_or_default();
    // one spelling per list: decimal digits, no leading zero
    let valid = !id.is_empty()
        && id.len() <= 20
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    let id: u64 = match id.parse() {
        Ok(id) if valid => id,
        _ => return Err(ApiError::NotFound),
    };
    let signed = lists
        .token(id)
        .await
        .map_err(RegistrationError::from)?
        .ok_or(ApiError::NotFound)?;
    let now = crate::clock::Clock::now(crate::clock::system().as_ref()).unwrap_or(signed.iat);
    let max_age = signed.max_age(now, lists.config().ttl_secs);
    Ok(HttpResponse::Ok()
        .content_type(crate::status_list::MEDIA_TYPE)
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={max_age}")))
        .body(signed.token.to_string()))
}

/// Whether the request's `Accept` (RFC 9110 §12.5.1) takes `application/statuslist+jwt`: no
/// header, `*/*`, `application/*` or the type itself, with a non-zero `q`.
fn accepts_status_list_jwt(request: &HttpRequest) -> bool {
    let Some(accept) = request.headers().get(header::ACCEPT) else {
        return true;
    };
    let Ok(accept) = accept.to_str() else {
        return false;
    };
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let refused = parts.any(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            name.trim().eq_ignore_ascii_case("q")
                && value.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
        });
        !refused
            && (media == "*/*"
                || media.eq_ignore_ascii_case("application/*")
                || media.eq_ignore_ascii_case(crate::status_list::MEDIA_TYPE))
    })
}

/// `GET /status-lists`: the Status List Aggregation (draft-ietf-oauth-status-list-18 §9.3).
pub async fn status_list_aggregation(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let lists = state.registrar.status_lists().ok_or(ApiError::NotFound)?;
    let all = lists.all_lists().await.map_err(RegistrationError::from)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .json(serde_json::json!({ "status_lists": *all })))
}

fn json_response(
    mut builder: actix_web::HttpResponseBuilder,
    body: &impl Serialize,
) -> HttpResponse {
    no_store(&mut builder);
    builder.json(body)
}

/// A signed registration request: `Content-Type: application/jwt` (RFC 7519 §10.3.1) or
/// `application/jose` (RFC 7515 §9.2.1), as the UK Open Banking conformance suite sends it.
pub(crate) fn is_signed_request(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| {
            let essence = essence.trim();
            essence.eq_ignore_ascii_case("application/jwt")
                || essence.eq_ignore_ascii_case("application/jose")
        })
}

/// The body of a signed request: at most `max_request_bytes` of UTF-8, read within the
/// request timeout. What it holds is checked by the registrar.
pub(crate) async fn signed_body(
    payload: web::Payload,
    state: &AppState,
) -> Result<String, ApiError> {
    let config = state.registrar.config();
    let bytes = read_limited(
        payload,
        config.max_request_bytes,
        std::time::Duration::from_secs(config.request_timeout_secs),
    )
    .await?;
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        RegistrationError::InvalidClientMetadata(
            "the signed registration request is not UTF-8 text".into(),
        )
        .into()
    })
}

/// Only `application/json` (RFC 7591 §3.1; any `charset` must be UTF-8, RFC 8259 §8.1): a
/// project decision, see docs/conformance.md `registration-json-media-type-only`.
fn require_json(request: &HttpRequest) -> Result<(), ApiError> {
    let value = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::UnsupportedMediaType)?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    for parameter in parts {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        if name.trim().eq_ignore_ascii_case("charset")
            && !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    Ok(())
}

/// The body as one JSON object (RFC 7591 §3.1). serde_json refuses invalid UTF-8 and nesting
/// deeper than 128 levels with an error, never a panic or a stack overflow.
fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::MalformedJson(
            "the request body must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::MalformedJson(format!(
            "the request body is not valid JSON ({} at line {} column {})",
            match e.classify() {
                serde_json::error::Category::Io => "read error",
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Data => "invalid data",
                serde_json::error::Category::Eof => "unexpected end",
            },
            e.line(),
            e.column()
        ))),
    }
}

/// The RFC 6750 §2.1 bearer token of the Authorization header, if there is one.
/// The caller of a token-protected API must present one of `tokens` (compared in constant
/// time).
pub(crate) fn require_token(
    request: &HttpRequest,
    tokens: &[crate::secret::Secret],
    api: ProtectedApi,
) -> Result<(), ApiError> {
    match bearer_token(request) {
        Some(presented) if tokens.iter().any(|t| t.matches(presented)) => Ok(()),
        presented => Err(ApiError::Unauthorized {
            api,
            presented: presented.is_some() || request.headers().contains_key(header::AUTHORIZATION),
        }),
    }
}

pub(crate) fn bearer_token(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    super::bearer_credentials(value)
}
