//! One log line per request with a request id, and the request latency histogram. Only the
//! method, the route pattern (not the path: it holds client_ids), the status and the timing are
//! recorded — never a header or a body, so no secret can reach the log.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;

use crate::metrics::METRICS;

/// The request id: a caller's `X-Request-Id` when it is short and plain, else one of ours.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Ours: a random prefix drawn once per process, and a counter. Ids only need to be unique to
/// tie a response to its log line; drawing 72 random bits per request cost more than the rest
/// of the access log (docs/benchmarks.md).
fn next_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::LazyLock;
    static PREFIX: LazyLock<String> = LazyLock::new(|| {
        crate::jose::random_bytes(6)
            .map(|b| crate::jose::base64url(&b))
            .unwrap_or_else(|_| format!("{:08x}", std::process::id()))
    });
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n:x}", *PREFIX)
}

fn request_id(request: &ServiceRequest) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
        .map(str::to_owned)
        .unwrap_or_else(next_request_id)
}

pub async fn log_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&request);
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().to_string();
    let route = match request.match_pattern() {
        Some(pattern) => pattern,
        // the configuration endpoint is the /register scope's default service
        None if request.path().starts_with("/register/") => "/register/{client_id}".to_owned(),
        None => "(unmatched)".to_owned(),
    };
    let mut response = next.call(request).await?;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    METRICS
        .request_seconds
        .with_label_values(&[&route, &method, &status.to_string()])
        .observe(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    tracing::info!(
        target: "stateless_dcr::request",
        request_id = %id,
        method = %method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    Ok(response)
}
