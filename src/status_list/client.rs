//! A verifier's side of status lists (draft-ietf-oauth-status-list-18 §8.3): Status List Tokens
//! fetched, verified with the keys of whoever must have signed them, and cached.
//!
//! - The registrar's lists are verified with its published keys; a federation authority's with
//!   the keys that verify its statements. A list is cached per signer and URI.
//! - A list is kept for its `ttl`, clamped to the configured bounds, never past its `exp`
//!   (§13.7 recommends caching for `ttl` from the time of fetching; §11.5 asks for bounds).
//! - When a list cannot be fetched again (or does not verify), the last good one is used for
//!   `status_list_grace_secs` more, never past its `exp`; the default grace is 0, so the
//!   client is refused: no statement about its status can be made (§8.3).
//! - Concurrent lookups of a stale list share one fetch, and a failed fetch is remembered
//!   briefly, so a flood of lookups costs one fetch per period.
//! - Lookups of a fresh list take a read lock and two hash lookups: nothing is allocated.

use std::collections::HashMap;

/// A fast seeded hash: the keys are signer names and list URIs from verified tokens, and the
/// lookup is on every cached resolve (docs/benchmarks.md).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use url::Url;

use super::token::{self, TokenError};
use super::{StatusArray, StatusReference};
use crate::clock::SharedClock;
use crate::fetch::{FetchConfig, FetchError, Fetcher};
use crate::jose::CompactJws;
use crate::keys::KeySource;
use crate::statement::TrustedIssuers;

/// Clock leeway for a list's `exp`, `iat` and `nbf` at fetch time, in seconds.
const LEEWAY: u64 = 60;
/// Lists cached at most, over every signer.
const MAX_LISTS: usize = 4096;

/// Why the status of a token cannot be read. Every one of these refuses the token (§8.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("the status list cannot be fetched: {0}")]
    Fetch(#[from] FetchError),
    #[error("the status list is not acceptable: {0}")]
    Token(#[from] TokenError),
    #[error("the keys of the list's signer cannot be obtained: {0}")]
    Keys(String),
    #[error("index {0} is outside the status list")]
    Index(u64),
    #[error("the clock cannot tell the time")]
    Clock,
    /// The fetched list was issued before the one already held: an old copy served again
    /// (a cache, or someone replaying it), never taken for news.
    #[error("the fetched status list is older than the one already held")]
    Older,
}

/// Who must have signed a list, and so which keys verify it.
#[derive(Clone, Copy)]
pub enum ListSigner<'a> {
    /// The registrar: its published keys (its own client_ids' lists).
    Registrar(&'a KeySource),
    /// A trusted federation authority, by `iss`: the keys that verify its statements.
    Issuer(&'a TrustedIssuers, &'a str),
}

impl ListSigner<'_> {
    /// The cache is kept per signer: a list is never taken for one signed by someone else.
    fn name(&self) -> &str {
        match self {
            ListSigner::Registrar(_) => "",
            ListSigner::Issuer(_, issuer) => issuer,
        }
    }
}

/// The registrar's lists fetched from an address of the operator's (an edge node inside the
/// same network): URIs starting with `from` are fetched from `to` followed by the rest.
pub struct DirectLists {
    pub from: String,
    pub to: Url,
    client: reqwest::Client,
}

impl DirectLists {
    /// `to` is the operator's own configuration, so plain http and private addresses are
    /// allowed; redirects are not followed, and the size cap and timeouts of `config` apply.
    pub fn new(from: String, to: Url, config: &FetchConfig) -> Result<DirectLists, FetchError> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .timeout(Duration::from_millis(config.total_timeout_ms))
            .user_agent(concat!("stateless-dcr/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(DirectLists { from, to, client })
    }

    fn address(&self, uri: &str) -> Option<Url> {
        let rest = uri.strip_prefix(&self.from)?;
        self.to.join(rest).ok()
    }

    async fn fetch(&self, url: &Url, limit: usize) -> Result<Vec<u8>, FetchError> {
        let response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, super::MEDIA_TYPE)
            .send()
            .await
            .map_err(|e| crate::fetch::transport_error(&e, url))?;
        crate::fetch::read_capped(response, limit, url).await
    }
}

