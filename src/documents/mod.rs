//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client_id
//! that is an https URL names a JSON document of the client's metadata, which the resolver
//! fetches and checks with the same rules as a registration. Nothing is stored: the validated
//! document is cached for as long as its `Cache-Control` allows, within configured bounds.
//!
//! - The URL is checked before anything is fetched ([`url::parse`], §3), and the host against
//!   `allowed_hosts` in that mode.
//! - The fetch is the guarded one (`crate::fetch`): https only, special-use addresses refused
//!   (§8.6), no redirects followed (§5), only a 200 counts, at most
//!   `fetch.max_client_metadata_bytes` read (§8.7).
//! - The document's `client_id` must be the URL exactly (§4); it must not hold a
//!   `client_secret` or `client_secret_expires_at`, nor use a shared-secret authentication
//!   method or a MAC algorithm (§4.1), so `token_endpoint_auth_method` must be named.
//! - A `software_statement` in the document (§4.3) is verified like a registration's, and its
//!   claims take precedence (RFC 7591 §2.3); it vouches for the document only when its own
//!   `client_id` claim is the document's URL, so that a statement cannot be copied into
//!   another host's document.
//! - Then the registration validator (`MetadataRules::check_metadata`): redirect URIs, grant
//!   and response types, the issuer's policy, sector and JWK Set documents.

pub mod config;
pub mod url;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use config::{DocumentsConfig, DocumentsMode};

use crate::client_id::ClientIdClaims;
use crate::clock::SharedClock;
use crate::fetch::{DocumentKind, FetchError, Fetcher};
use crate::metadata::ClientMetadata;
use crate::registrar::rules::MetadataRules;
use crate::registrar::RegistrationError;
use crate::resolve::VerifiedClient;

/// Why a client identifier URL does not give a usable client. Messages are safe to show to the
/// OP and the client: they never hold a resolved address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("this server does not accept client ID metadata documents")]
    NotAccepted,
    #[error("client ID metadata documents from {0} are not accepted by this server")]
    HostNotAllowed(String),
    #[error("the client_id URL {0}")]
    Url(String),
    #[error("its client ID metadata document cannot be fetched: {0}")]
    Fetch(FetchError),
    /// The document breaks a rule; `code` is the registration error code the same metadata
    /// would get at `POST /register`.
    #[error("its client ID metadata document is not valid ({code}): {description}")]
    Invalid {
        code: &'static str,
        description: String,
    },
    /// Something the verdict depends on cannot be read now (a statement's status list): no
    /// verdict, and nothing cached.
    #[error("its client ID metadata document cannot be checked now: {0}")]
    Unavailable(String),
}

impl DocumentError {
    fn invalid(code: &'static str, description: impl Into<String>) -> Self {
        DocumentError::Invalid {
            code,
            description: description.into(),
        }
    }
}

impl From<RegistrationError> for DocumentError {
    fn from(e: RegistrationError) -> Self {
        if e.is_server_fault() {
            DocumentError::Unavailable(e.to_string())
        } else {
            DocumentError::invalid(e.code(), e.to_string())
        }
    }
}

/// A validated document or why there is none, with how long it may be reused.
#[derive(Clone)]
struct Cached {
    result: Result<Arc<VerifiedClient>, DocumentError>,
    ttl: Duration,
    weight: u32,
}

struct PerEntryTtl;

impl moka::Expiry<String, Cached> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, value: &Cached, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Resolves client identifier URLs. Built by the registrar (`[client_id_metadata_documents]`).
pub struct MetadataDocuments {
    config: DocumentsConfig,
    rules: Arc<MetadataRules>,
    fetcher: Fetcher,
    clock: SharedClock,
    cache: moka::future::Cache<String, Cached>,
}

impl std::fmt::Debug for MetadataDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataDocuments")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The member names a document must not have (§4.1): no shared secret exists for it.
const FORBIDDEN_MEMBERS: [&str; 2] = ["client_secret", "client_secret_expires_at"];

