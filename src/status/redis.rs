//! The Redis status store, for several nodes sharing one view.
//!
//! Each record is a hash `{prefix}status:{jti}` with `state`, `gen` and `record`, expiring at the
//! client_id's `exp`. Writes run as one Lua script, so the "never undo a revocation" and
//! generation checks are atomic, and the same script publishes the `jti` on `{prefix}changes`.
//! Every node subscribes and drops that `jti` from its cache; after a lost subscription it drops
//! its whole cache on reconnect. If a notification is lost anyway, the cache TTL
//! (`status_store.cache_ttl_secs`) bounds how long a node can serve the old view.
//!
//! Status lists: `{prefix}status-lists` is a hash with the `list` indexes are handed out from,
//! its `next` free index and each list's size (`size:{list}`), changed by one script, so that
//! two nodes never get the same index. The bytes of list N are the string
//! `{prefix}status-list:{N}`, in the draft's layout (lowest index in the least significant
//! bits), changed by the record write script; a change is announced as `sl:{N}`. Withdrawals
//! are the hash `{prefix}withdrawals` (`{id}` the signed record, `{id}:state` its status),
//! announced as `withdrawals`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::cache::StatusCache;
use super::{
    EntryChange, IndexBlock, LiftOutcome, ListContent, PutOutcome, RecordState, StatusStore,
    StoreError, StoredRecord, WithdrawalStatus, WriteOutcome,
};
use crate::status_list::{array, REGISTRAR_BITS};

/// KEYS[1] record key, KEYS[2] the bytes of the client's status list; ARGV: expected
/// generation, new state, new generation, signed record, expires_at (0 = never), channel, jti,
/// then the list entry: its byte offset ('' = none), the shift and mask of its bits, its new
/// value, and the list id.
const WRITE_SCRIPT: &str = r#"
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'revoked' then return 'revoked' end
local current = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
if current ~= tonumber(ARGV[1]) then return 'conflict' end
local generation = ARGV[3]
if ARGV[2] == 'revoked' then generation = tostring(current) end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'gen', generation, 'record', ARGV[4])
if ARGV[5] ~= '0' then redis.call('EXPIREAT', KEYS[1], ARGV[5]) end
if ARGV[8] ~= '' then
  local offset = tonumber(ARGV[8])
  local byte = 0
  local old = redis.call('GETRANGE', KEYS[2], offset, offset)
  if #old == 1 then byte = string.byte(old) end
  local shift = tonumber(ARGV[9])
  local mask = bit.lshift(tonumber(ARGV[10]), shift)
  byte = bit.bor(bit.band(byte, bit.band(bit.bnot(mask), 255)), bit.lshift(tonumber(ARGV[11]), shift))
  redis.call('SETRANGE', KEYS[2], offset, string.char(byte))
  redis.call('PUBLISH', ARGV[6], 'sl:' .. ARGV[12])
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 'ok'
"#;

/// KEYS[1] the allocation hash; ARGV: the size of a new list, the number of indexes wanted, the
/// lowest list id allowed. Answers {list, first index}.
const ALLOCATE_SCRIPT: &str = r#"
local count = tonumber(ARGV[2])
local first = tonumber(ARGV[3])
local list = tonumber(redis.call('HGET', KEYS[1], 'list') or '-1')
local nextidx = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
local size = tonumber(redis.call('HGET', KEYS[1], 'size:' .. list) or '0')
if list < 0 or nextidx + count > size or list < first then
  list = math.max(list + 1, first)
  nextidx = 0
  redis.call('HSET', KEYS[1], 'size:' .. list, ARGV[1])
end
redis.call('HSET', KEYS[1], 'list', list, 'next', nextidx + count)
return {list, nextidx}
"#;

/// KEYS[1] the withdrawals hash; ARGV: id, status, signed record, channel, registered_before
/// (a decimal, 18446744073709551615 without one). Neither a suspension nor a withdrawal covering
/// fewer clients replaces a permanent one. The bound is compared as a string of digits, padded:
/// Lua numbers are doubles, not exact for every u64.
const PUT_WITHDRAWAL_SCRIPT: &str = r#"
local existing = redis.call('HGET', KEYS[1], ARGV[1] .. ':state')
if existing == 'invalid' then
  if ARGV[2] == 'suspended' then return 'permanent' end
  local covers = redis.call('HGET', KEYS[1], ARGV[1] .. ':covers') or ''
  if ARGV[5] < covers then return 'permanent' end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3], ARGV[1] .. ':state', ARGV[2], ARGV[1] .. ':covers', ARGV[5])
