//! SQLite behind one writer thread: WAL mode, batched transactions, typed methods. Only
//! start-up reads the database; afterwards the async tasks only queue writes and never wait on
//! SQLite. Every queued write is kept until it commits; the queue's length is the backlog, and
//! while it is over its limit the hub refuses new calls (and `/healthz` fails) instead.

mod health;
mod postgres;
mod statements;
mod writer;

use std::{path::Path, sync::Arc, thread, time::Duration};

use prometheus_client::metrics::{
    counter::Counter, family::Family, gauge::Gauge, histogram::Histogram,
};
use rusqlite::{Connection, OptionalExtension};
use rusqlite_migration::{M, Migrations};
use switchboard_proto::{CallId, CallState, UserRef};
use tokio::sync::{mpsc, oneshot};

pub use health::Health;
use health::Shared;
pub use writer::WriterPriority;

use crate::{
    calls::{Call, Millis},
    metrics::OutcomeLabel,
};

/// The default backlog limit: writes waiting for the database (a lock, a full disk, a slow
/// disk) beyond which new calls are refused. Enough for a 10 s lock at 2,000 calls/s with three
/// writes each; about 25 MB of queued writes.
pub const BACKLOG_LIMIT: u64 = 65_536;
/// How long opening waits on another connection's lock (a backup, a shell) before failing.
const OPEN_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// WAL pages written before a checkpoint (SQLite's default: 1,000, about 4 MB).
const WAL_CHECKPOINT_PAGES: u32 = 8192;
/// How long one write attempt waits on a lock inside SQLite; a longer lock goes through the
/// writer's own retries, which keep the queue, report on `/healthz` and watch the shutdown
/// deadline.
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("migrating the database: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("creating {0}: {1}")]
    Directory(String, std::io::Error),
    #[error("starting the database writer: {0}")]
    Thread(std::io::Error),
    #[error("bad record in the database: {0}")]
    Corrupt(String),
    #[error("{0} writes could not be saved to the database")]
    Lost(u64),
    #[error("the database writer stopped unexpectedly")]
    WriterGone,
}

/// A call as stored: the call and its two secret link tokens.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// The call as it is now, whether or not this database has heard of it before: a node of a
    /// cluster records the steps it decided, and the call may have been placed on another.
    /// An older state never replaces a later one.
    Upsert(Box<CallRecord>),
    /// Something happened to a call without changing its state.
    Note {
        call: CallId,
        at: Millis,
        detail: String,
    },
    /// The user came online or went offline for everyone (never within the grace period): only
    /// webhooks record it, when they are on.
    Presence {
        user: UserRef,
        online: bool,
        at: Millis,
    },
}

impl Write {
    /// The call or the user the write is about, for logs.
    fn subject(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Write::SeenUser { user, .. } => (None, Some(&user.id)),
            Write::Insert(record) => (Some(&record.call.id.0), None),
            Write::Update(call) => (Some(&call.id.0), None),
            Write::Upsert(record) => (Some(&record.call.id.0), None),
            Write::Note { call, .. } => (Some(&call.0), None),
            Write::Presence { user, .. } => (None, Some(&user.id)),
        }
    }
}

enum Op {
    Write(Write),
    Flush(oneshot::Sender<()>),
    /// From now on each write also queues its webhooks.
    Webhooks(Box<crate::webhooks::Recorder>),
}

/// What the database held at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub users: Vec<UserRef>,
    /// Calls that were ringing or answered when the server stopped.
    pub live_calls: Vec<CallRecord>,
    /// Users the site's backend was last told are online (webhooks).
    pub announced: Vec<String>,
}

/// Queues writes for the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::UnboundedSender<Op>,
    shared: Arc<Shared>,
}

/// What the store reports to `/metrics`.
#[derive(Clone)]
pub struct Instruments {
    /// `switchboard_store_errors_total`: failed attempts (`retried`) and `lost` writes.
    pub errors: Family<OutcomeLabel, Counter>,
    /// `switchboard_store_backlog`: writes queued and not yet committed.
    pub backlog: Gauge,
    /// `switchboard_store_commit_seconds`: how long each committed batch took.
    pub commit_seconds: Histogram,
}

impl Default for Instruments {
    fn default() -> Self {
        Self {
            errors: Family::default(),
            backlog: Gauge::default(),
            commit_seconds: crate::metrics::latency_histogram(),
        }
    }
}

