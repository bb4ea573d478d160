//! The SQL behind each kind of [`Write`], run inside whatever transaction or savepoint the writer
//! opened.

use super::{CallRecord, Write};
use crate::{calls::Call, webhooks::Recorder};
use rusqlite::{Connection, params};

/// A call's whole row.
const INSERT_CALL: &str = "INSERT INTO calls (id, caller_id, caller_name, callee_id, callee_name,
        state, placed_at, ring_deadline, answered_at, ended_at, reason, caller_link, callee_link)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// A call's whole row, or its state over an earlier one: a final state stays final, and an
/// answer does not go back to ringing.
const UPSERT_CALL: &str = "INSERT INTO calls (id, caller_id, caller_name, callee_id, callee_name,
        state, placed_at, ring_deadline, answered_at, ended_at, reason, caller_link, callee_link)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
     ON CONFLICT (id) DO UPDATE SET state = excluded.state,
        answered_at = excluded.answered_at, ended_at = excluded.ended_at,
        reason = excluded.reason
     WHERE calls.state = 'ringing'
        OR (calls.state = 'answered' AND excluded.state NOT IN ('ringing', 'answered'))";

/// Runs `sql` ([`INSERT_CALL`] or [`UPSERT_CALL`]) with the record's row as `now` has it.
fn write_row(
    conn: &Connection,
    sql: &str,
    record: &CallRecord,
    now: &Call,
) -> rusqlite::Result<()> {
    let CallRecord {
        call,
        caller_link,
        callee_link,
    } = record;
    conn.prepare_cached(sql)?.execute(params![
        call.id.0,
        call.caller.id,
        call.caller.name,
        call.callee.id,
        call.callee.name,
        now.state.as_str(),
        call.placed_at,
        call.ring_deadline,
        now.answered_at,
        now.ended_at,
        now.reason,
        caller_link,
        callee_link
    ])?;
    Ok(())
}

/// Applies one write and, with webhooks on, queues the events it causes beside it.
pub(super) fn apply_recorded(
    conn: &Connection,
    write: &Write,
    webhooks: Option<&Recorder>,
) -> rusqlite::Result<()> {
    let Some(webhooks) = webhooks else {
        return apply(conn, write);
    };
    let before = webhooks.before(conn, write)?;
    apply(conn, write)?;
    webhooks.after(conn, write, before)
}

/// Applies one write. Borrowed, so a batch that fails can be tried again as it was.
pub(super) fn apply(conn: &Connection, write: &Write) -> rusqlite::Result<()> {
    match write {
        Write::SeenUser { user, at } => {
            conn.prepare_cached(
                "INSERT INTO users (id, name, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (id) DO UPDATE SET name = ?2, last_seen = ?3",
            )?
            .execute(params![user.id, user.name, at])?;
        }
        Write::Insert(record) => write_row(conn, INSERT_CALL, record, &record.call)?,
        Write::Update(call) => {
            let changed = conn
                .prepare_cached(
                    "UPDATE calls SET state = ?2, answered_at = ?3, ended_at = ?4, reason = ?5
                     WHERE id = ?1",
                )?
                .execute(params![
                    call.id.0,
                    call.state.as_str(),
                    call.answered_at,
                    call.ended_at,
                    call.reason
                ])?;
            if changed == 0 {
                // The call's insert was lost: this change is lost with it, and said so.
                return Err(rusqlite::Error::QueryReturnedNoRows);
            }
        }
        // A final state stays final, and an answer does not go back to ringing; the same
        // change may come twice (a node that took over another's unfinished writes).
        Write::Upsert(record) => write_row(conn, UPSERT_CALL, record, &record.call)?,
        Write::Note { call, at, detail } => {
            // In a cluster the call's own record may still be on its way through Redis: a note
            // about a call this database does not have yet is dropped, not failed.
            conn.prepare_cached(
                "INSERT INTO call_notes (call_id, at, detail)
                 SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM calls WHERE id = ?1)",
            )?
            .execute(params![call.0, at, detail])?;
        }
        // Only the webhook tables record presence (`Recorder::after`).
        Write::Presence { .. } => {}
    }
    Ok(())
}
