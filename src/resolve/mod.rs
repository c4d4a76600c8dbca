//! Resolution: turning a presented client_id into trusted client information, at an OP's
//! authorization and token endpoints or at an edge node.
//!
//! A [`Resolver`] needs only the registrar's public keys (its JWKS) and, where update and delete
//! are used, read access to the status store. Checking a `client_secret` also needs the
//! registrar's `client_secret` derivation keys, and nothing else of the registrar's key set.
//! Client authentication at a token endpoint is in [`authenticate`].

mod authenticate;
pub mod certificate;
pub mod remote;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use authenticate::{AuthError, Credentials};
pub use certificate::{CertificateError, ClientCertificate};
pub use remote::RemoteAmendments;

use crate::client_id::{self, ClientIdClaims, ClientIdError, Provenance};
use crate::clock::{ClockError, SharedClock};
use crate::documents::{DocumentError, MetadataDocuments};
use crate::fetch::Fetcher;
use crate::keys::{KeySource, VerificationKeys};
use crate::metadata::{redirect, AuthMethod, ClientMetadata, GrantType, ResponseType};
use crate::secret::Secret;
use crate::statement::TrustedIssuers;
use crate::status::withdrawal::Registration;
use crate::status::{Amendment, ClientStatus, StatusService, StoreError, WithdrawalStatus};
use crate::status_list::client::{ListError, ListSigner, StatusListClient};
use crate::status_list::{self as tsl, StatusReference};

/// A client_id that verified, with its status record applied: the client as it is now.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct VerifiedClient {
    pub client_id: Arc<str>,
    /// The claims as signed in the client_id: the registration as it was first made.
    pub claims: Arc<ClientIdClaims>,
    /// The latest update, when there was one: it replaces the registration's metadata.
    pub amendment: Option<Arc<Amendment>>,
}

impl VerifiedClient {
    pub fn jti(&self) -> &str {
        &self.claims.jti
    }

    /// The current metadata: the latest amendment's, or the client_id's.
    pub fn metadata(&self) -> &ClientMetadata {
        match &self.amendment {
            Some(a) => &a.metadata,
            None => &self.claims.metadata,
        }
    }

    /// The registration access token generation (0 until the first update).
    pub fn generation(&self) -> u64 {
        self.amendment.as_ref().map_or(0, |a| a.generation)
    }

    /// kid of the client_secret key, when the client has a secret.
    pub fn client_secret_kid(&self) -> Option<&str> {
        match &self.amendment {
            Some(a) => a.client_secret_kid.as_deref(),
            None => self.claims.client_secret_kid.as_deref(),
        }
    }

    /// The sector of a pairwise client (OIDC Core §8.1).
    pub fn sector(&self) -> Option<&str> {
        match &self.amendment {
            Some(a) => a.sector.as_deref(),
            None => self.claims.sector.as_deref(),
        }
    }

    /// The software statement the current metadata came from.
    pub fn provenance(&self) -> Option<&Provenance> {
        match &self.amendment {
            Some(a) => a.provenance.as_ref(),
            None => self.claims.provenance.as_ref(),
        }
    }

    /// Whether `uri` is one of the registered redirect URIs: exact code-point comparison
    /// (OIDC Core §3.1.2.1), except any port for a native client's loopback URI
    /// (RFC 8252 §7.3).
    pub fn redirect_uri_matches(&self, uri: &str) -> bool {
        let metadata = self.metadata();
        metadata
            .redirect_uris
            .iter()
            .any(|registered| redirect::matches(registered, uri, metadata.application_type))
    }

    /// Whether the client registered this response type; token order does not matter
    /// (RFC 6749 §3.1.1).
    pub fn allows_response_type(&self, response_type: &str) -> bool {
        ResponseType::parse(response_type)
            .is_some_and(|wanted| self.metadata().response_types.contains(&wanted))
    }

    pub fn allows_grant_type(&self, grant_type: &str) -> bool {
        GrantType::parse(grant_type).is_some_and(|g| self.metadata().has_grant(g))
    }

    /// Whether the client is a client identifier URL resolved from its metadata document
    /// rather than a client_id this registrar issued.
    pub fn is_metadata_document(&self) -> bool {
        crate::documents::is_document_url(&self.client_id)
    }

    /// A public client: it authenticates with nothing (`token_endpoint_auth_method` `none`).
    pub fn is_public(&self) -> bool {
        self.metadata().token_endpoint_auth_method == AuthMethod::None
    }
}