impl MetadataDocuments {
    pub(crate) fn new(
        config: DocumentsConfig,
        rules: Arc<MetadataRules>,
        fetcher: Fetcher,
        clock: SharedClock,
    ) -> Self {
        let cache = moka::future::Cache::builder()
            .name("client-metadata-documents")
            .max_capacity(config.cache_max_bytes)
            .weigher(|_: &String, value: &Cached| value.weight)
            .expire_after(PerEntryTtl)
            .build();
        MetadataDocuments {
            config,
            rules,
            fetcher,
            clock,
            cache,
        }
    }

    pub fn config(&self) -> &DocumentsConfig {
        &self.config
    }

    /// The client a client identifier URL names. Concurrent calls for one URL share one
    /// fetch; the outcome is reused for its cache time (a failure for `failure_cache_secs`).
    pub async fn resolve(&self, client_id: &str) -> Result<Arc<VerifiedClient>, DocumentError> {
        if !self.config.enabled() {
            return Err(DocumentError::NotAccepted);
        }
        let url = url::parse(client_id).map_err(DocumentError::Url)?;
        if self.config.mode == DocumentsMode::AllowedHosts {
            let host = url.host_str().unwrap_or_default();
            if !url::host_allowed(host, &self.config.allowed_hosts) {
                return Err(DocumentError::HostNotAllowed(host.to_owned()));
            }
        }
        let loaded = std::sync::atomic::AtomicBool::new(false);
        let cached = self
            .cache
            .get_with(client_id.to_owned(), async {
                loaded.store(true, std::sync::atomic::Ordering::Relaxed);
                self.load(&url).await
            })
            .await;
        let fetched_now = loaded.load(std::sync::atomic::Ordering::Relaxed);
        crate::metrics::cache("client_metadata", !fetched_now);
        if fetched_now && cached.result.is_err() {
            crate::metrics::METRICS
                .fetch_errors
                .with_label_values(&["client_metadata"])
                .inc();
        }
        cached.result
    }

    /// Fetch and validate, and decide how long the outcome is kept.
    async fn load(&self, url: &::url::Url) -> Cached {
        let overhead = u32::try_from(url.as_str().len())
            .unwrap_or(u32::MAX)
            .saturating_add(256);
        let failure = |error: DocumentError| {
            let ttl = match error {
                // says nothing about the document: ask again at once
                DocumentError::Unavailable(_) | DocumentError::Fetch(FetchError::Busy) => {
                    Duration::ZERO
                }
                _ => Duration::from_secs(self.config.failure_cache_secs),
            };
            tracing::info!(client_id = %url, error = %error, "client ID metadata document refused");
            Cached {
                result: Err(error),
                ttl,
                weight: overhead,
            }
        };
        // the address checks of every fetch, IP literals included (§8.6)
        let url = match self.fetcher.parse_url(url.as_str()) {
            Ok(url) => url,
            Err(e) => return failure(DocumentError::Fetch(e)),
        };
        let fetched = match self
            .fetcher
            .fetch_uncached(&url, DocumentKind::ClientMetadata)
            .await
        {
            Ok(fetched) => fetched,
            Err(e) => return failure(DocumentError::Fetch(e)),
        };
        let now = match self.clock.now() {
            Ok(now) => now,
            Err(e) => return failure(DocumentError::Unavailable(e.to_string())),
        };
        match self.validate(url.as_str(), &fetched.value, now).await {
            Ok(client) => {
                let config = &self.config;
                let mut secs = fetched
                    .max_age
                    .unwrap_or(config.default_cache_secs)
                    .clamp(config.min_cache_secs, config.max_cache_secs);
                // never past the vouching statement's exp
                if let Some(exp) = client.claims.exp {
                    secs = secs.min(exp.saturating_sub(now));
                }
                let size = u32::try_from(fetched.size).unwrap_or(u32::MAX);
                Cached {
                    result: Ok(Arc::new(client)),
                    ttl: Duration::from_secs(secs),
                    weight: overhead.saturating_add(size.saturating_mul(4)),
                }
            }
            Err(e) => failure(e),
        }
    }

