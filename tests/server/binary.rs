//! The `switchboard` binary itself: flags and environment, the "listening" line, and a graceful
//! stop on SIGTERM that closes sessions and commits every write, or exits non-zero when it could
//! not.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, ChildStderr, Command, ExitStatus, Stdio},
    time::Duration,
};

use switchboard::store::read_call;
use switchboard_proto::CallState;

use crate::{common::Client, store::SmallDisk};

/// A running `switchboard` binary and the address it printed.
pub(crate) struct Binary {
    child: Child,
    pub(crate) addr: String,
    /// What it logged, once it has exited.
    stderr: Option<ChildStderr>,
}

impl Binary {
    fn spawn(db: &Path) -> Self {
        Self::spawn_with(db, |_| {})
    }

    /// As [`Binary::spawn`], with `tweak` applied to the command last.
    pub(crate) fn spawn_with(db: &Path, tweak: impl FnOnce(&mut Command)) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .args(["--listen", "127.0.0.1:0"])
            .arg("--db")
            .arg(db)
            .env("SWITCHBOARD_RING_TIMEOUT", "7s")
            .env(
                "SWITCHBOARD_ROOM_URL_TEMPLATE",
                "https://meet.example.org/{room}",
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        tweak(&mut command);
        let mut child = command.spawn().expect("the binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("switchboard listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let stderr = child.stderr.take();
        Self {
            child,
            addr,
            stderr,
        }
    }

    pub(crate) async fn user(&self, id: &str, name: &str) -> Client {
        let mut client = Client::connect(&format!("ws://{}/ws", self.addr)).await;
        client.login(id, name).await;
        client
    }

    pub(crate) fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the process a signal, e.g. `HUP`.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to end: its exit status and what it logged.
    pub(crate) async fn exit(mut self) -> (ExitStatus, String) {
        tokio::task::spawn_blocking(move || {
            let mut log = String::new();
            if let Some(mut stderr) = self.stderr.take() {
                stderr.read_to_string(&mut log).unwrap();
            }
            (self.child.wait().unwrap(), log)
        })
        .await
        .unwrap()
    }
}

impl Drop for Binary {
    /// A test that fails halfway leaves no server behind (a no-op once it has exited).
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test]
async fn starts_from_flags_and_env_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sb.db");
    let server = Binary::spawn(&db);
    let mut ann = server.user("ann", "Ann").await;
    let mut bob = server.user("bob", "Bob").await;
    let call = ann.call("bob").await;
    assert!(
        call.rings_for_ms
            .is_some_and(|ms| ms > 6_000 && ms <= 7_000),
        "{call:?}"
    );
    bob.call_in(CallState::Ringing).await;

    // Another connection holds the write lock, so the answer is still queued when the signal
    // comes: only the shutdown can commit it.
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.busy_timeout(Duration::from_secs(5)).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    bob.answer(&call.id).await;
    ann.call_in(CallState::Answered).await;
    server.terminate();
    assert_eq!(ann.closed().await, Some(1001));
    lock.execute_batch("COMMIT").unwrap();

    let (exit, log) = server.exit().await;
    assert!(exit.success(), "{exit:?}: {log}");
    let record = read_call(&db, &call.id)
        .unwrap()
        .expect("the call was committed");
    assert_eq!(record.call.state, CallState::Answered);
}