/// Whether a client_id verified on a cache miss is kept in the cache. Paths whose caller has not
/// been authenticated yet (the configuration endpoint before its token check) pass `No`, so that
/// anyone with a list of client_ids cannot fill the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Remember {
    Yes,
    No,
}

/// Why a client_id does not resolve to a usable client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidClient {
    #[error("{0}")]
    ClientId(#[from] ClientIdError),
    #[error("the client was deleted")]
    Revoked,
    /// Its status record does not verify: fail closed.
    #[error("the client's status record is not trusted")]
    UntrustedRecord,
    /// Its entry in the registrar's status list is not one a usable client has.
    #[error("the registrar's status list marks the client {0}")]
    Listed(&'static str),
    /// The federation authority withdrew the software statement it registered with.
    #[error("its software statement was withdrawn by its issuer (status {0})")]
    StatementWithdrawn(&'static str),
    /// The registrar, asked for the current metadata of an updated client, refused it.
    #[error("the registrar refuses the client")]
    RefusedByRegistrar,
    /// The operator withdrew its software (`stateless-dcr revoke`).
    #[error("its software was withdrawn by the operator ({})", .0.as_str())]
    Withdrawn(WithdrawalStatus),
    /// A client identifier URL whose metadata document is not accepted
    /// (draft-ietf-oauth-client-id-metadata-document).
    #[error("{0}")]
    Document(DocumentError),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error("invalid client: {0}")]
    InvalidClient(InvalidClient),
    /// The status store cannot be reached: fail closed, the client may have been deleted.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The clock cannot tell whether the client_id has expired: fail closed.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// A status list the client's status depends on cannot be read: fail closed, the client
    /// may have been deleted or withdrawn.
    #[error(transparent)]
    StatusList(#[from] ListError),
    /// The client was updated, and its current metadata cannot be obtained.
    #[error("the client was updated and its current metadata cannot be obtained: {0}")]
    Amendment(String),
    /// A client identifier URL's document cannot be checked now (a statement's status list
    /// cannot be read): fail closed, without a verdict.
    #[error("{0}")]
    DocumentUnavailable(String),
}

impl From<InvalidClient> for ResolveError {
    fn from(e: InvalidClient) -> Self {
        ResolveError::InvalidClient(e)
    }
}

/// What a resolver is built from.
pub struct ResolverOptions {
    /// The registrar's `iss`, checked in every client_id.
    pub issuer: String,
    /// The registrar's published keys, and its `client_secret` keys to check secrets and
    /// `client_secret_jwt` assertions.
    pub keys: KeySource,
    /// The status store, where update and delete are used.
    pub status: Option<Arc<StatusService>>,
    /// Fetches a client's `jwks_uri` for `private_key_jwt` (guarded against SSRF).
    pub fetcher: Option<Fetcher>,
    /// Accepted `aud` values of client assertions: the token endpoint URL, the OP's issuer.
    pub audiences: Vec<String>,
    /// Verified client_ids kept in memory...
    pub cache_entries: u64,
    /// ...and the memory they may take, in bytes (estimated by [`client_weight`]).
    pub cache_max_bytes: u64,
    /// The time source of every expiry check (`crate::clock::system()` outside tests).
    pub clock: SharedClock,
    /// Status checks by status list (draft-ietf-oauth-status-list-18).
    pub lists: Option<ListChecks>,
}

/// Status checks made by Token Status List rather than by reading the status store.
pub struct ListChecks {
    /// Fetches, verifies and caches the lists.
    pub client: Arc<StatusListClient>,
    /// Check each client's entry in the registrar's lists: the mode of a node without the
    /// status store, which needs only the registrar's JWKS and its lists.
    pub registrar_lists: bool,
    /// Check the statement a client registered with against its issuer's list; the issuers'
    /// keys verify their lists.
    pub issuers: Option<Arc<TrustedIssuers>>,
    /// Where the current metadata of an updated (AMENDED) client comes from, on a node without
    /// the status store.
    pub amendments: Option<Arc<RemoteAmendments>>,
}

/// Turns client_ids into [`VerifiedClient`]s and authenticates clients.
pub struct Resolver {
    issuer: String,
    keys: KeySource,
    status: Option<Arc<StatusService>>,
    fetcher: Option<Fetcher>,
    audiences: Vec<String>,
    clock: SharedClock,
    /// Verified client_ids without their status, never kept past the token's `exp`.
    verified: moka::sync::Cache<Arc<str>, Arc<VerifiedClient>, foldhash::fast::RandomState>,
    /// Assertion ids seen, until the assertion expires (RFC 7523 §3: single use).
    seen_assertions: moka::sync::Cache<String, u64>,
    /// How many unexpired assertions are remembered before new ones are refused.
    max_seen_assertions: u64,
    lists: Option<ListChecks>,
    /// Client identifier URLs (client ID metadata documents), when accepted.
    documents: Option<MetadataDocuments>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Expire each verified client_id when the token does.
struct UntilExpiry(SharedClock);

impl moka::Expiry<Arc<str>, Arc<VerifiedClient>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _: &Arc<str>,
        client: &Arc<VerifiedClient>,
        _: Instant,
    ) -> Option<Duration> {
        let exp = client.claims.exp?;
        // a clock that cannot tell the time keeps nothing
        let now = self.0.now().unwrap_or(u64::MAX);
        Some(Duration::from_secs(exp.saturating_sub(now)))
    }
}

/// The status of a statement's entry in its issuer's list.
pub async fn statement_status(
    client: &StatusListClient,
    issuers: &TrustedIssuers,
    issuer: &str,
    reference: &StatusReference,
) -> Result<u8, ListError> {
    client
        .status(ListSigner::Issuer(issuers, issuer), reference)
        .await
}

/// A status or withdrawal record that does not verify refuses the client: fail closed.
fn untrusted_record(e: StoreError) -> ResolveError {
    match e {
        StoreError::Corrupt(detail) => {
            tracing::error!(%detail, "a status record failed verification; client refused");
            ResolveError::InvalidClient(InvalidClient::UntrustedRecord)
        }
        other => other.into(),
    }
}

/// What the operator's withdrawals match a client on, for one of its provenances.
pub(crate) fn registration<'a>(
    provenance: Option<&'a Provenance>,
    metadata: &'a ClientMetadata,
    registered_at: u64,
) -> Option<Registration<'a>> {
    let provenance = provenance?;
    Some(Registration {
        issuer: &provenance.iss,
        software_id: metadata.software_id.as_deref(),
        statement_jti: provenance.jti.as_deref(),
        registered_at,
    })
}

