//! Prometheus metrics, served on their own listener (`[metrics] listen`), off the public
//! registration service. One process-wide registry: the series are process facts.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    /// Registrations by outcome (`ok`, `refused`, `error`), error code and statement issuer.
    pub registrations: IntCounterVec,
    /// Configuration endpoint calls by operation (`read`, `update`, `delete`), outcome and code.
    pub management: IntCounterVec,
    /// Resolutions (`POST /resolve` and the library's `resolve`) by outcome.
    pub resolves: IntCounterVec,
    /// HTTP request latency by route and status class.
    pub request_seconds: HistogramVec,
    /// Cache lookups by cache (`client_id`, `statement`, `status`, `fetch`) and result.
    pub cache: IntCounterVec,
    /// Status store failures by operation.
    pub store_errors: IntCounterVec,
    /// Outbound fetch failures by document kind.
    pub fetch_errors: IntCounterVec,
    /// 1 for the kid that signs new client_ids.
    pub signing_kid: IntGaugeVec,
    /// Requests refused by a rate limit, by limit.
    pub rate_limited: IntCounterVec,
    /// Status lists by event: `signed` (by this registrar), `fetched` and `refused` (by a
    /// verifier: a list that could not be fetched or did not verify).
    pub status_lists: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|_| unreachable_metric(name));
    let _ = registry.register(Box::new(counter.clone()));
    counter
}

/// Metric definitions are constants of this file; a bad one is a programming error caught by
/// the tests, so it degrades to an unregistered dummy instead of panicking in production.
fn unreachable_metric(name: &str) -> IntCounterVec {
    tracing::error!(metric = name, "invalid metric definition");
    IntCounterVec::new(Opts::new("invalid_metric", "invalid"), &["x"]).unwrap_or_else(|_| {
        // `invalid_metric` is a valid name with a valid label: this cannot fail.
        std::process::abort()
    })
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new_custom(Some("stateless_dcr".into()), None)
        .unwrap_or_else(|_| Registry::new());
    let request_seconds = HistogramVec::new(
        HistogramOpts::new(
            "http_request_duration_seconds",
            "HTTP request latency by route pattern, method and status code",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]),
        &["route", "method", "status"],
    )
    .unwrap_or_else(|_| std::process::abort());
    let _ = registry.register(Box::new(request_seconds.clone()));
    let signing_kid = IntGaugeVec::new(
        Opts::new(
            "signing_key_active",
            "1 for the kid that signs new client_ids",
        ),
        &["kid"],
    )
    .unwrap_or_else(|_| std::process::abort());
    let _ = registry.register(Box::new(signing_kid.clone()));
    Metrics {
        registrations: counter(
            &registry,
            "registrations_total",
            "Registrations by outcome, error code and statement issuer",
            &["outcome", "error", "issuer"],
        ),
        status_lists: counter(
            &registry,
            "status_lists_total",
            "Status lists signed, fetched and refused",
            &["event"],
        ),
        management: counter(
            &registry,
            "configuration_requests_total",
            "Client configuration endpoint calls by operation, outcome and error code",
            &["operation", "outcome", "error"],
        ),
        resolves: counter(
            &registry,
            "resolves_total",
            "Client_id resolutions by outcome",
            &["outcome"],
        ),
        cache: counter(
            &registry,
            "cache_lookups_total",
            "Cache lookups by cache and result (hit or miss)",
            &["cache", "result"],
        ),
        store_errors: counter(
            &registry,
            "status_store_errors_total",
            "Status store failures by operation",
            &["operation"],
        ),
        fetch_errors: counter(
            &registry,
            "fetch_errors_total",
            "Outbound fetch failures by document kind",
            &["kind"],
        ),
        rate_limited: counter(
            &registry,
            "rate_limited_total",
            "Requests refused by a rate limit",
            &["limit"],
        ),
        request_seconds,
        signing_kid,
        registry,
    }
});

/// The caches counted, in the order of [`CACHE_COUNTERS`].
const CACHES: [&str; 4] = ["client_id", "statement", "status", "fetch"];

/// Counters of each cache's hits and misses, looked up once: a cached resolve is on the hot
/// path and must not pay for a label lookup.
static CACHE_COUNTERS: LazyLock<Vec<(prometheus::IntCounter, prometheus::IntCounter)>> =
    LazyLock::new(|| {
        CACHES
            .iter()
            .map(|name| {
                (
                    METRICS.cache.with_label_values(&[name, "hit"]),
                    METRICS.cache.with_label_values(&[name, "miss"]),
                )
            })
            .collect()
    });

/// Count a cache lookup.
pub fn cache(cache: &str, hit: bool) {
    match CACHES
        .iter()
        .position(|c| *c == cache)
        .and_then(|i| CACHE_COUNTERS.get(i))
    {
        Some((hits, misses)) => {
            if hit {
                hits.inc()
            } else {
                misses.inc()
            }
        }
        None => METRICS
            .cache
            .with_label_values(&[cache, if hit { "hit" } else { "miss" }])
            .inc(),
    }
}

/// Counters of each resolve outcome, looked up once (the cached resolve is a hot path).
static RESOLVE_COUNTERS: LazyLock<Vec<(&'static str, prometheus::IntCounter)>> =
    LazyLock::new(|| {
        [
            "valid",
            "revoked",
            "withdrawn",
            "invalid",
            "store_error",
            "status_list_error",
        ]
        .into_iter()
        .map(|o| (o, METRICS.resolves.with_label_values(&[o])))
        .collect()
    });

/// Count a resolution by outcome: the outcomes above from their counters looked up once, any
/// other by label (slower, never lost).
pub fn resolve(outcome: &str) {
    match RESOLVE_COUNTERS.iter().find(|(o, _)| *o == outcome) {
        Some((_, counter)) => counter.inc(),
        None => METRICS.resolves.with_label_values(&[outcome]).inc(),
    }
}

/// The text exposition of every series.
pub fn render() -> String {
    let mut buffer = Vec::new();
    if TextEncoder::new()
        .encode(&METRICS.registry.gather(), &mut buffer)
        .is_err()
    {
        return String::new();
    }
    String::from_utf8(buffer).unwrap_or_default()
}

/// Set the active signing kid gauge (one series at 1).
pub fn set_signing_kid(kid: &str) {
    METRICS.signing_kid.reset();
    METRICS.signing_kid.with_label_values(&[kid]).set(1);
}
