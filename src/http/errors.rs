//! The one place where errors become HTTP responses (after kanidm's errors.rs): status
//! codes, the JSON error body (RFC 7591 §3.2.2; conformance: error-body-json),
//! `WWW-Authenticate` on 401s (RFC 6750 §3) and `Allow` on 405s.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use serde_json::json;

use crate::registrar::RegistrationError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Registration(#[from] RegistrationError),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body could not be read")]
    PayloadRead,
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("the request must have Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("{0}")]
    MalformedJson(String),
    #[error("method not allowed here")]
    MethodNotAllowed { allow: &'static str },
    #[error("no such resource")]
    NotFound,
    /// Too many requests from one address or issuer; retry after this many seconds.
    #[error("too many requests; retry later")]
    RateLimited { retry_after: u64 },
    /// A malformed call of the OP-facing API.
    #[error("{0}")]
    InvalidRequest(String),
    /// A CORS preflight the registration endpoints do not allow (a method or header they do not
    /// take).
    #[error("CORS preflight refused: {0}")]
    CorsRefused(String),
    /// A caller of a token-protected API (`/resolve`, the admin API) without valid credentials;
    /// `presented`: whether it sent a bearer token at all (RFC 6750 §3.1).
    #[error("this API needs a valid bearer token")]
    Unauthorized { api: ProtectedApi, presented: bool },
    /// No representation the request's `Accept` takes (406); the one offered.
    #[error("only {0} is offered here")]
    NotAcceptable(&'static str),
    /// The request conflicts with what is stored (409).
    #[error("{0}")]
    Conflict(String),
}

/// The APIs that take bearer tokens of their own, each with its challenge realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectedApi {
    Resolve,
    Admin,
}

impl ProtectedApi {
    fn realm(self) -> &'static str {
        match self {
            ProtectedApi::Resolve => "stateless-dcr-resolve",
            ProtectedApi::Admin => "stateless-dcr-admin",
        }
    }
}

/// The challenge realm of this service's bearer tokens.
const REALM: &str = "stateless-dcr";

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::Registration(e) => e.code(),
            // A body that is not application/json, or not a JSON object, is bad metadata (a
            // project decision, see docs/conformance.md `registration-json-media-type-only`)
            ApiError::UnsupportedMediaType | ApiError::MalformedJson(_) => {
                "invalid_client_metadata"
            }
            ApiError::PayloadTooLarge { .. }
            | ApiError::PayloadRead
            | ApiError::RequestTimeout
            | ApiError::MethodNotAllowed { .. } => "invalid_request",
            ApiError::NotFound => "not_found",
            ApiError::Unauthorized { .. } => "invalid_token",
            ApiError::Conflict(_) | ApiError::NotAcceptable(_) => "invalid_request",
            ApiError::InvalidRequest(_) | ApiError::CorsRefused(_) => "invalid_request",
            ApiError::RateLimited { .. } => "too_many_requests",
        }
    }

    /// The `error_description`: ASCII only (RFC 7591 §3.2.2; conformance: error-body-json);
    /// internal details stay in the log.
    fn description(&self) -> String {
        let text = match self {
            ApiError::Registration(RegistrationError::Internal(_)) => {
                "the server could not complete the request".to_owned()
            }
            other => other.to_string(),
        };
        text.chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Registration(e) => match e {
                RegistrationError::MissingToken
                | RegistrationError::InvalidToken
                | RegistrationError::MissingInitialAccessToken(_)
                | RegistrationError::InvalidInitialAccessToken(_) => StatusCode::UNAUTHORIZED,
                RegistrationError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                RegistrationError::Unavailable(_) | RegistrationError::StatusUnavailable(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                RegistrationError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::BAD_REQUEST,
            },
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadRead | ApiError::UnsupportedMediaType | ApiError::MalformedJson(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::InvalidRequest(_) | ApiError::CorsRefused(_) => StatusCode::BAD_REQUEST,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Registration(RegistrationError::Internal(detail)) => {
                tracing::error!(%detail, "request failed on the server side")
            }
            ApiError::Registration(RegistrationError::Unavailable(detail)) => {
                tracing::warn!(%detail, "status store unavailable")
            }
            ApiError::Registration(RegistrationError::StatusUnavailable(detail)) => {
                tracing::warn!(%detail, "a status list cannot be read")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        no_store(&mut response);
        match self {
            ApiError::Registration(
                RegistrationError::MissingToken | RegistrationError::MissingInitialAccessToken(_),
            ) => {
                // RFC 6750 §3.1: no error code when no credentials were presented
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Bearer realm=\"{REALM}\""),
                ));
            }
            ApiError::Registration(
                RegistrationError::InvalidToken | RegistrationError::InvalidInitialAccessToken(_),
            ) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
                ));
            }
            ApiError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, *allow));
            }
            ApiError::RequestTimeout => {
                // RFC 9110 §15.5.9: the server closes the connection
                response.force_close();
            }
            ApiError::Registration(
                RegistrationError::Unavailable(_) | RegistrationError::StatusUnavailable(_),
            ) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            ApiError::Registration(RegistrationError::RateLimited { retry_after }) => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::RateLimited { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::Unauthorized { api, presented } => {
                // RFC 6750 §3.1: no error code when no credentials were presented
                let challenge = if *presented {
                    format!("Bearer realm=\"{}\", error=\"invalid_token\"", api.realm())
                } else {
                    format!("Bearer realm=\"{}\"", api.realm())
                };
                response.insert_header((header::WWW_AUTHENTICATE, challenge));
            }
            _ => {}
        }
        response.json(json!({ "error": self.code(), "error_description": self.description() }))
    }
}

/// Registration and configuration responses are never cached (RFC 9111 §5.2.2.5, §5.4): a
/// project decision, see docs/conformance.md `no-store-everywhere`.
pub fn no_store(response: &mut HttpResponseBuilder) {
    response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    response.insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
}
