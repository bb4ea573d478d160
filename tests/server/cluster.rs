//! Several nodes on one real Redis: presence across nodes (one event per change to watchers on
//! every node, no flap when a reload lands on another node), a node that dies, and Redis going
//! away and coming back.

use std::time::Duration;

use switchboard_proto::{CallState, Command, ErrorCode, Event, LogoutReason};
use tokio::time::Instant;

use crate::common::{PRESENCE_GRACE, TestServer, client::Client, redis::RedisServer};

/// How long a node may miss its heartbeat before the others end it, in these tests.
const NODE_TIMEOUT: Duration = Duration::from_secs(2);

async fn node(redis: &RedisServer) -> TestServer {
    node_with(redis, None, |_| {}).await
}

/// A node on `redis`; nodes given the same `db` record their calls in one SQLite file.
pub async fn node_with(
    redis: &RedisServer,
    db: Option<&std::path::Path>,
    tweak: impl FnOnce(&mut switchboard::config::Settings),
) -> TestServer {
    let url = redis.url();
    let node = TestServer::start_with(|s| {
        s.redis_url = Some(url);
        s.node_timeout = NODE_TIMEOUT;
        if let Some(db) = db {
            s.db = db.to_path_buf();
        }
        tweak(s);
    })
    .await;
    until_healthy(&node).await;
    node
}

/// Three nodes sharing one database.
async fn three_nodes(
    redis: &RedisServer,
    dir: &tempfile::TempDir,
    tweak: impl Fn(&mut switchboard::config::Settings),
) -> (TestServer, TestServer, TestServer) {
    let db = dir.path().join("shared.db");
    (
        node_with(redis, Some(&db), &tweak).await,
        node_with(redis, Some(&db), &tweak).await,
        node_with(redis, Some(&db), &tweak).await,
    )
}

