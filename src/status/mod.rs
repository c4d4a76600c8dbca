//! The status store: what update and delete (RFC 7592 §2.2, §2.3) leave behind, keyed by the
//! client's `jti` (docs/design.md, "Status records"; that only update and delete write here is
//! a project decision, see docs/conformance.md `status-written-only-by-update-delete`).
//!
//! A record is an *amendment* (the replacement metadata and the registration access token
//! generation) or a *revocation*. Records are JWS signed by the registrar, so a node that can
//! read the store but not the registrar's private keys can still trust them, and a record
//! copied to another client's key is refused (its `jti` is inside). Each record expires with
//! the client_id's `exp`, and never when the client_id has none.
//!
//! Two stores sit behind [`StatusStore`]: an embedded redb file (the default, one node) and
//! Redis (several nodes, with pub/sub so that every node's cache drops a record changed
//! elsewhere). Lookups go through a bounded moka cache, so resolving a client that was never
//! updated or deleted does not reach the store on every request.

mod cache;
pub mod embedded;
pub mod record;
pub mod redis;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::clock::SharedClock;
use crate::keys::{KeySource, RegistrarKeys};
use crate::secret::Secret;

use cache::StatusCache;
pub use record::{Amendment, ClientStatus, UpdateRequest};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or failed; update and delete answer 503.
    #[error("the status store is unavailable: {0}")]
    Unavailable(String),
    /// A record that does not verify: never trusted, reported loudly.
    #[error("a status record failed verification: {0}")]
    Corrupt(String),
    /// The registrar's own fault: a record it cannot sign, or one it signed but cannot read.
    #[error("status record fault: {0}")]
    Internal(String),
}

/// What a conditional write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// The client was deleted: nothing may bring it back.
    AlreadyRevoked,
    /// Another update changed the generation first.
    Conflict,
}

/// The state part of a record that stores compare without parsing the signed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Amended { generation: u64 },
    Revoked,
}

/// A record as stored: its state, the signed record, and when it may be forgotten.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub state: RecordState,
    pub signed: String,
    /// Seconds since the epoch; `None` = kept forever.
    pub expires_at: Option<u64>,
}

/// The operations a status store offers. `write` is conditional: it succeeds only while the
/// stored generation is `expected_generation` (0 = no record) and the client is not revoked, so
/// that a delete can never be undone by a concurrent update, and neither an update nor a delete
/// can be made with a registration access token that an update has already rotated.
pub trait StatusStore: Send + Sync {
    fn load(
        &self,
        jti: &str,
    ) -> impl Future<Output = Result<Option<StoredRecord>, StoreError>> + Send;
    fn write(
        &self,
        jti: &str,
        expected_generation: u64,
        record: &StoredRecord,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Which store, and how it is cached (the `[status_store]` configuration section).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusStoreConfig {
    pub kind: StoreKind,
    /// The redb file of the embedded store, created on first start.
    pub path: PathBuf,
    /// `redis://`, `redis+unix://` or `unix://` URL of the Redis store (no TLS: `rediss://` is
    /// refused; reach a managed Redis through a TLS tunnel).
    pub redis_url: Option<Secret>,
    /// Prefix of Redis keys; the pub/sub channel is this prefix plus `changes`.
    pub redis_prefix: String,
    /// Entries in the cache of status lookups.
    pub cache_entries: u64,
    /// How long a lookup is cached. With Redis this bounds how long a change made on another
    /// node can go unseen if its notification is lost.
    pub cache_ttl_secs: u64,
    /// Timeout of one Redis command, in milliseconds.
    pub redis_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    Embedded,
    Redis,
}

impl Default for StatusStoreConfig {
    fn default() -> Self {
        StatusStoreConfig {
            kind: StoreKind::Embedded,
            path: PathBuf::from("stateless-dcr-status.redb"),
            redis_url: None,
            redis_prefix: "stateless-dcr:".into(),
            cache_entries: 100_000,
            cache_ttl_secs: 5,
            redis_timeout_ms: 2000,
        }
    }
}

/// Either store, chosen by configuration.
pub enum AnyStore {
    Embedded(embedded::EmbeddedStore),
    Redis(redis::RedisStore),
}

impl StatusStore for AnyStore {
    async fn load(&self, jti: &str) -> Result<Option<StoredRecord>, StoreError> {
        match self {
            AnyStore::Embedded(s) => s.load(jti).await,
            AnyStore::Redis(s) => s.load(jti).await,
        }
    }

    async fn write(
        &self,
        jti: &str,
        expected_generation: u64,
        record: &StoredRecord,
    ) -> Result<WriteOutcome, StoreError> {
        match self {
            AnyStore::Embedded(s) => s.write(jti, expected_generation, record).await,
            AnyStore::Redis(s) => s.write(jti, expected_generation, record).await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Embedded(s) => s.ping().await,
            AnyStore::Redis(s) => s.ping().await,
        }
    }
}

/// The store with its cache, and the keys that verify records.
pub struct StatusService {
    store: AnyStore,
    cache: Arc<StatusCache>,
    /// Verifies records: the registrar's public keys are enough.
    keys: KeySource,
    /// Whether this node writes records (the registrar), or only reads them (an edge node).
    writable: bool,
    clock: SharedClock,
}

impl std::fmt::Debug for StatusService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusService").finish_non_exhaustive()
    }
}

