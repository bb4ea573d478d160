//! The senders' side of the outbox, on their own connection to the store's database (never the
//! writer's): taking due rows, only the first of each subject so its events go in order, and
//! holding them while they are sent (`claimed_until`), so nodes sharing the database do not send
//! the same row at once; then deleting what was delivered or given up and rescheduling the rest.

use std::{
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use rusqlite::{Connection, TransactionBehavior, params};
use tokio_postgres::{Client, NoTls};

use crate::calls::Millis;

/// How long a claim waits on the store's writer holding the SQLite lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the webhook outbox: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the webhook outbox on PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the webhook outbox's task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A row taken for sending.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub seq: i64,
    pub event_id: String,
    pub subject: String,
    pub body: String,
    /// When it was queued: it is given up `webhook_retry_for` later.
    pub created_at: Millis,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// What became of a claimed row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Acknowledged, or given up: the row goes.
    Done(i64),
    /// Failed: tried again at `due_at`, and the subject's later events wait with it.
    Retry {
        seq: i64,
        subject: String,
        due_at: Millis,
    },
}

/// Each URL's rows that may go next: due, not held by a sender, and first of their subject.
/// The subject's earlier rows block it however they stand (held, failing), so a call's events
/// reach a URL in order even when several nodes send.
const HEADS: &str = "SELECT seq FROM webhook_outbox AS o
    WHERE url = ?1 AND due_at <= ?2 AND claimed_until <= ?2
      AND NOT EXISTS (SELECT 1 FROM webhook_outbox AS e
          WHERE e.url = o.url AND e.subject = o.subject
            AND (e.step < o.step OR (e.step = o.step AND e.seq < o.seq)))
    ORDER BY due_at, seq LIMIT ?3";
const DELETE: &str = "DELETE FROM webhook_outbox WHERE seq = ?1";
const RETRY: &str = "UPDATE webhook_outbox SET attempts = attempts + 1, due_at = ?2,
    claimed_until = 0 WHERE seq = ?1";
/// The failed row's subject waits with it, so the senders do not look at its later rows until
/// then (during an outage that keeps each look at the outbox short).
const SUBJECT_WAITS: &str = "UPDATE webhook_outbox SET due_at = ?3
    WHERE url = ?1 AND subject = ?2 AND due_at < ?3";
const RELEASE: &str = "UPDATE webhook_outbox SET claimed_until = 0 WHERE seq = ?1";
const HURRY: &str = "UPDATE webhook_outbox SET due_at = ?2 WHERE url = ?1 AND due_at > ?2";

pub enum Queue {
    Sqlite(Arc<Mutex<Connection>>),
    Postgres(Box<Postgres>),
}

/// PostgreSQL, reconnected when the connection is lost.
pub struct Postgres {
    url: String,
    client: tokio::sync::Mutex<Option<Client>>,
}

