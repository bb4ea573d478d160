//! Webhooks to a real endpoint on 127.0.0.1 that checks every signature: each call flow and
//! presence change told once, in order per call; an endpoint down for 30 s, a restart with
//! events queued, a restart storm of a thousand sessions, a hanging endpoint, on SQLite, on
//! PostgreSQL and on two nodes of a cluster.

use std::{collections::HashMap, time::Duration};

use futures_util::future::join_all;
use serde_json::{Value, json};
use switchboard::{Config, config::Settings};
use switchboard_proto::{CallId, CallState, Command};
use tokio::time::Instant;

use crate::{
    common::{
        Client, TestServer,
        postgres::PostgresServer,
        redis::RedisServer,
        webhook_receiver::{Delivery, Mode, Receiver, SECRET},
    },
    store::until,
};

/// The longest pause between attempts in these tests, so an outage's end is noticed quickly.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Settings that send the server's webhooks to `receiver`.
fn hooked(receiver: &Receiver) -> impl Fn(&mut Settings) + Clone + use<> {
    let url = receiver.url();
    move |s: &mut Settings| {
        s.webhook_urls = vec![url.clone()];
        s.webhook_secret = Some(SECRET.into());
        s.webhook_backoff_max = BACKOFF_MAX;
    }
}

/// A labelled metric's value (0 when absent).
async fn metric(server: &TestServer, line: &str) -> f64 {
    let text = server.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn outcome(server: &TestServer, outcome: &str) -> f64 {
    metric(
        server,
        &format!("switchboard_webhooks_total{{outcome=\"{outcome}\"}}"),
    )
    .await
}

/// Waits until nothing is queued: every event delivered or given up.
async fn until_drained(server: &TestServer) {
    until("the outbox to be empty", || async {
        metric(server, "switchboard_webhook_outbox").await == 0.0
    })
    .await;
}

/// The ids of the events a set of calls and users must produce.
fn ids(calls: &[(&CallId, &[&str])]) -> Vec<String> {
    calls
        .iter()
        .flat_map(|(call, states)| states.iter().map(move |s| format!("{}.{s}", call.0)))
        .collect()
}

/// The events of type `kind` about `user`.
fn of_user<'d>(events: &'d [Delivery], user: &str, kind: &str) -> Vec<&'d Delivery> {
    events
        .iter()
        .filter(|d| d.body["type"] == kind && d.body["user"]["id"] == user)
        .collect()
}

/// Asserts that each call's events were first delivered in the order its states happened.
fn in_order_per_call(events: &[Delivery]) {
    let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
    for event in events.iter().filter(|d| d.body["call"].is_object()) {
        let step = match event.body["call"]["state"].as_str().unwrap() {
            "ringing" => 0,
            "answered" => 1,
            _ => 2,
        };
        let call = event.body["call"]["id"].as_str().unwrap().to_string();
        seen.entry(call).or_default().push(step);
    }
    for (call, steps) in seen {
        assert!(steps.is_sorted(), "{call}'s events out of order: {steps:?}");
    }
}

/// Every id in `want` was delivered; nothing else about a call was.
fn assert_calls_told(events: &[Delivery], want: &[String]) {
    let mut told: Vec<&str> = events
        .iter()
        .filter(|d| d.body["call"].is_object())
        .map(|d| d.id.as_str())
        .collect();
    told.sort_unstable();
    let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(told, want);
}

fn has_all(events: &[Delivery], want: &[String]) -> bool {
    want.iter().all(|id| events.iter().any(|d| &d.id == id))
}

