//! SQLite behind one writer thread: WAL mode, batched transactions, typed async methods.
//! Only start-up reads the database; afterwards the async tasks only queue writes.

use std::{path::Path, thread, time::Duration};

use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use switchboard_proto::{CallId, CallState, UserRef};
use tokio::sync::{mpsc, oneshot};

use crate::calls::{Call, Millis};

/// Writes queued before senders wait; the hub then waits on SQLite, slowing everyone evenly.
const QUEUE: usize = 16_384;
/// Most writes committed in one transaction.
const BATCH: usize = 1_024;
/// How long the writer lets more writes gather after the first. Every commit rewrites each page
/// it touched into the WAL, so under load one commit per couple of milliseconds costs a fraction
/// of one per handful of writes; an idle server only commits its lone write that much later.
const GATHER: Duration = Duration::from_millis(2);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migrating the database: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("creating {0}: {1}")]
    Directory(String, std::io::Error),
    #[error("bad record in the database: {0}")]
    Corrupt(String),
}

/// A call as stored: the call and its two secret link tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    pub call: Call,
    pub caller_link: String,
    pub callee_link: String,
}

/// One change to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// The user was online at `at` under this name (first and last seen).
    SeenUser {
        user: UserRef,
        at: Millis,
    },
    Insert(Box<CallRecord>),
    /// The call changed state.
    Update(Box<Call>),
    /// Something happened to a call without changing its state.
    Note {
        call: CallId,
        at: Millis,
        detail: String,
    },
}

enum Op {
    Write(Write),
    Flush(oneshot::Sender<()>),
}

/// What the database held at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub users: Vec<UserRef>,
    /// Calls that were ringing or answered when the server stopped.
    pub live_calls: Vec<CallRecord>,
}

/// Queues writes for the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Op>,
}

/// Joins the writer thread; it ends once every [`Store`] handle is gone and the queue is drained.
pub struct Writer(thread::JoinHandle<()>);

impl Writer {
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the database writer panicked");
        }
    }
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!("../../schema.sql"))])
}

impl Store {
    /// Opens (creating and migrating) the database, reads what is live, and starts the writer.
    pub fn open(path: &Path) -> Result<(Store, Writer, Loaded), StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Directory(dir.display().to_string(), e))?;
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations().to_latest(&mut conn)?;
        let loaded = load(&conn)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = thread::Builder::new()
            .name("switchboard-store".into())
            .spawn(move || write_loop(conn, rx))
            .map_err(|e| StoreError::Directory("the writer thread".into(), e))?;
        Ok((Store { tx }, Writer(handle), loaded))
    }

    async fn send(&self, op: Op) {
        if self.tx.send(op).await.is_err() {
            tracing::error!("the database writer is gone; a write was dropped");
        }
    }

    pub async fn write(&self, write: Write) {
        self.send(Op::Write(write)).await;
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Flush(tx)).await;
        let _ = rx.await;
    }
}

