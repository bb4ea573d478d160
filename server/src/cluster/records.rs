//! The call records of a cluster: every change decided in Redis is appended to the stream
//! `sb:records`, and the nodes write it to the database as one consumer group. An entry is
//! acknowledged only once the database has it, so the entries of a node that died before
//! writing them are claimed and written by another (writing one twice changes nothing).

use std::time::Duration;

use redis::{
    AsyncCommands, RedisResult, Value,
    aio::ConnectionManager,
    streams::{
        StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
    },
};

use redis::ScriptInvocation;
use serde::Deserialize;
use switchboard_proto::UserRef;

use super::shared_call::SharedCall;
use crate::store::{Store, Write};

const STREAM: &str = "sb:records";
const GROUP: &str = "writers";
/// Most entries taken at once.
const BATCH: usize = 512;

/// Creates the consumer group (from the stream's start) unless it exists.
pub async fn ensure_group(manager: &mut ConnectionManager) -> RedisResult<()> {
    let created: RedisResult<()> = manager.xgroup_create_mkstream(STREAM, GROUP, "0").await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Entries no node has taken yet.
pub async fn take_new(manager: &mut ConnectionManager, node: &str) -> RedisResult<Vec<StreamId>> {
    let options = StreamReadOptions::default().group(GROUP, node).count(BATCH);
    let reply: Option<StreamReadReply> = manager.xread_options(&[STREAM], &[">"], &options).await?;
    Ok(reply
        .map(|reply| reply.keys.into_iter().flat_map(|key| key.ids).collect())
        .unwrap_or_default())
}

/// Entries another node took and has not written for `idle`: that node is gone or stuck.
pub async fn claim_stale(
    manager: &mut ConnectionManager,
    node: &str,
    idle: Duration,
) -> RedisResult<Vec<StreamId>> {
    let options = StreamAutoClaimOptions::default().count(BATCH);
    let reply: StreamAutoClaimReply = manager
        .xautoclaim_options(STREAM, GROUP, node, idle.as_millis() as u64, "0-0", options)
        .await?;
    Ok(reply.claimed)
}

/// Queues the entries' records for the database, and acknowledges (and deletes) them once it
/// has them; runs beside the link, so a slow commit never holds up a call.
pub fn write(entries: Vec<StreamId>, store: &Store, manager: &ConnectionManager) {
    if entries.is_empty() {
        return;
    }
    let mut ids = Vec::with_capacity(entries.len());
    for entry in entries {
        match record(&entry) {
            Some(write) => store.write(write),
            None => {
                tracing::warn!(entry = %entry.id, "an unreadable call record in Redis; dropped")
            }
        }
        ids.push(entry.id);
    }
    let (store, mut manager) = (store.clone(), manager.clone());
    tokio::spawn(async move {
        // Committed or given up (then counted as lost, and the process exits non-zero).
        let _ = store.flush().await;
        let acked: RedisResult<()> = async {
            manager.xack::<_, _, _, ()>(STREAM, GROUP, &ids).await?;
            manager.xdel::<_, _, ()>(STREAM, &ids).await
        }
        .await;
        if let Err(e) = acked {
            // Written, but another node will claim and write them again: harmless.
            tracing::warn!(error = %e, entries = ids.len(), "call records not acknowledged");
        }
    });
}

/// A presence change as the scripts record it (webhooks on).
#[derive(Deserialize)]
struct PresenceRecord {
    user: String,
    name: String,
    online: bool,
    /// Redis's clock, in ms (a Lua number: read as a float).
    at: f64,
}

/// The write an entry stands for: a call's record (`r`) or a presence change (`p`).
fn record(entry: &StreamId) -> Option<Write> {
    let field = |name| match entry.map.get(name)? {
        Value::BulkString(bytes) => Some(bytes.as_slice()),
        _ => None,
    };
    if let Some(bytes) = field("r") {
        let shared: SharedCall = serde_json::from_slice(bytes).ok()?;
        return Some(Write::Upsert(Box::new(shared.record)));
    }
    let presence: PresenceRecord = serde_json::from_slice(field("p")?).ok()?;
    Some(Write::Presence {
        user: UserRef {
            id: presence.user,
            name: presence.name,
        },
        online: presence.online,
        at: presence.at.max(0.0) as u64,
    })
}

/// Has a presence script record its changes in the stream (webhooks on), once each.
pub fn record_presence(invocation: &mut ScriptInvocation<'_>, record: bool) {
    if record {
        invocation.key(STREAM);
    }
}
