//! Several nodes on one real Redis: presence across nodes (one event per change to watchers on
//! every node, no flap when a reload lands on another node), a node that dies, and Redis going
//! away and coming back.

use std::time::Duration;

use switchboard_proto::{Command, ErrorCode};
use tokio::time::Instant;

use crate::common::{PRESENCE_GRACE, TestServer, client::Client, redis::RedisServer};

/// How long a node may miss its heartbeat before the others end it, in these tests.
const NODE_TIMEOUT: Duration = Duration::from_secs(2);

async fn node(redis: &RedisServer) -> TestServer {
    let url = redis.url();
    let node = TestServer::start_with(|s| {
        s.redis_url = Some(url);
        s.node_timeout = NODE_TIMEOUT;
    })
    .await;
    until_healthy(&node).await;
    node
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
async fn watcher(node: &TestServer, id: &str, users: &[&str]) -> Client {
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
