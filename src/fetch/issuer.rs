//! The keys of a trusted federation authority published at a `jwks_uri`.
//!
//! Software statements are verified with these keys (RFC 7591 §2.3), so they are needed on the
//! registration path and must neither be fetched per request nor go stale forever:
//! - a fetched set is kept for its `Cache-Control: max-age`, clamped to
//!   [`FetchConfig::issuer_jwks_min_cache_secs`, `FetchConfig::issuer_jwks_max_cache_secs`]
//!   (default 60 s to 24 h), or for `issuer_jwks_default_cache_secs` (1 h) without one;
//! - a statement whose `kid` is not in the set triggers one refetch, since the authority may have
//!   rotated its keys; at most one such refetch per `issuer_jwks_refetch_secs` (30 s) per
//!   issuer, so a flood of unknown `kid`s costs one fetch per period;
//! - when a refresh fails, the last good set stays in use, and the refresh is retried after
//!   `failure_cache_secs`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

use super::{DocumentKind, FetchConfig, FetchError, Fetcher};
use crate::keys::VerifierSet;

/// The keys of one trusted issuer, fetched from its `jwks_uri` and cached. Cheap to clone:
/// clones share the cache.
#[derive(Clone)]
pub struct IssuerJwksSource {
    inner: Arc<Inner>,
}

/// One fetched, validated issuer JWK Set with its verifiers built once. A new `Arc` is made
/// only when a refetch succeeds, so callers may cache work derived from it with `Arc::ptr_eq`.
#[derive(Debug)]
pub struct IssuerKeys {
    jwks: Value,
    verifiers: VerifierSet,
}

impl IssuerKeys {
    /// The JWK Set as published (public keys only; checked on fetch).
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// The set's signature verifiers.
    pub fn verifiers(&self) -> &VerifierSet {
        &self.verifiers
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.verifiers.has_kid(kid)
    }
}

struct Inner {
    fetcher: Fetcher,
    uri: Url,
    state: Mutex<State>,
    /// Held while fetching, so concurrent callers that need a refresh share one fetch.
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<IssuerKeys>>,
    /// When `keys` should be refreshed; `None` (or past) means stale.
    expires_at: Option<Instant>,
    /// The last refetch triggered by an unknown `kid`, for the rate limit.
    last_forced: Option<Instant>,
    /// The last failed fetch, retried after `failure_cache_secs`.
    last_failure: Option<(Instant, FetchError)>,
}

enum Step {
    Serve(Arc<IssuerKeys>),
    Fail(FetchError),
    Fetch { forced: bool },
}

impl IssuerJwksSource {
    /// A source for the keys at `jwks_uri`. The URL is checked now (https, not an IP literal in
    /// a special range); nothing is fetched until keys are first asked for.
    pub fn new(fetcher: Fetcher, jwks_uri: &str) -> Result<Self, FetchError> {
        let uri = fetcher.parse_url(jwks_uri)?;
        Ok(IssuerJwksSource {
            inner: Arc::new(Inner {
                fetcher,
                uri,
                state: Mutex::new(State::default()),
                refresh: tokio::sync::Mutex::new(()),
            }),
        })
    }

    pub fn jwks_uri(&self) -> &str {
        self.inner.uri.as_str()
    }

    /// The current keys, fetched when there are none yet or they have expired. A failed refresh
    /// answers the last good keys; an error only when there never were any (or the last attempt
    /// failed less than `failure_cache_secs` ago and there are none).
    pub async fn keys(&self) -> Result<Arc<IssuerKeys>, FetchError> {
        self.load(None).await
    }

    /// Like [`keys`](Self::keys), but when the set lacks `kid`, refetch it once (the issuer may
    /// have rotated keys), rate-limited per issuer. The answer may still lack `kid`: the caller
    /// then refuses the statement.
    pub async fn keys_for_kid(&self, kid: &str) -> Result<Arc<IssuerKeys>, FetchError> {
        self.load(Some(kid)).await
    }

    async fn load(&self, kid: Option<&str>) -> Result<Arc<IssuerKeys>, FetchError> {
        match self.decide(kid, false) {
            Step::Serve(keys) => return Ok(keys),
            Step::Fail(err) => return Err(err),
            Step::Fetch { .. } => {}
        }
        let _refreshing = self.inner.refresh.lock().await;
        // Decide again: another caller may have refreshed while this one waited.
        let forced = match self.decide(kid, true) {
            Step::Serve(keys) => return Ok(keys),
            Step::Fail(err) => return Err(err),
            Step::Fetch { forced } => forced,
        };
        if forced {
            self.state().last_forced = Some(Instant::now());
        }
        let outcome = self.fetch().await;
        let now = Instant::now();
        let mut state = self.state();
        match outcome {
            Ok((keys, lifetime)) => {
                state.keys = Some(Arc::clone(&keys));
                // An overflow (absurd lifetime) leaves the keys stale: refetched next time.
                state.expires_at = now.checked_add(lifetime);
                state.last_failure = None;
                Ok(keys)
            }
            Err(err) => {
                tracing::warn!(
                    jwks_uri = %self.inner.uri,
                    error = %err,
                    kept_last_good = state.keys.is_some(),
                    "refreshing a trusted issuer's JWK Set failed"
                );
                state.last_failure = Some((now, err.clone()));
                match &state.keys {
                    Some(keys) => Ok(Arc::clone(keys)),
                    None => Err(err),
                }
            }
        }
    }