/// What a verified client_id costs in memory, roughly: the token, its parsed claims and
/// metadata (measured at about six times the token's length), and the cache's own overhead.
pub fn client_weight(client_id: &str) -> u32 {
    u32::try_from(client_id.len())
        .unwrap_or(u32::MAX)
        .saturating_mul(6)
        .saturating_add(512)
}

impl Resolver {
    pub fn new(options: ResolverOptions) -> Self {
        // the tighter of the two bounds: entries at the weight of a typical client_id, or bytes
        let average = u64::from(client_weight(&"x".repeat(1024)));
        let budget = options
            .cache_max_bytes
            .min(options.cache_entries.saturating_mul(average));
        Resolver {
            verified: moka::sync::Cache::builder()
                .max_capacity(budget)
                .weigher(|id: &Arc<str>, _| client_weight(id))
                .expire_after(UntilExpiry(options.clock.clone()))
                // Keys are client_ids this resolver verified, whose random jti and signature
                // nobody chooses, so a fast seeded hash cannot be steered into collisions; a
                // lookup of any other string inserts nothing.
                .build_with_hasher(foldhash::fast::RandomState::default()),
            seen_assertions: authenticate::replay_cache(options.clock.clone()),
            max_seen_assertions: authenticate::MAX_SEEN_ASSERTIONS,
            issuer: options.issuer,
            keys: options.keys,
            status: options.status,
            fetcher: options.fetcher,
            audiences: options.audiences,
            clock: options.clock,
            lists: options.lists,
            documents: None,
        }
    }

    /// Also resolve client_ids that are https URLs, from their metadata documents.
    pub fn with_metadata_documents(mut self, documents: MetadataDocuments) -> Self {
        self.documents = Some(documents);
        self
    }

    /// Whether client ID metadata documents are accepted (discovery's
    /// `client_id_metadata_document_supported`).
    pub fn accepts_metadata_documents(&self) -> bool {
        self.documents
            .as_ref()
            .is_some_and(|d| d.config().enabled())
    }

    /// Forget every verified client_id (after the registrar's keys changed).
    pub fn clear_cache(&self) {
        self.verified.invalidate_all();
    }