/// Caller and callee go through every way a call ends (answered and hung up, rejected,
/// cancelled, missed by the ring timeout); returns the calls with the states each reached.
async fn every_flow(ann: &mut Client, bob: &mut Client) -> Vec<(CallId, &'static [&'static str])> {
    let talked = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;
    bob.answer(&talked).await;
    ann.call_in(CallState::Answered).await;
    bob.call_in(CallState::Answered).await;
    bob.send(Command::Hangup {
        call: talked.clone(),
    })
    .await;
    ann.call_in(CallState::Ended).await;
    bob.call_in(CallState::Ended).await;

    let rejected = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;
    bob.send(Command::Reject {
        call: rejected.clone(),
    })
    .await;
    ann.call_in(CallState::Rejected).await;
    bob.call_in(CallState::Rejected).await;

    let cancelled = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;
    ann.send(Command::Cancel {
        call: cancelled.clone(),
    })
    .await;
    ann.call_in(CallState::Cancelled).await;
    bob.call_in(CallState::Cancelled).await;

    // The tests' ring timeout is a second.
    let missed = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;
    ann.call_in(CallState::Missed).await;
    bob.call_in(CallState::Missed).await;
    vec![
        (talked, &["ringing", "answered", "ended"][..]),
        (rejected, &["ringing", "rejected"][..]),
        (cancelled, &["ringing", "cancelled"][..]),
        (missed, &["ringing", "missed"][..]),
    ]
}

fn expected(flows: &[(CallId, &'static [&'static str])]) -> Vec<String> {
    let calls: Vec<(&CallId, &[&str])> = flows.iter().map(|(c, s)| (c, *s)).collect();
    ids(&calls)
}

fn ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn every_call_flow_and_presence_change_is_told_signed_and_in_order() {
    let receiver = Receiver::start(Mode::Accept).await;
    let hook = hooked(&receiver);
    let server = TestServer::start_with(|s| {
        hook(s);
        s.ring_timeout = Duration::from_secs(1);
    })
    .await;
    let started = ms_now();
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let flows = every_flow(&mut ann, &mut bob).await;
    bob.close().await;
    let want = expected(&flows);
    receiver
        .until("every call event and Bob going offline", |events| {
            has_all(events, &want) && !of_user(events, "bob", "user.offline").is_empty()
        })
        .await;

    let events = receiver.events();
    assert_calls_told(&events, &want);
    in_order_per_call(&events);
    assert_eq!(of_user(&events, "ann", "user.online").len(), 1);
    assert_eq!(of_user(&events, "bob", "user.online").len(), 1);
    assert!(of_user(&events, "ann", "user.offline").is_empty());
    let bob_events: Vec<&str> = events
        .iter()
        .filter(|d| d.body["user"]["id"] == "bob")
        .map(|d| d.body["type"].as_str().unwrap())
        .collect();
    assert_eq!(bob_events, ["user.online", "user.offline"]);

    // The documented fields, as the call was at each step.
    let talked = &flows[0].0;
    let body = |id: String| {
        events
            .iter()
            .find(|d| d.id == id)
            .unwrap_or_else(|| panic!("{id}"))
            .body
            .clone()
    };
    let answered = body(format!("{}.answered", talked.0));
    let placed_at = answered["call"]["placed_at"].as_i64().unwrap();
    let answered_at = answered["call"]["answered_at"].as_i64().unwrap();
    assert!(started <= placed_at && placed_at <= answered_at && answered_at <= ms_now());
    assert_eq!(
        answered,
        json!({
            "id": format!("{}.answered", talked.0),
            "type": "call.answered",
            "at": answered_at,
            "call": {
                "id": talked.0, "caller": {"id": "ann", "name": "Ann"},
                "callee": {"id": "bob", "name": "Bob"}, "state": "answered",
                "placed_at": placed_at, "answered_at": answered_at,
                "ended_at": null, "reason": null
            }
        })
    );
    let ended = body(format!("{}.ended", talked.0));
    assert_eq!(ended["type"], "call.ended");
    assert_eq!(ended["call"]["state"], "ended");
    assert_eq!(ended["call"]["reason"], "Bob hung up");
    assert_eq!(ended["at"], ended["call"]["ended_at"]);
    let missed = body(format!("{}.missed", flows[3].0.0));
    assert_eq!(missed["call"]["reason"], "nobody answered");
    assert_eq!(missed["call"]["answered_at"], Value::Null);
    let online = &of_user(&events, "ann", "user.online")[0].body;
    assert_eq!(online["user"], json!({"id": "ann", "name": "Ann"}));
    assert!(online["at"].as_i64().unwrap() >= started);
    assert_eq!(
        online["id"],
        format!("ann.online.{}", online["at"].as_i64().unwrap())
    );
    for kind in [
        "call.ringing",
        "call.answered",
        "call.rejected",
        "call.cancelled",
        "call.missed",
        "call.ended",
        "user.online",
        "user.offline",
    ] {
        assert!(events.iter().any(|d| d.body["type"] == kind), "no {kind}");
    }
    // Every event went once: nothing failed, so nothing was sent again.
    assert_eq!(receiver.delivered().len(), events.len());
    until_drained(&server).await;
    assert_eq!(outcome(&server, "delivered").await, events.len() as f64);
}

