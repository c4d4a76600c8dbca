//! The cache of status lookups, so that resolving a client that was never updated or deleted
//! does not reach the store on every request.
//!
//! A lookup that read the store just before a write must not put the old state back after the
//! write dropped the entry. Every change (a write of this node, or a notification from another
//! node) bumps a counter before it drops the entry; a lookup takes the counter before it reads
//! the store, inserts what it read, and drops it again if the counter moved meanwhile. Either
//! the change's drop comes after the insert, or the lookup sees the counter moved: no ordering
//! leaves the old state in the cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::ClientStatus;

pub struct StatusCache {
    entries: moka::future::Cache<String, Arc<ClientStatus>>,
    changes: AtomicU64,
    /// Moves when a status list entry may have changed (the signed lists are then stale).
    list_changes: AtomicU64,
    /// Moves when a withdrawal was stored or lifted (the set in memory is then stale).
    withdrawal_changes: AtomicU64,
}

/// The change counter as a lookup found it before reading the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

impl StatusCache {
    pub fn new(capacity: u64, ttl: Duration) -> Arc<Self> {
        Arc::new(StatusCache {
            entries: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl.max(Duration::from_secs(1)))
                .build(),
            changes: AtomicU64::new(0),
            list_changes: AtomicU64::new(0),
            withdrawal_changes: AtomicU64::new(0),
        })
    }

    pub async fn get(&self, jti: &str) -> Option<Arc<ClientStatus>> {
        self.entries.get(jti).await
    }

    /// Take before reading the store.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.changes.load(Ordering::SeqCst))
    }

    /// Keep what a lookup read, unless a change came while it was reading.
    pub async fn fill(&self, ticket: Ticket, jti: &str, status: Arc<ClientStatus>) {
        self.entries.insert(jti.to_owned(), status).await;
        if self.ticket() != ticket {
            self.entries.invalidate(jti).await;
        }
    }

    /// A record changed: after the store write, before anything reads it again.
    pub async fn changed(&self, jti: &str) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate(jti).await;
    }

    /// Changes may have been missed (a lost subscription): forget everything.
    pub fn changed_all(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.list_changed();
        self.withdrawals_changed();
        self.entries.invalidate_all();
    }

    pub fn list_changed(&self) {
        self.list_changes.fetch_add(1, Ordering::SeqCst);
    }

    pub fn list_changes(&self) -> u64 {
        self.list_changes.load(Ordering::SeqCst)
    }

    pub fn withdrawals_changed(&self) {
        self.withdrawal_changes.fetch_add(1, Ordering::SeqCst);
    }

    pub fn withdrawal_changes(&self) -> u64 {
        self.withdrawal_changes.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lookup_that_read_before_a_write_does_not_resurrect_the_old_state() {
        let cache = StatusCache::new(100, Duration::from_secs(3600));
        // a lookup reads the store: the client is active
        let ticket = cache.ticket();
        let read = Arc::new(ClientStatus::Active);
        // meanwhile a delete is written and drops the entry
        cache.changed("jti").await;
        // the lookup finishes: what it read must not be kept
        cache.fill(ticket, "jti", read).await;
        assert!(cache.get("jti").await.is_none());
    }

    #[tokio::test]
    async fn a_lookup_that_read_after_the_write_is_kept() {
        let cache = StatusCache::new(100, Duration::from_secs(3600));
        cache.changed("jti").await;
        let ticket = cache.ticket();
        cache
            .fill(ticket, "jti", Arc::new(ClientStatus::Revoked))
            .await;
        assert_eq!(
            cache.get("jti").await.as_deref(),
            Some(&ClientStatus::Revoked)
        );
        // a change anywhere drops it at once
        cache.changed_all();
        cache.entries.run_pending_tasks().await;
        assert!(cache.get("jti").await.is_none());
    }
}