/// Joins the writer thread; it ends once every [`Store`] handle is gone and the queue is drained.
pub struct Writer {
    thread: thread::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl Writer {
    /// Waits for the last write; fails if any write since the start was lost.
    pub fn join(self) -> Result<(), StoreError> {
        self.thread.join().map_err(|_| StoreError::WriterGone)?;
        self.shared.outcome()
    }
}

/// The schema's versions, in order (SQLite's `user_version`); a database is brought to the last,
/// which the top-level `schema.sql` shows whole.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/1.sql")),
        M::up(include_str!("migrations/2.sql")),
        M::up(include_str!("migrations/3.sql")),
    ])
}

impl Store {
    /// Opens (creating and migrating) the database, reads what is live, and starts the writer
    /// at `priority`. Past `backlog_limit` queued writes, [`Store::behind`] says so.
    pub fn open(
        path: &Path,
        backlog_limit: u64,
        priority: WriterPriority,
        instruments: Instruments,
    ) -> Result<(Store, Writer, Loaded), StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Directory(dir.display().to_string(), e))?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(OPEN_BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints copy each page's newest version back once, however often it changed
        // since the last: fewer of them write less.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations().to_latest(&mut conn)?;
        let loaded = load(&conn)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let shared = Arc::new(Shared::new(backlog_limit, instruments));
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = thread::Builder::new()
            .name("switchboard-store".into())
            .spawn({
                let shared = shared.clone();
                move || writer::run(conn, rx, &shared, priority)
            })
            .map_err(StoreError::Thread)?;
        let writer = Writer {
            thread,
            shared: shared.clone(),
        };
        Ok((Store { tx, shared }, writer, loaded))
    }

    /// Queues a write without waiting; it stays queued until it commits, however long the
    /// database takes. Only a writer thread that is gone loses it (counted and logged).
    pub fn write(&self, write: Write) {
        self.shared.queued(1);
        if let Err(e) = self.tx.send(Op::Write(write)) {
            if let Op::Write(write) = e.0 {
                self.shared.lose(&write, &"the database writer is gone");
            }
            self.shared.settled(1);
        }
    }

    /// How many writes wait for the database, when that is over the backlog limit: the hub then
    /// takes no new calls, so the backlog stays bounded by the calls already under way.
    pub fn behind(&self) -> Option<u64> {
        self.shared.behind()
    }

    /// From now on every write also queues, in its own transaction, the webhook events it
    /// causes. Called once at start, before the first write.
    pub fn record_webhooks(&self, recorder: crate::webhooks::Recorder) {
        let _ = self.tx.send(Op::Webhooks(Box::new(recorder)));
    }

    /// Waits until everything queued so far is committed or given up; fails if any write since
    /// the start was lost.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Op::Flush(tx))
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?;
        self.shared.outcome()
    }

    /// The server is stopping: from now on the writer retries only for a short while, then
    /// gives up on what it cannot commit.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether the database takes writes, for `/healthz`.
    pub fn health(&self) -> Health {
        Health(self.shared.clone())
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
    let announced = conn
        .prepare("SELECT user_id FROM webhook_presence WHERE online")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(Loaded {
        users,
        live_calls,
        announced,
    })
}