    /// What to do for a caller wanting `kid`. `locked`: the caller holds the refresh lock, so
    /// no refresh is in flight.
    fn decide(&self, kid: Option<&str>, locked: bool) -> Step {
        let config = self.inner.fetcher.config();
        let now = Instant::now();
        let state = self.state();
        let since = |at: Instant| now.saturating_duration_since(at);
        let recent_failure = state
            .last_failure
            .as_ref()
            .filter(|(at, _)| since(*at) < Duration::from_secs(config.failure_cache_secs));
        let Some(keys) = &state.keys else {
            return match recent_failure {
                Some((_, err)) => Step::Fail(err.clone()),
                None => Step::Fetch { forced: false },
            };
        };
        let fresh = state.expires_at.is_some_and(|at| now < at);
        if !fresh {
            return match recent_failure {
                Some(_) => Step::Serve(Arc::clone(keys)),
                None => Step::Fetch { forced: false },
            };
        }
        match kid {
            Some(kid) if !keys.has_kid(kid) => {
                let allowed = state.last_forced.is_none_or(|at| {
                    since(at) >= Duration::from_secs(config.issuer_jwks_refetch_secs)
                });
                if allowed {
                    Step::Fetch { forced: true }
                } else if locked {
                    Step::Serve(Arc::clone(keys))
                } else {
                    // A refetch may be in flight right now (it set `last_forced` when it
                    // started) and may bring this kid: wait for the lock, then decide again.
                    Step::Fetch { forced: false }
                }
            }
            _ => Step::Serve(Arc::clone(keys)),
        }
    }

    /// Fetch and check the set, counting failures.
    async fn fetch(&self) -> Result<(Arc<IssuerKeys>, Duration), FetchError> {
        let result = self.fetch_and_check().await;
        if result.is_err() {
            crate::metrics::METRICS
                .fetch_errors
                .with_label_values(&["issuer_jwks"])
                .inc();
        }
        result
    }

    async fn fetch_and_check(&self) -> Result<(Arc<IssuerKeys>, Duration), FetchError> {
        let fetched = self
            .inner
            .fetcher
            .fetch_uncached(&self.inner.uri, DocumentKind::IssuerJwks)
            .await?;
        let verifiers = VerifierSet::from_jwks(&fetched.value)
            .map_err(|e| FetchError::WrongShape(e.to_string()))?;
        let lifetime = lifetime(fetched.max_age, self.inner.fetcher.config());
        let keys = IssuerKeys {
            jwks: fetched.value,
            verifiers,
        };
        Ok((Arc::new(keys), lifetime))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a few plain fields, consistent after any panic; keep going.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for IssuerJwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerJwksSource")
            .field("jwks_uri", &self.inner.uri.as_str())
            .finish_non_exhaustive()
    }
}

/// How long a fetched set is kept: its `max-age` clamped to the configured bounds.
fn lifetime(max_age: Option<u64>, config: &FetchConfig) -> Duration {
    let secs = max_age
        .unwrap_or(config.issuer_jwks_default_cache_secs)
        .min(config.issuer_jwks_max_cache_secs)
        .max(config.issuer_jwks_min_cache_secs);
    Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_is_clamped() {
        let config = FetchConfig::default();
        let secs = |max_age| lifetime(max_age, &config).as_secs();
        assert_eq!(secs(None), 3_600);
        assert_eq!(secs(Some(0)), 60);
        assert_eq!(secs(Some(59)), 60);
        assert_eq!(secs(Some(600)), 600);
        assert_eq!(secs(Some(86_400)), 86_400);
        assert_eq!(secs(Some(u64::MAX)), 86_400);
    }

    #[test]
    fn refuses_non_https_uri() {
        let fetcher = Fetcher::new(FetchConfig::default()).unwrap();
        let err = IssuerJwksSource::new(fetcher.clone(), "http://issuer.example/jwks").unwrap_err();
        assert_eq!(err, FetchError::NotHttps);
        let err = IssuerJwksSource::new(fetcher, "https://10.0.0.1/jwks").unwrap_err();
        assert_eq!(err, FetchError::Refused("private address (RFC 1918)"));
    }
}
