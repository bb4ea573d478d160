//! Coming back: a reconnecting client resumes its session and catches up; a restarted server
//! keeps every record and rings on.

use std::time::Duration;

use switchboard::store::read_call;
use switchboard_proto::{CallState, Command, Resume};

use crate::{
    common::{Client, TestServer},
    store::until,
};

#[tokio::test]
async fn a_client_that_reconnects_gets_what_it_missed_once() {
    let server = TestServer::start_with(|s| s.presence_grace = Duration::from_secs(5)).await;
    let mut ann = server.user("ann").await;
    ann.send(Command::Watch {
        users: vec!["bob".into()],
    })
    .await;
    assert!(!ann.presence().await.2);
    let resume = ann.resume();
    drop(ann); // the connection dies without a goodbye

    // While Ann is away, Bob comes online and calls her.
    let mut bob = server.user("bob").await;
    let call = bob.call("ann").await.id;

    let mut ann = Client::connect_resuming(&server.ws_url(), Some(resume.clone())).await;
    assert!(ann.resumed);
    assert_eq!(ann.session, resume.session);
    ann.last_seq = resume.last_seq;
    assert!(ann.presence().await.2);
    let ringing = ann.call_in(CallState::Ringing).await;
    assert_eq!(ringing.id, call);
    // Nothing more: each missed event came once.
    ann.nothing_pending().await;

    // The call rang on through the reconnect and can be answered.
    ann.answer(&call).await;
    ann.call_in(CallState::Answered).await;
    bob.call_in(CallState::Answered).await;
}

#[tokio::test]
async fn a_stale_or_unknown_session_starts_afresh() {
    let server = TestServer::start().await;
    let client = Client::connect_resuming(
        &server.ws_url(),
        Some(Resume {
            session: "made-up".into(),
            last_seq: 3,
        }),
    )
    .await;
    assert!(!client.resumed);
    assert_ne!(client.session, "made-up");
}

#[tokio::test]
async fn a_resume_beyond_the_replay_window_gets_the_state_afresh() {
    let server = TestServer::start_with(|s| {
        s.presence_grace = Duration::from_secs(5);
        s.replay_events = 2;
    })
    .await;
    let mut ann = server.user("ann").await;
    ann.send(Command::Watch {
        users: vec!["bob".into()],
    })
    .await;
    ann.presence().await;
    let resume = ann.resume();
    drop(ann);
    let mut bob = server.user("bob").await;
    bob.send(Command::Logout).await;
    bob.event().await;
    bob.login("bob", "Bob").await;
    let call = bob.call("ann").await.id;

    // The events Ann missed no longer fit the window: she is told to start afresh, and
    // logging in again brings the current state.
    let mut ann = Client::connect_resuming(&server.ws_url(), Some(resume.clone())).await;
    assert!(!ann.resumed);
    assert_ne!(
        ann.session, resume.session,
        "a fresh start comes with a fresh key"
    );
    ann.nothing_pending().await;
    ann.login("ann", "Ann").await;
    assert_eq!(
        ann.last_seq, 2,
        "a fresh start numbers events from 1 again: the reply to the check above, then logged_in"
    );
    assert_eq!(ann.call_in(CallState::Ringing).await.id, call);
}

#[tokio::test]
async fn events_older_than_the_replay_window_are_let_go() {
    // The window is how long a client can go unheard and still resume: the idle timeout plus
    // the grace period, 3 s here.
    let server = TestServer::start_with(|s| {
        s.ping_interval = Duration::from_secs(1);
        s.idle_timeout = Duration::from_secs(2);
        s.presence_grace = Duration::from_secs(1);
    })
    .await;
    let mut ann = server.user("ann").await;
    let before_presence = ann.resume();
    ann.send(Command::Watch {
        users: vec!["bob".into()],
    })
    .await;
    assert!(!ann.presence().await.2);
    // Ann stays connected and answers pings for longer than the window.
    assert!(ann.try_next(Duration::from_millis(3_500)).await.is_none());

    // A resume that asks for the presence event again finds it let go: it starts afresh.
    let again = Client::connect_resuming(&server.ws_url(), Some(before_presence.clone())).await;
    assert!(!again.resumed);
    assert_ne!(again.session, before_presence.session);
}

#[tokio::test]
async fn a_restart_keeps_history_and_rings_on() {
    let mut server = TestServer::start_with(|s| s.ring_timeout = Duration::from_secs(30)).await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let mut cat = server.user("cat").await;
    let _dan = server.user("dan").await;

    // One call answered and one ringing when the server stops.
    let talking = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;
    bob.answer(&talking).await;
    let ann_link = ann.call_in(CallState::Answered).await.link.unwrap();
    let ringing = cat.call("dan").await.id;
    server.stop().await;
    assert_eq!(
        ann.closed().await,
        Some(1001),
        "sessions get a close frame on shutdown"
    );

    let server = server.restart().await;
    for (id, state) in [
        (&talking, CallState::Answered),
        (&ringing, CallState::Ringing),
    ] {
        assert_eq!(
            read_call(&server.db, id).unwrap().unwrap().call.state,
            state
        );
    }
    // Ann comes back: her answered call is still there, its link working.
    let mut ann = server.user("ann").await;
    let view = ann.call_view().await;
    assert_eq!(
        (view.id, view.state),
        (talking.clone(), CallState::Answered)
    );
    let token = ann_link.rsplit('/').next().unwrap();
    let response = crate::common::server::http()
        .get(server.url(&format!("/join/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);

    // The call from Cat rings again for Dan, and Dan answers it.
    let mut dan = server.user("dan").await;
    assert_eq!(dan.call_in(CallState::Ringing).await.id, ringing);
    let mut cat = server.user("cat").await;
    assert_eq!(cat.call_in(CallState::Ringing).await.id, ringing);
    dan.answer(&ringing).await;
    assert_eq!(cat.call_in(CallState::Answered).await.id, ringing);
}

#[tokio::test]
async fn a_call_whose_ring_time_ran_out_during_a_restart_is_missed() {
    let mut server = TestServer::start_with(|s| s.ring_timeout = Duration::from_millis(500)).await;
    let mut ann = server.user("ann").await;
    let _bob = server.user("bob").await;
    let call = ann.call("bob").await.id;
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(700)).await;

    let server = server.restart().await;
    until("the call is recorded as missed", || async {
        read_call(&server.db, &call).unwrap().unwrap().call.state == CallState::Missed
    })
    .await;
    let record = read_call(&server.db, &call).unwrap().unwrap();
    assert_eq!(record.call.reason.as_deref(), Some("nobody answered"));
    // It does not ring for Bob when he comes back.
    let mut bob = server.user("bob").await;
    bob.nothing_pending().await;
}