redis.call('PUBLISH', ARGV[4], 'withdrawals')
return 'ok'
"#;

/// KEYS[1] the withdrawals hash; ARGV: id, channel. Only suspensions are lifted.
const LIFT_WITHDRAWAL_SCRIPT: &str = r#"
local existing = redis.call('HGET', KEYS[1], ARGV[1] .. ':state')
if not existing then return 'missing' end
if existing == 'invalid' then return 'permanent' end
redis.call('HDEL', KEYS[1], ARGV[1], ARGV[1] .. ':state', ARGV[1] .. ':covers')
redis.call('PUBLISH', ARGV[2], 'withdrawals')
return 'ok'
"#;

pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    channel: String,
    timeout: Duration,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connect, and start the subscriber that keeps `cache` in step with other nodes.
    pub async fn connect(
        url: &str,
        prefix: &str,
        timeout: Duration,
        cache: Arc<StatusCache>,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connection =
            tokio::time::timeout(timeout, client.get_connection_manager_with_config(config))
                .await
                .map_err(|_| unavailable("timed out connecting to Redis"))?
                .map_err(unavailable)?;
        let channel = format!("{prefix}changes");
        tokio::spawn(subscribe(client, channel.clone(), cache));
        Ok(RedisStore {
            connection,
            prefix: prefix.to_owned(),
            channel,
            timeout,
        })
    }

    fn key(&self, jti: &str) -> String {
        format!("{}status:{jti}", self.prefix)
    }

    fn allocation_key(&self) -> String {
        format!("{}status-lists", self.prefix)
    }

    fn list_key(&self, list: u64) -> String {
        format!("{}status-list:{list}", self.prefix)
    }

    fn withdrawals_key(&self) -> String {
        format!("{}withdrawals", self.prefix)
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        tokio::time::timeout(self.timeout, cmd.query_async(&mut connection))
            .await
            .map_err(|_| unavailable("Redis did not answer in time"))?
            .map_err(unavailable)
    }
}