impl Queue {
    /// Opens the SQLite file the store has already created and migrated.
    pub async fn sqlite(path: &Path) -> Result<Self, QueueError> {
        let path = path.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || -> rusqlite::Result<Connection> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // As the store's writer: the senders' commits hold the write lock too, and must not
            // hold it through an fsync each.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            Ok(conn)
        })
        .await??;
        Ok(Self::Sqlite(Arc::new(Mutex::new(conn))))
    }

    /// Connects to the PostgreSQL database the store has already migrated.
    pub async fn postgres(url: &str) -> Result<Self, QueueError> {
        let client = connect(url).await?;
        Ok(Self::Postgres(Box::new(Postgres {
            url: url.to_string(),
            client: tokio::sync::Mutex::new(Some(client)),
        })))
    }

    /// Takes up to `limit` of `url`'s rows that may go next, holding them until `until`.
    pub async fn claim(
        &self,
        url: &str,
        now: Millis,
        until: Millis,
        limit: usize,
    ) -> Result<Vec<Claimed>, QueueError> {
        let (url, now, until, limit) = (url.to_string(), ms(now), ms(until), limit as i64);
        match self {
            Self::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let claimed = tx
                        .prepare_cached(&format!(
                            "SELECT seq, event_id, subject, body, created_at, attempts
                             FROM webhook_outbox WHERE seq IN ({HEADS})"
                        ))?
                        .query_map(params![url, now, limit], |row| {
                            Ok(Claimed {
                                seq: row.get(0)?,
                                event_id: row.get(1)?,
                                subject: row.get(2)?,
                                body: row.get(3)?,
                                created_at: row.get::<_, i64>(4)?.max(0) as Millis,
                                attempts: row.get::<_, i64>(5)?.clamp(0, u32::MAX.into()) as u32,
                            })
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    for row in &claimed {
                        tx.prepare_cached(
                            "UPDATE webhook_outbox SET claimed_until = ?2 WHERE seq = ?1",
                        )?
                        .execute(params![row.seq, until])?;
                    }
                    tx.commit()?;
                    Ok(claimed)
                })
                .await
            }
            Self::Postgres(pg) => {
                // SKIP LOCKED: a row another node is claiming right now is left to it.
                let sql = format!(
                    "WITH heads AS ({} FOR UPDATE SKIP LOCKED)
                     UPDATE webhook_outbox AS w SET claimed_until = $4 FROM heads
                     WHERE w.seq = heads.seq
                     RETURNING w.seq, w.event_id, w.subject, w.body, w.created_at, w.attempts",
                    dollars(HEADS)
                );
                let rows = pg
                    .run(async |client| client.query(&sql, &[&url, &now, &limit, &until]).await)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|row| Claimed {
                        seq: row.get(0),
                        event_id: row.get(1),
                        subject: row.get(2),
                        body: row.get(3),
                        created_at: row.get::<_, i64>(4).max(0) as Millis,
                        attempts: row.get::<_, i32>(5).max(0) as u32,
                    })
                    .collect())
            }
        }
    }

    /// Records what became of `url`'s claimed rows, in one transaction.
    pub async fn settle(&self, url: &str, settled: Vec<Settled>) -> Result<(), QueueError> {
        let url = url.to_string();
        match self {
            Self::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    for outcome in &settled {
                        match outcome {
                            Settled::Done(seq) => {
                                tx.prepare_cached(DELETE)?.execute([seq])?;
                            }
                            Settled::Retry {
                                seq,
                                subject,
                                due_at,
                            } => {
                                let due_at = ms(*due_at);
                                tx.prepare_cached(RETRY)?.execute(params![seq, due_at])?;
                                tx.prepare_cached(SUBJECT_WAITS)?
                                    .execute(params![url, subject, due_at])?;
                            }
                        }
                    }
                    tx.commit()
                })
                .await
            }
            Self::Postgres(pg) => {
                pg.run(async |client| {
                    let tx = client.transaction().await?;
                    for outcome in &settled {
                        match outcome {
                            Settled::Done(seq) => {
                                tx.execute(&dollars(DELETE), &[seq]).await?;
                            }
                            Settled::Retry {
                                seq,
                                subject,
                                due_at,
                            } => {
                                let due_at = ms(*due_at);
                                tx.execute(&dollars(RETRY), &[seq, &due_at]).await?;
                                tx.execute(&dollars(SUBJECT_WAITS), &[&url, subject, &due_at])
                                    .await?;
                            }
                        }
                    }
                    tx.commit().await
                })
                .await
            }
        }
    }

    /// Makes every row of `url` due now: the endpoint works again after an outage, so what
    /// waited out its pause during it need not wait any longer.
    pub async fn hurry(&self, url: &str, now: Millis) -> Result<(), QueueError> {
        let (url, now) = (url.to_string(), ms(now));
        match self {
            Self::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    conn.execute(HURRY, params![url, now]).map(drop)
                })
                .await
            }
            Self::Postgres(pg) => {
                pg.run(async |client| {
                    client
                        .execute(&dollars(HURRY), &[&url, &now])
                        .await
                        .map(drop)
                })
                .await
            }
        }
    }

    /// Lets go of rows claimed and not sent (the server is stopping), so they go at once after
    /// a restart instead of when the claim runs out.
    pub async fn release(&self, seqs: Vec<i64>) -> Result<(), QueueError> {
        match self {
            Self::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    for seq in &seqs {
                        tx.prepare_cached(RELEASE)?.execute([seq])?;
                    }
                    tx.commit()
                })
                .await
            }
            Self::Postgres(pg) => {
                pg.run(async |client| {
                    for seq in &seqs {
                        client.execute(&dollars(RELEASE), &[seq]).await?;
                    }
                    Ok(())
                })
                .await
            }
        }
    }

    /// Rows queued and not yet delivered or given up, for every URL.
    pub async fn depth(&self) -> Result<i64, QueueError> {
        const COUNT: &str = "SELECT count(*) FROM webhook_outbox";
        match self {
            Self::Sqlite(conn) => {
                blocking(conn, |conn| conn.query_row(COUNT, [], |row| row.get(0))).await
            }
            Self::Postgres(pg) => {
                let row = pg
                    .run(async |client| client.query_one(COUNT, &[]).await)
                    .await?;
                Ok(row.get(0))
            }
        }
    }

    /// Deletes the rows of URLs no longer configured (nobody would ever send them); returns
    /// how many there were.
    pub async fn forget_other_urls(&self, urls: Vec<String>) -> Result<u64, QueueError> {
        let sql = format!(
            "DELETE FROM webhook_outbox WHERE url NOT IN ({})",
            (1..=urls.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        match self {
            Self::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    let deleted = conn.execute(&sql, rusqlite::params_from_iter(&urls))?;
                    Ok(deleted as u64)
                })
                .await
            }
            Self::Postgres(pg) => {
                pg.run(async |client| {
                    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = urls
                        .iter()
                        .map(|u| u as &(dyn tokio_postgres::types::ToSql + Sync))
                        .collect();
                    client.execute(&dollars(&sql), &params).await
                })
                .await
            }
        }
    }
}

