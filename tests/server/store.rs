//! The store under trouble: a database locked by another connection, a disk that fills up. Calls
//! go on in memory, `/healthz` and `/metrics` say what is wrong, and the writes land once the
//! database takes them again.

use std::{
    future::Future,
    io::Write as _,
    path::{Path, PathBuf},
    process::Command as Process,
    time::Duration,
};

use futures_util::future::join_all;
use rusqlite::Connection;
use switchboard_proto::{CallId, CallState, Command, ErrorCode, Event};
use tempfile::TempDir;
use tokio::time::Instant;

use crate::common::{Client, TestServer};

/// Waits until `check` holds, polling; panics naming `what` if it does not within 15 s.
pub async fn until<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `/healthz`: its status code and body.
async fn health(server: &TestServer) -> (u16, String) {
    let response = reqwest::get(server.url("/healthz")).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `switchboard_store_errors_total` for one outcome (`retried` or `lost`).
async fn store_errors(server: &TestServer, outcome: &str) -> f64 {
    let prefix = format!("switchboard_store_errors_total{{outcome=\"{outcome}\"}} ");
    let text = server.metrics().await;
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(0.0)
}

/// One call placed, answered and hung up over real WebSockets.
async fn talk(caller: &mut Client, callee: &mut Client, callee_id: &str) -> CallId {
    let call = caller.call(callee_id).await.id;
    callee.call_in(CallState::Ringing).await;
    callee.answer(&call).await;
    caller.call_in(CallState::Answered).await;
    callee.call_in(CallState::Answered).await;
    caller.send(Command::Hangup { call: call.clone() }).await;
    caller.call_in(CallState::Ended).await;
    callee.call_in(CallState::Ended).await;
    call
}

/// What the database holds for a call: its state, answer and end times, and its events' states.
struct Stored {
    state: String,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
    events: Vec<String>,
}

fn stored(db: &Path, call: &CallId) -> Option<Stored> {
    let conn = Connection::open(db).unwrap();
    let (state, answered_at, ended_at) = conn
        .query_row(
            "SELECT state, answered_at, ended_at FROM calls WHERE id = ?1",
            [&call.0],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .ok()?;
    let events = conn
        .prepare("SELECT state FROM call_events WHERE call_id = ?1 ORDER BY at, step")
        .unwrap()
        .query_map([&call.0], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    Some(Stored {
        state,
        answered_at,
        ended_at,
        events,
    })
}

fn ended_calls(db: &Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM calls WHERE state = 'ended'",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_for_ten_seconds_loses_no_call() {
    let server = TestServer::start().await;
    const PAIRS: usize = 8;
    const ROUNDS: usize = 12;
    let mut pairs = Vec::new();
    for i in 0..PAIRS {
        pairs.push((
            server.user(&format!("caller{i}")).await,
            server.user(&format!("callee{i}")).await,
        ));
    }

    // Another connection takes the write lock, as a backup or a `sqlite3` shell would.
    let lock = Connection::open(&server.db).unwrap();
    lock.busy_timeout(Duration::from_secs(5)).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let locked_at = Instant::now();

    // Calls go on in memory meanwhile: placed, answered and ended.
    let calls: Vec<CallId> = join_all(pairs.iter_mut().enumerate().map(
        |(i, (caller, callee))| async move {
            let mut calls = Vec::new();
            for _ in 0..ROUNDS {
                calls.push(talk(caller, callee, &format!("callee{i}")).await);
            }
            calls
        },
    ))
    .await
    .into_iter()
    .flatten()
    .collect();
    until("/healthz reports the lock", || async {
        let (status, body) = health(&server).await;
        status == 503 && body.contains("locked")
    })
    .await;
    assert!(
        locked_at.elapsed() < Duration::from_secs(10),
        "the calls took too long"
    );
    assert_eq!(ended_calls(&server.db), 0, "nothing can be written yet");

    // The lock is held for ten seconds in all.
    tokio::time::sleep_until(locked_at + Duration::from_secs(10)).await;
    lock.execute_batch("COMMIT").unwrap();

    until("every call is recorded as ended", || async {
        ended_calls(&server.db) == calls.len() as i64
    })
    .await;
    for call in &calls {
        let stored = stored(&server.db, call).expect("the call is recorded");
        assert_eq!(stored.state, "ended");
        assert!(stored.answered_at.is_some() && stored.ended_at.is_some());
        assert_eq!(stored.events, ["ringing", "answered", "ended"], "{call:?}");
    }
    until("/healthz is fine again", || async {
        health(&server).await.0 == 200
    })
    .await;
    assert!(store_errors(&server, "retried").await > 0.0);
    assert_eq!(store_errors(&server, "lost").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_healthz_and_the_writes_land_once_there_is_room() {
    let disk = SmallDisk::mount();
    let server = TestServer::start_with(|s| s.db = disk.path().join("sb.db")).await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    disk.fill();

    let first = talk(&mut ann, &mut bob, "bob").await;
    until("/healthz reports the full disk", || async {
        let (status, body) = health(&server).await;
        status == 503 && body.contains("full")
    })
    .await;
    assert!(store_errors(&server, "retried").await > 0.0);
    assert!(stored(&server.db, &first).is_none());
    // The server still serves calls.
    let second = talk(&mut bob, &mut ann, "ann").await;

    disk.free();
    until("both calls are recorded as ended", || async {
        ended_calls(&server.db) == 2
    })
    .await;
    for call in [&first, &second] {
        let stored = stored(&server.db, call).unwrap();
        assert_eq!(stored.events, ["ringing", "answered", "ended"]);
    }
    until("/healthz is fine again", || async {
        health(&server).await.0 == 200
    })
    .await;
    assert_eq!(store_errors(&server, "lost").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_too_far_behind_refuses_new_calls_and_finishes_the_others() {
    let server = TestServer::start_with(|s| s.store_backlog_limit = 20).await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let mut cat = server.user("cat").await;
    let mut dan = server.user("dan").await;
    let lock = Connection::open(&server.db).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();

    // A call that rings all through the backlog.
    let waiting = cat.call("dan").await.id;
    dan.call_in(CallState::Ringing).await;
    // Calls go on in memory until the writes behind them pass the limit; then a new call is
    // refused with a reason, and nothing else about the session changes.
    let mut talked = Vec::new();
    let refused = loop {
        assert!(talked.len() < 20, "no call was refused");
        let re = ann.send(Command::Call { to: "bob".into() }).await;
        let frame = ann.next().await;
        match frame.ev {
            Event::Call(view) => {
                bob.call_in(CallState::Ringing).await;
                bob.answer(&view.id).await;
                ann.call_in(CallState::Answered).await;
                bob.call_in(CallState::Answered).await;
                ann.send(Command::Hangup {
                    call: view.id.clone(),
                })
                .await;
                ann.call_in(CallState::Ended).await;
                bob.call_in(CallState::Ended).await;
                talked.push(view.id);
            }
            Event::Error { code, .. } => break (re, frame.re, code),
            other => panic!("expected a call or an error, got {other:?}"),
        }
    };
    let (sent, answered_to, code) = refused;
    assert_eq!((answered_to, code), (Some(sent), ErrorCode::Overloaded));
    bob.nothing_pending().await;
    let (status, body) = health(&server).await;
    assert_eq!(status, 503);
    assert!(body.contains("behind"), "{body}");

    // The call admitted before goes on to its end.
    dan.answer(&waiting).await;
    cat.call_in(CallState::Answered).await;
    dan.call_in(CallState::Answered).await;
    dan.send(Command::Hangup {
        call: waiting.clone(),
    })
    .await;
    cat.call_in(CallState::Ended).await;
    dan.call_in(CallState::Ended).await;

    lock.execute_batch("COMMIT").unwrap();
    until("every admitted call is recorded as ended", || async {
        ended_calls(&server.db) == talked.len() as i64 + 1
    })
    .await;
    for call in talked.iter().chain([&waiting]) {
        assert_eq!(
            stored(&server.db, call).unwrap().events,
            ["ringing", "answered", "ended"]
        );
    }
    until("/healthz is fine again", || async {
        health(&server).await.0 == 200
    })
    .await;
    // New calls are taken again.
    talk(&mut ann, &mut bob, "bob").await;
    assert_eq!(store_errors(&server, "lost").await, 0.0);
}

/// A small tmpfs on a fresh directory: a disk a test can fill up. Mounting needs root.
pub struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    pub fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Process::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs (this test needs root)");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.dir.path().join("filler")
    }

    /// Takes every free byte.
    pub fn fill(&self) {
        let mut file = std::fs::File::create(self.filler()).unwrap();
        for chunk in [64 * 1024, 4096, 1] {
            let bytes = vec![0u8; chunk];
            let error = loop {
                if let Err(e) = file.write_all(&bytes) {
                    break e;
                }
            };
            assert_eq!(error.kind(), std::io::ErrorKind::StorageFull, "{error}");
        }
    }

    pub fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily, since a server that was not stopped may still hold the database open.
        let _ = Process::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