/// Applies one write as the writer does, for the webhooks' tests.
#[cfg(test)]
pub(crate) fn apply_for_tests(conn: &Connection, write: &Write) -> rusqlite::Result<()> {
    statements::apply(conn, write)
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

    /// Ann's call to Bob, ringing since 1,000.
    fn ringing(id: &str) -> Call {
        place(
            CallId(id.into()),
            user("ann"),
            user("bob"),
            Reachability::Free,
            1_000,
            Duration::from_secs(45),
        )
        .unwrap()
        .0
    }

    fn record(call: &Call, links: [&str; 2]) -> Write {
        Write::Insert(Box::new(CallRecord {
            call: call.clone(),
            caller_link: links[0].into(),
            callee_link: links[1].into(),
        }))
    }

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    /// Every table, index and view with its columns, as SQLite describes them.
    fn layout(conn: &Connection) -> Vec<String> {
        let objects: Vec<(String, String)> = conn
            .prepare(
                "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'
                 ORDER BY type, name",
            )
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut layout = Vec::new();
        for (kind, name) in objects {
            let pragma = if kind == "index" {
                "index_xinfo"
            } else {
                "table_xinfo"
            };
            let columns: Vec<String> = conn
                .prepare(&format!("SELECT * FROM pragma_{pragma}(?1)"))
                .unwrap()
                .query_map([&name], |row| {
                    let count = row.as_ref().column_count();
                    (0..count)
                        .map(|i| {
                            row.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map(|values| values.join(" "))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            layout.push(format!("{kind} {name}: {}", columns.join(", ")));
        }
        let foreign: Vec<String> = conn
            .prepare(
                "SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list('call_notes')",
            )
            .unwrap()
            .query_map([], |row| {
                Ok(format!(
                    "{}{}{}",
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        layout.push(format!("call_notes references {foreign:?}"));
        layout
    }

    #[test]
    fn the_migrations_build_the_schema_that_schema_sql_shows() {
        let mut migrated = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut migrated).unwrap();
        let shown = Connection::open_in_memory().unwrap();
        shown
            .execute_batch(include_str!("../../../schema.sql"))
            .unwrap();
        assert_eq!(layout(&migrated), layout(&shown));
        let version: i64 = migrated
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert!(
            include_str!("../../../schema.sql").contains(&format!("(version {version},")),
            "schema.sql names version {version}"
        );
    }

    #[test]
    fn a_version_1_database_keeps_its_calls_and_their_history() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("migrations/1.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO calls VALUES ('c1', 'ann', 'Ann', 'bob', 'Bob', 'ended', 1000, 46000,
                 1200, 1900, 'Ann hung up', 'l1', 'l2');
             INSERT INTO calls VALUES ('c2', 'ann', 'Ann', 'bob', 'Bob', 'ringing', 2000, 47000,
                 NULL, NULL, NULL, 'l3', 'l4');
             INSERT INTO call_events VALUES ('c1', 1000, 'ringing', NULL),
                 ('c1', 1200, 'answered', NULL), ('c1', 1500, 'note', 'the room was slow'),
                 ('c1', 1900, 'ended', 'Ann hung up'), ('c2', 2000, 'ringing', NULL);",
        )
        .unwrap();
        migrations().to_latest(&mut conn).unwrap();

        let events: Vec<(String, i64, String, Option<String>)> = conn
            .prepare(
                "SELECT call_id, at, state, detail FROM call_events ORDER BY call_id, at, step",
            )
            .unwrap()
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let event = |call: &str, at: i64, state: &str, detail: Option<&str>| {
            (
                call.to_string(),
                at,
                state.to_string(),
                detail.map(String::from),
            )
        };
        assert_eq!(
            events,
            [
                event("c1", 1_000, "ringing", None),
                event("c1", 1_200, "answered", None),
                event("c1", 1_500, "note", Some("the room was slow")),
                event("c1", 1_900, "ended", Some("Ann hung up")),
                event("c2", 2_000, "ringing", None),
            ]
        );
        let live = load(&conn).unwrap().live_calls;
        assert_eq!(live.len(), 1);
        assert_eq!(
            (live[0].call.id.0.as_str(), live[0].callee_link.as_str()),
            ("c2", "l4")
        );
    }

    #[tokio::test]
    async fn calls_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/sb.db");
        let (store, writer, loaded) = Store::open(
            &path,
            BACKLOG_LIMIT,
            WriterPriority::Idle,
            Instruments::default(),
        )
        .unwrap();
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
        store.write(Write::SeenUser {
            user: user("ann"),
            at: 500,
        });
        store.write(Write::SeenUser {
            user: user("bob"),
            at: 600,
        });
        store.write(Write::Insert(Box::new(rejected)));
        let mut second = ringing.clone();
        second.id = CallId("c2".into());
        let second_record = CallRecord {
            call: second.clone(),
            caller_link: "l3".into(),
            callee_link: "l4".into(),
        };
        store.write(Write::Insert(Box::new(second_record)));
        let (done, _) = step(&ringing, Input::Reject { by: "bob".into() }, 2_000).unwrap();
        store.write(Write::Update(Box::new(done.clone())));
        store.flush().await.unwrap();
        drop(store);
        writer.join().unwrap();

        let (_store, _writer, loaded) = Store::open(
            &path,
            BACKLOG_LIMIT,
            WriterPriority::Idle,
            Instruments::default(),
        )
        .unwrap();
        assert_eq!(loaded.users.len(), 2);
        assert_eq!(loaded.live_calls.len(), 1);
        assert_eq!(loaded.live_calls[0].call, second);
        assert_eq!(read_call(&path, &done.id).unwrap().unwrap().call, done);
    }

    #[tokio::test]
    async fn a_call_placed_and_ended_in_one_batch_keeps_its_last_state_and_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sb.db");
        let (store, writer, _) = Store::open(
            &path,
            BACKLOG_LIMIT,
            WriterPriority::Idle,
            Instruments::default(),
        )
        .unwrap();
        let (whole, split) = (ringing("c1"), ringing("c2"));
        let (answered, _) = step(&whole, Input::Answer { by: "bob".into() }, 1_200).unwrap();
        let (ended, _) = step(&answered, Input::Hangup { by: "ann".into() }, 1_900).unwrap();
        let (split_answered, _) = step(&split, Input::Answer { by: "bob".into() }, 1_300).unwrap();
        // One batch: c1 from placed to ended; c2 placed only.
        store.write(record(&whole, ["l1", "l2"]));
        store.write(record(&split, ["l3", "l4"]));
        store.write(Write::Update(Box::new(answered.clone())));
        store.write(Write::Update(Box::new(ended.clone())));
        store.flush().await.unwrap();
        // c2's answer in a later batch updates the row it finds.
        store.write(Write::Update(Box::new(split_answered.clone())));
        store.flush().await.unwrap();
        drop(store);
        writer.join().unwrap();

        assert_eq!(read_call(&path, &whole.id).unwrap().unwrap().call, ended);
        assert_eq!(
            read_call(&path, &split.id).unwrap().unwrap().call,
            split_answered
        );
        let conn = Connection::open(&path).unwrap();
        let events: Vec<(String, i64, String)> = conn
            .prepare("SELECT call_id, at, state FROM call_events ORDER BY call_id, at, step")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let event = |call: &str, at: i64, state: &str| (call.to_string(), at, state.to_string());
        assert_eq!(
            events,
            [
                event("c1", 1_000, "ringing"),
                event("c1", 1_200, "answered"),
                event("c1", 1_900, "ended"),
                event("c2", 1_000, "ringing"),
                event("c2", 1_300, "answered"),
            ]
        );
    }

    #[tokio::test]
    async fn one_bad_write_does_not_take_its_batch_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sb.db");
        let instruments = Instruments::default();
        let errors = instruments.errors.clone();
        let (store, writer, _) =
            Store::open(&path, BACKLOG_LIMIT, WriterPriority::Idle, instruments).unwrap();
        let (first, second, never) = (ringing("c1"), ringing("c2"), ringing("c3"));
        let (answered, _) = step(&first, Input::Answer { by: "bob".into() }, 1_500).unwrap();

        // Queued together, so the writer takes them as one batch.
        store.write(record(&first, ["l1", "l2"]));
        // An update of a call whose insert never landed: there is no row to change.
        store.write(Write::Update(Box::new(never.clone())));
        // The first call inserted again: its primary key.
        store.write(record(&first, ["l6", "l7"]));
        store.write(Write::Update(Box::new(answered.clone())));
        store.write(record(&second, ["l4", "l5"]));

        assert!(matches!(store.flush().await, Err(StoreError::Lost(2))));
        assert_eq!(
            errors
                .get_or_create(&OutcomeLabel { outcome: "lost" })
                .get(),
            2
        );
        drop(store);
        assert!(matches!(writer.join(), Err(StoreError::Lost(2))));
        let kept = read_call(&path, &first.id).unwrap().unwrap();
        assert_eq!((kept.call, kept.caller_link.as_str()), (answered, "l1"));
        assert_eq!(read_call(&path, &second.id).unwrap().unwrap().call, second);
        assert_eq!(read_call(&path, &never.id).unwrap(), None);
        let events: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM call_events", [], |row| row.get(0))
            .unwrap();
        assert_eq!(events, 3, "c1 placed and answered, c2 placed");
    }

    #[tokio::test]
    async fn a_locked_database_loses_nothing_and_reports_its_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sb.db");
        let instruments = Instruments::default();
        let backlog = instruments.backlog.clone();
        let (store, writer, _) =
            Store::open(&path, 1_000, WriterPriority::Idle, instruments).unwrap();
        let lock = Connection::open(&path).unwrap();
        lock.execute_batch("BEGIN IMMEDIATE").unwrap();

        // Far more writes than the limit, while the database takes none: none waits, none is
        // lost, and the store says how far behind it is.
        const WRITES: u64 = 10_000;
        assert_eq!(store.behind(), None);
        for i in 0..WRITES {
            store.write(Write::SeenUser {
                user: user(&format!("u{i}")),
                at: 1,
            });
        }
        assert_eq!(backlog.get() as u64, WRITES);
        assert_eq!(store.behind(), Some(WRITES));
        assert_eq!(
            store.shared.lost.load(std::sync::atomic::Ordering::Relaxed),
            0
        );

        lock.execute_batch("COMMIT").unwrap();
        store.flush().await.unwrap();
        assert_eq!(store.behind(), None);
        assert_eq!(backlog.get(), 0);
        drop(store);
        writer.join().unwrap();
        let users: u64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM users", [], |row| row.get(0))
            .unwrap();
        assert_eq!(users, WRITES, "every write landed");
    }
}
