//! A short run of every scenario that needs no restart against an in-process server: the tool
//! must connect, log in (signed and demo), call, watch, and report sane figures.

mod faulty_proxy;

use std::time::Duration;

use switchboard::{Config, config::Settings};
use tokio::net::TcpListener;

use faulty_proxy::{Fault, FaultyProxy};

/// Starts a server on port 0 sized for load and returns its WebSocket URL.
async fn server(
    dir: &tempfile::TempDir,
    jwt_secret: Option<&str>,
) -> (String, switchboard::Running) {
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        db: dir.path().join("switchboard.db"),
        // As for the servers the tool starts itself: load comes from a few loopback addresses
        // sending far more than people do, so no per-user, per-address or per-connection limit.
        calls_per_minute: 0,
        logins_per_minute: 0,
        logins_per_ip_per_minute: 0,
        connections_per_ip: 0,
        messages_per_second: 0,
        watches_per_minute: 0,
        max_connections: 0,
        max_sessions: 0,
        jwt_secret: jwt_secret.map(String::from),
        ring_timeout: Duration::from_secs(60),
        ..Settings::default()
    };
    let config = Config::from_settings(settings).expect("valid settings");
    let listener = TcpListener::bind(&config.listen).await.expect("bind");
    let running = switchboard::start(config, listener, std::future::pending())
        .await
        .expect("server starts");
    (format!("ws://{}/ws", running.addr), running)
}

/// Runs the tool once against `url` with `args` (split at spaces) and returns what it printed; fails the test if
/// it failed.
async fn bench(url: &str, args: &str) -> String {
    let (passed, stdout) = bench_verdict(url, args).await;
    assert!(passed, "the tool failed:\n{stdout}");
    stdout
}

/// Runs the tool once against `url` with `args` (split at spaces): whether it passed its run, and what it printed
/// and logged.
async fn bench_verdict(url: &str, args: &str) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-bench"))
        .args(["--url", url, "--runs", "1"])
        .args(args.split_whitespace())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("the tool finished in time")
        .expect("the tool ran");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let passed = output.status.success() && stdout.contains("RESULT: OK");
    (passed, format!("{stdout}\n{stderr}"))
}

/// A ramp from 100/s (× 1.25 a step) measured its first step and tried no other.
fn assert_stopped_at_the_first_step(output: &str) {
    assert!(output.contains("  rate 100/s: "), "{output}");
    assert!(!output.contains("  rate 125/s"), "{output}");
}

/// The number after `label` in the tool's output.
fn figure(output: &str, label: &str) -> f64 {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in:\n{output}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_calls_all_ring_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "a-smoke-test-secret-of-some-length";
    let (url, running) = server(&dir, Some(secret)).await;
    let out = bench(
        &url,
        &format!("--jwt-secret {secret} calls --sessions 100 --rate 200 --secs 2"),
    )
    .await;
    assert!(out.contains(" 0 errors"), "{out}");
    let achieved = figure(&out, "achieved:");
    assert!(achieved > 150.0, "{out}");
    // The schedule is exact: 200 calls a second for 2 s, every one placed and rung.
    assert!(
        out.contains(" 400 placed, 400 completed, 0 skipped"),
        "{out}"
    );
    let ring_line = out.lines().find(|l| l.trim().starts_with("ring ")).unwrap();
    assert!(ring_line.contains("(n=400)"), "{out}");
    // A ramp whose first step is out of bounds (no ring takes 0 ms) stops there and fails.
    let (passed, out) = bench_verdict(
        &url,
        &format!(
            "--jwt-secret {secret} calls --sessions 100 --rate 100 --secs 1 --ramp --p99-ms 0"
        ),
    )
    .await;
    assert!(!passed, "{out}");
    assert_stopped_at_the_first_step(&out);
    assert!(out.contains("no rate passed"), "{out}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_presence_report_sane_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (url, running) = server(&dir, None).await;
    let out = bench(&url, "idle --sessions 200 --hold 0.2").await;
    assert!(figure(&out, "connect rate:") > 0.0, "{out}");
    // The server runs in this process, so its CPU is this process's.
    let out = bench(
        &url,
        &format!(
            "--server-pid {} presence --sessions 100 --watchers 5 --rate 200 --secs 2",
            std::process::id()
        ),
    )
    .await;
    assert!(figure(&out, "deliveries:") > 500.0, "{out}");
    assert!(figure(&out, "server CPU per delivery:") > 0.0, "{out}");
    // A ramp stops at its first step out of bounds (no delivery takes 0 ms) and says so.
    let out = bench(
        &url,
        "presence --sessions 100 --watchers 5 --rate 100 --secs 1 --ramp --p99-ms 0",
    )
    .await;
    assert_stopped_at_the_first_step(&out);
    assert!(
        out.contains("highest clean delivery rate with p99 <= 0 ms: 0 deliveries/s"),
        "{out}"
    );
    running.stop().await;
}

/// The count after `label` on the misbehaving-client line for `kind`.
fn misbehaving(output: &str, kind: &str, label: &str) -> u64 {
    let line = output
        .lines()
        .find(|l| l.trim().starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} line in:\n{output}"));
    line.split(',')
        .find_map(|part| part.trim().strip_suffix(label))
        .and_then(|n| n.split_whitespace().last()?.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_complete_beside_misbehaving_clients() {
    let dir = tempfile::tempdir().unwrap();
    let (url, running) = server(&dir, None).await;
    let out = bench(
        &url,
        "calls --sessions 100 --rate 20 --secs 3 --misbehaving 8",
    )
    .await;
    assert!(out.contains(" 0 errors"), "{out}");
    for kind in ["never-read", "flood", "oversized", "garbage"] {
        assert!(misbehaving(&out, kind, "connections opened") >= 1, "{out}");
    }
    // A 70 KB frame and random bytes on the socket end the connection, and the client comes back.
    for kind in ["oversized", "garbage"] {
        assert!(
            misbehaving(&out, kind, "cut off by the server") >= 2,
            "{out}"
        );
        assert!(misbehaving(&out, kind, "connections opened") >= 3, "{out}");
    }
    assert!(misbehaving(&out, "flood", "frames sent") > 1000, "{out}");
    running.stop().await;
}

/// Presence through a proxy that spoils one event: the run must fail and name what was wrong.
async fn presence_through(fault: Fault) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let (url, running) = server(&dir, None).await;
    let proxy = FaultyProxy::start(&url, fault).await;
    let proxied = proxy.url();
    let verdict = bench_verdict(
        &proxied,
        "presence --sessions 40 --watchers 3 --rate 100 --secs 1",
    )
    .await;
    assert!(proxy.spoiled(), "the proxy saw too few presence events");
    running.stop().await;
    verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_fails_when_one_event_is_dropped() {
    let (passed, out) = presence_through(Fault::Drop(7)).await;
    assert!(!passed, "{out}");
    assert!(out.contains("1 missing, 0 duplicated, 0 stray"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_fails_when_one_event_is_sent_twice() {
    let (passed, out) = presence_through(Fault::Duplicate(7)).await;
    assert!(!passed, "{out}");
    assert!(out.contains("0 missing, 1 duplicated, 0 stray"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_passes_through_a_faithful_proxy() {
    let (passed, out) = presence_through(Fault::None).await;
    assert!(passed, "{out}");
    assert!(out.contains("0 missing, 0 duplicated, 0 stray"), "{out}");
}
