//! The registrar's status lists: an index for every client_id it issues, handed out from blocks
//! so that a registration never writes anything, and the Status List Tokens served at
//! `GET /status-lists/{id}` (draft-ietf-oauth-status-list-18 §5.1, §8.1, §8.2).
//!
//! - A node takes a block of `block_size` consecutive indexes from the status store at a time
//!   (one Redis script or one redb transaction), and the next block when half of the current one
//!   is used, in the background. A crash loses at most the rest of a block; the store never
//!   hands out an index twice (§13.3: "MUST prevent any unintended double allocation").
//! - Lists have a fixed number of entries, `capacity`, chosen when a list is started: every
//!   list has the same size whatever the number of clients in it (herd privacy, §12.1, §12.4).
//!   A block that does not fit the current list starts the next one.
//! - A list is signed on demand and kept in memory: signed again when an entry changed (on this
//!   node, or on another one through Redis) and `sign_interval_secs` have passed since, or when
//!   it is `ttl_secs` old. A flood of GETs costs no signature at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;

use super::token::{self, Lifetime};
use super::{StatusArray, StatusReference, REGISTRAR_BITS};
use crate::clock::SharedClock;
use crate::keys::KeyRing;
use crate::status::{EntryChange, IndexBlock, StatusService, StoreError};

/// The `[status_lists]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusListConfig {
    /// Give every client_id a status list entry (with `management = "full"`). Default on.
    pub enabled: bool,
    /// Entries per list: 2^20 (1,048,576) by default, 256 KiB uncompressed. A multiple of 4, so
    /// that a list is whole bytes (§13.4).
    pub capacity: u64,
    /// Indexes a node takes from the store at a time. Default 4096.
    pub block_size: u64,
    /// The `ttl` of the lists, in seconds: how long a verifier may cache one. Default 300.
    pub ttl_secs: u64,
    /// `exp` − `iat` of each signed list, in seconds. Default 86400 (24 hours).
    pub lifetime_secs: u64,
    /// A changed list is signed again at most this often, in seconds. Default 5.
    pub sign_interval_secs: u64,
    /// No index is handed out in a list below this id. Default 0. After restoring a backup of
    /// the status store, set it above every list id issued since the backup was taken, so that
    /// no index is handed out twice (docs/operations.md).
    pub first_list: u64,
}

impl Default for StatusListConfig {
    fn default() -> Self {
        StatusListConfig {
            enabled: true,
            capacity: 1 << 20,
            block_size: 4096,
            ttl_secs: 300,
            lifetime_secs: 86_400,
            sign_interval_secs: 5,
            first_list: 0,
        }
    }
}

/// The highest `first_list`: 2^32 lists of up to 2^24 entries is more than any deployment uses.
pub const MAX_FIRST_LIST: u64 = 1 << 32;

/// The largest list: 2^24 entries, 4 MiB uncompressed, what verifiers accept by default.
pub const MAX_CAPACITY: u64 = 1 << 24;

impl StatusListConfig {
    /// What types cannot check; the message names the option.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.capacity == 0 || !self.capacity.is_multiple_of(4) || self.capacity > MAX_CAPACITY {
            return Err((
                "status_lists.capacity",
                format!("must be a multiple of 4 between 4 and {MAX_CAPACITY}"),
            ));
        }
        if self.block_size == 0 || self.block_size > self.capacity {
            return Err((
                "status_lists.block_size",
                "must be between 1 and status_lists.capacity".into(),
            ));
        }
        if self.ttl_secs == 0 {
            return Err(("status_lists.ttl_secs", "must be at least 1".into()));
        }
        if self.lifetime_secs <= self.ttl_secs.saturating_mul(2) {
            return Err((
                "status_lists.lifetime_secs",
                "must be more than twice status_lists.ttl_secs".into(),
            ));
        }
        // list ids pass through Redis's Lua numbers (doubles): keep them far below 2^53
        if self.first_list > MAX_FIRST_LIST {
            return Err((
                "status_lists.first_list",
                format!("must be at most {MAX_FIRST_LIST}"),
            ));
        }
        if self.sign_interval_secs == 0 || self.sign_interval_secs > self.ttl_secs {
            return Err((
                "status_lists.sign_interval_secs",
                "must be between 1 and status_lists.ttl_secs".into(),
            ));
        }
        Ok(())
    }
}