/// Every state the database recorded for each call, in order.
fn recorded(db: &std::path::Path) -> Vec<(String, String, Vec<String>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut calls = conn
        .prepare("SELECT id, state FROM calls ORDER BY placed_at")
        .unwrap();
    let calls: Vec<(String, String)> = calls
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    calls
        .into_iter()
        .map(|(id, state)| {
            let mut events = conn
                .prepare("SELECT state FROM call_events WHERE call_id = ?1 ORDER BY at, step")
                .unwrap();
            let events = events
                .query_map([&id], |row| row.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (id, state, events)
        })
        .collect()
}

async fn health(node: &TestServer) -> u16 {
    reqwest::get(node.url("/healthz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn until_healthy(node: &TestServer) {
    crate::store::until("the node reaches Redis", || async {
        health(node).await == 200
    })
    .await;
}

/// A user watching `users`, with the first answers (all offline) read.
pub async fn watcher(node: &TestServer, id: &str, users: &[&str]) -> Client {
    let mut client = node.user(id).await;
    client
        .send(Command::Watch {
            users: users.iter().map(|u| u.to_string()).collect(),
        })
        .await;
    for _ in users {
        client.presence().await;
    }
    client
}

/// Waits until `node` sees `user` online (and so Redis has them).
async fn until_online(node: &TestServer, user: &str) {
    crate::store::until("the user to be online for the node", || async {
        let mut check = node.user("checker").await;
        check
            .send(Command::Watch {
                users: vec![user.to_string()],
            })
            .await;
        let online = check.presence().await.2;
        check.close().await;
        online
    })
    .await;
}

/// `user` logs in on `node`, and the watcher hears of it: whatever the watcher heard before
/// from the cluster, it heard before this (Redis publishes in order, and every node's changes
/// go out in the order it made them).
async fn probe(node: &TestServer, user: &str, watcher: &mut Client) -> Client {
    let client = node.user(user).await;
    let (who, _, online) = watcher.presence().await;
    assert_eq!((who.as_str(), online), (user, true), "expected the probe");
    client
}

#[tokio::test]
async fn presence_spans_the_nodes_once_per_change() {
    let redis = RedisServer::start();
    let (a, b, c) = (node(&redis).await, node(&redis).await, node(&redis).await);
    let mut ann = watcher(&a, "ann", &["bob", "probe"]).await;
    let mut cid = watcher(&c, "cid", &["bob"]).await;

    let bob_b = b.user("bob").await;
    assert_eq!(
        ann.presence().await,
        ("bob".into(), Some("Bob".into()), true)
    );
    assert_eq!(
        cid.presence().await,
        ("bob".into(), Some("Bob".into()), true)
    );
    // A second session elsewhere changes nothing for anybody.
    let bob_c = c.user("bob").await;
    bob_b.close().await;
    let closed = Instant::now();
    crate::store::until("Bob's first session to expire", || async {
        b.metric("switchboard_sessions").await == 0.0
    })
    .await;
    let _probe = probe(&b, "probe", &mut ann).await;
    cid.nothing_pending().await;

    // His last session goes: offline everywhere, once, after the grace period.
    bob_c.close().await;
    assert_eq!(
        ann.presence().await,
        ("bob".into(), Some("Bob".into()), false)
    );
    assert_eq!(
        cid.presence().await,
        ("bob".into(), Some("Bob".into()), false)
    );
    assert!(closed.elapsed() >= PRESENCE_GRACE);
    ann.nothing_pending().await;
    cid.nothing_pending().await;
    // A watch asked on any node answers the same.
    let mut dan = watcher(&b, "dan", &[]).await;
    dan.send(Command::Watch {
        users: vec!["ann".into(), "bob".into()],
    })
    .await;
    assert_eq!(
        dan.presence().await,
        ("ann".into(), Some("Ann".into()), true)
    );
    assert_eq!(
        dan.presence().await,
        ("bob".into(), Some("Bob".into()), false)
    );
}

#[tokio::test]
async fn a_reload_that_lands_on_another_node_does_not_flap() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut ann = watcher(&a, "ann", &["bob", "probe"]).await;
    let bob = a.user("bob").await;
    assert!(ann.presence().await.2);

    bob.close().await;
    let _bob_again = b.user("bob").await;
    crate::store::until("Bob's old session to expire", || async {
        a.metric("switchboard_sessions").await == 1.0
    })
    .await;
    // Anything the old session's end published would reach Ann before the probe does.
    let _probe = probe(&a, "probe", &mut ann).await;
    ann.nothing_pending().await;
}

#[tokio::test]
async fn a_single_session_login_on_one_node_logs_the_others_out_everywhere() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = three_nodes(&redis, &dir, |s| s.single_session = true).await;
    let mut ann = watcher(&c, "ann", &["bob", "probe"]).await;
    let mut bob_on_a = a.user("bob").await;
    let mut bob_on_c = c.user("bob").await;
    assert!(ann.presence().await.2);

    let mut bob_on_b = b.user("bob").await;
    for old in [&mut bob_on_a, &mut bob_on_c] {
        assert_eq!(
            old.event().await,
            Event::LoggedOut {
                reason: LogoutReason::Elsewhere
            }
        );
    }
    // The new session is Bob's only one: once it goes, Bob is offline for everyone.
    bob_on_b.send(Command::Logout).await;
    assert_eq!(
        ann.presence().await,
        ("bob".into(), Some("Bob".into()), false)
    );
    // Bob never went offline in between, and the old sessions stay logged out.
    let _probe = probe(&a, "probe", &mut ann).await;
    ann.nothing_pending().await;
    bob_on_a.nothing_pending().await;
}

#[tokio::test]
async fn the_users_of_a_node_that_dies_go_offline_for_the_others() {
    let redis = RedisServer::start();
    let (mut a, b) = (node(&redis).await, node(&redis).await);
    let mut ann = watcher(&b, "ann", &["bob"]).await;
    let _bob = a.user("bob").await;
    assert!(ann.presence().await.2);

    // The node stops without a word to Redis (as a killed process would).
    let died = Instant::now();
    a.stop().await;
    assert_eq!(
        ann.presence().await,
        ("bob".into(), Some("Bob".into()), false)
    );
    let after = died.elapsed();
    assert!(
        after <= NODE_TIMEOUT + NODE_TIMEOUT / 4 + Duration::from_secs(1),
        "offline only after {after:?}"
    );
}

#[tokio::test]
async fn without_redis_nodes_keep_their_sockets_refuse_calls_and_recover_by_themselves() {
    let mut redis = RedisServer::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut ann = watcher(&b, "ann", &["bob"]).await;
    let mut bob = a.user("bob").await;
    let _cid = a.user("cid").await;
    assert!(ann.presence().await.2);

    redis.kill();
    crate::store::until("the node notices Redis is gone", || async {
        health(&a).await == 503
    })
    .await;
    assert_eq!(a.metric("switchboard_redis_up").await, 0.0);
    let sent = bob.send(Command::Call { to: "cid".into() }).await;
    assert_eq!(bob.error().await, (Some(sent), ErrorCode::Unavailable));

    // A fresh Redis knows nothing: the nodes register their sessions again by themselves.
    redis.restart();
    until_healthy(&a).await;
    until_healthy(&b).await;
    assert_eq!(a.metric("switchboard_redis_up").await, 1.0);
    crate::store::until("Bob to be online again for Ann's node", || async {
        let mut check = b.user("eve").await;
        check
            .send(Command::Watch {
                users: vec!["bob".into()],
            })
            .await;
        let online = check.presence().await.2;
        check.close().await;
        online
    })
    .await;
    // The same sockets carry calls again.
    let call = bob.call("cid").await;
    assert_eq!(call.peer.id, "cid");
}

#[tokio::test]
async fn a_call_rings_on_every_node_and_the_first_answer_wins() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = three_nodes(&redis, &dir, |_| {}).await;
    let mut ann = a.user("ann").await;
    let mut bob_b = b.user("bob").await;
    let mut bob_c = c.user("bob").await;
    until_online(&a, "bob").await;

    let ringing = ann.call("bob").await;
    let on_b = bob_b.call_in(CallState::Ringing).await;
    let on_c = bob_c.call_in(CallState::Ringing).await;
    assert_eq!(
        (on_b.id.clone(), on_c.id.clone()),
        (ringing.id.clone(), ringing.id.clone())
    );
    // Each node links to itself, with the same token.
    let token = |link: &Option<String>| {
        link.as_deref()
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_string)
    };
    assert!(on_b.link.is_some() && token(&on_c.link) == token(&on_b.link));

    bob_c.answer(&on_c.id).await;
    let answered = bob_c.call_in(CallState::Answered).await;
    assert!(!answered.elsewhere);
    let elsewhere = bob_b.call_in(CallState::Answered).await;
    assert!(
        elsewhere.elsewhere,
        "Bob's other tab hears it was answered elsewhere"
    );
    let for_ann = ann.call_in(CallState::Answered).await;
    assert!(for_ann.link.is_some());
    // A second answer, from another node, loses.
    let sent = bob_b
        .send(Command::Answer {
            call: on_b.id.clone(),
        })
        .await;
    assert_eq!(bob_b.error().await, (Some(sent), ErrorCode::WrongCallState));

    // Hanging up on any node ends it everywhere.
    bob_b
        .send(Command::Hangup {
            call: on_b.id.clone(),
        })
        .await;
    for client in [&mut ann, &mut bob_b, &mut bob_c] {
        assert_eq!(client.call_view().await.state, CallState::Ended);
    }
    crate::store::until("the end to be recorded", || async {
        recorded(&dir.path().join("shared.db"))
            .first()
            .is_some_and(|(_, state, _)| state == "ended")
    })
    .await;
    assert_eq!(
        recorded(&dir.path().join("shared.db")),
        vec![(
            ringing.id.0.clone(),
            "ended".into(),
            vec!["ringing".into(), "answered".into(), "ended".into()]
        )],
        "one record, each step once"
    );
}