impl StatusService {
    /// Open the configured store for the registrar, which writes records (creating the redb
    /// file, or connecting to Redis and subscribing to its change channel).
    pub async fn open(
        config: &StatusStoreConfig,
        keys: impl Into<KeySource>,
        clock: SharedClock,
    ) -> Result<Arc<Self>, StoreError> {
        Self::open_with(config, keys.into(), true, clock).await
    }

    /// Open a store only to read it, with nothing but the registrar's public keys (an edge node
    /// or an OP resolving client_ids).
    pub async fn open_for_reading(
        config: &StatusStoreConfig,
        keys: impl Into<KeySource>,
    ) -> Result<Arc<Self>, StoreError> {
        Self::open_with(config, keys.into(), false, crate::clock::system()).await
    }

    async fn open_with(
        config: &StatusStoreConfig,
        keys: KeySource,
        writable: bool,
        clock: SharedClock,
    ) -> Result<Arc<Self>, StoreError> {
        let cache = StatusCache::new(
            config.cache_entries,
            Duration::from_secs(config.cache_ttl_secs),
        );
        let store = match config.kind {
            StoreKind::Embedded if writable => AnyStore::Embedded(
                embedded::EmbeddedStore::open(&config.path, clock.clone()).await?,
            ),
            StoreKind::Embedded => AnyStore::Embedded(
                embedded::EmbeddedStore::open_read_only(&config.path, clock.clone()).await?,
            ),
            StoreKind::Redis => {
                let url = config
                    .redis_url
                    .as_ref()
                    .map(Secret::expose)
                    .ok_or_else(|| {
                        StoreError::Unavailable("status_store.redis_url is not set".into())
                    })?;
                AnyStore::Redis(
                    redis::RedisStore::connect(
                        url,
                        &config.redis_prefix,
                        Duration::from_millis(config.redis_timeout_ms),
                        cache.clone(),
                    )
                    .await?,
                )
            }
        };
        Ok(Arc::new(StatusService {
            store,
            cache,
            keys,
            writable,
            clock,
        }))
    }

    /// The status of a client, from the cache or the store.
    pub async fn status(&self, jti: &str) -> Result<Arc<ClientStatus>, StoreError> {
        if let Some(hit) = self.cache.get(jti).await {
            crate::metrics::cache("status", true);
            return Ok(hit);
        }
        crate::metrics::cache("status", false);
        let ticket = self.cache.ticket();
        let status = match self.store.load(jti).await? {
            None => ClientStatus::Active,
            Some(stored) => {
                record::verify(&self.keys.verification().verifiers, jti, &stored.signed)?
            }
        };
        let status = Arc::new(status);
        self.cache.fill(ticket, jti, status.clone()).await;
        Ok(status)
    }

    /// Write an amendment or a revocation for `jti`, signed with `keys`, conditional on the
    /// generation the caller authenticated against.
    pub async fn write(
        &self,
        keys: &RegistrarKeys,
        jti: &str,
        expected_generation: u64,
        status: &ClientStatus,
        expires_at: Option<u64>,
    ) -> Result<WriteOutcome, StoreError> {
        let state = match status {
            ClientStatus::Amended(a) => RecordState::Amended {
                generation: a.generation,
            },
            ClientStatus::Revoked => RecordState::Revoked,
            ClientStatus::Active => {
                return Err(StoreError::Unavailable(
                    "refusing to write an empty record".into(),
                ))
            }
        };
        if !self.writable {
            return Err(StoreError::Unavailable(
                "this node only reads the status store".into(),
            ));
        }
        let now = self
            .clock
            .now()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let signed = record::sign(keys.signing_key(), jti, status, now)?;
        let stored = StoredRecord {
            state,
            signed,
            expires_at,
        };
        let outcome = self.store.write(jti, expected_generation, &stored).await;
        // Whatever happened, this node's view of the client must come from the store again.
        self.cache.changed(jti).await;
        outcome
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// Close the store at shutdown (the redb file cleanly; Redis needs nothing).
    pub async fn close(&self) -> Result<(), StoreError> {
        match &self.store {
            AnyStore::Embedded(store) => store.close().await,
            AnyStore::Redis(_) => Ok(()),
        }
    }
}
