//! The embedded status store: one redb file, created on first start. Every write commits with
//! `Durability::Immediate` (redb's default), so an update or delete that was answered survives a
//! crash or `kill -9`.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition};

use super::{
    EntryChange, IndexBlock, LiftOutcome, ListContent, PutOutcome, RecordState, StatusStore,
    StoreError, StoredRecord, WithdrawalStatus, WriteOutcome,
};
use crate::clock::SharedClock;
use crate::status_list::{array, REGISTRAR_BITS};

/// jti → (state, generation, signed record, expires_at; 0 = never).
/// state: 1 = amended, 2 = revoked.
const RECORDS: TableDefinition<&str, (u8, u64, &str, u64)> = TableDefinition::new("status_records");
/// "current" → (the list indexes are handed out from, its next free index).
const ALLOCATION: TableDefinition<&str, (u64, u64)> =
    TableDefinition::new("status_list_allocation");
/// list → its number of entries, fixed when it was started.
const LISTS: TableDefinition<u64, u64> = TableDefinition::new("status_lists");
/// (list, byte offset) → the byte: only bytes with an entry that is not VALID are stored.
const LIST_BYTES: TableDefinition<(u64, u64), u8> = TableDefinition::new("status_list_bytes");
/// withdrawal id → (state, registered_before or u64::MAX, signed record); state: 1 = invalid,
/// 2 = suspended.
const WITHDRAWALS: TableDefinition<&str, (u8, u64, &str)> = TableDefinition::new("withdrawals");

const WITHDRAWN_INVALID: u8 = 1;
const WITHDRAWN_SUSPENDED: u8 = 2;

const AMENDED: u8 = 1;
const REVOKED: u8 = 2;

pub struct EmbeddedStore {
    /// `None` once closed: a graceful stop closes the file cleanly, so that the next start and
    /// read-only tools need no repair.
    db: Arc<std::sync::RwLock<Option<Db>>>,
    clock: SharedClock,
}

/// The file opened to write (the registrar) or only to read (a tool, an edge node): the second
/// never creates the file and never starts a write transaction.
enum Db {
    ReadWrite(Database),
    ReadOnly(ReadOnlyDatabase),
}

impl Db {
    fn begin_read(&self) -> Result<redb::ReadTransaction, redb::TransactionError> {
        match self {
            Db::ReadWrite(db) => db.begin_read(),
            Db::ReadOnly(db) => db.begin_read(),
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl EmbeddedStore {
    pub async fn open(path: &Path, clock: SharedClock) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let now = clock.now().map_err(unavailable)?;
        let db = tokio::task::spawn_blocking(move || -> Result<Database, StoreError> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| unavailable(format!("{}: {e}", dir.display())))?;
            }
            let db = Database::create(&path)
                .map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
            // Create the table and drop records whose client_id has expired.
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut table = txn.open_table(RECORDS).map_err(unavailable)?;
                table
                    .retain(|_, (_, _, _, expires)| expires == 0 || expires > now)
                    .map_err(unavailable)?;
            }
            txn.commit().map_err(unavailable)?;
            Ok(db)
        })
        .await
        .map_err(unavailable)??;
        Ok(EmbeddedStore {
            db: Arc::new(std::sync::RwLock::new(Some(Db::ReadWrite(db)))),
            clock,
        })
    }

    /// Close the file cleanly (waiting for operations in progress); later operations fail as
    /// unavailable.
    pub async fn close(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let taken = db
                .write()
                .map_err(|_| unavailable("the status store lock is poisoned"))?
                .take();
            match taken {
                Some(Db::ReadWrite(db)) => db.close().map_err(unavailable),
                Some(Db::ReadOnly(db)) => db.close().map_err(unavailable),
                None => Ok(()),
            }
        })
        .await
        .map_err(unavailable)?
    }

    /// Open an existing file only to read it: nothing is created or written.
    pub async fn open_read_only(path: &Path, clock: SharedClock) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let db = tokio::task::spawn_blocking(move || {
            ReadOnlyDatabase::open(&path)
                .map_err(|e| unavailable(format!("{}: {e}", path.display())))
        })
        .await
        .map_err(unavailable)??;
        Ok(EmbeddedStore {
            db: Arc::new(std::sync::RwLock::new(Some(Db::ReadOnly(db)))),
            clock,
        })
    }
}

