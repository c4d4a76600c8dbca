//! The one guarded HTTP client for every outbound document fetch: a client's
//! `sector_identifier_uri` (OIDC DCR §5), a client's `jwks_uri` (OIDC DCR §2, RFC 7591 §2) and a
//! trusted issuer's `jwks_uri` ([`IssuerJwksSource`]).
//!
//! These URLs come from requests, so every fetch is a server-side request forgery risk. The
//! controls (`docs/design.md`, "Outbound fetches"):
//! - https only, refused before any connection (OIDC DCR §2 and §5 require https for both URLs);
//! - a connect timeout and a total timeout that also covers reading the body;
//! - redirects are not followed: a 3xx is an error, so a public host cannot bounce the fetch to
//!   an internal one;
//! - no proxy, so the address check below cannot be bypassed through `HTTPS_PROXY`;
//! - a size cap per [`DocumentKind`], checked on `Content-Length` and again while reading;
//! - hosts are resolved by our own resolver, which drops loopback, private, link-local and other
//!   special-use addresses ([`non_public_reason`]); reqwest connects only to the addresses it
//!   returns, so there is no gap between the check and the connection (DNS rebinding). IP-literal
//!   URLs never reach a resolver and are checked before the request is sent.
//!
//! Concurrent fetches of one URL share one request, and outcomes are cached briefly, failures
//! included, so a flood of registrations naming one slow or dead URL costs one fetch.

mod config;
mod guard;
mod http_cache;
mod issuer;

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use reqwest::header::ACCEPT;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Semaphore;
use url::{Host, Url};

pub use config::FetchConfig;
pub use guard::non_public_reason;
pub(crate) use http_cache::cache_control_max_age;
pub use issuer::{IssuerJwksSource, IssuerKeys};

use crate::jwks::PublicJwkSet;

/// What a fetched document is for; it selects the size cap and how long the document is cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// A client's `sector_identifier_uri`: a JSON array of redirect URIs (OIDC DCR §5).
    SectorIdentifier,
    /// A client's `jwks_uri`: its public JWK Set (OIDC DCR §2, RFC 7591 §2).
    ClientJwks,
    /// A trusted federation authority's `jwks_uri`, used to verify software statements. Use
    /// [`IssuerJwksSource`], which honours `Cache-Control` and key rotation; through
    /// [`Fetcher::fetch_json`] such a set is cached for `issuer_jwks_min_cache_secs`.
    IssuerJwks,
    /// A client ID metadata document (draft-ietf-oauth-client-id-metadata-document §4): the
    /// client's metadata at its client_id URL. Fetched with [`Fetcher::fetch_uncached`] and
    /// cached, once validated, by `crate::documents`.
    ClientMetadata,
    /// A Status List Token (draft-ietf-oauth-status-list-18 §8.1): a JWT, not JSON. Fetched
    /// with [`Fetcher::fetch_status_list`], cached by `crate::status_list::client`.
    StatusList,
}

/// Why a fetch failed. Messages are ASCII and safe to show to the client that named the URL:
/// they give the reason, never a resolved address or an internal error text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the URL is not a valid absolute URL")]
    InvalidUrl,
    #[error("the URL must use the https scheme")]
    NotHttps,
    /// The host is, or resolves only to, a non-public address; no connection was attempted.
    #[error("refused: {0}")]
    Refused(&'static str),
    #[error("the server did not answer in time")]
    Timeout,
    #[error("{0}")]
    Connect(&'static str),
    /// A 3xx answer: redirects are not followed.
    #[error("the server answered with a redirect (HTTP {0}), which is not followed")]
    Redirect(u16),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    /// The document is larger than the cap for its kind (the cap in bytes).
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the document is not valid JSON")]
    NotJson,
    /// Valid JSON of the wrong form for its kind; the text says what was expected.
    #[error("{0}")]
    WrongShape(String),
    /// The fetcher is overloaded: too many fetches in flight for the whole timeout.
    #[error("too many outbound fetches in progress; try again later")]
    Busy,
    /// The fetcher could not be built from its configuration (start-up only).
    #[error("outbound fetcher configuration: {0}")]
    Config(String),
}

/// The guarded fetcher. Cheap to clone: clones share the client, the cache and the limits.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    config: FetchConfig,
    cache: Cache<(DocumentKind, String), Cached>,
    slots: Semaphore,
}

