//! The writer thread: gathers queued writes into batches and commits each in one transaction.
//! A batch that meets a lock or an I/O error waits and tries again, for as long as the server
//! runs, while new writes gather in the queue behind it; a batch that fails for any other reason
//! is written one write at a time, so only the write at fault is lost. By default the thread
//! runs only when the signalling leaves a core free.

use std::{thread, time::Duration};

use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Op, Write, health::Shared, statements::apply_recorded};
use crate::webhooks::Recorder;

/// Most writes committed in one transaction.
const BATCH: usize = 1_024;
/// How long the writer lets more writes gather after the first. Every commit rewrites each page
/// it touched into the WAL, so under load one commit per couple of milliseconds costs a fraction
/// of one per handful of writes; an idle server only commits its lone write that much later.
const GATHER: Duration = Duration::from_millis(2);
/// The pause after a first failed attempt; it doubles with each further failure.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between attempts, so a lock that lifts is noticed within about a second
/// (plus SQLite's own busy wait).
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// Runs until every handle is gone and the queue is drained.
pub(super) fn run(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Op>,
    shared: &Shared,
    priority: WriterPriority,
) {
    priority.apply();
    let mut ops = Vec::with_capacity(BATCH);
    let mut writes = Vec::with_capacity(BATCH);
    let mut flushed = Vec::new();
    let mut webhooks: Option<Box<Recorder>> = None;
    while rx.blocking_recv_many(&mut ops, BATCH) > 0 {
        if ops.len() < BATCH {
            thread::sleep(GATHER);
            while ops.len() < BATCH {
                match rx.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
        }
        for op in ops.drain(..) {
            match op {
                Op::Write(write) => writes.push(write),
                Op::Flush(done) => flushed.push(done),
                Op::Webhooks(recorder) => webhooks = Some(recorder),
            }
        }
        commit(&mut conn, &writes, webhooks.as_deref(), shared);
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

/// How the writer thread competes for the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriterPriority {
    /// Behind every thread that is not idle itself (Linux's `SCHED_IDLE`): a commit never holds
    /// up a ring, and the writer runs on what the signalling and the rest of the machine leave.
    #[default]
    Idle,
    /// As any other thread: for a machine whose other work keeps every core busy, where an idle
    /// writer could fall behind.
    Normal,
}

impl WriterPriority {
    /// Applies to the calling thread; a system that refuses keeps the default and says so.
    fn apply(self) {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        if self == WriterPriority::Normal {
            return;
        }
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        let applied = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle);
        if let Err(error) = applied {
            tracing::warn!(?error, "the database writer keeps its scheduling priority");
        }
    }
}

/// Commits `writes`, trying until it succeeds or the shutdown deadline passes; each write is
/// then either in the database or counted as lost.
fn commit(conn: &mut Connection, writes: &[Write], webhooks: Option<&Recorder>, shared: &Shared) {
    let mut pause = FIRST_PAUSE;
    loop {
        let time_left = shared.time_left();
        if time_left == Some(Duration::ZERO) {
            // Past the deadline each batch gets one attempt that does not wait on a lock.
            let _ = conn.busy_timeout(Duration::ZERO);
        }
        let started = std::time::Instant::now();
        let attempt = match write_together(conn, writes, webhooks) {
            Err(e) if !is_transient(&e) => write_one_by_one(conn, writes, webhooks),
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
                thread::sleep(wait);
                pause = (pause * 2).min(LONGEST_PAUSE);
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

/// The whole batch in one transaction: the fast path.
fn write_together(
    conn: &mut Connection,
    writes: &[Write],
    webhooks: Option<&Recorder>,
) -> rusqlite::Result<()> {
    let tx = begin(conn)?;
    for write in writes {
        apply_recorded(&tx, write, webhooks)?;
    }
    tx.commit()
}

/// Each write in its own savepoint of one transaction: a write that fails is rolled back alone
/// and returned with its error. A transient error still fails the whole attempt, since trying
/// again later would succeed.
fn write_one_by_one<'w>(
    conn: &mut Connection,
    writes: &'w [Write],
    webhooks: Option<&Recorder>,
) -> rusqlite::Result<Vec<(&'w Write, rusqlite::Error)>> {
    let mut tx = begin(conn)?;
    let mut failed = Vec::new();
    for write in writes {
        let savepoint = tx.savepoint()?;
        match apply_recorded(&savepoint, write, webhooks) {
            Ok(()) => savepoint.commit()?,
            Err(e) if is_transient(&e) => return Err(e),
            Err(e) => {
                savepoint.finish()?;
                failed.push((write, e));
            }
        }
    }
    tx.commit()?;
    Ok(failed)
}

fn begin(conn: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    if !conn.is_autocommit() {
        // A rollback that failed after an I/O error can leave a transaction open; without this
        // every later BEGIN would fail.
        let _ = conn.execute_batch("ROLLBACK");
    }
    // IMMEDIATE takes the write lock up front, so waiting on another writer goes through the
    // busy timeout instead of failing halfway through the batch.
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// Errors that say nothing about the write itself: another connection holds the lock, or the
/// disk failed, filled up or went read-only. Trying again later can succeed.
fn is_transient(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
                | ErrorCode::FileLockingProtocolFailed
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's scheduling policy as the kernel reports it (`/proc`'s `stat`, the
    /// 41st field; the second, the name, is in brackets and may hold spaces).
    fn policy() -> u32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 1..];
        after_name
            .split_whitespace()
            .nth(41 - 3)
            .unwrap()
            .parse()
            .unwrap()
    }

    const SCHED_OTHER: u32 = 0;
    const SCHED_IDLE: u32 = 5;

    #[test]
    fn the_writer_runs_behind_the_signalling_unless_told_otherwise() {
        let on_a_thread = |priority: WriterPriority| {
            thread::spawn(move || {
                priority.apply();
                policy()
            })
            .join()
            .unwrap()
        };
        assert_eq!(on_a_thread(WriterPriority::default()), SCHED_IDLE);
        assert_eq!(on_a_thread(WriterPriority::Normal), SCHED_OTHER);
    }
}