/// A signed list, as served.
#[derive(Debug, Clone)]
pub struct SignedList {
    pub token: Arc<str>,
    pub iat: u64,
    pub exp: u64,
    /// The store's change counter when it was signed.
    changes: u64,
}

impl SignedList {
    /// Seconds a cache may keep it from `now`: until it is due to be signed again.
    pub fn max_age(&self, now: u64, ttl: u64) -> u64 {
        ttl.saturating_sub(now.saturating_sub(self.iat))
    }
}

#[derive(Debug, Default)]
struct Blocks {
    /// Indexes `start..end` are still free.
    current: Option<IndexBlock>,
    /// The next block, taken before the current one runs out.
    spare: Option<IndexBlock>,
}

/// The registrar's lists: allocation and signing.
pub struct ListPublisher {
    config: StatusListConfig,
    /// `{public_url}/status-lists/`: the URI of list N is this followed by N.
    base: String,
    /// `{public_url}/status-lists`: the Status List Aggregation (§9).
    aggregation: String,
    store: Arc<StatusService>,
    keys: KeyRing,
    clock: SharedClock,
    blocks: Mutex<Blocks>,
    refilling: tokio::sync::Mutex<()>,
    prefetching: AtomicBool,
    signed: Mutex<HashMap<u64, Arc<SignedList>>>,
    signing: tokio::sync::Mutex<()>,
    aggregation_cache: Mutex<Option<(std::time::Instant, Arc<Vec<String>>)>>,
}

impl std::fmt::Debug for ListPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListPublisher")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The URI prefix of the lists of a registrar published at `public_url`.
pub fn list_base(public_url: &str) -> String {
    format!("{}/status-lists/", public_url.trim_end_matches('/'))
}

/// The list id of `uri`, when it is one of the lists under `base`.
pub fn list_id(base: &str, uri: &str) -> Option<u64> {
    let id = uri.strip_prefix(base)?;
    // decimal digits only, without a leading zero: one spelling per list
    if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if id.len() > 1 && id.starts_with('0') {
        return None;
    }
    id.parse().ok()
}

impl ListPublisher {
    /// A publisher for a registrar at `public_url`; takes its first block now, so that
    /// registrations do not wait for the store.
    pub async fn start(
        config: StatusListConfig,
        public_url: &str,
        store: Arc<StatusService>,
        keys: KeyRing,
        clock: SharedClock,
    ) -> Result<Arc<Self>, StoreError> {
        let publisher = Arc::new(ListPublisher {
            base: list_base(public_url),
            aggregation: format!("{}/status-lists", public_url.trim_end_matches('/')),
            config,
            store,
            keys,
            clock,
            blocks: Mutex::new(Blocks::default()),
            refilling: tokio::sync::Mutex::new(()),
            prefetching: AtomicBool::new(false),
            signed: Mutex::new(HashMap::new()),
            signing: tokio::sync::Mutex::new(()),
            aggregation_cache: Mutex::new(None),
        });
        publisher.refill(false).await?;
        Ok(publisher)
    }

    pub fn config(&self) -> &StatusListConfig {
        &self.config
    }

    pub fn aggregation_uri(&self) -> &str {
        &self.aggregation
    }

    pub fn list_uri(&self, list: u64) -> String {
        format!("{}{list}", self.base)
    }

    /// The entry a write of `value` changes for the client whose client_id references
    /// `reference`, when it is one of this registrar's lists.
    pub fn entry(&self, reference: &StatusReference, value: u8) -> Option<EntryChange> {
        entry_in(&self.base, reference, value)
    }

