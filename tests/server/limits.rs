//! Clients that try to hold the server hostage: readers that stop reading, floods of messages,
//! crowds of sockets from one address, and a demo server opened to the network. Each is let go
//! or turned away; everyone else carries on at their usual pace.

use std::{
    process::{Command as Process, Stdio},
    time::Duration,
};

use futures_util::SinkExt;
use switchboard_proto::{CallState, Command, ErrorCode, Event};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::common::{Client, TestServer, client::open_from};

/// Waits until `metric` reads `value`, for at most `wait`; says how long it took.
async fn metric_reaches(server: &TestServer, metric: &str, value: f64, wait: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let now = server.metric(metric).await;
        if now == value {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < wait,
            "{metric} is still {now} after {wait:?}, not {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_that_floods_and_never_reads_is_dropped_at_the_write_deadline() {
    let server = TestServer::start_with(|s| {
        s.write_timeout = Duration::from_secs(1);
        s.ping_interval = Duration::from_secs(4);
        s.idle_timeout = Duration::from_secs(10);
        // The message budget would close it first; this is about the writes.
        s.messages_per_second = 0;
    })
    .await;
    let mut flooder = Client::connect_with_small_buffer(&server.ws_url()).await;
    flooder.login("flooder", "Flooder").await;
    assert_eq!(server.metric("switchboard_connections").await, 1.0);

    // Garbage, each answered with an error, until the server stops taking more: it is then
    // blocked writing answers the flooder never reads.
    let mut sent = 0u32;
    loop {
        let frame = Message::Text("x".into());
        match timeout(Duration::from_millis(500), flooder.ws.send(frame)).await {
            Ok(Ok(())) => sent += 1,
            Ok(Err(_)) | Err(_) => break,
        }
        assert!(sent < 2_000_000, "the server never stopped reading");
    }
    let stalled_at = Instant::now();

    // Without the flooder ever reading again, its connection goes, and its session after the
    // grace period.
    metric_reaches(
        &server,
        "switchboard_connections",
        0.0,
        Duration::from_secs(5),
    )
    .await;
    let gone_after = stalled_at.elapsed();
    metric_reaches(&server, "switchboard_sessions", 0.0, Duration::from_secs(5)).await;
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"switchboard_dropped_connections_total{reason="write_timeout"} 1"#),
        "{metrics}"
    );
    eprintln!("flooder sent {sent} frames; dropped {gone_after:?} after the server stalled");
    drop(flooder);

    // The server serves others as before.
    let mut ann = server.user("ann").await;
    ann.send(Command::Watch {
        users: vec!["flooder".into()],
    })
    .await;
    assert!(!ann.presence().await.2);
}

#[tokio::test]
async fn a_flooding_client_is_refused_then_closed_while_a_call_rings_on_time() {
    let server = TestServer::start_with(|s| {
        s.messages_per_second = 1;
        s.message_burst = 5;
    })
    .await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;

    let mut flooder = server.client().await;
    let flood = tokio::spawn(async move {
        let mut refused = 0;
        for _ in 0..1_000 {
            // One at a time, reading each answer: nothing is left unread when the server
            // closes, so the close frame is seen.
            if flooder.ws.send(Message::Text("x".into())).await.is_err() {
                return (refused, None);
            }
            match flooder.try_next(Duration::from_secs(5)).await {
                Some(Ok(frame)) => match frame.ev {
                    Event::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    } => refused += 1,
                    Event::Error {
                        code: ErrorCode::BadFrame,
                        ..
                    } => {}
                    other => panic!("unexpected {other:?}"),
                },
                Some(Err(code)) => return (refused, code),
                None => panic!("no answer to a frame"),
            }
        }
        (refused, None)
    });

    let start = Instant::now();
    ann.send(Command::Call { to: "bob".into() }).await;
    bob.call_in(CallState::Ringing).await;
    let rang_after = start.elapsed();
    assert!(rang_after < Duration::from_millis(500), "{rang_after:?}");
    eprintln!("the call rang {rang_after:?} after it was placed, during the flood");

    let (refused, close) = flood.await.unwrap();
    assert!(
        refused >= 1,
        "the flooder was never told it was rate limited"
    );
    assert_eq!(close, Some(1008));
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"switchboard_refusals_total{code="rate_limited"}"#),
        "{metrics}"
    );
    // Ann is unaffected and can carry on.
    ann.call_in(CallState::Ringing).await;
}