fn load(conn: &Connection) -> Result<Loaded, StoreError> {
    let users = conn
        .prepare("SELECT id, name FROM users")?
        .query_map([], |row| {
            Ok(UserRef {
                id: row.get(0)?,
                name: row.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let live_calls = conn
        .prepare(
            "SELECT id, caller_id, caller_name, callee_id, callee_name, state, placed_at,
                    ring_deadline, answered_at, ended_at, reason, caller_link, callee_link
             FROM calls WHERE state IN ('ringing', 'answered')",
        )?
        .query_map([], read_record)?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(Loaded { users, live_calls })
}

fn read_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<CallRecord, StoreError>> {
    let state: String = row.get(5)?;
    let Some(state) = CallState::parse(&state) else {
        return Ok(Err(StoreError::Corrupt(format!("call state {state:?}"))));
    };
    Ok(Ok(CallRecord {
        call: Call {
            id: CallId(row.get(0)?),
            caller: UserRef {
                id: row.get(1)?,
                name: row.get(2)?,
            },
            callee: UserRef {
                id: row.get(3)?,
                name: row.get(4)?,
            },
            state,
            placed_at: row.get(6)?,
            ring_deadline: row.get(7)?,
            answered_at: row.get(8)?,
            ended_at: row.get(9)?,
            reason: row.get(10)?,
        },
        caller_link: row.get(11)?,
        callee_link: row.get(12)?,
    }))
}

fn write_loop(mut conn: Connection, mut rx: mpsc::Receiver<Op>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.blocking_recv_many(&mut batch, BATCH) > 0 {
        if batch.len() < BATCH {
            thread::sleep(GATHER);
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
        }
        let mut flushed = Vec::new();
        if let Err(e) = write_batch(&mut conn, batch.drain(..), &mut flushed) {
            tracing::error!(error = %e, "a batch of database writes failed");
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

fn write_batch(
    conn: &mut Connection,
    ops: impl Iterator<Item = Op>,
    flushed: &mut Vec<oneshot::Sender<()>>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for op in ops {
        let write = match op {
            Op::Write(write) => write,
            Op::Flush(done) => {
                flushed.push(done);
                continue;
            }
        };
        match write {
            Write::SeenUser { user, at } => {
                tx.prepare_cached(
                    "INSERT INTO users (id, name, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT (id) DO UPDATE SET name = ?2, last_seen = ?3",
                )?
                .execute(params![user.id, user.name, at])?;
            }
            Write::Insert(record) => {
                let CallRecord {
                    call,
                    caller_link,
                    callee_link,
                } = *record;
                tx.prepare_cached(
                    "INSERT INTO calls (id, caller_id, caller_name, callee_id, callee_name, state,
                        placed_at, ring_deadline, caller_link, callee_link)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    call.id.0,
                    call.caller.id,
                    call.caller.name,
                    call.callee.id,
                    call.callee.name,
                    call.state.as_str(),
                    call.placed_at,
                    call.ring_deadline,
                    caller_link,
                    callee_link
                ])?;
                insert_event(&tx, &call.id, call.placed_at, call.state.as_str(), None)?;
            }
            Write::Update(call) => {
                tx.prepare_cached(
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
                let at = call.ended_at.or(call.answered_at).unwrap_or(call.placed_at);
                insert_event(
                    &tx,
                    &call.id,
                    at,
                    call.state.as_str(),
                    call.reason.as_deref(),
                )?;
            }
            Write::Note { call, at, detail } => {
                insert_event(&tx, &call, at, "note", Some(&detail))?;
            }
        }
    }
    tx.commit()
}

fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    call: &CallId,
    at: Millis,
    state: &str,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO call_events (call_id, at, state, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![call.0, at, state, detail])?;
    Ok(())
}

/// Reads one call back (for tests and tools; the server itself never reads after start).
pub fn read_call(path: &Path, id: &CallId) -> Result<Option<CallRecord>, StoreError> {
    let conn = Connection::open(path)?;
    conn.query_row(
        "SELECT id, caller_id, caller_name, callee_id, callee_name, state, placed_at,
                ring_deadline, answered_at, ended_at, reason, caller_link, callee_link
         FROM calls WHERE id = ?1",
        [&id.0],
        read_record,
    )
    .optional()?
    .transpose()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::calls::{Input, Reachability, place, step};

    fn user(id: &str) -> UserRef {
        UserRef {
            id: id.into(),
            name: id.to_uppercase(),
        }
    }

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[tokio::test]
    async fn calls_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/sb.db");
        let (store, writer, loaded) = Store::open(&path).unwrap();
        assert!(loaded.users.is_empty() && loaded.live_calls.is_empty());

        let (ringing, _) = place(
            CallId("c1".into()),
            user("ann"),
            user("bob"),
            Reachability::Free,
            1_000,
            Duration::from_secs(45),
        )
        .unwrap();
        let rejected = CallRecord {
            call: ringing.clone(),
            caller_link: "l1".into(),
            callee_link: "l2".into(),
        };
        store
            .write(Write::SeenUser {
                user: user("ann"),
                at: 500,
            })
            .await;
        store
            .write(Write::SeenUser {
                user: user("bob"),
                at: 600,
            })
            .await;
        store.write(Write::Insert(Box::new(rejected))).await;
        let mut second = ringing.clone();
        second.id = CallId("c2".into());
        let second_record = CallRecord {
            call: second.clone(),
            caller_link: "l3".into(),
            callee_link: "l4".into(),
        };
        store.write(Write::Insert(Box::new(second_record))).await;
        let (done, _) = step(&ringing, Input::Reject { by: "bob".into() }, 2_000).unwrap();
        store.write(Write::Update(Box::new(done.clone()))).await;
        store.flush().await;
        drop(store);
        writer.join();

        let (_store, _writer, loaded) = Store::open(&path).unwrap();
        assert_eq!(loaded.users.len(), 2);
        assert_eq!(loaded.live_calls.len(), 1);
        assert_eq!(loaded.live_calls[0].call, second);
        assert_eq!(read_call(&path, &done.id).unwrap().unwrap().call, done);
    }
}
