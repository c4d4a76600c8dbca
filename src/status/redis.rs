//! The Redis status store, for several nodes sharing one view.
//!
//! Each record is a hash `{prefix}status:{jti}` with `state`, `gen` and `record`, expiring at the
//! client_id's `exp`. Writes run as one Lua script, so the "never undo a revocation" and
//! generation checks are atomic, and the same script publishes the `jti` on `{prefix}changes`.
//! Every node subscribes and drops that `jti` from its cache; after a lost subscription it drops
//! its whole cache on reconnect. If a notification is lost anyway, the cache TTL
//! (`status_store.cache_ttl_secs`) bounds how long a node can serve the old view.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::cache::StatusCache;
use super::{RecordState, StatusStore, StoreError, StoredRecord, WriteOutcome};

/// KEYS[1] record key; ARGV: expected generation, new state, new generation, signed record,
/// expires_at (0 = never), channel, jti.
const WRITE_SCRIPT: &str = r#"
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'revoked' then return 'revoked' end
local current = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
if current ~= tonumber(ARGV[1]) then return 'conflict' end
local generation = ARGV[3]
if ARGV[2] == 'revoked' then generation = tostring(current) end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'gen', generation, 'record', ARGV[4])
if ARGV[5] ~= '0' then redis.call('EXPIREAT', KEYS[1], ARGV[5]) end
redis.call('PUBLISH', ARGV[6], ARGV[7])
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
    ) -> Result<WriteOutcome, StoreError> {
        let (state, generation) = match record.state {
            RecordState::Amended { generation } => ("amended", generation),
            RecordState::Revoked => ("revoked", 0),
        };
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(WRITE_SCRIPT)
            .arg(1)
            .arg(self.key(jti))
            .arg(expected_generation)
            .arg(state)
            .arg(generation)
            .arg(&record.signed)
            .arg(record.expires_at.unwrap_or(0))
            .arg(&self.channel)
            .arg(jti);
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
                        if let Ok(jti) = message.get_payload::<String>() {
                            cache.changed(&jti).await;
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