    /// Verify a client_id (signature, kid, `iss`, `exp`), using the cache of verified
    /// client_ids, without the status record.
    pub fn verify(&self, client_id: &str) -> Result<Arc<VerifiedClient>, ResolveError> {
        self.verify_with(&self.keys.verification(), client_id, Remember::Yes)
    }

    /// [`Resolver::verify`] with keys the caller took a snapshot of.
    pub(crate) fn verify_with(
        &self,
        keys: &VerificationKeys,
        client_id: &str,
        remember: Remember,
    ) -> Result<Arc<VerifiedClient>, ResolveError> {
        let now = self.clock.now()?;
        if let Some(hit) = self.verified.get(client_id) {
            // The cache entry expires with the token, but moka may hand it out a moment late.
            if hit.claims.exp.is_none_or(|exp| now < exp) {
                crate::metrics::cache("client_id", true);
                return Ok(hit);
            }
        }
        crate::metrics::cache("client_id", false);
        let claims = client_id::verify(&keys.verifiers, &self.issuer, client_id, now)
            .map_err(InvalidClient::from)?;
        let client_id: Arc<str> = Arc::from(client_id);
        let client = Arc::new(VerifiedClient {
            client_id: client_id.clone(),
            claims: Arc::new(claims),
            amendment: None,
        });
        if remember == Remember::Yes {
            self.verified.insert(client_id, client.clone());
        }
        Ok(client)
    }

    /// Keep a client verified with [`Remember::No`] once its caller has been authenticated.
    pub(crate) fn remember(&self, client: &VerifiedClient) {
        let verified = VerifiedClient {
            amendment: None,
            ..client.clone()
        };
        self.verified
            .insert(client.client_id.clone(), Arc::new(verified));
    }

    /// The client as it is now: verified, and the status record applied. Deleted clients and
    /// client_ids that do not verify are [`ResolveError::InvalidClient`].
    pub async fn resolve(&self, client_id: &str) -> Result<Arc<VerifiedClient>, ResolveError> {
        self.resolve_with(&self.keys.verification(), client_id, Remember::Yes)
            .await
    }

    /// [`Resolver::resolve`] with keys the caller took a snapshot of; with [`Remember::No`] a
    /// client_id that was not cached yet is not cached now.
    pub(crate) async fn resolve_with(
        &self,
        keys: &VerificationKeys,
        client_id: &str,
        remember: Remember,
    ) -> Result<Arc<VerifiedClient>, ResolveError> {
        let result = self.apply_status(keys, client_id, remember).await;
        crate::metrics::resolve(match &result {
            Ok(_) => "valid",
            Err(ResolveError::InvalidClient(InvalidClient::Revoked)) => "revoked",
            Err(ResolveError::InvalidClient(
                InvalidClient::Withdrawn(_) | InvalidClient::StatementWithdrawn(_),
            )) => "withdrawn",
            Err(ResolveError::InvalidClient(_)) => "invalid",
            Err(
                ResolveError::StatusList(_)
                | ResolveError::Amendment(_)
                | ResolveError::DocumentUnavailable(_),
            ) => "status_list_error",
            Err(_) => "store_error",
        });
        result
    }

    async fn apply_status(
        &self,
        keys: &VerificationKeys,
        client_id: &str,
        remember: Remember,
    ) -> Result<Arc<VerifiedClient>, ResolveError> {
        if crate::documents::is_document_url(client_id) {
            return self.resolve_document(client_id).await;
        }
        let client = self.verify_with(keys, client_id, remember)?;
        let client = match &self.status {
            Some(store) => self.apply_record(store, client).await?,
            None => self.apply_registrar_list(client).await?,
        };
        self.check_statement_status(&client).await?;
        Ok(client)
    }

    /// A client identifier URL: its validated document (cached), then what can change without
    /// the document changing: the operator's withdrawals and the vouching statement's status.
    async fn resolve_document(&self, client_id: &str) -> Result<Arc<VerifiedClient>, ResolveError> {
        let documents = self
            .documents
            .as_ref()
            .ok_or(InvalidClient::Document(DocumentError::NotAccepted))?;
        let client = documents.resolve(client_id).await.map_err(|e| match e {
            DocumentError::Unavailable(reason) => ResolveError::DocumentUnavailable(reason),
            other => InvalidClient::Document(other).into(),
        })?;
        if let Some(store) = &self.status {
            self.check_withdrawals(store, &client).await?;
        }
        self.check_statement_status(&client).await?;
        Ok(client)
    }

