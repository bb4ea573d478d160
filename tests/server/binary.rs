//! The `switchboard` binary itself: flags and environment, the "listening" line, and a graceful
//! stop on SIGTERM that closes sessions and commits every write.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use switchboard::store::read_call;
use switchboard_proto::CallState;

use crate::common::Client;

#[tokio::test]
async fn starts_from_flags_and_env_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sb.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--listen", "127.0.0.1:0", "--www", "www"])
        .arg("--db")
        .arg(&db)
        .env("SWITCHBOARD_RING_TIMEOUT", "7s")
        .env(
            "SWITCHBOARD_ROOM_URL_TEMPLATE",
            "https://meet.example.org/{room}",
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("switchboard listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    let url = format!("ws://{addr}/ws");
    let mut ann = Client::connect(&url).await;
    ann.login("ann", "Ann").await;
    let mut bob = Client::connect(&url).await;
    bob.login("bob", "Bob").await;
    let call = ann.call("bob").await;
    assert!(
        call.rings_for_ms
            .is_some_and(|ms| ms > 6_000 && ms <= 7_000),
        "{call:?}"
    );

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(ann.closed().await, Some(1001));
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let record = read_call(&db, &call.id)
        .unwrap()
        .expect("the call was committed");
    assert_eq!(record.call.state, CallState::Ringing);
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
