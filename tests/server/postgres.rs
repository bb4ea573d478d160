//! The store on a real PostgreSQL: calls recorded as on SQLite, calls under way brought back by
//! a restart, nothing lost while PostgreSQL is away, and the nodes of a cluster recording into
//! one database.

use std::time::Duration;

use switchboard_proto::{CallState, Command};

use crate::common::{TestServer, postgres::PostgresServer, redis::RedisServer};

/// Each call's state and the states its events recorded, in order.
fn recorded(pg: &PostgresServer, db: &str) -> Vec<(String, String)> {
    pg.query(
        db,
        "SELECT c.state, string_agg(e.state, ',' ORDER BY e.at, e.step)
         FROM calls c JOIN call_events e ON e.call_id = c.id GROUP BY c.id, c.state
         ORDER BY min(c.placed_at)",
    )
    .into_iter()
    .map(|row| (row[0].clone(), row[1].clone()))
    .collect()
}

async fn until_recorded(pg: &PostgresServer, db: &str, want: Vec<(String, String)>) {
    crate::store::until("the calls to be recorded", || async {
        recorded(pg, db) == want
    })
    .await;
}

#[tokio::test]
async fn calls_and_users_are_recorded_in_postgresql() {
    let pg = PostgresServer::start();
    let url = pg.database("recorded");
    let server = TestServer::start_with(|s| s.database_url = Some(url)).await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let call = ann.call("bob").await;
    bob.call_in(CallState::Ringing).await;
    bob.answer(&call.id).await;
    bob.call_in(CallState::Answered).await;
    ann.send(Command::Hangup {
        call: call.id.clone(),
    })
    .await;
    bob.call_in(CallState::Ended).await;
    until_recorded(
        &pg,
        "recorded",
        vec![("ended".into(), "ringing,answered,ended".into())],
    )
    .await;
    assert_eq!(
        pg.query("recorded", "SELECT id, name FROM users ORDER BY id"),
        vec![
            vec!["ann".to_string(), "Ann".into()],
            vec!["bob".into(), "Bob".into()]
        ]
    );
    // Nothing was written to an SQLite file.
    assert!(!server.db.exists());
}

#[tokio::test]
async fn a_restart_on_postgresql_rings_the_calls_under_way_again() {
    let pg = PostgresServer::start();
    let url = pg.database("restart");
    let server = TestServer::start_with(|s| s.database_url = Some(url)).await;
    let mut ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let call = ann.call("bob").await;
    bob.close().await;
    ann.close().await;

    let server = server.restart().await;
    let _ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let again = bob.call_in(CallState::Ringing).await;
    assert_eq!(again.id, call.id);
}

#[tokio::test]
async fn nothing_is_lost_while_postgresql_is_away() {
    let pg = PostgresServer::start();
    let url = pg.database("away");
    let server = TestServer::start_with(|s| s.database_url = Some(url)).await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    until_recorded(&pg, "away", vec![]).await;

    pg.pause();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let call = ann.call("bob").await;
        bob.call_in(CallState::Ringing).await;
        ann.send(Command::Cancel {
            call: call.id.clone(),
        })
        .await;
        ann.call_in(CallState::Cancelled).await;
        bob.call_in(CallState::Cancelled).await;
        ids.push(call.id);
    }
    crate::store::until("/healthz to say the database takes no writes", || async {
        reqwest::get(server.url("/healthz")).await.unwrap().status() == 503
    })
    .await;

    pg.resume();
    let cancelled = ("cancelled".to_string(), "ringing,cancelled".to_string());
    until_recorded(&pg, "away", vec![cancelled; 3]).await;
    crate::store::until("/healthz to be fine again", || async {
        reqwest::get(server.url("/healthz")).await.unwrap().status() == 200
    })
    .await;
    assert_eq!(
        server
            .metric("switchboard_store_errors_total{outcome=\"lost\"}")
            .await,
        0.0
    );
}

#[tokio::test]
async fn the_nodes_of_a_cluster_record_into_one_postgresql() {
    let pg = PostgresServer::start();
    let url = pg.database("cluster");
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let (url, redis_url) = (url.clone(), redis.url());
        nodes.push(
            TestServer::start_with(|s| {
                s.database_url = Some(url);
                s.redis_url = Some(redis_url);
                s.node_timeout = Duration::from_secs(2);
            })
            .await,
        );
    }
    let mut ann = nodes[0].user("ann").await;
    let mut bob = nodes[1].user("bob").await;
    let mut bob_too = nodes[2].user("bob").await;
    let call = loop {
        ann.send(Command::Call { to: "bob".into() }).await;
        match ann.event().await {
            switchboard_proto::Event::Call(view) => break view,
            // Bob's login may not have reached Redis yet.
            switchboard_proto::Event::Error { .. } => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    bob.call_in(CallState::Ringing).await;
    bob_too.call_in(CallState::Ringing).await;
    bob_too.answer(&call.id).await;
    bob_too.call_in(CallState::Answered).await;
    bob.send(Command::Hangup {
        call: call.id.clone(),
    })
    .await;
    ann.call_in(CallState::Answered).await;
    ann.call_in(CallState::Ended).await;
    until_recorded(
        &pg,
        "cluster",
        vec![("ended".into(), "ringing,answered,ended".into())],
    )
    .await;
}