struct CachedList {
    array: StatusArray,
    /// The list's `iat`: a list issued earlier never replaces it.
    iat: u64,
    /// Until when (seconds since the epoch) the list is used without fetching it again.
    fresh_until: u64,
    /// Until when it may still be used when fetching it again fails.
    usable_until: u64,
}

impl CachedList {
    fn status(&self, idx: u64) -> Result<u8, ListError> {
        self.array.get(idx).ok_or(ListError::Index(idx))
    }
}

/// The verifier's fetcher and cache of status lists.
pub struct StatusListClient {
    fetcher: Fetcher,
    direct: Option<DirectLists>,
    clock: SharedClock,
    /// signer → URI → list.
    lists: RwLock<FastMap<String, FastMap<String, Arc<CachedList>>>>,
    /// One refresh at a time per list.
    refreshing: moka::sync::Cache<String, Arc<tokio::sync::Mutex<()>>>,
    /// Failed refreshes, remembered briefly.
    failures: moka::sync::Cache<String, ListError>,
}

impl std::fmt::Debug for StatusListClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusListClient").finish_non_exhaustive()
    }
}

impl StatusListClient {
    pub fn new(fetcher: Fetcher, direct: Option<DirectLists>, clock: SharedClock) -> Self {
        let config = fetcher.config();
        let failure_secs = config
            .failure_cache_secs
            .min(config.status_list_min_cache_secs)
            .max(1);
        StatusListClient {
            refreshing: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(Duration::from_secs(60))
                .build(),
            failures: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(failure_secs))
                .build(),
            lists: RwLock::new(FastMap::default()),
            fetcher,
            direct,
            clock,
        }
    }

    /// The status of the entry `reference` names, in a list signed by `signer`.
    pub async fn status(
        &self,
        signer: ListSigner<'_>,
        reference: &StatusReference,
    ) -> Result<u8, ListError> {
        let now = self.clock.now().map_err(|_| ListError::Clock)?;
        if let Some(list) = self.cached(signer.name(), &reference.uri) {
            if now < list.fresh_until {
                return list.status(reference.idx);
            }
        }
        self.refresh(signer, &reference.uri, now)
            .await?
            .status(reference.idx)
    }

    fn cached(&self, signer: &str, uri: &str) -> Option<Arc<CachedList>> {
        self.lists
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(signer)?
            .get(uri)
            .cloned()
    }

    async fn refresh(
        &self,
        signer: ListSigner<'_>,
        uri: &str,
        now: u64,
    ) -> Result<Arc<CachedList>, ListError> {
        let key = format!("{}\n{uri}", signer.name());
        let lock = self
            .refreshing
            .get_with(key.clone(), || Arc::new(tokio::sync::Mutex::new(())));
        let _refreshing = lock.lock().await;
        let previous = self.cached(signer.name(), uri);
        if let Some(previous) = &previous {
            // refreshed by another lookup while this one waited
            if now < previous.fresh_until {
                return Ok(previous.clone());
            }
        }
        let outcome = match self.failures.get(&key) {
            Some(recent) => Err(recent),
            None => {
                let outcome = self
                    .fetch_and_verify(signer, uri, now)
                    .await
                    .and_then(|list| match &previous {
                        Some(previous) if list.iat < previous.iat => Err(ListError::Older),
                        _ => Ok(list),
                    });
                if let Err(e) = &outcome {
                    self.failures.insert(key, e.clone());
                    crate::metrics::METRICS
                        .status_lists
                        .with_label_values(&["refused"])
                        .inc();
                    tracing::warn!(
                        uri,
                        error = %e,
                        kept_last_good = previous.as_ref().is_some_and(|p| now < p.usable_until),
                        "a status list cannot be used"
                    );
                }
                outcome
            }
        };
        match outcome {
            Ok(list) => {
                let list = Arc::new(list);
                self.insert(signer.name(), uri, list.clone(), now);
                Ok(list)
            }
            Err(e) => match previous {
                Some(previous) if now < previous.usable_until => Ok(previous),
                _ => Err(e),
            },
        }
    }

    async fn fetch_and_verify(
        &self,
        signer: ListSigner<'_>,
        uri: &str,
        now: u64,
    ) -> Result<CachedList, ListError> {
        let config = self.fetcher.config();
        let direct = match (&self.direct, signer) {
            (Some(direct), ListSigner::Registrar(_)) => {
                direct.address(uri).map(|address| (direct, address))
            }
            _ => None,
        };
        let body = match direct {
            Some((direct, address)) => direct.fetch(&address, config.max_status_list_bytes).await?,
            None => self.fetcher.fetch_status_list(uri).await?,
        };
        let token = std::str::from_utf8(&body)
            .map_err(|_| TokenError::Jws(crate::jose::JwsError::Malformed))?
            .trim();
        let max = config.max_status_list_decompressed_bytes;
        let verified = match signer {
            ListSigner::Registrar(keys) => {
                let keys = keys.verification();
                token::verify(token, uri, &keys.verifiers, now, LEEWAY, max)?
            }
            ListSigner::Issuer(issuers, issuer) => {
                let jws = CompactJws::parse(token).map_err(TokenError::from)?;
                let keys = issuers
                    .verifiers_of(issuer, jws.kid())
                    .await
                    .map_err(ListError::Keys)?;
                token::verify(token, uri, keys.set(), now, LEEWAY, max)?
            }
        };
        crate::metrics::METRICS
            .status_lists
            .with_label_values(&["fetched"])
            .inc();
        // an issuer's own bounds, where its configuration sets them (§11.5)
        let (min, max) = match signer {
            ListSigner::Issuer(issuers, issuer) => issuers.status_list_cache_bounds(issuer),
            ListSigner::Registrar(_) => (None, None),
        };
        let min = min.unwrap_or(config.status_list_min_cache_secs);
        let max = max.unwrap_or(config.status_list_max_cache_secs).max(min);
        let cache_secs = verified
            .ttl
            .unwrap_or(config.status_list_default_cache_secs)
            .clamp(min, max);
        let exp = verified.exp.unwrap_or(u64::MAX);
        let fresh_until = now.saturating_add(cache_secs).min(exp);
        let usable_until = fresh_until
            .saturating_add(config.status_list_grace_secs)
            .min(exp);
        Ok(CachedList {
            array: verified.array,
            iat: verified.iat,
            fresh_until,
            usable_until,
        })
    }

    /// Keep a list, dropping those past use, then the oldest, to stay within the bounds.
    fn insert(&self, signer: &str, uri: &str, list: Arc<CachedList>, now: u64) {
        let budget = self.fetcher.config().status_list_cache_max_bytes;
        let mut lists = self.lists.write().unwrap_or_else(PoisonError::into_inner);
        lists
            .entry(signer.to_owned())
            .or_default()
            .insert(uri.to_owned(), list);
        for by_uri in lists.values_mut() {
            by_uri.retain(|_, list| now < list.usable_until);
        }
        lists.retain(|_, by_uri| !by_uri.is_empty());
        loop {
            let (count, bytes) = lists.values().flat_map(FastMap::values).fold(
                (0usize, 0u64),
                |(count, bytes), list| {
                    (
                        count + 1,
                        bytes.saturating_add(list.array.bytes().len() as u64),
                    )
                },
            );
            if count <= 1 || (count <= MAX_LISTS && bytes <= budget) {
                break;
            }
            let oldest = lists
                .iter()
                .flat_map(|(signer, by_uri)| {
                    by_uri
                        .iter()
                        .map(move |(uri, list)| (list.fresh_until, signer.clone(), uri.clone()))
                })
                .min();
            let Some((_, signer, uri)) = oldest else {
                break;
            };
            if let Some(by_uri) = lists.get_mut(&signer) {
                by_uri.remove(&uri);
            }
        }
    }
}