#[tokio::test]
async fn two_callers_on_two_nodes_cannot_both_ring_one_callee() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = three_nodes(&redis, &dir, |_| {}).await;
    let mut ann = a.user("ann").await;
    let mut bob = b.user("bob").await;
    let mut cid = c.user("cid").await;
    until_online(&a, "cid").await;
    until_online(&b, "cid").await;

    // Both at once: one rings, the other is refused as busy.
    let (from_ann, from_bob) = tokio::join!(
        ann.send(Command::Call { to: "cid".into() }),
        bob.send(Command::Call { to: "cid".into() })
    );
    let (ann_frame, bob_frame) = tokio::join!(ann.next(), bob.next());
    let outcomes = [(ann_frame, from_ann), (bob_frame, from_bob)].map(|(frame, sent)| {
        assert_eq!(frame.re, Some(sent));
        match frame.ev {
            switchboard_proto::Event::Call(view) => Ok(view.state),
            switchboard_proto::Event::Error { code, .. } => Err(code),
            other => panic!("unexpected {other:?}"),
        }
    });
    assert!(
        outcomes.contains(&Ok(CallState::Ringing)) && outcomes.contains(&Err(ErrorCode::Busy)),
        "{outcomes:?}"
    );
    cid.call_in(CallState::Ringing).await;
    cid.nothing_pending().await;
}