/// The endpoint answers 503 for 15 s, then refuses connections for 15 s: 30 s in all, many
/// times the tests' backoff cap, so the server has retried (and backed off) throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_down_for_thirty_seconds_gets_every_event_after_in_order() {
    let mut receiver = Receiver::start(Mode::Fail(503)).await;
    let hook = hooked(&receiver);
    let server = TestServer::start_with(|s| {
        hook(s);
        s.ring_timeout = Duration::from_secs(1);
    })
    .await;
    let down_at = Instant::now();
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let mut flows = every_flow(&mut ann, &mut bob).await;

    tokio::time::sleep_until(down_at + Duration::from_secs(15)).await;
    receiver.refuse_connections();
    // More calls while nothing listens.
    for _ in 0..3 {
        flows.extend(every_flow(&mut ann, &mut bob).await);
    }
    tokio::time::sleep_until(down_at + Duration::from_secs(30)).await;
    assert!(receiver.events().is_empty(), "nothing got through");
    assert!(
        receiver.refused() >= 2,
        "the server tried while the endpoint answered 503"
    );
    assert!(outcome(&server, "failed").await >= 2.0);
    assert_eq!(outcome(&server, "given_up").await, 0.0);
    assert!(metric(&server, "switchboard_webhook_outbox").await > 0.0);

    receiver.reopen().await;
    let want = expected(&flows);
    receiver
        .until("every event after the outage", |events| {
            has_all(events, &want) && of_user(events, "bob", "user.online").len() == 1
        })
        .await;
    let events = receiver.events();
    assert_calls_told(&events, &want);
    in_order_per_call(&events);
    assert_eq!(of_user(&events, "ann", "user.online").len(), 1);
    until_drained(&server).await;
    assert_eq!(outcome(&server, "given_up").await, 0.0);
}

#[tokio::test]
async fn events_queued_when_the_server_stops_are_delivered_after_it_starts_again() {
    let receiver = Receiver::start(Mode::Fail(503)).await;
    let hook = hooked(&receiver);
    let server = TestServer::start_with(hook).await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let talked = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;
    bob.answer(&talked).await;
    ann.call_in(CallState::Answered).await;
    bob.call_in(CallState::Answered).await;
    ann.send(Command::Hangup {
        call: talked.clone(),
    })
    .await;
    ann.call_in(CallState::Ended).await;
    bob.call_in(CallState::Ended).await;
    let ringing = bob.call("ann").await.id;
    ann.call_in(CallState::Ringing).await;
    let want = ids(&[
        (&talked, &["ringing", "answered", "ended"][..]),
        (&ringing, &["ringing"][..]),
    ]);
    let db = server.db.clone();
    let queued = move || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut ids: Vec<String> = conn
            .prepare("SELECT event_id FROM webhook_outbox")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        ids.sort();
        ids
    };
    until("the events to be queued", || async {
        let queued = queued();
        want.iter().all(|id| queued.contains(id))
            && queued.iter().filter(|id| id.contains(".online.")).count() == 2
    })
    .await;
    let before = queued();

    let mut server = server.restart().await;
    assert_eq!(queued(), before, "the stop lost nothing");
    receiver.set(Mode::Accept);
    receiver
        .until("every event queued before the restart", |events| {
            before.iter().all(|id| events.iter().any(|d| &d.id == id))
        })
        .await;
    in_order_per_call(&receiver.events());
    server.stop().await;
}