/// A cached outcome. moka's `try_get_with` does not cache errors, so the `Result` itself is
/// the cached value and every entry carries its own lifetime.
#[derive(Clone)]
struct Cached {
    result: Result<Arc<Value>, FetchError>,
    ttl: Duration,
    weight: u32,
}

struct PerEntryTtl;

impl moka::Expiry<(DocumentKind, String), Cached> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &(DocumentKind, String),
        value: &Cached,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// A document as fetched, before caching.
pub(crate) struct Fetched {
    pub(crate) value: Value,
    /// `Cache-Control: max-age` of the response, if any (`no-store`/`no-cache` count as 0).
    pub(crate) max_age: Option<u64>,
    /// Size of the body in bytes.
    pub(crate) size: usize,
}

impl Fetcher {
    /// Build the fetcher. Fails only on a bad configuration (an unreadable or invalid
    /// `extra_root_ca_file`, a zero timeout or cap).
    pub fn new(config: FetchConfig) -> Result<Fetcher, FetchError> {
        if config.connect_timeout_ms == 0 || config.total_timeout_ms == 0 {
            return Err(FetchError::Config(
                "timeouts must be greater than zero".into(),
            ));
        }
        if config.max_concurrent_fetches == 0 {
            return Err(FetchError::Config(
                "max_concurrent_fetches must be greater than zero".into(),
            ));
        }
        if config.status_list_min_cache_secs == 0
            || config.status_list_min_cache_secs > config.status_list_max_cache_secs
        {
            return Err(FetchError::Config(
                "status_list_min_cache_secs must be at least 1 and not exceed status_list_max_cache_secs"
                    .into(),
            ));
        }
        if config.max_status_list_bytes < 1024 || config.max_status_list_decompressed_bytes < 1024 {
            return Err(FetchError::Config(
                "max_status_list_bytes and max_status_list_decompressed_bytes must be at least 1024"
                    .into(),
            ));
        }
        if config.issuer_jwks_min_cache_secs > config.issuer_jwks_max_cache_secs {
            return Err(FetchError::Config(
                "issuer_jwks_min_cache_secs must not exceed issuer_jwks_max_cache_secs".into(),
            ));
        }
        if config.allow_private_addresses {
            tracing::warn!(
                "fetch.allow_private_addresses is ON: outbound fetches may reach loopback and \
                 private networks (SSRF guard disabled). This is for tests only."
            );
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .referer(false)
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .timeout(Duration::from_millis(config.total_timeout_ms))
            .user_agent(concat!("stateless-dcr/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(guard::GuardedResolver::new(
                config.allow_private_addresses,
            )));
        if let Some(path) = &config.extra_root_ca_file {
            tracing::warn!(
                file = %path.display(),
                "fetch.extra_root_ca_file is set: outbound fetches trust an extra CA. This is \
                 for tests only."
            );
            let pem = std::fs::read(path).map_err(|e| {
                FetchError::Config(format!("extra_root_ca_file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                FetchError::Config(format!("extra_root_ca_file {}: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(FetchError::Config(format!(
                    "extra_root_ca_file {}: no certificate found",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| FetchError::Config(format!("cannot build the HTTP client: {e}")))?;
        let cache = Cache::builder()
            .name("outbound-documents")
            .max_capacity(config.cache_max_bytes)
            .weigher(|_key, value: &Cached| value.weight)
            .expire_after(PerEntryTtl)
            .build();
        let slots = Semaphore::new(config.max_concurrent_fetches);
        Ok(Fetcher {
            inner: Arc::new(Inner {
                client,
                config,
                cache,
                slots,
            }),
        })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.inner.config
    }

    /// Fetch a JSON document through the cache: concurrent calls for the same URL and kind share
    /// one request, and the outcome (success or failure) is reused for the kind's cache period.
    pub async fn fetch_json(
        &self,
        url: &str,
        kind: DocumentKind,
    ) -> Result<Arc<Value>, FetchError> {
        let url = check_url(url, self.inner.config.allow_private_addresses)?;
        let key = (kind, url.as_str().to_owned());
        let this = self.clone();
        let loaded = std::sync::atomic::AtomicBool::new(false);
        let cached = self
            .inner
            .cache
            .get_with(key, async {
                loaded.store(true, std::sync::atomic::Ordering::Relaxed);
                let result = this.fetch_uncached(&url, kind).await;
                this.to_cached(result, kind, url.as_str().len())
            })
            .await;
        let fetched_now = loaded.load(std::sync::atomic::Ordering::Relaxed);
        crate::metrics::cache("fetch", !fetched_now);
        if fetched_now && cached.result.is_err() {
            let kind_name = match kind {
                DocumentKind::SectorIdentifier => "sector_identifier",
                DocumentKind::ClientJwks => "client_jwks",
                DocumentKind::IssuerJwks => "issuer_jwks",
                DocumentKind::StatusList => "status_list",
                DocumentKind::ClientMetadata => "client_metadata",
            };
            crate::metrics::METRICS
                .fetch_errors
                .with_label_values(&[kind_name])
                .inc();
        }
        cached.result
    }

    /// The redirect URIs listed by a `sector_identifier_uri` document. OIDC DCR §5: the URL
    /// must be https and serve a JSON array of redirect URI strings. Each failure is distinct:
    /// not fetchable (the transport variants), [`FetchError::NotJson`], or
    /// [`FetchError::WrongShape`] for anything but an array of strings (conformance:
    /// sector-uri-unusable-is-metadata-error).
    pub async fn sector_redirect_uris(&self, sector_uri: &str) -> Result<Vec<String>, FetchError> {
        let doc = self
            .fetch_json(sector_uri, DocumentKind::SectorIdentifier)
            .await?;
        sector_redirect_uris(&doc)
    }

    /// Fetch a JWK Set and check its form: a set of public keys (OIDC DCR §2: no private or
    /// symmetric key material, [`PublicJwkSet`]); for [`DocumentKind::IssuerJwks`] also at
    /// least one usable signature verification key.
    pub async fn jwks(&self, url: &str, kind: DocumentKind) -> Result<Arc<Value>, FetchError> {
        let doc = self.fetch_json(url, kind).await?;
        check_jwks_for(&doc, kind)?;
        Ok(doc)
    }

    /// One fetch, bypassing the cache (used by [`IssuerJwksSource`], which keeps its own keys).
    pub(crate) async fn fetch_uncached(
        &self,
        url: &Url,
        kind: DocumentKind,
    ) -> Result<Fetched, FetchError> {
        let result = self.fetch_once(url, kind).await;
        if let Err(err) = &result {
            tracing::debug!(url = %url, ?kind, error = %err, "outbound fetch failed");
        }
        result
    }

    pub(crate) fn parse_url(&self, url: &str) -> Result<Url, FetchError> {
        check_url(url, self.inner.config.allow_private_addresses)
    }

    async fn fetch_once(&self, url: &Url, kind: DocumentKind) -> Result<Fetched, FetchError> {
        let (body, max_age) = self.fetch_body(url, kind, "application/json").await?;
        // serde_json's recursion limit (128) bounds nesting; the size cap bounds the rest.
        let value = serde_json::from_slice(&body).map_err(|_| FetchError::NotJson)?;
        Ok(Fetched {
            value,
            max_age,
            size: body.len(),
        })
    }

    /// A Status List Token (draft-ietf-oauth-status-list-18 §8.1), with every guard of the
    /// other fetches, capped at `max_status_list_bytes`. Not cached here.
    pub async fn fetch_status_list(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let url = self.parse_url(url)?;
        let result = self
            .fetch_body(
                &url,
                DocumentKind::StatusList,
                crate::status_list::MEDIA_TYPE,
            )
            .await;
        if let Err(err) = &result {
            tracing::debug!(url = %url, error = %err, "status list fetch failed");
        }
        result.map(|(body, _)| body)
    }

    /// One GET: a slot, the request, a 200, a body within the kind's cap.
    async fn fetch_body(
        &self,
        url: &Url,
        kind: DocumentKind,
        accept: &'static str,
    ) -> Result<(Vec<u8>, Option<u64>), FetchError> {
        let limit = self.limit(kind);
        let total = Duration::from_millis(self.inner.config.total_timeout_ms);
        // Waiting for a slot is bounded by the same total timeout, so an overloaded fetcher
        // answers Busy instead of queueing without bound.
        let _slot = tokio::time::timeout(total, self.inner.slots.acquire())
            .await
            .map_err(|_| FetchError::Busy)?
            .map_err(|_| FetchError::Busy)?;
        let response = self
            .inner
            .client
            .get(url.clone())
            .header(ACCEPT, accept)
            .send()
            .await
            .map_err(|e| transport_error(&e, url))?;
        let max_age = cache_control_max_age(response.headers());
        let body = read_capped(response, limit, url).await?;
        Ok((body, max_age))
    }

    fn to_cached(
        &self,
        result: Result<Fetched, FetchError>,
        kind: DocumentKind,
        key_len: usize,
    ) -> Cached {
        let config = &self.inner.config;
        let overhead = u32::try_from(key_len)
            .unwrap_or(u32::MAX)
            .saturating_add(64);
        match result {
            Ok(fetched) => {
                let ttl = match kind {
                    DocumentKind::SectorIdentifier => config.sector_identifier_cache_secs,
                    DocumentKind::ClientJwks => config.client_jwks_cache_secs,
                    DocumentKind::IssuerJwks => config.issuer_jwks_min_cache_secs,
                    DocumentKind::StatusList => config.status_list_min_cache_secs,
                    // validated and cached by crate::documents, never through fetch_json
                    DocumentKind::ClientMetadata => 0,
                };
                // The body size stands in for the parsed value's memory.
                let size = u32::try_from(fetched.size).unwrap_or(u32::MAX);
                Cached {
                    result: Ok(Arc::new(fetched.value)),
                    ttl: Duration::from_secs(ttl),
                    weight: overhead.saturating_add(size),
                }
            }
            Err(err) => {
                // Busy says nothing about the URL: expire at once so the next caller retries.
                let ttl = match err {
                    FetchError::Busy => Duration::ZERO,
                    _ => Duration::from_secs(config.failure_cache_secs),
                };
                Cached {
                    result: Err(err),
                    ttl,
                    weight: overhead,
                }
            }
        }
    }

    fn limit(&self, kind: DocumentKind) -> usize {
        let config = &self.inner.config;
        match kind {
            DocumentKind::SectorIdentifier => config.max_sector_identifier_bytes,
            DocumentKind::ClientJwks => config.max_client_jwks_bytes,
            DocumentKind::IssuerJwks => config.max_issuer_jwks_bytes,
            DocumentKind::StatusList => config.max_status_list_bytes,
            DocumentKind::ClientMetadata => config.max_client_metadata_bytes,
        }
    }
}

/// The body of a 200 answer, at most `limit` bytes: a redirect or any other status is an
/// error, and the body is read incrementally so that one without `Content-Length` (chunked)
/// cannot grow past the cap in memory.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
    url: &Url,
) -> Result<Vec<u8>, FetchError> {
    let status = response.status();
    if status.is_redirection() {
        return Err(FetchError::Redirect(status.as_u16()));
    }
    if status != StatusCode::OK {
        return Err(FetchError::Status(status.as_u16()));
    }
    if let Some(length) = response.content_length() {
        if length > limit as u64 {
            return Err(FetchError::TooLarge(limit));
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(&e, url))?
    {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(FetchError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// OIDC DCR §5: every registered redirect URI must be listed in the `sector_identifier_uri`
/// document. Membership is exact code-point equality (OIDC DCR §6): no
/// normalisation of case, trailing slashes or percent-encoding. The error names the first
/// redirect URI that is missing (the caller answers `invalid_redirect_uri`).
pub fn check_sector(redirect_uris: &[String], sector_doc: &[String]) -> Result<(), String> {
    match redirect_uris
        .iter()
        .find(|uri| !sector_doc.iter().any(|listed| listed == *uri))
    {
        Some(missing) => Err(format!(
            "redirect_uri {missing} is not listed in the sector_identifier_uri document"
        )),
        None => Ok(()),
    }
}

/// The redirect URIs a `sector_identifier_uri` document lists: a JSON array of strings
/// (OIDC DCR §5); anything else is [`FetchError::WrongShape`].
pub fn sector_redirect_uris(doc: &Value) -> Result<Vec<String>, FetchError> {
    let entries = doc.as_array().ok_or_else(|| {
        FetchError::WrongShape(
            "the sector_identifier_uri document is not a JSON array of redirect URIs".into(),
        )
    })?;
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            entry.as_str().map(str::to_owned).ok_or_else(|| {
                FetchError::WrongShape(format!(
                    "entry {index} of the sector_identifier_uri document is not a string"
                ))
            })
        })
        .collect()
}

/// A fetched JWK Set must be a set of public keys ([`PublicJwkSet::parse`]); an issuer's must
/// also hold a usable signature verification key.
fn check_jwks_for(doc: &Value, kind: DocumentKind) -> Result<(), FetchError> {
    let set = PublicJwkSet::parse(doc).map_err(|e| FetchError::WrongShape(e.to_string()))?;
    if kind == DocumentKind::IssuerJwks {
        crate::keys::VerifierSet::from_set(&set)
            .map_err(|e| FetchError::WrongShape(e.to_string()))?;
    }
    Ok(())
}

/// Parse and check a URL before anything is sent: https only, and an IP-literal host must be
/// public (IP literals never reach the guarded resolver).
fn check_url(url: &str, allow_private: bool) -> Result<Url, FetchError> {
    let url = Url::parse(url).map_err(|_| FetchError::InvalidUrl)?;
    if url.scheme() != "https" {
        return Err(FetchError::NotHttps);
    }
    let ip = match url.host() {
        None => return Err(FetchError::InvalidUrl),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
    };
    if let Some(ip) = ip {
        if !allow_private {
            if let Some(reason) = non_public_reason(ip) {
                return Err(FetchError::Refused(reason));
            }
        }
    }
    Ok(url)
}

/// Map a reqwest error to a client-safe reason; the full error goes to the debug log only.
pub(crate) fn transport_error(err: &reqwest::Error, url: &Url) -> FetchError {
    tracing::debug!(url = %url, error = ?err, "outbound fetch transport error");
    if let Some(guard_err) = guard::find_guard_error(err) {
        return guard_err;
    }
    if err.is_timeout() {
        FetchError::Timeout
    } else if err.is_connect() {
        FetchError::Connect("could not connect to the server (connection or TLS failure)")
    } else if err.is_body() || err.is_decode() {
        FetchError::Connect("the connection failed while reading the document")
    } else {
        FetchError::Connect("the request failed")
    }
}

#[cfg(test)]
mod tests;
