//! The SQL behind each kind of [`Write`] on PostgreSQL, and what is read back at start.

use switchboard_proto::{CallId, CallState, UserRef};
use tokio_postgres::{GenericClient, Row};

use crate::{
    calls::{Call, Millis},
    store::{CallRecord, Loaded, StoreError, Write},
    webhooks::Recorder,
};

/// Milliseconds as PostgreSQL's BIGINT.
fn ms(at: Millis) -> i64 {
    i64::try_from(at).unwrap_or(i64::MAX)
}

fn opt_ms(at: Option<Millis>) -> Option<i64> {
    at.map(ms)
}

/// Why a write was not applied.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// A change of a call that has no row: its insert was lost, and this change with it.
    #[error("the call is not in the database")]
    NoSuchCall,
}

/// Applies one write and, with webhooks on, queues the events it causes beside it.
pub async fn apply_recorded(
    db: &impl GenericClient,
    write: &Write,
    webhooks: Option<&Recorder>,
) -> Result<(), Refused> {
    let Some(webhooks) = webhooks else {
        return apply(db, write).await;
    };
    let before = webhooks.before_pg(db, write).await?;
    apply(db, write).await?;
    Ok(webhooks.after_pg(db, write, before).await?)
}

pub async fn apply(db: &impl GenericClient, write: &Write) -> Result<(), Refused> {
    match write {
        Write::SeenUser { user, at } => {
            db.execute(
                "INSERT INTO users (id, name, first_seen, last_seen) VALUES ($1, $2, $3, $3)
                 ON CONFLICT (id) DO UPDATE SET name = $2, last_seen = $3",
                &[&user.id, &user.name, &ms(*at)],
            )
            .await?;
        }
        Write::Insert(record) => insert_call(db, record, false).await?,
        Write::Update(call) => {
            let changed = db
                .execute(
                    "UPDATE calls SET state = $2, answered_at = $3, ended_at = $4, reason = $5
                 WHERE id = $1",
                    &[
                        &call.id.0,
                        &call.state.as_str(),
                        &opt_ms(call.answered_at),
                        &opt_ms(call.ended_at),
                        &call.reason,
                    ],
                )
                .await?;
            if changed == 0 {
                return Err(Refused::NoSuchCall);
            }
        }
        Write::Upsert(record) => insert_call(db, record, true).await?,
        Write::Note { call, at, detail } => {
            // In a cluster the call's own record may still be on its way through Redis: a note
            // about a call this database does not have yet is dropped, not failed.
            db.execute(
                "INSERT INTO call_notes (call_id, at, detail)
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM calls WHERE id = $1)",
                &[&call.0, &ms(*at), &detail],
            )
            .await?;
        }
        // Only the webhook tables record presence (`Recorder::after_pg`).
        Write::Presence { .. } => {}
    }
    Ok(())
}

/// A new call row; with `upsert`, one already there takes the newer state (a final state stays
/// final, an answer does not go back to ringing).
async fn insert_call(
    db: &impl GenericClient,
    record: &CallRecord,
    upsert: bool,
) -> Result<(), Refused> {
    let CallRecord {
        call,
        caller_link,
        callee_link,
    } = record;
    let on_conflict = if upsert {
        " ON CONFLICT (id) DO UPDATE SET state = excluded.state,
            answered_at = excluded.answered_at, ended_at = excluded.ended_at,
            reason = excluded.reason
          WHERE calls.state = 'ringing'
            OR (calls.state = 'answered' AND excluded.state NOT IN ('ringing', 'answered'))"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO calls (id, caller_id, caller_name, callee_id, callee_name, state, placed_at,
            ring_deadline, answered_at, ended_at, reason, caller_link, callee_link)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13){on_conflict}"
    );
    db.execute(
        &sql,
        &[
            &call.id.0,
            &call.caller.id,
            &call.caller.name,
            &call.callee.id,
            &call.callee.name,
            &call.state.as_str(),
            &ms(call.placed_at),
            &ms(call.ring_deadline),
            &opt_ms(call.answered_at),
            &opt_ms(call.ended_at),
            &call.reason,
            caller_link,
            callee_link,
        ],
    )
    .await?;
    Ok(())
}

/// The users seen, and the calls still ringing or answered.
pub async fn load(db: &impl GenericClient) -> Result<Loaded, StoreError> {
    let users = db
        .query("SELECT id, name FROM users", &[])
        .await?
        .iter()
        .map(|row| UserRef {
            id: row.get(0),
            name: row.get(1),
        })
        .collect();
    let live_calls = db
        .query(
            "SELECT id, caller_id, caller_name, callee_id, callee_name, state, placed_at,
                    ring_deadline, answered_at, ended_at, reason, caller_link, callee_link
             FROM calls WHERE state IN ('ringing', 'answered')",
            &[],
        )
        .await?
        .iter()
        .map(record)
        .collect::<Result<_, _>>()?;
    let announced = db
        .query("SELECT user_id FROM webhook_presence WHERE online", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    Ok(Loaded {
        users,
        live_calls,
        announced,
    })
}

fn record(row: &Row) -> Result<CallRecord, StoreError> {
    let state: String = row.get(5);
    let state = CallState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("call state {state:?}")))?;
    let millis = |i: usize| row.get::<_, i64>(i).max(0) as Millis;
    let opt_millis = |i: usize| row.get::<_, Option<i64>>(i).map(|v| v.max(0) as Millis);
    Ok(CallRecord {
        call: Call {
            id: CallId(row.get(0)),
            caller: UserRef {
                id: row.get(1),
                name: row.get(2),
            },
            callee: UserRef {
                id: row.get(3),
                name: row.get(4),
            },
            state,
            placed_at: millis(6),
            ring_deadline: millis(7),
            answered_at: opt_millis(8),
            ended_at: opt_millis(9),
            reason: row.get(10),
        },
        caller_link: row.get(11),
        callee_link: row.get(12),
    })
}
