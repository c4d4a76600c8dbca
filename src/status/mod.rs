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

//!
//! The same stores keep the registrar's Token Status Lists (`crate::status_list`): the index
//! blocks handed out to nodes, and the byte array of each list, changed in the same transaction
//! (redb) or script (Redis) as the record whose status it mirrors; and the operator's
//! withdrawals ([`withdrawal`]).

mod cache;
pub mod embedded;
pub mod record;
pub mod redis;
mod token_uses;
pub mod withdrawal;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Deserialize;

use crate::clock::SharedClock;
use crate::keys::{KeySource, RegistrarKeys};
use crate::secret::Secret;

use cache::StatusCache;
pub use record::{Amendment, ClientStatus, UpdateRequest};
pub use token_uses::TokenUse;
pub use withdrawal::{Withdrawal, WithdrawalSet, WithdrawalStatus};

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

/// A status list entry written together with a record: the registrar's lists have two bits
/// per entry (`crate::status_list::REGISTRAR_BITS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryChange {
    pub list: u64,
    pub idx: u64,
    pub value: u8,
}

/// Consecutive indexes `[start, end)` of one list, handed to one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexBlock {
    pub list: u64,
    pub start: u64,
    pub end: u64,
}

/// A list as stored: its number of entries, fixed when the list was started, and its bytes up
/// to the last one ever set (the rest are VALID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListContent {
    pub capacity: u64,
    pub bytes: Vec<u8>,
}

/// What storing a withdrawal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Written,
    /// A permanent (INVALID) withdrawal of the same target exists; neither a suspension nor one
    /// covering fewer clients can replace it.
    Permanent,
}

/// What lifting a withdrawal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiftOutcome {
    Lifted,
    NotFound,
    /// INVALID withdrawals are permanent.
    Permanent,
}