    /// The document's rules (§4, §4.1, §4.3), then the registration validator.
    pub(crate) async fn validate(
        &self,
        client_id: &str,
        document: &Value,
        now: u64,
    ) -> Result<VerifiedClient, DocumentError> {
        let document = document.as_object().ok_or_else(|| {
            DocumentError::invalid(
                "invalid_client_metadata",
                "the document is not a JSON object",
            )
        })?;
        match document.get("client_id") {
            Some(Value::String(id)) if id == client_id => {}
            Some(Value::String(_)) => {
                return Err(DocumentError::invalid(
                    "invalid_client_metadata",
                    "its client_id is not the URL it was fetched from (compared exactly)",
                ))
            }
            _ => {
                return Err(DocumentError::invalid(
                    "invalid_client_metadata",
                    "client_id is required, as a string equal to the document's URL",
                ))
            }
        }
        if let Some(name) = FORBIDDEN_MEMBERS
            .iter()
            .find(|name| document.contains_key(**name))
        {
            return Err(DocumentError::invalid(
                "invalid_client_metadata",
                format!("{name} must not appear in a client ID metadata document"),
            ));
        }

        let statement = self.rules.statement(document, now).await?;
        if let Some(statement) = &statement {
            if statement.metadata.get("client_id").and_then(Value::as_str) != Some(client_id) {
                return Err(DocumentError::invalid(
                    "unapproved_software_statement",
                    "the software statement does not name this document: its client_id claim \
                     must be the document's URL",
                ));
            }
        } else if self.config.require_software_statement {
            return Err(DocumentError::invalid(
                "unapproved_software_statement",
                "this server accepts only documents that carry a software statement from a \
                 trusted issuer",
            ));
        }
        let statement = statement.as_deref();

        self.rules.check_body(document)?;
        let effective = crate::statement::merge(document, statement.map(|s| &s.metadata));
        if effective
            .get("token_endpoint_auth_method")
            .is_none_or(Value::is_null)
        {
            // The RFC 7591 §2 default, client_secret_basic, is a shared secret (§4.1).
            return Err(DocumentError::invalid(
                "invalid_client_metadata",
                "token_endpoint_auth_method is required: the default, client_secret_basic, \
                 needs a shared secret, which a document client cannot have (use none or \
                 private_key_jwt)",
            ));
        }
        let (metadata, sector) = self
            .rules
            .check_metadata(&effective, statement.map(|s| s.issuer.as_str()))
            .await?;
        self.rules.check_profile(statement, &metadata, document)?;
        refuse_shared_secrets(&metadata)?;
        Ok(VerifiedClient {
            client_id: Arc::from(client_id),
            claims: Arc::new(ClientIdClaims {
                // the document speaks for itself
                iss: client_id.to_owned(),
                jti: document_jti(client_id),
                iat: now,
                exp: statement.and_then(|s| s.exp),
                client_secret_kid: None,
                access_token_kid: None,
                provenance: statement.map(crate::registrar::provenance_of),
                sector,
                status: None,
                metadata,
            }),
            amendment: None,
        })
    }
}

/// §4.1: nothing that needs a shared secret, which a document client cannot be given.
fn refuse_shared_secrets(metadata: &ClientMetadata) -> Result<(), DocumentError> {
    if metadata.token_endpoint_auth_method.uses_secret() {
        return Err(DocumentError::invalid(
            "invalid_client_metadata",
            format!(
                "token_endpoint_auth_method {} needs a shared secret, which a document client \
                 cannot have",
                metadata.token_endpoint_auth_method.as_str()
            ),
        ));
    }
    if metadata.uses_symmetric_algorithm() {
        return Err(DocumentError::invalid(
            "invalid_client_metadata",
            "a MAC or symmetric encryption algorithm needs a shared secret, which a document \
             client cannot have",
        ));
    }
    Ok(())
}

/// The identifier of a document client where one is needed (replay caches, logs): the
/// base64url SHA-256 of its URL, stable across nodes.
pub fn document_jti(client_id: &str) -> String {
    crate::jose::base64url(&crate::jose::sha256(client_id.as_bytes()))
}

/// A client_id that this module answers for rather than the client_id verifier.
pub fn is_document_url(client_id: &str) -> bool {
    url::is_document_url(client_id)
}