/// After a restart, a user who comes back within the clients' longest reconnection delay
/// (30 s) was never offline for the backend; one who does not is told offline then.
#[tokio::test]
async fn a_restart_tells_offline_only_the_users_who_do_not_come_back() {
    let receiver = Receiver::start(Mode::Accept).await;
    let hook = hooked(&receiver);
    let server = TestServer::start_with(hook).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    receiver
        .until("both online", |events| {
            events
                .iter()
                .filter(|d| d.body["type"] == "user.online")
                .count()
                == 2
        })
        .await;

    // Taken before the restart: the new server's 30 s start from its own start, which a loaded
    // machine may reach well before `restart` returns.
    let restarted = ms_now();
    let mut server = server.restart().await;
    drop((ann, bob));
    let _ann = server.user("ann").await;
    receiver
        .until_within(
            "Bob to be told offline",
            Duration::from_secs(45),
            |events| !of_user(events, "bob", "user.offline").is_empty(),
        )
        .await;
    let events = receiver.events();
    let offline = &of_user(&events, "bob", "user.offline")[0].body;
    assert!(
        offline["at"].as_i64().unwrap() >= restarted + 30_000,
        "{offline}"
    );
    assert_eq!(of_user(&events, "ann", "user.online").len(), 1);
    assert!(of_user(&events, "ann", "user.offline").is_empty());
    assert_eq!(of_user(&events, "bob", "user.online").len(), 1);
    server.stop().await;
}