/// The operations a status store offers. `write` is conditional: it succeeds only while the
/// stored generation is `expected_generation` (0 = no record) and the client is not revoked, so
/// that a delete can never be undone by a concurrent update, and neither an update nor a delete
/// can be made with a registration access token that an update has already rotated. The status
/// list entry of the client changes with the record or not at all.
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
        entry: Option<EntryChange>,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// `count` fresh indexes of the current list, or of a new list of `capacity` entries when the
    /// current one cannot hold them or is below `first_list`; never the same index twice, across
    /// restarts and nodes.
    fn allocate_indexes(
        &self,
        capacity: u64,
        count: u64,
        first_list: u64,
    ) -> impl Future<Output = Result<IndexBlock, StoreError>> + Send;
    /// The list `list`, if it was ever started.
    fn list_content(
        &self,
        list: u64,
    ) -> impl Future<Output = Result<Option<ListContent>, StoreError>> + Send;
    /// The ids of the lists started so far, in ascending order (ids below
    /// `status_lists.first_list` may be missing: they were never started).
    fn started_lists(&self) -> impl Future<Output = Result<Vec<u64>, StoreError>> + Send;
    /// Every signed withdrawal record.
    fn withdrawals(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// `covers_before`: the withdrawal's `registered_before`, `u64::MAX` without one. A
    /// permanent withdrawal is never replaced by a suspension, nor by one covering less.
    fn put_withdrawal(
        &self,
        id: &str,
        status: WithdrawalStatus,
        covers_before: u64,
        signed: &str,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;
    fn lift_withdrawal(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<LiftOutcome, StoreError>> + Send;
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

/// Call the same method on whichever store it is.
macro_rules! either {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            AnyStore::Embedded($s) => $call.await,
            AnyStore::Redis($s) => $call.await,
        }
    };
}

impl StatusStore for AnyStore {
    async fn load(&self, jti: &str) -> Result<Option<StoredRecord>, StoreError> {
        either!(self, s => s.load(jti))
    }

    async fn write(
        &self,
        jti: &str,
        expected_generation: u64,
        record: &StoredRecord,
        entry: Option<EntryChange>,
    ) -> Result<WriteOutcome, StoreError> {
        either!(self, s => s.write(jti, expected_generation, record, entry))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        either!(self, s => s.ping())
    }

    async fn allocate_indexes(
        &self,
        capacity: u64,
        count: u64,
        first_list: u64,
    ) -> Result<IndexBlock, StoreError> {
        either!(self, s => s.allocate_indexes(capacity, count, first_list))
    }

    async fn list_content(&self, list: u64) -> Result<Option<ListContent>, StoreError> {
        either!(self, s => s.list_content(list))
    }

    async fn started_lists(&self) -> Result<Vec<u64>, StoreError> {
        either!(self, s => s.started_lists())
    }

    async fn withdrawals(&self) -> Result<Vec<String>, StoreError> {
        either!(self, s => s.withdrawals())
    }

    async fn put_withdrawal(
        &self,
        id: &str,
        status: WithdrawalStatus,
        covers_before: u64,
        signed: &str,
    ) -> Result<PutOutcome, StoreError> {
        either!(self, s => s.put_withdrawal(id, status, covers_before, signed))
    }

    async fn lift_withdrawal(&self, id: &str) -> Result<LiftOutcome, StoreError> {
        either!(self, s => s.lift_withdrawal(id))
    }
}

/// The withdrawals as last read from the store, with the change counter they were read at.
struct WithdrawalSnapshot {
    set: Arc<WithdrawalSet>,
    epoch: u64,
    loaded_at: Instant,
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
    /// The withdrawals in force, re-read after a change (this node's, or one announced by
    /// Redis) and at least every `cache_ttl_secs`.
    withdrawals: ArcSwap<Option<WithdrawalSnapshot>>,
    withdrawals_reload: tokio::sync::Mutex<()>,
    cache_ttl: Duration,
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
            withdrawals: ArcSwap::from_pointee(None),
            withdrawals_reload: tokio::sync::Mutex::new(()),
            cache_ttl: Duration::from_secs(config.cache_ttl_secs.max(1)),
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
    /// generation the caller authenticated against, with the client's status list entry.
    pub async fn write(
        &self,
        keys: &RegistrarKeys,
        jti: &str,
        expected_generation: u64,
        status: &ClientStatus,
        expires_at: Option<u64>,
        entry: Option<EntryChange>,
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
        self.require_writable()?;
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
        let outcome = self
            .store
            .write(jti, expected_generation, &stored, entry)
            .await;
        // Whatever happened, this node's view of the client (and of its list) must come from
        // the store again.
        if entry.is_some() {
            self.cache.list_changed();
        }
        self.cache.changed(jti).await;
        outcome
    }

    fn require_writable(&self) -> Result<(), StoreError> {
        if self.writable {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "this node only reads the status store".into(),
            ))
        }
    }

    /// `count` fresh status list indexes (see [`StatusStore::allocate_indexes`]).
    pub async fn allocate_indexes(
        &self,
        capacity: u64,
        count: u64,
        first_list: u64,
    ) -> Result<IndexBlock, StoreError> {
        self.require_writable()?;
        self.store
            .allocate_indexes(capacity, count, first_list)
            .await
    }

    pub async fn list_content(&self, list: u64) -> Result<Option<ListContent>, StoreError> {
        self.store.list_content(list).await
    }

    pub async fn started_lists(&self) -> Result<Vec<u64>, StoreError> {
        self.store.started_lists().await
    }

    /// A counter that moves whenever an entry of any list may have changed, on this node or
    /// (with Redis) another one: a signed list older than a change is signed again.
    pub fn list_changes(&self) -> u64 {
        self.cache.list_changes()
    }

    /// The withdrawals in force. Cheap when nothing changed: one atomic load and a clock read.
    /// A record that does not verify fails the call: a withdrawal is never silently skipped.
    pub async fn withdrawal_set(&self) -> Result<Arc<WithdrawalSet>, StoreError> {
        if let Some(set) = self.current_withdrawals() {
            return Ok(set);
        }
        let _reloading = self.withdrawals_reload.lock().await;
        if let Some(set) = self.current_withdrawals() {
            return Ok(set);
        }
        let epoch = self.cache.withdrawal_changes();
        let verifiers = &self.keys.verification().verifiers;
        let records = self.store.withdrawals().await?;
        let mut withdrawals = Vec::with_capacity(records.len());
        for signed in &records {
            withdrawals.push(withdrawal::verify(verifiers, signed)?);
        }
        let set = Arc::new(WithdrawalSet::new(withdrawals));
        self.withdrawals.store(Arc::new(Some(WithdrawalSnapshot {
            set: set.clone(),
            epoch,
            loaded_at: Instant::now(),
        })));
        Ok(set)
    }

    /// The withdrawals as last read, however old: for a caller that must go on while the store
    /// cannot be read (registration), never for a check that fails closed.
    pub fn last_withdrawal_set(&self) -> Option<Arc<WithdrawalSet>> {
        let snapshot = self.withdrawals.load();
        snapshot
            .as_ref()
            .as_ref()
            .map(|snapshot| snapshot.set.clone())
    }

    fn current_withdrawals(&self) -> Option<Arc<WithdrawalSet>> {
        let snapshot = self.withdrawals.load();
        let snapshot = snapshot.as_ref().as_ref()?;
        (snapshot.epoch == self.cache.withdrawal_changes()
            && snapshot.loaded_at.elapsed() < self.cache_ttl)
            .then(|| snapshot.set.clone())
    }

    /// Store a withdrawal signed with `keys`; a suspension never replaces a permanent one.
    pub async fn put_withdrawal(
        &self,
        keys: &RegistrarKeys,
        withdrawal: &Withdrawal,
    ) -> Result<PutOutcome, StoreError> {
        self.require_writable()?;
        let signed = withdrawal::sign(keys.signing_key(), withdrawal)?;
        let covers_before = withdrawal.registered_before.unwrap_or(u64::MAX);
        let outcome = self
            .store
            .put_withdrawal(&withdrawal.id, withdrawal.status, covers_before, &signed)
            .await;
        self.cache.withdrawals_changed();
        outcome
    }

    /// Sign every withdrawal again with the active key of `keys`, where another key signed it:
    /// after a rotation, while the old key is still listed, so that removing the old key later
    /// does not leave records that verify with nothing (which would refuse every client).
    /// Returns how many were signed again.
    pub async fn resign_withdrawals(&self, keys: &RegistrarKeys) -> Result<usize, StoreError> {
        self.require_writable()?;
        let active = keys.signing_key().kid.clone();
        let mut resigned = 0;
        for signed in self.store.withdrawals().await? {
            let kid = crate::jose::CompactJws::parse(&signed)
                .ok()
                .and_then(|jws| jws.kid().map(str::to_owned));
            if kid.as_deref() == Some(active.as_str()) {
                continue;
            }
            let withdrawal = withdrawal::verify(keys.verifiers(), &signed)?;
            let signed = withdrawal::sign(keys.signing_key(), &withdrawal)?;
            let covers = withdrawal.registered_before.unwrap_or(u64::MAX);
            self.store
                .put_withdrawal(&withdrawal.id, withdrawal.status, covers, &signed)
                .await?;
            resigned += 1;
        }
        if resigned > 0 {
            self.cache.withdrawals_changed();
        }
        Ok(resigned)
    }

    /// Lift a suspension.
    pub async fn lift_withdrawal(&self, id: &str) -> Result<LiftOutcome, StoreError> {
        self.require_writable()?;
        let outcome = self.store.lift_withdrawal(id).await;
        self.cache.withdrawals_changed();
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