impl StatusStore for RedisStore {
    async fn load(&self, jti: &str) -> Result<Option<StoredRecord>, StoreError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.key(jti)).arg("state").arg("gen").arg("record");
        let fields: (Option<String>, Option<u64>, Option<String>) = self.run(&cmd).await?;
        let (Some(state), generation, Some(signed)) = fields else {
            return Ok(None);
        };
        let state = match state.as_str() {
            "revoked" => RecordState::Revoked,
            "amended" => RecordState::Amended {
                generation: generation.unwrap_or(0),
            },
            other => return Err(StoreError::Corrupt(format!("unknown record state {other}"))),
        };
        Ok(Some(StoredRecord {
            state,
            signed,
            expires_at: None,
        }))
    }

    async fn write(
        &self,
        jti: &str,
        expected_generation: u64,
        record: &StoredRecord,
        entry: Option<EntryChange>,
    ) -> Result<WriteOutcome, StoreError> {
        let (state, generation) = match record.state {
            RecordState::Amended { generation } => ("amended", generation),
            RecordState::Revoked => ("revoked", 0),
        };
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(WRITE_SCRIPT)
            .arg(2)
            .arg(self.key(jti))
            .arg(self.list_key(entry.map_or(0, |e| e.list)))
            .arg(expected_generation)
            .arg(state)
            .arg(generation)
            .arg(&record.signed)
            .arg(record.expires_at.unwrap_or(0))
            .arg(&self.channel)
            .arg(jti);
        match entry {
            Some(entry) => {
                let (offset, shift) = array::entry_position(REGISTRAR_BITS, entry.idx);
                let mask = u8::MAX >> (8 - REGISTRAR_BITS.get());
                cmd.arg(offset)
                    .arg(shift)
                    .arg(mask)
                    .arg(entry.value)
                    .arg(entry.list);
            }
            None => {
                cmd.arg("").arg(0).arg(0).arg(0).arg(0);
            }
        }
        let outcome: String = self.run(&cmd).await?;
        match outcome.as_str() {
            "ok" => Ok(WriteOutcome::Written),
            "revoked" => Ok(WriteOutcome::AlreadyRevoked),
            "conflict" => Ok(WriteOutcome::Conflict),
            other => Err(unavailable(format!("unexpected script answer {other}"))),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.run(&redis::cmd("PING")).await?;
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
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(ALLOCATE_SCRIPT)
            .arg(1)
            .arg(self.allocation_key())
            .arg(capacity)
            .arg(count)
            .arg(first_list);
        let (list, start): (u64, u64) = self.run(&cmd).await?;
        let end = start
            .checked_add(count)
            .ok_or_else(|| StoreError::Corrupt("status list allocation overflows".into()))?;
        Ok(IndexBlock { list, start, end })
    }

    async fn list_content(&self, list: u64) -> Result<Option<ListContent>, StoreError> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.allocation_key()).arg(format!("size:{list}"));
        let Some(capacity): Option<u64> = self.run(&cmd).await? else {
            return Ok(None);
        };
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.list_key(list));
        let bytes: Option<Vec<u8>> = self.run(&cmd).await?;
        Ok(Some(ListContent {
            capacity,
            bytes: bytes.unwrap_or_default(),
        }))
    }

    async fn started_lists(&self) -> Result<Vec<u64>, StoreError> {
        // each started list has its `size:{id}` field in the allocation hash
        let mut cmd = redis::cmd("HKEYS");
        cmd.arg(self.allocation_key());
        let fields: Vec<String> = self.run(&cmd).await?;
        let mut ids: Vec<u64> = fields
            .iter()
            .filter_map(|field| field.strip_prefix("size:")?.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    async fn withdrawals(&self) -> Result<Vec<String>, StoreError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.withdrawals_key());
        let all: Vec<(String, String)> = self.run(&cmd).await?;
        Ok(all
            .into_iter()
            .filter(|(field, _)| !field.ends_with(":state") && !field.ends_with(":covers"))
            .map(|(_, signed)| signed)
            .collect())
    }

    async fn put_withdrawal(
        &self,
        id: &str,
        status: WithdrawalStatus,
        covers_before: u64,
        signed: &str,
    ) -> Result<PutOutcome, StoreError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(PUT_WITHDRAWAL_SCRIPT)
            .arg(1)
            .arg(self.withdrawals_key())
            .arg(id)
            .arg(status.as_str())
            .arg(signed)
            .arg(&self.channel)
            // 20 digits, zero-padded: string order is numeric order
            .arg(format!("{covers_before:020}"));
        let outcome: String = self.run(&cmd).await?;
        match outcome.as_str() {
            "ok" => Ok(PutOutcome::Written),
            "permanent" => Ok(PutOutcome::Permanent),
            other => Err(unavailable(format!("unexpected script answer {other}"))),
        }
    }

    async fn lift_withdrawal(&self, id: &str) -> Result<LiftOutcome, StoreError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(LIFT_WITHDRAWAL_SCRIPT)
            .arg(1)
            .arg(self.withdrawals_key())
            .arg(id)
            .arg(&self.channel);
        let outcome: String = self.run(&cmd).await?;
        match outcome.as_str() {
            "ok" => Ok(LiftOutcome::Lifted),
            "missing" => Ok(LiftOutcome::NotFound),
            "permanent" => Ok(LiftOutcome::Permanent),
            other => Err(unavailable(format!("unexpected script answer {other}"))),
        }
    }
}

/// Keep this node's cache in step with writes made on other nodes. Runs until the process ends.
async fn subscribe(client: redis::Client, channel: String, cache: Arc<StatusCache>) {
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    // Anything published while unsubscribed is lost: forget everything.
                    cache.changed_all();
                    tracing::debug!(%channel, "subscribed to status changes");
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        match message.get_payload::<String>() {
                            Ok(list) if list.starts_with("sl:") => cache.list_changed(),
                            Ok(other) if other == "withdrawals" => cache.withdrawals_changed(),
                            Ok(jti) => cache.changed(&jti).await,
                            Err(_) => {}
                        }
                    }
                    tracing::warn!(%channel, "lost the Redis status subscription; reconnecting");
                }
                Err(e) => tracing::warn!(error = %e, "cannot subscribe to Redis status changes"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot connect to Redis for status changes"),
        }
        cache.changed_all();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
