//! The history from SQLite: one read-only connection on a thread of its own, fed through a
//! bounded queue. In WAL mode it reads beside the writer without waiting on it; a queue that is
//! full answers `overloaded` rather than growing.

use std::{path::Path, sync::mpsc, thread, time::Duration};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use switchboard_proto::{CallId, UserRef};
use tokio::sync::oneshot;

use super::{COLUMNS, Columns, HistoryQuery, ReadError, stored};
use crate::calls::Call;

/// Queries waiting for the reader before more are refused: each takes milliseconds, so a
/// longer queue would only make every backend request wait longer.
const QUEUE: usize = 32;
/// How long a read waits on a lock (a checkpoint, a migration at start) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

type Job = Box<dyn FnOnce(&Connection) + Send>;

#[derive(Clone)]
pub struct Reader {
    jobs: mpsc::SyncSender<Job>,
}

impl Reader {
    /// Opens the file read-only and starts the thread; it ends once every handle is gone.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let (jobs, queue) = mpsc::sync_channel::<Job>(QUEUE);
        thread::Builder::new()
            .name("switchboard-history".into())
            .spawn(move || {
                for job in queue {
                    job(&conn);
                }
            })
            .map_err(ReadError::Thread)?;
        Ok(Self { jobs })
    }

    /// Runs `read` on the reader's thread.
    async fn run<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, ReadError> + Send + 'static,
    ) -> Result<T, ReadError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Box::new(move |conn| {
                let _ = reply.send(read(conn));
            }))
            .map_err(|e| match e {
                mpsc::TrySendError::Full(_) => ReadError::Busy,
                mpsc::TrySendError::Disconnected(_) => ReadError::Gone,
            })?;
        answer.await.map_err(|_| ReadError::Gone)?
    }

    pub async fn page(&self, query: HistoryQuery) -> Result<Vec<Call>, ReadError> {
        self.run(move |conn| page(conn, &query)).await
    }

    pub async fn call(&self, id: CallId) -> Result<Option<Call>, ReadError> {
        self.run(move |conn| {
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM calls WHERE id = ?1"))?
                .query_row([&id.0], columns)
                .optional()?
                .map(Columns::call)
                .transpose()
        })
        .await
    }
}

/// The newest calls below the cursor within the time range. A user's calls are read through
/// the two indexes by caller and by callee, each already in order, and merged; everybody's
/// calls are a scan of the table (no index leads with `placed_at`).
fn page(conn: &Connection, query: &HistoryQuery) -> Result<Vec<Call>, ReadError> {
    const RANGE: &str = "placed_at >= ?2 AND placed_at < ?3 AND (placed_at, id) < (?4, ?5) \
                         ORDER BY placed_at DESC, id DESC LIMIT ?6";
    let sql = match query.user {
        Some(_) => format!(
            "SELECT * FROM (SELECT {COLUMNS} FROM calls WHERE caller_id = ?1 AND {RANGE})
             UNION ALL
             SELECT * FROM (SELECT {COLUMNS} FROM calls
                            WHERE callee_id = ?1 AND caller_id <> ?1 AND {RANGE})
             ORDER BY placed_at DESC, id DESC LIMIT ?6"
        ),
        None => format!("SELECT {COLUMNS} FROM calls WHERE ?1 IS NULL AND {RANGE}"),
    };
    let (at, id) = query.start();
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(
        params![
            query.user,
            stored(query.since),
            stored(query.until),
            at,
            id,
            query.limit as i64
        ],
        columns,
    )?;
    rows.map(|row| row.map_err(ReadError::from).and_then(Columns::call))
        .collect()
}

fn columns(row: &Row<'_>) -> rusqlite::Result<Columns> {
    Ok(Columns {
        id: row.get(0)?,
        caller: UserRef {
            id: row.get(1)?,
            name: row.get(2)?,
        },
        callee: UserRef {
            id: row.get(3)?,
            name: row.get(4)?,
        },
        state: row.get(5)?,
        placed_at: row.get(6)?,
        ring_deadline: row.get(7)?,
        answered_at: row.get(8)?,
        ended_at: row.get(9)?,
        reason: row.get(10)?,
    })
}
