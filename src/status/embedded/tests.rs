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
    let outcome = store.write("jti", 0, &amended(1_000), None).await.unwrap();
    assert_eq!(outcome, WriteOutcome::Written);
    clock.set(999);
    assert!(store.load("jti").await.unwrap().is_some());
    clock.set(1_000);
    assert!(store.load("jti").await.unwrap().is_none());
    // an expired record no longer holds its generation: a write expects 0 again
    let outcome = store.write("jti", 0, &amended(2_000), None).await.unwrap();
    assert_eq!(outcome, WriteOutcome::Written);
    // a record without expiry is kept forever, and a restart drops only expired ones
    for (jti, expires_at) in [("forever", None), ("short", Some(1_500))] {
        let revoked = record(RecordState::Revoked, expires_at);
        store.write(jti, 0, &revoked, None).await.unwrap();
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
    store.write("jti", 0, &amended, None).await.unwrap();
    let revoked = record(RecordState::Revoked, None);
    assert_eq!(
        store.write("jti", 0, &revoked, None).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(
        store.write("jti", 1, &revoked, None).await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(
        store.write("jti", 1, &revoked, None).await.unwrap(),
        WriteOutcome::AlreadyRevoked
    );
}

#[tokio::test]
async fn the_list_entry_changes_with_its_record_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.redb"), crate::clock::system())
        .await
        .unwrap();
    let block = store.allocate_indexes(16, 8, 0).await.unwrap();
    assert_eq!((block.list, block.start, block.end), (0, 0, 8));
    let entry = |idx, value| {
        Some(EntryChange {
            list: 0,
            idx,
            value,
        })
    };
    let amended = record(RecordState::Amended { generation: 1 }, None);
    store.write("a", 0, &amended, entry(5, 3)).await.unwrap();
    // a write that loses its condition changes no bit either
    let outcome = store
        .write("a", 0, &record(RecordState::Revoked, None), entry(5, 1))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Conflict);
    let content = store.list_content(0).await.unwrap().unwrap();
    assert_eq!(content.capacity, 16);
    // index 5: the second 2-bit entry of byte 1
    assert_eq!(content.bytes, vec![0, 0b0000_1100]);
    store
        .write("a", 1, &record(RecordState::Revoked, None), entry(5, 1))
        .await
        .unwrap();
    let content = store.list_content(0).await.unwrap().unwrap();
    assert_eq!(content.bytes, vec![0, 0b0000_0100]);
    assert!(store.list_content(1).await.unwrap().is_none());
    assert_eq!(store.started_lists().await.unwrap(), vec![0]);
}

#[tokio::test]
async fn blocks_fill_a_list_then_start_the_next_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let clock = crate::clock::system();
    let store = EmbeddedStore::open(&path, clock.clone()).await.unwrap();
    let mut blocks = Vec::new();
    for _ in 0..3 {
        let b = store.allocate_indexes(20, 8, 0).await.unwrap();
        blocks.push((b.list, b.start, b.end));
    }
    // 0..8 and 8..16 fit a list of 20; 16..24 does not, so list 1 starts
    assert_eq!(blocks, vec![(0, 0, 8), (0, 8, 16), (1, 0, 8)]);
    store.close().await.unwrap();
    drop(store);
    let store = EmbeddedStore::open(&path, clock).await.unwrap();
    // a larger capacity applies to lists started from now on
    let b = store.allocate_indexes(40, 8, 0).await.unwrap();
    assert_eq!((b.list, b.start, b.end), (1, 8, 16));
    // after restoring an old backup, the operator moves allocation past every list used
    let b = store.allocate_indexes(40, 8, 7).await.unwrap();
    assert_eq!((b.list, b.start, b.end), (7, 0, 8));
    let b = store.allocate_indexes(40, 8, 7).await.unwrap();
    assert_eq!((b.list, b.start, b.end), (7, 8, 16));
    assert_eq!(store.list_content(0).await.unwrap().unwrap().capacity, 20);
    assert_eq!(store.started_lists().await.unwrap(), vec![0, 1, 7]);
    assert!(store.list_content(5).await.unwrap().is_none());
    assert!(store.allocate_indexes(4, 8, 0).await.is_err());
}

#[tokio::test]
async fn a_permanent_withdrawal_is_neither_lifted_nor_weakened() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.redb"), crate::clock::system())
        .await
        .unwrap();
    let put = |id: &'static str, status| {
        let store = &store;
        async move {
            store
                .put_withdrawal(id, status, u64::MAX, "signed")
                .await
                .unwrap()
        }
    };
    assert_eq!(
        put("s", WithdrawalStatus::Suspended).await,
        PutOutcome::Written
    );
    assert_eq!(
        store.lift_withdrawal("s").await.unwrap(),
        LiftOutcome::Lifted
    );
    assert_eq!(
        store.lift_withdrawal("s").await.unwrap(),
        LiftOutcome::NotFound
    );
    assert_eq!(
        put("p", WithdrawalStatus::Invalid).await,
        PutOutcome::Written
    );
    assert_eq!(
        put("p", WithdrawalStatus::Suspended).await,
        PutOutcome::Permanent
    );
    assert_eq!(
        put("p", WithdrawalStatus::Invalid).await,
        PutOutcome::Written
    );
    assert_eq!(
        store.lift_withdrawal("p").await.unwrap(),
        LiftOutcome::Permanent
    );
    // nor narrowed to fewer clients
    let narrower = store
        .put_withdrawal("p", WithdrawalStatus::Invalid, 1_000, "signed")
        .await
        .unwrap();
    assert_eq!(narrower, PutOutcome::Permanent);
    assert_eq!(
        store.withdrawals().await.unwrap(),
        vec!["signed".to_owned()]
    );
}