impl StatusStore for EmbeddedStore {
    async fn load(&self, jti: &str) -> Result<Option<StoredRecord>, StoreError> {
        let jti = jti.to_owned();
        let now = self.clock.now().map_err(unavailable)?;
        self.read_transaction(move |txn| {
            let table = match txn.open_table(RECORDS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(unavailable(e)),
            };
            let Some(guard) = table.get(jti.as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            let (state, generation, signed, expires) = guard.value();
            if expires != 0 && expires <= now {
                return Ok(None);
            }
            Ok(Some(StoredRecord {
                state: decode_state(state, generation)?,
                signed: signed.to_owned(),
                expires_at: (expires != 0).then_some(expires),
            }))
        })
        .await
    }

    async fn write(
        &self,
        jti: &str,
        expected_generation: u64,
        record: &StoredRecord,
        entry: Option<EntryChange>,
    ) -> Result<WriteOutcome, StoreError> {
        let jti = jti.to_owned();
        let record = record.clone();
        let now = self.clock.now().map_err(unavailable)?;
        self.write_transaction(move |txn| {
            let outcome = {
                let mut table = txn.open_table(RECORDS).map_err(unavailable)?;
                let current = table.get(jti.as_str()).map_err(unavailable)?.map(|g| {
                    let (state, generation, _, expires) = g.value();
                    (state, generation, expires)
                });
                let current_generation = match current {
                    Some((REVOKED, _, _)) => return Ok((WriteOutcome::AlreadyRevoked, false)),
                    Some((_, generation, expires)) if expires == 0 || expires > now => generation,
                    _ => 0,
                };
                // A delete is conditional too: a token already rotated by an update on another
                // node must not delete the client (RFC 7592 §2.3 wants the current token).
                if current_generation != expected_generation {
                    WriteOutcome::Conflict
                } else {
                    let (state, generation) = match record.state {
                        RecordState::Amended { generation } => (AMENDED, generation),
                        RecordState::Revoked => (REVOKED, current_generation),
                    };
                    table
                        .insert(
                            jti.as_str(),
                            (
                                state,
                                generation,
                                record.signed.as_str(),
                                record.expires_at.unwrap_or(0),
                            ),
                        )
                        .map_err(unavailable)?;
                    WriteOutcome::Written
                }
            };
            if outcome == WriteOutcome::Written {
                if let Some(entry) = entry {
                    // in the same transaction: the record and its list entry commit together
                    let mut bytes = txn.open_table(LIST_BYTES).map_err(unavailable)?;
                    let (offset, shift) = array::entry_position(REGISTRAR_BITS, entry.idx);
                    let key = (entry.list, offset);
                    let current = bytes
                        .get(key)
                        .map_err(unavailable)?
                        .map_or(0, |g| g.value());
                    let next = array::set_in_byte(current, REGISTRAR_BITS, shift, entry.value);
                    bytes.insert(key, next).map_err(unavailable)?;
                }
            }
            Ok((outcome, outcome == WriteOutcome::Written))
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn allocate_indexes(
        &self,
        capacity: u64,
        count: u64,
        first_list: u64,
    ) -> Result<IndexBlock, StoreError> {
        if count == 0 || count > capacity {
            return Err(StoreError::Internal(format!(
                "cannot allocate {count} indexes in lists of {capacity}"
            )));
        }
        self.write_transaction(move |txn| {
            let mut allocation = txn.open_table(ALLOCATION).map_err(unavailable)?;
            let mut lists = txn.open_table(LISTS).map_err(unavailable)?;
            let current = allocation
                .get("current")
                .map_err(unavailable)?
                .map(|g| g.value());
            let room = |list: u64, next: u64| -> Result<bool, StoreError> {
                let size = lists
                    .get(list)
                    .map_err(unavailable)?
                    .map_or(0, |g| g.value());
                Ok(next.checked_add(count).is_some_and(|end| end <= size))
            };
            let (list, start) = match current {
                Some((list, next)) if list >= first_list && room(list, next)? => (list, next),
                other => {
                    let list = match other {
                        Some((list, _)) => list
                            .checked_add(1)
                            .ok_or_else(|| StoreError::Internal("no list id left".into()))?
                            .max(first_list),
                        None => first_list,
                    };
                    lists.insert(list, capacity).map_err(unavailable)?;
                    (list, 0)
                }
            };
            // start + count <= the list's size, checked above
            let end = start + count;
            allocation
                .insert("current", (list, end))
                .map_err(unavailable)?;
            Ok((IndexBlock { list, start, end }, true))
        })
        .await
    }

    async fn list_content(&self, list: u64) -> Result<Option<ListContent>, StoreError> {
        self.read_transaction(move |txn| {
            let capacity = match txn.open_table(LISTS) {
                Ok(lists) => lists.get(list).map_err(unavailable)?.map(|g| g.value()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(unavailable(e)),
            };
            let Some(capacity) = capacity else {
                return Ok(None);
            };
            let mut bytes = Vec::new();
            match txn.open_table(LIST_BYTES) {
                Ok(table) => {
                    for item in table
                        .range((list, 0)..=(list, u64::MAX))
                        .map_err(unavailable)?
                    {
                        let (key, value) = item.map_err(unavailable)?;
                        let offset = usize::try_from(key.value().1)
                            .map_err(|_| StoreError::Corrupt("list byte offset".into()))?;
                        if offset >= bytes.len() {
                            bytes.resize(offset + 1, 0);
                        }
                        bytes[offset] = value.value();
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(unavailable(e)),
            }
            Ok(Some(ListContent { capacity, bytes }))
        })
        .await
    }

    async fn started_lists(&self) -> Result<Vec<u64>, StoreError> {
        self.read_transaction(|txn| match txn.open_table(LISTS) {
            Ok(table) => {
                let mut ids = Vec::new();
                for item in table.iter().map_err(unavailable)? {
                    let (list, _) = item.map_err(unavailable)?;
                    ids.push(list.value());
                }
                Ok(ids)
            }
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(unavailable(e)),
        })
        .await
    }

    async fn withdrawals(&self) -> Result<Vec<String>, StoreError> {
        self.read_transaction(|txn| match txn.open_table(WITHDRAWALS) {
            Ok(table) => {
                let mut all = Vec::new();
                for item in table.iter().map_err(unavailable)? {
                    let (_, value) = item.map_err(unavailable)?;
                    all.push(value.value().2.to_owned());
                }
                Ok(all)
            }
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(unavailable(e)),
        })
        .await
    }

    async fn put_withdrawal(
        &self,
        id: &str,
        status: WithdrawalStatus,
        covers_before: u64,
        signed: &str,
    ) -> Result<PutOutcome, StoreError> {
        let (id, signed) = (id.to_owned(), signed.to_owned());
        self.write_transaction(move |txn| {
            let mut table = txn.open_table(WITHDRAWALS).map_err(unavailable)?;
            let existing = table.get(id.as_str()).map_err(unavailable)?.map(|g| {
                let (state, covers, _) = g.value();
                (state, covers)
            });
            if let Some((WITHDRAWN_INVALID, covers)) = existing {
                if status == WithdrawalStatus::Suspended || covers_before < covers {
                    return Ok((PutOutcome::Permanent, false));
                }
            }
            let state = match status {
                WithdrawalStatus::Invalid => WITHDRAWN_INVALID,
                WithdrawalStatus::Suspended => WITHDRAWN_SUSPENDED,
            };
            table
                .insert(id.as_str(), (state, covers_before, signed.as_str()))
                .map_err(unavailable)?;
            Ok((PutOutcome::Written, true))
        })
        .await
    }

    async fn lift_withdrawal(&self, id: &str) -> Result<LiftOutcome, StoreError> {
        let id = id.to_owned();
        self.write_transaction(move |txn| {
            let mut table = txn.open_table(WITHDRAWALS).map_err(unavailable)?;
            let existing = table
                .get(id.as_str())
                .map_err(unavailable)?
                .map(|g| g.value().0);
            match existing {
                None => Ok((LiftOutcome::NotFound, false)),
                Some(WITHDRAWN_INVALID) => Ok((LiftOutcome::Permanent, false)),
                Some(_) => {
                    table.remove(id.as_str()).map_err(unavailable)?;
                    Ok((LiftOutcome::Lifted, true))
                }
            }
        })
        .await
    }
}

impl EmbeddedStore {
    /// Run `work` in one write transaction on a blocking thread; it answers its result and
    /// whether to commit.
    async fn write_transaction<T: Send + 'static>(
        &self,
        work: impl FnOnce(&redb::WriteTransaction) -> Result<(T, bool), StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let guard = db
                .read()
                .map_err(|_| unavailable("the status store lock is poisoned"))?;
            let Some(Db::ReadWrite(db)) = guard.as_ref() else {
                return Err(unavailable("the status store is read-only or closed"));
            };
            let txn = db.begin_write().map_err(unavailable)?;
            let (result, commit) = work(&txn)?;
            if commit {
                txn.commit().map_err(unavailable)?;
            }
            Ok(result)
        })
        .await
        .map_err(unavailable)?
    }

    /// Run `work` in one read transaction on a blocking thread.
    async fn read_transaction<T: Send + 'static>(
        &self,
        work: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let guard = db
                .read()
                .map_err(|_| unavailable("the status store lock is poisoned"))?;
            let db = guard
                .as_ref()
                .ok_or_else(|| unavailable("the status store is closed"))?;
            let txn = db.begin_read().map_err(unavailable)?;
            work(&txn)
        })
        .await
        .map_err(unavailable)?
    }
}

fn decode_state(state: u8, generation: u64) -> Result<RecordState, StoreError> {
    match state {
        AMENDED => Ok(RecordState::Amended { generation }),
        REVOKED => Ok(RecordState::Revoked),
        other => Err(StoreError::Corrupt(format!("unknown record state {other}"))),
    }
}

#[cfg(test)]
mod tests;