    /// A fresh entry for a new client_id. Takes the next index of this node's block; waits for
    /// the store only when the block and the spare one are both used up.
    pub async fn next_reference(self: &Arc<Self>) -> Result<StatusReference, StoreError> {
        loop {
            if let Some((list, idx, low)) = self.take() {
                if low {
                    self.prefetch();
                }
                return Ok(StatusReference {
                    idx,
                    uri: self.list_uri(list),
                });
            }
            self.refill(false).await?;
        }
    }

    fn blocks(&self) -> std::sync::MutexGuard<'_, Blocks> {
        // two plain fields, consistent after any panic
        self.blocks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next free index, and whether the block runs low (time to fetch the spare).
    fn take(&self) -> Option<(u64, u64, bool)> {
        let mut blocks = self.blocks();
        loop {
            match blocks.current.as_mut() {
                Some(block) if block.start < block.end => {
                    let idx = block.start;
                    block.start += 1;
                    let left = block.end - block.start;
                    let low = left <= self.config.block_size / 2;
                    let list = block.list;
                    return Some((list, idx, low && blocks.spare.is_none()));
                }
                _ => {
                    blocks.current = blocks.spare.take();
                    blocks.current?;
                }
            }
        }
    }

    /// Fetch the spare block in the background, once at a time.
    fn prefetch(self: &Arc<Self>) {
        if self.prefetching.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = this.refill(true).await {
                tracing::warn!(error = %e, "cannot take the next block of status list indexes");
            }
            this.prefetching.store(false, Ordering::SeqCst);
        });
    }

    /// Take a block from the store: as the spare, or as the current one when it is used up.
    async fn refill(&self, spare: bool) -> Result<(), StoreError> {
        let _refilling = self.refilling.lock().await;
        {
            let blocks = self.blocks();
            let current_left = blocks.current.is_some_and(|b| b.start < b.end);
            if blocks.spare.is_some() || (!spare && current_left) {
                return Ok(());
            }
        }
        let block = self
            .store
            .allocate_indexes(
                self.config.capacity,
                self.config.block_size,
                self.config.first_list,
            )
            .await?;
        let mut blocks = self.blocks();
        if blocks.current.is_some_and(|b| b.start < b.end) {
            blocks.spare = Some(block);
        } else {
            blocks.current = Some(block);
        }
        Ok(())
    }

    /// The signed list `list`; `None` when no such list was started.
    pub async fn token(&self, list: u64) -> Result<Option<Arc<SignedList>>, StoreError> {
        let now = self
            .clock
            .now()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        if let Some(signed) = self.fresh(list, now) {
            return Ok(Some(signed));
        }
        let _signing = self.signing.lock().await;
        if let Some(signed) = self.fresh(list, now) {
            return Ok(Some(signed));
        }
        let changes = self.store.list_changes();
        match self.sign(list, now, changes).await {
            Ok(Some(signed)) => {
                let signed = Arc::new(signed);
                self.signed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(list, signed.clone());
                Ok(Some(signed))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                // A list signed earlier is still a valid statement until its exp.
                let previous = self.cached(list).filter(|s| now < s.exp);
                match previous {
                    Some(previous) => {
                        tracing::warn!(error = %e, list, "cannot sign the status list again; serving the previous one");
                        Ok(Some(previous))
                    }
                    None => Err(e),
                }
            }
        }
    }

    fn cached(&self, list: u64) -> Option<Arc<SignedList>> {
        self.signed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&list)
            .cloned()
    }

    /// The signed list, unless it is due to be signed again.
    fn fresh(&self, list: u64, now: u64) -> Option<Arc<SignedList>> {
        let signed = self.cached(list)?;
        let age = now.saturating_sub(signed.iat);
        let changed = signed.changes != self.store.list_changes();
        let due = age >= self.config.ttl_secs || (changed && age >= self.config.sign_interval_secs);
        (!due).then_some(signed)
    }

    async fn sign(
        &self,
        list: u64,
        now: u64,
        changes: u64,
    ) -> Result<Option<SignedList>, StoreError> {
        let Some(content) = self.store.list_content(list).await? else {
            return Ok(None);
        };
        let array = StatusArray::from_bytes(REGISTRAR_BITS, content.bytes, content.capacity);
        let lifetime = Lifetime {
            iat: now,
            exp: now.saturating_add(self.config.lifetime_secs),
            ttl: self.config.ttl_secs,
        };
        let keys = self.keys.snapshot();
        let token = token::sign(
            keys.signing_key(),
            &self.list_uri(list),
            lifetime,
            &array,
            Some(&self.aggregation),
        )
        .map_err(|e| StoreError::Internal(format!("signing status list {list}: {e}")))?;
        crate::metrics::METRICS
            .status_lists
            .with_label_values(&["signed"])
            .inc();
        Ok(Some(SignedList {
            token: Arc::from(token),
            iat: lifetime.iat,
            exp: lifetime.exp,
            changes,
        }))
    }

    /// The URIs of every list started (the Status List Aggregation, §9.3).
    /// Kept for `sign_interval_secs`: a flood of GETs reads the store once per interval.
    pub async fn all_lists(&self) -> Result<Arc<Vec<String>>, StoreError> {
        let now = std::time::Instant::now();
        let interval = std::time::Duration::from_secs(self.config.sign_interval_secs);
        {
            let cached = self
                .aggregation_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some((at, lists)) = cached.as_ref() {
                if now.duration_since(*at) < interval {
                    return Ok(lists.clone());
                }
            }
        }
        let lists = Arc::new(self.read_all_lists().await?);
        *self
            .aggregation_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((now, lists.clone()));
        Ok(lists)
    }

    async fn read_all_lists(&self) -> Result<Vec<String>, StoreError> {
        let started = self.store.started_lists().await?;
        Ok(started
            .into_iter()
            .map(|list| self.list_uri(list))
            .collect())
    }
}