#[tokio::test]
async fn stops_with_a_failure_when_writes_were_lost() {
    let disk = SmallDisk::mount();
    let db = disk.path().join("sb.db");
    let server = Binary::spawn(&db);
    let mut ann = server.user("ann", "Ann").await;
    let _bob = server.user("bob", "Bob").await;
    disk.fill();
    let call = ann.call("bob").await;

    server.terminate();
    assert_eq!(ann.closed().await, Some(1001));
    let (exit, log) = server.exit().await;
    assert!(!exit.success(), "{exit:?}: {log}");
    assert!(log.contains("writes could not be saved"), "{log}");
    assert!(log.contains(&call.id.0), "the lost call is named: {log}");
    disk.free();
    assert_eq!(read_call(&db, &call.id).unwrap(), None);
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_name_each_call_step_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::spawn_with(&dir.path().join("sb.db"), |command| {
        command
            .env_remove("RUST_LOG")
            .env("SWITCHBOARD_LOG_FORMAT", "json");
    });
    let mut ann = server.user("ann", "Ann").await;
    let mut bob = server.user("bob", "Bob").await;
    let call = ann.call("bob").await;
    bob.call_in(CallState::Ringing).await;
    bob.answer(&call.id).await;
    bob.call_in(CallState::Answered).await;
    let answered = ann.call_in(CallState::Answered).await;
    let link = answered.link.expect("a link for the caller");
    ann.send(switchboard_proto::Command::Hangup {
        call: call.id.clone(),
    })
    .await;
    bob.call_in(CallState::Ended).await;
    server.terminate();
    let (exit, log) = server.exit().await;
    assert!(exit.success(), "{exit:?}: {log}");

    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["timestamp"].is_string() && l["level"].is_string()),
        "{log}"
    );
    let steps: Vec<(&str, &str, &str)> = lines
        .iter()
        .filter(|l| l["target"] == "switchboard::calls" && l["call"] == call.id.0.as_str())
        .map(|l| {
            assert_eq!(l["level"], "INFO");
            (
                l["state"].as_str().unwrap_or_default(),
                l["caller"].as_str().unwrap_or_default(),
                l["callee"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("ringing", "ann", "bob"),
            ("answered", "ann", "bob"),
            ("ended", "ann", "bob")
        ],
        "{log}"
    );
    let token = link.rsplit('/').next().unwrap_or_default();
    assert!(
        token.len() >= 16 && !log.contains(token),
        "a link leaked: {log}"
    );
}

#[tokio::test]
async fn serves_the_pages_and_the_client_bundle_from_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let server = Binary::spawn_with(&dir.path().join("sb.db"), |command| {
        command.current_dir(empty.path());
    });
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("http://{}{path}", server.addr));

    let index = get("/").send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(index.text().await.unwrap().contains("Switchboard demo"));
    let page = get("/user.html?id=ann&name=Ann").send().await.unwrap();
    assert!(page.text().await.unwrap().contains("client/switchboard.js"));

    let loader = get("/client/switchboard.js").send().await.unwrap();
    assert_eq!(loader.status(), 200);
    let loader = loader.text().await.unwrap();
    let wasm = loader
        .split(['"', '\'', '`'])
        .find(|s| s.starts_with("pkg/switchboard_client_bg.wasm?v="))
        .unwrap_or_else(|| panic!("the loader names a versioned bundle: {loader}"))
        .to_string();
    let bundle = get(&format!("/client/{wasm}"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
    assert_eq!(bundle.headers()["content-encoding"], "gzip");
    assert!(
        bundle.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let etag = bundle.headers()["etag"].clone();
    let body = bundle.bytes().await.unwrap();
    let plain = get(&format!("/client/{wasm}")).send().await.unwrap();
    assert_eq!(plain.headers()["content-type"], "application/wasm");
    let plain = plain.bytes().await.unwrap();
    assert!(
        plain.starts_with(b"\0asm") && plain.len() > body.len(),
        "a wasm module, gzipped above"
    );
    let again = get(&format!("/client/{wasm}"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(get("/no-such-page").send().await.unwrap().status(), 404);
    assert!(
        std::fs::read_dir(empty.path()).unwrap().next().is_none(),
        "nothing was written beside it"
    );
}

#[test]
fn refuses_a_bad_configuration_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--listen", "127.0.0.1:0", "--jwt-secret", "short"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("jwt_secret: must be at least 32 bytes"),
        "{stderr}"
    );
}