/// A thousand users online lose their connections at once (a proxy restarts) and come back
/// within the grace period, half resuming their sessions and half logging in afresh: the backend
/// hears nothing about them. Five who do not come back are told offline, after the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_storm_of_a_thousand_sessions_sends_no_offline_online_pair() {
    const USERS: usize = 1_000;
    const GONE: usize = 5;
    const GRACE: Duration = Duration::from_secs(15);
    let receiver = Receiver::start(Mode::Accept).await;
    let hook = hooked(&receiver);
    let server = TestServer::start_with(|s| {
        hook(s);
        s.presence_grace = GRACE;
        s.connections_per_ip = 0;
        s.logins_per_ip_per_minute = 0;
    })
    .await;
    let name = |i: usize| format!("u{i}");
    let mut clients = Vec::new();
    for chunk in (0..USERS + GONE).collect::<Vec<_>>().chunks(50) {
        let logins = chunk.iter().map(|&i| {
            let server = &server;
            async move { server.user(&name(i)).await }
        });
        clients.extend(join_all(logins).await);
    }
    receiver
        .until("everybody's user.online", |events| {
            events
                .iter()
                .filter(|d| d.body["type"] == "user.online")
                .count()
                == USERS + GONE
        })
        .await;

    let resumes: Vec<_> = clients.iter().map(Client::resume).collect();
    let dropped_at = Instant::now();
    // Dropped, not closed: the TCP connections end without a close frame.
    drop(clients);
    let url = server.ws_url();
    let mut back = Vec::new();
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(50) {
        back.extend(
            join_all(chunk.iter().map(|&i| {
                let (url, resume, server) = (&url, resumes[i].clone(), &server);
                async move {
                    if i % 2 == 0 {
                        let client = Client::connect_resuming(url, Some(resume)).await;
                        assert!(client.resumed, "u{i} resumed");
                        client
                    } else {
                        server.user(&format!("u{i}")).await
                    }
                }
            }))
            .await,
        );
    }
    assert!(
        dropped_at.elapsed() < GRACE,
        "everybody was back within the grace period"
    );

    receiver
        .until(
            "the users who did not come back to be told offline",
            |events| {
                events
                    .iter()
                    .filter(|d| d.body["type"] == "user.offline")
                    .count()
                    >= GONE
            },
        )
        .await;
    assert!(
        dropped_at.elapsed() >= GRACE,
        "offline only after the grace period"
    );
    // The sessions of those who logged in afresh have expired too by now: only the thousand
    // are left.
    until("the old sessions to expire", || async {
        server.metric("switchboard_sessions").await == USERS as f64
    })
    .await;
    until_drained(&server).await;
    let events = receiver.events();
    let offline: Vec<&str> = events
        .iter()
        .filter(|d| d.body["type"] == "user.offline")
        .map(|d| d.body["user"]["id"].as_str().unwrap())
        .collect();
    let gone: Vec<String> = (USERS..USERS + GONE).map(name).collect();
    assert_eq!(offline.len(), GONE, "{offline:?}");
    assert!(
        offline.iter().all(|u| gone.iter().any(|g| g == u)),
        "{offline:?}"
    );
    let online = events
        .iter()
        .filter(|d| d.body["type"] == "user.online")
        .count();
    assert_eq!(online, USERS + GONE, "nobody came online twice");
    drop(back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_does_not_slow_calls() {
    let receiver = Receiver::start(Mode::Hang).await;
    let hook = hooked(&receiver);
    let server = TestServer::start_with(hook).await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    until("the server to be stuck on the endpoint", || async {
        receiver.refused() >= 1
    })
    .await;
    for _ in 0..10 {
        let placed = Instant::now();
        let call = ann.call("bob").await.id;
        bob.call_in(CallState::Ringing).await;
        // Calls ring within milliseconds here; waiting on the endpoint would take its 10 s
        // timeout.
        assert!(
            placed.elapsed() < Duration::from_millis(500),
            "rang after {:?}",
            placed.elapsed()
        );
        ann.send(Command::Cancel { call }).await;
        ann.call_in(CallState::Cancelled).await;
        bob.call_in(CallState::Cancelled).await;
    }
    assert!(receiver.events().is_empty());
}

#[tokio::test]
async fn an_event_is_given_up_after_webhook_retry_for() {
    let receiver = Receiver::start(Mode::Fail(500)).await;
    let hook = hooked(&receiver);
    let server = TestServer::start_with(|s| {
        hook(s);
        s.webhook_retry_for = Duration::from_secs(2);
        s.webhook_backoff_max = Duration::from_secs(1);
    })
    .await;
    let _ann = server.user("ann").await;
    until("ann's user.online to be given up", || async {
        outcome(&server, "given_up").await == 1.0
    })
    .await;
    assert!(
        outcome(&server, "failed").await >= 2.0,
        "it was retried first"
    );
    until_drained(&server).await;
    receiver.set(Mode::Accept);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(receiver.events().is_empty(), "a given-up event is not sent");
}

#[test]
fn bad_webhook_settings_are_clear_configuration_errors() {
    let with = |urls: &[&str], secret: Option<&str>| {
        Config::from_settings(Settings {
            webhook_urls: urls.iter().map(|u| u.to_string()).collect(),
            webhook_secret: secret.map(String::from),
            ..Settings::default()
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    assert_eq!(with(&["https://site.example/hooks"], Some(SECRET)), Ok(()));
    assert_eq!(
        with(&["https://site.example/hooks"], Some("too short")),
        Err("webhook_secret: must be at least 32 bytes".into())
    );
    assert_eq!(
        with(&["https://site.example/hooks"], None),
        Err("webhook_secret: required with webhook_urls".into())
    );
    for bad in [
        "http://site.example/hooks",
        "ftp://site.example/hooks",
        "hooks",
    ] {
        let error = with(&[bad], Some(SECRET)).unwrap_err();
        assert!(error.starts_with("webhook_urls:"), "{bad}: {error}");
    }

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--listen", "127.0.0.1:0"])
        .args(["--webhook-urls", "http://site.example/hooks"])
        .args(["--webhook-secret", SECRET])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("webhook_urls: http://site.example/hooks must be https"),
        "{stderr}"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--listen", "127.0.0.1:0"])
        .env(
            "SWITCHBOARD_WEBHOOK_URLS",
            "https://a.example/h, https://b.example/h",
        )
        .env("SWITCHBOARD_WEBHOOK_SECRET", "short")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("webhook_secret: must be at least 32 bytes"),
        "{stderr}"
    );
}

#[tokio::test]
async fn on_postgresql_events_are_told_in_order_and_survive_a_restart() {
    let pg = PostgresServer::start();
    let url = pg.database("hooks");
    let receiver = Receiver::start(Mode::Fail(503)).await;
    let hook = hooked(&receiver);
    let server = TestServer::start_with(|s| {
        hook(s);
        s.database_url = Some(url);
        s.ring_timeout = Duration::from_secs(1);
    })
    .await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let flows = every_flow(&mut ann, &mut bob).await;
    let want = expected(&flows);
    let queued = || pg.query("hooks", "SELECT event_id FROM webhook_outbox");
    until("the events to be queued", || async {
        let queued = queued().concat();
        want.iter().all(|id| queued.contains(id))
    })
    .await;

    let server = server.restart().await;
    receiver.set(Mode::Accept);
    receiver
        .until("every event", |events| {
            has_all(events, &want)
                && events
                    .iter()
                    .filter(|d| d.body["type"] == "user.online")
                    .count()
                    == 2
        })
        .await;
    let events = receiver.events();
    assert_calls_told(&events, &want);
    in_order_per_call(&events);
    until_drained(&server).await;
    assert!(queued().is_empty());
}

/// Two nodes on one Redis and one database: Ann on one, Bob on the other. Each event is
/// recorded by one node and sent by one, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_of_a_cluster_tell_each_event_once() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let receiver = Receiver::start(Mode::Accept).await;
    let hook = hooked(&receiver);
    let one = cluster_node(&redis, &db, hook.clone()).await;
    let two = cluster_node(&redis, &db, hook).await;
    let mut ann = one.user("ann").await;
    let mut bob = two.user("bob").await;
    let talked = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;
    bob.answer(&talked).await;
    ann.call_in(CallState::Answered).await;
    bob.call_in(CallState::Answered).await;
    ann.send(Command::Hangup {
        call: talked.clone(),
    })
    .await;
    bob.call_in(CallState::Ended).await;
    bob.close().await;
    let want = ids(&[(&talked, &["ringing", "answered", "ended"][..])]);
    receiver
        .until("the call's events and Bob going offline", |events| {
            has_all(events, &want) && !of_user(events, "bob", "user.offline").is_empty()
        })
        .await;
    until_drained(&one).await;
    // Anything sent twice would have arrived by now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivered = receiver.delivered();
    let events = receiver.events();
    assert_eq!(
        delivered.len(),
        events.len(),
        "sent once each: {:?}",
        delivered.iter().map(|d| &d.id).collect::<Vec<_>>()
    );
    assert_calls_told(&events, &want);
    in_order_per_call(&events);
    let mut presence: Vec<(String, String)> = events
        .iter()
        .filter(|d| d.body["user"].is_object())
        .map(|d| {
            (
                d.body["user"]["id"].as_str().unwrap().to_string(),
                d.body["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    presence.sort();
    assert_eq!(
        presence,
        [
            ("ann".to_string(), "user.online".to_string()),
            ("bob".into(), "user.offline".into()),
            ("bob".into(), "user.online".into()),
        ]
    );
}

/// A node of a cluster on `redis`, recording into the SQLite file `db`.
async fn cluster_node(
    redis: &RedisServer,
    db: &std::path::Path,
    hook: impl Fn(&mut Settings),
) -> TestServer {
    let url = redis.url();
    let node = TestServer::start_with(|s| {
        hook(s);
        s.redis_url = Some(url);
        s.node_timeout = Duration::from_secs(2);
        s.db = db.to_path_buf();
    })
    .await;
    until("the node to reach Redis", || async {
        reqwest::get(node.url("/healthz"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    node
}

#[tokio::test]
async fn a_reload_sends_the_next_events_to_the_new_url_only() {
    let old = Receiver::start(Mode::Accept).await;
    let new = Receiver::start(Mode::Accept).await;
    let mut server = TestServer::start_with(hooked(&old)).await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    old.until("Ann and Bob online", |events| {
        !of_user(events, "ann", "user.online").is_empty()
            && !of_user(events, "bob", "user.online").is_empty()
    })
    .await;
    until_drained(&server).await;

    let new_url = new.url();
    let reloaded = server.reload(|s| s.webhook_urls = vec![new_url]).await;
    assert_eq!(reloaded.applied, ["webhook_urls/webhook_secret"]);
    assert!(reloaded.need_restart.is_empty(), "{reloaded:?}");
    let call = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;
    let ringing = format!("{}.ringing", call.0);
    new.until("the call ringing, at the new URL", |events| {
        events.iter().any(|d| d.id == ringing)
    })
    .await;
    // Told once, where it was sent; the old endpoint heard nothing of the call.
    assert_eq!(new.events().iter().filter(|d| d.id == ringing).count(), 1);
    assert!(
        !old.events().iter().any(|d| d.id.starts_with(&call.0)),
        "the old URL was told of a call placed after the reload"
    );
    assert_eq!(outcome(&server, "given_up").await, 0.0);
}