/// The entry `reference` names under `base`, set to `value`.
pub fn entry_in(base: &str, reference: &StatusReference, value: u8) -> Option<EntryChange> {
    Some(EntryChange {
        list: list_id(base, &reference.uri)?,
        idx: reference.idx,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_ids_have_one_spelling() {
        let base = list_base("https://registrar.test/");
        assert_eq!(base, "https://registrar.test/status-lists/");
        assert_eq!(
            list_id(&base, "https://registrar.test/status-lists/0"),
            Some(0)
        );
        assert_eq!(
            list_id(&base, "https://registrar.test/status-lists/42"),
            Some(42)
        );
        for bad in [
            "https://registrar.test/status-lists/",
            "https://registrar.test/status-lists/01",
            "https://registrar.test/status-lists/1/",
            "https://registrar.test/status-lists/+1",
            "https://registrar.test/status-lists/99999999999999999999999",
            "https://other.test/status-lists/1",
        ] {
            assert_eq!(list_id(&base, bad), None, "{bad}");
        }
    }

    #[test]
    fn configuration_checks_name_the_option() {
        StatusListConfig::default().check().unwrap();
        let bad = |change: fn(&mut StatusListConfig)| {
            let mut config = StatusListConfig::default();
            change(&mut config);
            config.check().unwrap_err().0
        };
        assert_eq!(bad(|c| c.capacity = 6), "status_lists.capacity");
        assert_eq!(
            bad(|c| c.capacity = MAX_CAPACITY * 2),
            "status_lists.capacity"
        );
        assert_eq!(bad(|c| c.block_size = 0), "status_lists.block_size");
        assert_eq!(
            bad(|c| c.block_size = (1 << 20) + 1),
            "status_lists.block_size"
        );
        assert_eq!(bad(|c| c.ttl_secs = 0), "status_lists.ttl_secs");
        assert_eq!(bad(|c| c.lifetime_secs = 600), "status_lists.lifetime_secs");
        assert_eq!(
            bad(|c| c.sign_interval_secs = 301),
            "status_lists.sign_interval_secs"
        );
        assert_eq!(
            bad(|c| c.first_list = MAX_FIRST_LIST + 1),
            "status_lists.first_list"
        );
    }
}