#[tokio::test]
async fn a_ring_timeout_fires_once_when_the_placing_node_is_gone() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ring = |s: &mut switchboard::config::Settings| s.ring_timeout = Duration::from_millis(1500);
    let (mut a, b, _c) = three_nodes(&redis, &dir, ring).await;
    let mut ann = a.user("ann").await;
    let mut bob = b.user("bob").await;
    until_online(&a, "bob").await;
    let call = ann.call("bob").await;
    bob.call_in(CallState::Ringing).await;

    a.stop().await;
    let missed = bob.call_view().await;
    assert_eq!(
        (missed.id, missed.state),
        (call.id.clone(), CallState::Missed)
    );
    bob.nothing_pending().await;
    crate::store::until("the miss to be recorded", || async {
        recorded(&dir.path().join("shared.db"))
            .first()
            .is_some_and(|(_, state, _)| state == "missed")
    })
    .await;
    assert_eq!(
        recorded(&dir.path().join("shared.db"))[0].2,
        vec!["ringing".to_string(), "missed".into()]
    );
}

#[tokio::test]
async fn a_link_works_on_any_node() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = three_nodes(&redis, &dir, |_| {}).await;
    let mut ann = a.user("ann").await;
    let mut bob = b.user("bob").await;
    until_online(&a, "bob").await;
    ann.call("bob").await;
    let ringing = bob.call_in(CallState::Ringing).await;
    let link = ringing.link.expect("the callee's link");
    let token = link.rsplit('/').next().unwrap();

    // Following the callee's link answers, whichever node the browser reaches.
    let response = crate::common::server::http()
        .get(c.url(&format!("/join/{token}")))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(ann.call_view().await.state, CallState::Answered);
    assert_eq!(bob.call_view().await.state, CallState::Answered);
}

#[tokio::test]
async fn a_client_whose_node_died_finds_its_calls_on_another() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, mut b, c) = three_nodes(&redis, &dir, |_| {}).await;
    let mut ann = a.user("ann").await;
    let mut dan = a.user("dan").await;
    let mut bob = b.user("bob").await;
    let mut cid = b.user("cid").await;
    until_online(&a, "bob").await;
    until_online(&b, "dan").await;
    let answered = ann.call("bob").await;
    bob.call_in(CallState::Ringing).await;
    bob.answer(&answered.id).await;
    let bob_view = bob.call_in(CallState::Answered).await;
    let ann_view = ann.call_in(CallState::Answered).await;
    cid.call("dan").await;
    assert_eq!(dan.call_in(CallState::Ringing).await.peer.id, "cid");

    // Bob's and Cid's node dies; their pages reconnect to another one within the node timeout.
    let resume = bob.resume();
    b.stop().await;
    let mut bob = Client::connect_resuming(&c.ws_url(), Some(resume)).await;
    assert!(!bob.resumed, "another node cannot resume the session");
    bob.login("bob", "Bob").await;
    let again = bob.call_in(CallState::Answered).await;
    assert_eq!(
        (
            again.id,
            again.link.map(|l| l.rsplit('/').next().map(str::to_string))
        ),
        (
            bob_view.id.clone(),
            bob_view
                .link
                .map(|l| l.rsplit('/').next().map(str::to_string))
        )
    );
    let mut cid = c.user("cid").await;
    let ringing = cid.call_view().await;
    assert_eq!(
        (ringing.peer.id.as_str(), ringing.state),
        ("dan", CallState::Ringing)
    );

    // The answered call keeps working: Ann hangs up, Bob hears it on his new node.
    ann.send(Command::Hangup {
        call: ann_view.id.clone(),
    })
    .await;
    assert_eq!(ann.call_view().await.state, CallState::Ended);
    assert_eq!(bob.call_view().await.state, CallState::Ended);
}