    /// The client's status record, and the operator's withdrawals: the store is authoritative.
    async fn apply_record(
        &self,
        store: &StatusService,
        client: Arc<VerifiedClient>,
    ) -> Result<Arc<VerifiedClient>, ResolveError> {
        let status = store.status(client.jti()).await.map_err(untrusted_record)?;
        let client = match status.as_ref() {
            ClientStatus::Active => client,
            ClientStatus::Revoked => return Err(InvalidClient::Revoked.into()),
            ClientStatus::Amended(amendment) => Arc::new(VerifiedClient {
                amendment: Some(amendment.clone()),
                ..client.as_ref().clone()
            }),
        };
        self.check_withdrawals(store, &client).await?;
        Ok(client)
    }

    /// The operator's withdrawals (`stateless-dcr revoke`), against the registration as first
    /// made and as it is now.
    async fn check_withdrawals(
        &self,
        store: &StatusService,
        client: &VerifiedClient,
    ) -> Result<(), ResolveError> {
        let withdrawals = store.withdrawal_set().await.map_err(untrusted_record)?;
        if !withdrawals.is_empty() {
            // the registration as first made, and as it is now after updates
            let iat = client.claims.iat;
            let first = registration(
                client.claims.provenance.as_ref(),
                &client.claims.metadata,
                iat,
            );
            let now = registration(client.provenance(), client.metadata(), iat);
            for registration in [first, now].iter().flatten() {
                if let Some(withdrawal) = withdrawals.covering(registration) {
                    return Err(InvalidClient::Withdrawn(withdrawal.status).into());
                }
            }
        }
        Ok(())
    }

    /// Without the store: the client's entry in the registrar's status list, when this
    /// resolver checks lists and the client_id has one.
    async fn apply_registrar_list(
        &self,
        client: Arc<VerifiedClient>,
    ) -> Result<Arc<VerifiedClient>, ResolveError> {
        let Some(lists) = self.lists.as_ref().filter(|l| l.registrar_lists) else {
            return Ok(client);
        };
        let Some(status) = &client.claims.status else {
            // issued without an entry (management other than "full"): it cannot change
            return Ok(client);
        };
        let signer = ListSigner::Registrar(&self.keys);
        match lists.client.status(signer, &status.status_list).await? {
            tsl::VALID => Ok(client),
            tsl::INVALID => Err(InvalidClient::Revoked.into()),
            tsl::AMENDED => {
                let source = lists.amendments.as_ref().ok_or_else(|| {
                    ResolveError::Amendment(
                        "no registrar to ask is configured (registrar_resolve_token)".into(),
                    )
                })?;
                let amendment = source.current(&client).await?;
                Ok(Arc::new(VerifiedClient {
                    amendment: Some(amendment),
                    ..client.as_ref().clone()
                }))
            }
            other => Err(InvalidClient::Listed(tsl::status_name(other)).into()),
        }
    }

    /// The statement the client's current metadata came from, against its issuer's list.
    async fn check_statement_status(&self, client: &VerifiedClient) -> Result<(), ResolveError> {
        let Some(provenance) = client.provenance() else {
            return Ok(());
        };
        let Some(reference) = &provenance.status else {
            return Ok(());
        };
        let Some(issuers) = self
            .lists
            .as_ref()
            .and_then(|l| l.issuers.as_ref().map(|i| (l, i)))
        else {
            // a resolver that cannot check cannot vouch for the client
            return Err(ListError::Keys(format!(
                "the client's software statement has a status list, and this resolver checks no issuer's lists ({})",
                reference.uri
            ))
            .into());
        };
        let (lists, issuers) = issuers;
        match statement_status(&lists.client, issuers, &provenance.iss, reference).await? {
            tsl::VALID => Ok(()),
            other => {
                Err(InvalidClient::StatementWithdrawn(tsl::registered_status_name(other)).into())
            }
        }
    }

    /// The client's current secret, when it has one and this resolver holds the key.
    pub fn client_secret(&self, client: &VerifiedClient) -> Option<Secret> {
        let keys = self.keys.verification();
        let secret_keys = keys.client_secret.as_ref()?;
        client_id::client_secret(secret_keys, client.client_secret_kid()?, client.jti())
    }
}

#[cfg(test)]
pub(crate) mod tests;