#[tokio::test]
async fn a_client_that_keeps_sending_a_few_times_its_rate_is_closed() {
    let server = TestServer::start_with(|s| {
        s.messages_per_second = 10;
        s.message_burst = 10;
    })
    .await;
    let mut client = server.client().await;
    let (mut accepted, mut refused) = (0, 0);
    let start = Instant::now();
    // Four times the rate, steadily: every fourth message fits the budget, so the refusals
    // never run twenty in a row, yet the client never backs off.
    let close = loop {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still open after {accepted} accepted and {refused} refused messages"
        );
        if client.ws.send(Message::Text("x".into())).await.is_err() {
            break None;
        }
        match client.try_next(Duration::from_secs(5)).await {
            Some(Ok(frame)) => match frame.ev {
                Event::Error {
                    code: ErrorCode::RateLimited,
                    ..
                } => refused += 1,
                Event::Error {
                    code: ErrorCode::BadFrame,
                    ..
                } => accepted += 1,
                other => panic!("unexpected {other:?}"),
            },
            Some(Err(code)) => break code,
            None => panic!("no answer to a frame"),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(close, Some(1008));
    assert!(
        accepted > 10,
        "{accepted} accepted: the budget refilled between refusals"
    );
    eprintln!(
        "closed after {accepted} accepted and {refused} refused in {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_watch_flood_is_refused_before_other_messages_are() {
    let server = TestServer::start_with(|s| s.watches_per_minute = 2).await;
    let mut ann = server.user("ann").await;
    let mut refused = None;
    for round in 0..10 {
        let id = ann
            .send(Command::Watch {
                users: (0..200).map(|i| format!("u{i}")).collect(),
            })
            .await;
        let first = ann.next().await;
        assert_eq!(first.re, Some(id));
        match first.ev {
            Event::Error {
                code: ErrorCode::RateLimited,
                ..
            } => {
                refused = Some(round);
                break;
            }
            Event::Presence { .. } => {
                for _ in 1..200 {
                    ann.presence().await;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    // The burst of watches is five; other messages still pass.
    assert_eq!(refused, Some(5));
    ann.send(Command::Call {
        to: "nobody".into(),
    })
    .await;
    assert_eq!(ann.error().await.1, ErrorCode::UnknownUser);
}

fn refused_with(result: Result<impl Sized, tungstenite::Error>) -> (u16, String) {
    match result {
        Err(tungstenite::Error::Http(response)) => (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into(),
        ),
        Err(other) => panic!("expected an HTTP refusal, got {other:?}"),
        Ok(_) => panic!("expected a refusal, the connection was admitted"),
    }
}

#[tokio::test]
async fn sockets_beyond_an_address_share_are_refused_and_other_addresses_served() {
    let server = TestServer::start_with(|s| {
        s.connections_per_ip = 20;
        s.trusted_proxies = vec!["127.0.0.3".into()];
    })
    .await;
    let url = server.ws_url();
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(open_from(&url, "127.0.0.1", None).await.expect("admitted"));
    }
    for _ in 0..200 {
        let (status, reason) = refused_with(open_from(&url, "127.0.0.1", None).await);
        assert_eq!(status, 429);
        assert!(reason.contains("too many connections"), "{reason}");
    }
    // A client cannot name itself someone else.
    let (status, _) = refused_with(open_from(&url, "127.0.0.1", Some("10.0.0.1")).await);
    assert_eq!(status, 429);
    // Another address has its own share, and can talk.
    for _ in 0..20 {
        held.push(open_from(&url, "127.0.0.2", None).await.expect("admitted"));
    }
    let mut other = Client::wrap(held.pop().unwrap());
    other
        .send_frame(&switchboard_proto::ClientFrame::new(Command::Hello {
            v: switchboard_proto::PROTOCOL_VERSION,
            resume: None,
        }))
        .await;
    assert!(matches!(other.event().await, Event::Welcome { .. }));
    // Behind a trusted proxy, each forwarded client has its own share.
    for _ in 0..20 {
        let ws = open_from(&url, "127.0.0.3", Some("203.0.113.5")).await;
        held.push(ws.expect("admitted"));
    }
    let (status, _) = refused_with(open_from(&url, "127.0.0.3", Some("203.0.113.5")).await);
    assert_eq!(status, 429);
    held.push(
        open_from(&url, "127.0.0.3", Some("203.0.113.6"))
            .await
            .expect("admitted"),
    );
    assert_eq!(server.metric("switchboard_connections").await, 61.0);

    // A closed socket gives its place back.
    drop(held.remove(0));
    let start = Instant::now();
    while open_from(&url, "127.0.0.1", None).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn limits_changed_by_a_reload_apply_without_a_restart() {
    let mut server = TestServer::start_with(|s| {
        s.connections_per_ip = 2;
        s.calls_per_minute = 100;
    })
    .await;
    let url = server.ws_url();
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    assert_eq!(
        refused_with(open_from(&url, "127.0.0.1", None).await).0,
        429
    );

    let reloaded = server
        .reload(|s| {
            s.connections_per_ip = 3;
            s.calls_per_minute = 1;
            s.replay_events = 10;
        })
        .await;
    assert_eq!(reloaded.applied, ["limits", "admission"]);
    assert_eq!(
        reloaded.need_restart,
        ["send_queue/replay_events/max_watched"]
    );
    // The admission cap judges the next socket, the hub's call rate the next call.
    let _third = open_from(&url, "127.0.0.1", None).await.expect("admitted");
    let call = ann.call("bob").await;
    bob.call_in(CallState::Ringing).await;
    ann.send(Command::Cancel { call: call.id }).await;
    ann.call_in(CallState::Cancelled).await;
    ann.send(Command::Call { to: "bob".into() }).await;
    assert_eq!(ann.error().await.1, ErrorCode::RateLimited);
    // The same settings again change nothing.
    let again = server.reload(|_| {}).await;
    assert!(again.applied.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_full_server_answers_503_before_the_upgrade() {
    let server = TestServer::start_with(|s| s.max_connections = 3).await;
    let url = server.ws_url();
    let mut held = Vec::new();
    for source in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        held.push(open_from(&url, source, None).await.expect("admitted"));
    }
    let (status, reason) = refused_with(open_from(&url, "127.0.0.4", None).await);
    assert_eq!(status, 503);
    assert!(reason.contains("full"), "{reason}");
}

#[tokio::test]
async fn logins_are_limited_per_address_across_connections() {
    let server = TestServer::start_with(|s| s.logins_per_ip_per_minute = 3).await;
    for user in ["a", "b", "c"] {
        server.user(user).await;
    }
    let mut fourth = server.client().await;
    let id = fourth
        .send(Command::Login {
            auth: switchboard_proto::Auth::Demo {
                id: "d".into(),
                name: "D".into(),
            },
        })
        .await;
    assert_eq!(fourth.error().await, (Some(id), ErrorCode::RateLimited));
    // Another address logs in as usual.
    let ws = open_from(&server.ws_url(), "127.0.0.2", None)
        .await
        .unwrap();
    let mut other = Client::wrap(ws);
    other
        .send_frame(&switchboard_proto::ClientFrame::new(Command::Hello {
            v: switchboard_proto::PROTOCOL_VERSION,
            resume: None,
        }))
        .await;
    other.event().await;
    other.login("d", "D").await;
}

#[tokio::test]
async fn users_beyond_the_cap_are_forgotten_once_offline() {
    let server = TestServer::start_with(|s| s.max_known_users = 3).await;
    let mut ann = server.user("ann").await;
    let mut churn = server.client().await;
    for user in ["u1", "u2", "u3", "u4"] {
        churn.login(user, "U").await;
    }
    // u1 to u3 went offline as the session moved on; some were forgotten to stay at the cap.
    let mut forgotten = 0;
    for user in ["u1", "u2", "u3"] {
        ann.send(Command::Call { to: user.into() }).await;
        match ann.error().await.1 {
            ErrorCode::UnknownUser => forgotten += 1,
            ErrorCode::Offline => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(forgotten >= 2, "{forgotten}");
    // Online users are never forgotten.
    ann.call("u4").await;
}

#[test]
fn demo_mode_on_every_address_is_refused_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Process::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--listen", "0.0.0.0:0", "--www", "www"])
        .arg("--db")
        .arg(dir.path().join("sb.db"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started in demo mode on every address");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().unwrap();
    assert!(!status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("allow_demo_on_network"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).is_empty());
}