/// A room page's signalling socket on `node`, for the link `link` (made by whichever node).
async fn room_page(
    node: &TestServer,
    link: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let token = link.rsplit('/').next().unwrap();
    let mut request = format!("ws://{}/join/{token}/signal", node.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", format!("http://{}", node.addr).parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .expect("the room page connects")
        .0
}

/// The next signalling message a room page reads, as JSON.
async fn heard(
    page: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> serde_json::Value {
    use futures_util::StreamExt;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), page.next())
            .await
            .expect("the page hears something")
            .expect("the socket is open")
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn the_built_in_room_connects_pages_on_different_nodes() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = three_nodes(&redis, &dir, |s| s.room_url_template = None).await;
    let mut ann = a.user("ann").await;
    let mut bob = b.user("bob").await;
    until_online(&a, "bob").await;
    ann.call("bob").await;
    let ringing = bob.call_in(CallState::Ringing).await;
    bob.answer(&ringing.id).await;
    bob.call_in(CallState::Answered).await;
    let answered = ann.call_in(CallState::Answered).await;

    // Ann's page reaches node A, Bob's node C: each hears the other arrive.
    let mut ann_page = room_page(&a, answered.link.as_deref().unwrap()).await;
    let welcome = heard(&mut ann_page).await;
    assert_eq!(
        (welcome["type"].as_str(), welcome["peer_present"].as_bool()),
        (Some("welcome"), Some(false))
    );
    let mut bob_page = room_page(&c, ringing.link.as_deref().unwrap()).await;
    assert_eq!(heard(&mut bob_page).await["type"], "welcome");
    assert_eq!(heard(&mut bob_page).await["type"], "peer_joined");
    assert_eq!(heard(&mut ann_page).await["type"], "peer_joined");

    // The negotiation crosses the nodes both ways.
    let offer = r#"{"type":"offer","n":1,"sdp":"v=0 offer"}"#;
    ann_page.send(Message::text(offer)).await.unwrap();
    let got = heard(&mut bob_page).await;
    assert_eq!(
        (got["type"].as_str(), got["sdp"].as_str()),
        (Some("offer"), Some("v=0 offer"))
    );
    bob_page
        .send(Message::text(
            r#"{"type":"answer","n":1,"sdp":"v=0 answer"}"#,
        ))
        .await
        .unwrap();
    assert_eq!(heard(&mut ann_page).await["sdp"], "v=0 answer");

    // Bob hangs up in his room: Ann's page hears he did, and the call ends for both.
    bob_page
        .send(Message::text(r#"{"type":"hangup"}"#))
        .await
        .unwrap();
    let ended = heard(&mut ann_page).await;
    assert_eq!(
        (ended["type"].as_str(), ended["reason"].as_str()),
        (Some("ended"), Some("peer_hung_up"))
    );
    assert_eq!(ann.call_view().await.state, CallState::Ended);
    assert_eq!(bob.call_view().await.state, CallState::Ended);
}

#[tokio::test]
async fn records_a_dead_node_took_and_never_wrote_are_written_by_another() {
    use redis::Commands;
    use switchboard::{calls::Call, cluster::SharedCall, store::CallRecord};
    use switchboard_proto::{CallId, UserRef};

    let redis = RedisServer::start();
    // A node took this record from the stream and died before writing it.
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let user = |id: &str| UserRef {
        id: id.into(),
        name: id.into(),
    };
    let ended = SharedCall {
        version: 3,
        handled_by: None,
        record: CallRecord {
            call: Call {
                id: CallId("lost-with-its-node".into()),
                caller: user("ann"),
                callee: user("bob"),
                state: CallState::Ended,
                placed_at: 1_000,
                ring_deadline: 46_000,
                answered_at: Some(2_000),
                ended_at: Some(3_000),
                reason: Some("hung up".into()),
            },
            caller_link: "a".repeat(32),
            callee_link: "b".repeat(32),
        },
    };
    let () = redis::cmd("XGROUP")
        .arg(&["CREATE", "sb:records", "writers", "0", "MKSTREAM"])
        .query(&mut conn)
        .unwrap();
    let _: String = conn
        .xadd(
            "sb:records",
            "*",
            &[("r", serde_json::to_string(&ended).unwrap())],
        )
        .unwrap();
    let taken: redis::Value = redis::cmd("XREADGROUP")
        .arg(&[
            "GROUP",
            "writers",
            "dead-node",
            "COUNT",
            "10",
            "STREAMS",
            "sb:records",
            ">",
        ])
        .query(&mut conn)
        .unwrap();
    assert_ne!(taken, redis::Value::Nil);

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let _node = node_with(&redis, Some(&db), |_| {}).await;
    let started = Instant::now();
    crate::store::until("the record to be written", || async {
        !recorded(&db).is_empty()
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "claimed before it was idle long"
    );
    // The record holds the call's times, so its whole history is there.
    assert_eq!(
        recorded(&db),
        vec![(
            "lost-with-its-node".into(),
            "ended".into(),
            vec!["ringing".into(), "answered".into(), "ended".into()]
        )]
    );
    // Acknowledged once the database has committed it, which is just after it shows.
    crate::store::until("the record to be acknowledged", || {
        let pending: redis::Value = redis::cmd("XPENDING")
            .arg(&["sb:records", "writers"])
            .query(&mut conn)
            .unwrap();
        let acknowledged = match pending {
            redis::Value::Array(fields) => fields[0] == redis::Value::Int(0),
            other => panic!("unexpected XPENDING reply {other:?}"),
        };
        async move { acknowledged }
    })
    .await;
}

#[tokio::test]
async fn a_node_cut_off_from_redis_refuses_calls_and_is_dead_to_the_others_until_it_returns() {
    let redis = RedisServer::start();
    let proxy = crate::common::cut_proxy::CutProxy::start(
        format!("127.0.0.1:{}", redis.port).parse().unwrap(),
    )
    .await;
    let through = format!("redis://{}/", proxy.addr);
    let a = TestServer::start_with(|s| {
        s.redis_url = Some(through);
        s.node_timeout = NODE_TIMEOUT;
    })
    .await;
    until_healthy(&a).await;
    let b = node(&redis).await;
    let mut ann = watcher(&b, "ann", &["bob"]).await;
    let mut bob = a.user("bob").await;
    let _cid = a.user("cid").await;
    assert!(ann.presence().await.2);

    // Its clients still reach it; Redis does not.
    proxy.cut();
    crate::store::until("the node to notice", || async { health(&a).await == 503 }).await;
    let sent = bob.send(Command::Call { to: "cid".into() }).await;
    assert_eq!(bob.error().await, (Some(sent), ErrorCode::Unavailable));
    // For the others it is dead once its heartbeat is old: its users go offline.
    assert_eq!(
        ann.presence().await,
        ("bob".into(), Some("Bob".into()), false)
    );

    // Back again: it registers its sessions once more, by itself.
    proxy.mend();
    until_healthy(&a).await;
    assert_eq!(
        ann.presence().await,
        ("bob".into(), Some("Bob".into()), true)
    );
    let ringing = bob.call("cid").await;
    assert_eq!(ringing.peer.id, "cid");
}

#[tokio::test]
async fn a_user_seen_on_any_node_is_offline_and_one_never_seen_is_unknown() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut ann = watcher(&a, "ann", &["bob"]).await;
    let bob = b.user("bob").await;
    assert!(ann.presence().await.2);
    bob.close().await;
    assert!(!ann.presence().await.2);

    let sent = ann.send(Command::Call { to: "bob".into() }).await;
    assert_eq!(ann.error().await, (Some(sent), ErrorCode::Offline));
    let sent = ann
        .send(Command::Call {
            to: "nobody".into(),
        })
        .await;
    assert_eq!(ann.error().await, (Some(sent), ErrorCode::UnknownUser));
}
