//! The embedded status store: one redb file, created on first start. Every write commits with
//! `Durability::Immediate` (redb's default), so an update or delete that was answered survives a
//! crash or `kill -9`.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition};

use super::{RecordState, StatusStore, StoreError, StoredRecord, WriteOutcome};
use crate::clock::SharedClock;

/// jti → (state, generation, signed record, expires_at; 0 = never).
/// state: 1 = amended, 2 = revoked.
const RECORDS: TableDefinition<&str, (u8, u64, &str, u64)> = TableDefinition::new("status_records");

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
        let db = self.db.clone();
        let jti = jti.to_owned();
        let now = self.clock.now().map_err(unavailable)?;
        tokio::task::spawn_blocking(move || {
            let guard = db
                .read()
                .map_err(|_| unavailable("the status store lock is poisoned"))?;
            let db = guard
                .as_ref()
                .ok_or_else(|| unavailable("the status store is closed"))?;
            let txn = db.begin_read().map_err(unavailable)?;
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
        .map_err(unavailable)?
    }

    async fn write(
        &self,
        jti: &str,
        expected_generation: u64,
        record: &StoredRecord,
    ) -> Result<WriteOutcome, StoreError> {
        let db = self.db.clone();
        let jti = jti.to_owned();
        let record = record.clone();
        let now = self.clock.now().map_err(unavailable)?;
        tokio::task::spawn_blocking(move || {
            let guard = db
                .read()
                .map_err(|_| unavailable("the status store lock is poisoned"))?;
            let Some(Db::ReadWrite(db)) = guard.as_ref() else {
                return Err(unavailable("the status store is read-only or closed"));
            };
            let txn = db.begin_write().map_err(unavailable)?;
            let outcome = {
                let mut table = txn.open_table(RECORDS).map_err(unavailable)?;
                let current = table.get(jti.as_str()).map_err(unavailable)?.map(|g| {
                    let (state, generation, _, expires) = g.value();
                    (state, generation, expires)
                });
                let current_generation = match current {
                    Some((REVOKED, _, _)) => return Ok(WriteOutcome::AlreadyRevoked),
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
                txn.commit().map_err(unavailable)?;
            }
            Ok(outcome)
        })
        .await
        .map_err(unavailable)?
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
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
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn record(state: RecordState, expires_at: Option<u64>) -> StoredRecord {
        StoredRecord {
            state,
            signed: "signed-record".into(),
            expires_at,
        }
    }

    #[tokio::test]
    async fn a_record_lives_until_the_second_its_client_id_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.redb");
        let clock = FixedClock::new(500);
        let store = EmbeddedStore::open(&path, clock.clone()).await.unwrap();
        let amended = |expires_at| record(RecordState::Amended { generation: 1 }, Some(expires_at));
        let outcome = store.write("jti", 0, &amended(1_000)).await.unwrap();
        assert_eq!(outcome, WriteOutcome::Written);
        clock.set(999);
        assert!(store.load("jti").await.unwrap().is_some());
        clock.set(1_000);
        assert!(store.load("jti").await.unwrap().is_none());
        // an expired record no longer holds its generation: a write expects 0 again
        let outcome = store.write("jti", 0, &amended(2_000)).await.unwrap();
        assert_eq!(outcome, WriteOutcome::Written);
        // a record without expiry is kept forever, and a restart drops only expired ones
        for (jti, expires_at) in [("forever", None), ("short", Some(1_500))] {
            let revoked = record(RecordState::Revoked, expires_at);
            store.write(jti, 0, &revoked).await.unwrap();
        }
        drop(store);
        clock.set(1_500);
        let reopened = EmbeddedStore::open(&path, clock.clone()).await.unwrap();
        assert!(reopened.load("forever").await.unwrap().is_some());
        assert!(reopened.load("short").await.unwrap().is_none());
        assert!(reopened.load("jti").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_delete_with_a_generation_already_passed_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb"), crate::clock::system())
            .await
            .unwrap();
        let amended = record(RecordState::Amended { generation: 1 }, None);
        store.write("jti", 0, &amended).await.unwrap();
        let revoked = record(RecordState::Revoked, None);
        assert_eq!(
            store.write("jti", 0, &revoked).await.unwrap(),
            WriteOutcome::Conflict
        );
        assert_eq!(
            store.write("jti", 1, &revoked).await.unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(
            store.write("jti", 1, &revoked).await.unwrap(),
            WriteOutcome::AlreadyRevoked
        );
    }
}