/// Runs `f` on the SQLite connection off the async runtime.
async fn blocking<T: Send + 'static>(
    conn: &Arc<Mutex<Connection>>,
    f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, QueueError> {
    let conn = conn.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    })
    .await?;
    Ok(result?)
}

impl Postgres {
    /// Runs `f` on the connection, connecting first if the last one was lost. One statement
    /// or transaction at a time: the senders' are few and short.
    async fn run<T>(
        &self,
        f: impl AsyncFnOnce(&mut Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, QueueError> {
        let mut guard = self.client.lock().await;
        let client = match guard.take().filter(|client| !client.is_closed()) {
            Some(client) => guard.insert(client),
            None => guard.insert(connect(&self.url).await?),
        };
        Ok(f(client).await?)
    }
}

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "the webhook outbox's PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// `?1` → `$1`: the statements are written once for both databases.
fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

/// Milliseconds as both databases' 64-bit integers.
fn ms(at: Millis) -> i64 {
    i64::try_from(at).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://a.example/h";

    /// A database holding `rows` (event id, url, subject, step), due at 1,000.
    fn outbox(dir: &tempfile::TempDir, rows: &[(&str, &str, &str, i64)]) -> std::path::PathBuf {
        let path = dir.path().join("sb.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../../../schema.sql"))
            .unwrap();
        for (id, url, subject, step) in rows {
            conn.execute(
                "INSERT INTO webhook_outbox (event_id, url, subject, step, body, created_at,
                     due_at) VALUES (?1, ?2, ?3, ?4, '{}', 1000, 1000)",
                params![id, url, subject, step],
            )
            .unwrap();
        }
        path
    }

    async fn claim(queue: &Queue, now: Millis) -> Vec<String> {
        let mut ids: Vec<String> = queue
            .claim(URL, now, now + 10_000, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.event_id)
            .collect();
        ids.sort();
        ids
    }

    fn seq(path: &Path, id: &str) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT seq FROM webhook_outbox WHERE event_id = ?1",
                [id],
                |row| row.get(0),
            )
            .unwrap()
    }

    #[tokio::test]
    async fn each_subject_goes_in_order_and_each_row_to_one_sender() {
        let dir = tempfile::tempdir().unwrap();
        // Recorded out of order: the answer's row before the ring's.
        let path = outbox(
            &dir,
            &[
                ("a.answered", URL, "call:a", 1),
                ("a.ringing", URL, "call:a", 0),
                ("b.ringing", URL, "call:b", 0),
                ("b.ended", URL, "call:b", 2),
                ("a.ringing", "https://b.example/h", "call:a", 0),
            ],
        );
        // Two nodes' senders on one database.
        let one = Queue::sqlite(&path).await.unwrap();
        let two = Queue::sqlite(&path).await.unwrap();
        assert_eq!(claim(&one, 1_000).await, ["a.ringing", "b.ringing"]);
        assert!(
            claim(&two, 1_000).await.is_empty(),
            "held, or behind what is held"
        );

        one.settle(
            URL,
            vec![
                Settled::Done(seq(&path, "a.ringing")),
                Settled::Retry {
                    seq: seq(&path, "b.ringing"),
                    subject: "call:b".into(),
                    due_at: 5_000,
                },
            ],
        )
        .await
        .unwrap();
        // b waits out its pause, and its end waits with it.
        assert_eq!(claim(&two, 2_000).await, ["a.answered"]);
        assert!(claim(&one, 4_000).await.is_empty());
        assert_eq!(claim(&one, 5_000).await, ["b.ringing"]);
        // A claim that ran out (its sender died) is taken again.
        assert_eq!(claim(&two, 20_000).await, ["a.answered", "b.ringing"]);
        assert_eq!(one.depth().await.unwrap(), 4);

        two.release(vec![seq(&path, "a.answered"), seq(&path, "b.ringing")])
            .await
            .unwrap();
        assert_eq!(claim(&one, 20_000).await, ["a.answered", "b.ringing"]);
        assert_eq!(
            one.forget_other_urls(vec![URL.into()]).await.unwrap(),
            1,
            "the other URL's row"
        );
    }

    #[tokio::test]
    async fn a_working_endpoint_hurries_what_waited() {
        let dir = tempfile::tempdir().unwrap();
        let path = outbox(&dir, &[("a.ringing", URL, "call:a", 0)]);
        let queue = Queue::sqlite(&path).await.unwrap();
        let row = seq(&path, "a.ringing");
        assert_eq!(claim(&queue, 1_000).await, ["a.ringing"]);
        let retry = Settled::Retry {
            seq: row,
            subject: "call:a".into(),
            due_at: 600_000,
        };
        queue.settle(URL, vec![retry]).await.unwrap();
        assert!(claim(&queue, 2_000).await.is_empty());
        queue.hurry(URL, 2_000).await.unwrap();
        assert_eq!(claim(&queue, 2_000).await, ["a.ringing"]);
    }
}
