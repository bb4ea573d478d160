//! The store on PostgreSQL, for the nodes of a cluster on several machines: the same tables,
//! writes and guarantees as on SQLite. One writer thread runs its own small runtime: it
//! connects, migrates, reads what is live, then commits the queued writes in batches, trying a
//! batch again after a lost connection and writing it one write at a time (savepoints) when one
//! of them is refused.

mod statements;

use std::{sync::Arc, thread, time::Duration};

use statements::Refused;
use tokio::sync::mpsc;
use tokio_postgres::{Client, NoTls, error::SqlState};

use super::{Instruments, Loaded, Op, Store, StoreError, Write, Writer, health::Shared};
use crate::webhooks::Recorder;

/// Most writes committed in one transaction.
const BATCH: usize = 1_024;
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// The schema's versions, in order; a database is brought to the last.
const MIGRATIONS: [&str; 3] = [
    include_str!("migrations/1.sql"),
    include_str!("migrations/2.sql"),
    include_str!("migrations/3.sql"),
];
/// Held while migrating, so nodes starting together migrate once.
const MIGRATION_LOCK: i64 = 0x5357_4254_4348;

impl Store {
    /// Connects to PostgreSQL at `url`, migrates, reads what is live and starts the writer.
    pub fn open_postgres(
        url: &str,
        backlog_limit: u64,
        instruments: Instruments,
    ) -> Result<(Store, Writer, Loaded), StoreError> {
        let shared = Arc::new(Shared::new(backlog_limit, instruments));
        let (tx, rx) = mpsc::unbounded_channel();
        let (opened_tx, opened) = std::sync::mpsc::channel();
        let url = url.to_string();
        let thread = thread::Builder::new()
            .name("switchboard-store".into())
            .spawn({
                let shared = shared.clone();
                move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = opened_tx.send(Err(StoreError::Thread(e)));
                            return;
                        }
                    };
                    runtime.block_on(async move {
                        let client = match open(&url).await {
                            Ok((client, loaded)) => {
                                let _ = opened_tx.send(Ok(loaded));
                                client
                            }
                            Err(e) => {
                                let _ = opened_tx.send(Err(e));
                                return;
                            }
                        };
                        run(client, &url, rx, &shared).await;
                    });
                }
            })
            .map_err(StoreError::Thread)?;
        let loaded = opened.recv().map_err(|_| StoreError::WriterGone)??;
        let writer = Writer {
            thread,
            shared: shared.clone(),
        };
        Ok((Store { tx, shared }, writer, loaded))
    }
}

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "the PostgreSQL connection ended");
        }
    });
    Ok(client)
}

async fn open(url: &str) -> Result<(Client, Loaded), StoreError> {
    let mut client = connect(url).await?;
    migrate(&mut client).await?;
    let loaded = statements::load(&client).await?;
    Ok((client, loaded))
}

/// Brings the schema to the last version, once however many nodes start together.
async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .await?;
    let version: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await?
        .get(0);
    for (done, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.batch_execute(migration).await?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(done as i32 + 1)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Commits queued writes until every handle is gone and the queue is drained.
async fn run(mut client: Client, url: &str, mut rx: mpsc::UnboundedReceiver<Op>, shared: &Shared) {
    let mut ops = Vec::with_capacity(BATCH);
    let mut writes = Vec::with_capacity(BATCH);
    let mut flushed = Vec::new();
    let mut webhooks: Option<Box<Recorder>> = None;
    while rx.recv_many(&mut ops, BATCH).await > 0 {
        for op in ops.drain(..) {
            match op {
                Op::Write(write) => writes.push(write),
                Op::Flush(done) => flushed.push(done),
                Op::Webhooks(recorder) => webhooks = Some(recorder),
            }
        }
        commit(&mut client, url, &writes, webhooks.as_deref(), shared).await;
        if let Some(recorder) = &webhooks {
            recorder.committed();
        }
        shared.settled(writes.len());
        writes.clear();
        for done in flushed.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Commits `writes`, trying until it succeeds or the shutdown deadline passes; each write is
/// then either in the database or counted as lost.
async fn commit(
    client: &mut Client,
    url: &str,
    writes: &[Write],
    webhooks: Option<&Recorder>,
    shared: &Shared,
) {
    let mut pause = FIRST_PAUSE;
    loop {
        let time_left = shared.time_left();
        let started = std::time::Instant::now();
        let attempt = match write_together(client, writes, webhooks).await {
            Err(e) if !is_transient(&e) => write_one_by_one(client, writes, webhooks).await,
            together => together.map(|()| Vec::new()),
        };
        match attempt {
            Ok(failed) => {
                shared.committed(started.elapsed());
                shared.wrote();
                for (write, error) in failed {
                    shared.lose(write, &error);
                }
                return;
            }
            Err(e) if is_transient(&e) && time_left != Some(Duration::ZERO) => {
                shared.retrying(&e);
                let wait = time_left.map_or(pause, |left| left.min(pause));
                tokio::time::sleep(wait).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
                if client.is_closed() {
                    match connect(url).await {
                        Ok(fresh) => *client = fresh,
                        Err(e) => shared.failing(&e),
                    }
                }
            }
            Err(e) => {
                shared.failing(&e);
                for write in writes {
                    shared.lose(write, &e);
                }
                return;
            }
        }
    }
}

async fn write_together(
    client: &mut Client,
    writes: &[Write],
    webhooks: Option<&Recorder>,
) -> Result<(), Refused> {
    let tx = client.transaction().await?;
    for write in writes {
        statements::apply_recorded(&tx, write, webhooks).await?;
    }
    Ok(tx.commit().await?)
}

/// Each write in its own savepoint: a write that is refused is rolled back alone and returned
/// with its error.
async fn write_one_by_one<'w>(
    client: &mut Client,
    writes: &'w [Write],
    webhooks: Option<&Recorder>,
) -> Result<Vec<(&'w Write, Refused)>, Refused> {
    let mut tx = client.transaction().await?;
    let mut failed = Vec::new();
    for write in writes {
        let savepoint = tx.savepoint("write").await?;
        match statements::apply_recorded(&savepoint, write, webhooks).await {
            Ok(()) => savepoint.commit().await?,
            Err(e) if is_transient(&e) => return Err(e),
            Err(e) => {
                savepoint.rollback().await?;
                failed.push((write, e));
            }
        }
    }
    tx.commit().await?;
    Ok(failed)
}

/// Errors that say nothing about the writes: the connection or the server is gone, out of
/// resources, or a transaction lost a race. Trying again later can succeed.
fn is_transient(error: &Refused) -> bool {
    let Refused::Postgres(error) = error else {
        return false;
    };
    let Some(code) = error.code() else {
        // No SQLSTATE: the connection itself failed.
        return true;
    };
    let class = &code.code()[..2];
    matches!(class, "08" | "53" | "57" | "58")
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
}
