//! Calls end to end over real WebSockets: ring, answer, reject, cancel, miss, busy, refusals,
//! several sessions, and the personal join links.

use std::time::Duration;

use reqwest::StatusCode;
use switchboard_proto::{CallState, Command, ErrorCode, Role};

use crate::common::{TestServer, server::http};

#[tokio::test]
async fn a_call_rings_is_answered_and_both_links_are_personal() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;

    let ringing = ann.call("bob").await;
    assert_eq!(ringing.role, Role::Caller);
    assert_eq!(ringing.peer.name, "Bob");
    assert_eq!(
        ringing.link, None,
        "the caller's link comes with the answer"
    );

    let incoming = bob.call_in(CallState::Ringing).await;
    assert_eq!(incoming.id, ringing.id);
    assert_eq!(incoming.role, Role::Callee);
    assert_eq!(incoming.peer.name, "Ann");
    let bob_link = incoming
        .link
        .clone()
        .expect("the callee's link comes with the ring");

    bob.answer(&incoming.id).await;
    let answered = ann.call_in(CallState::Answered).await;
    let ann_link = answered.link.clone().expect("the caller's link");
    assert_eq!(answered.peer.name, "Bob");
    let bobs_view = bob.call_in(CallState::Answered).await;
    assert!(!bobs_view.elsewhere);
    assert_ne!(ann_link, bob_link, "each participant has a personal link");

    let http = http();
    for (link, name) in [(&ann_link, "Ann"), (&bob_link, "Bob")] {
        let response = http.get(link).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers()["location"].to_str().unwrap();
        assert_eq!(
            location,
            format!(
                "https://meet.example.org/switchboard-{}?name={name}",
                ringing.id
            )
        );
    }
    // A stranger guessing a link gets nothing.
    let guessed = http
        .get(server.url("/join/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(guessed.status(), StatusCode::NOT_FOUND);

    // A hang-up ends the call for both, and the links die with it.
    ann.send(Command::Hangup {
        call: ringing.id.clone(),
    })
    .await;
    let ended = ann.call_in(CallState::Ended).await;
    assert_eq!(ended.reason.as_deref(), Some("Ann hung up"));
    assert_eq!(ended.link, None);
    bob.call_in(CallState::Ended).await;
    let dead = http.get(&bob_link).send().await.unwrap();
    assert_eq!(dead.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn strangers_cannot_touch_a_call() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let mut eve = server.user("eve").await;
    let call = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;
    for cmd in [
        Command::Answer { call: call.clone() },
        Command::Reject { call: call.clone() },
        Command::Cancel { call: call.clone() },
        Command::Hangup { call: call.clone() },
    ] {
        eve.send(cmd).await;
        assert_eq!(eve.error().await.1, ErrorCode::NotYourCall);
    }
    // The caller cannot answer their own call either.
    ann.answer(&call).await;
    assert_eq!(ann.error().await.1, ErrorCode::NotYourCall);
    // And the call still rings for Bob.
    bob.answer(&call).await;
    ann.call_in(CallState::Answered).await;
}

#[tokio::test]
async fn the_callee_rejects() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let call = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;
    bob.send(Command::Reject { call }).await;
    let rejected = ann.call_in(CallState::Rejected).await;
    assert_eq!(rejected.reason.as_deref(), Some("Bob rejected the call"));
    bob.call_in(CallState::Rejected).await;
}

#[tokio::test]
async fn the_caller_cancels_and_a_new_call_replaces_the_old() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let mut cat = server.user("cat").await;
    let first = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;

    // A second call cancels the first, as in 2010.
    ann.send(Command::Call { to: "cat".into() }).await;
    let cancelled = ann.call_in(CallState::Cancelled).await;
    assert_eq!(cancelled.id, first);
    let second = ann.call_in(CallState::Ringing).await.id;
    assert_eq!(bob.call_in(CallState::Cancelled).await.id, first);
    cat.call_in(CallState::Ringing).await;

    ann.send(Command::Cancel {
        call: second.clone(),
    })
    .await;
    ann.call_in(CallState::Cancelled).await;
    assert_eq!(cat.call_in(CallState::Cancelled).await.id, second);
    // Cancelling again is refused: the call is over.
    ann.send(Command::Cancel { call: second }).await;
    assert_eq!(ann.error().await.1, ErrorCode::NoSuchCall);
}

#[tokio::test]
async fn an_unanswered_call_is_missed_after_the_ring_timeout() {
    let server = TestServer::start_with(|s| s.ring_timeout = Duration::from_millis(400)).await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let call = ann.call("bob").await;
    assert!(call.rings_for_ms.is_some_and(|ms| ms <= 400));
    bob.call_in(CallState::Ringing).await;
    assert_eq!(
        ann.call_in(CallState::Missed).await.reason.as_deref(),
        Some("nobody answered")
    );
    bob.call_in(CallState::Missed).await;
    bob.answer(&call.id).await;
    assert_eq!(bob.error().await.1, ErrorCode::NoSuchCall);
}

#[tokio::test]
async fn a_ringing_or_talking_callee_is_busy() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let mut cat = server.user("cat").await;
    let call = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;

    let id = cat.send(Command::Call { to: "bob".into() }).await;
    assert_eq!(cat.error().await, (Some(id), ErrorCode::Busy));

    bob.answer(&call).await;
    bob.call_in(CallState::Answered).await;
    cat.send(Command::Call { to: "bob".into() }).await;
    assert_eq!(cat.error().await.1, ErrorCode::Busy);
}

#[tokio::test]
async fn offline_unknown_invalid_and_self_calls_are_refused() {
    let server = TestServer::start().await;
    let bob = server.user("bob").await;
    bob.close().await;
    tokio::time::sleep(Duration::from_millis(600)).await;

    let mut ann = server.user("ann").await;
    for (to, code) in [
        ("bob", ErrorCode::Offline),
        ("nobody", ErrorCode::UnknownUser),
        ("ann", ErrorCode::SelfCall),
        ("not valid!", ErrorCode::InvalidUserId),
    ] {
        let id = ann.send(Command::Call { to: to.into() }).await;
        assert_eq!(ann.error().await, (Some(id), code), "calling {to:?}");
    }
    let mut anonymous = server.client().await;
    anonymous.send(Command::Call { to: "ann".into() }).await;
    assert_eq!(anonymous.error().await.1, ErrorCode::NotLoggedIn);
}

#[tokio::test]
async fn every_session_rings_and_the_first_answer_wins() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut phone = server.user("bob").await;
    let mut laptop = server.user("bob").await;
    let call = ann.call("bob").await.id;
    let on_phone = phone.call_in(CallState::Ringing).await;
    let on_laptop = laptop.call_in(CallState::Ringing).await;
    assert_eq!(on_phone.link, on_laptop.link);

    laptop.answer(&call).await;
    phone.answer(&call).await;
    let answered_here = laptop.call_in(CallState::Answered).await;
    assert!(!answered_here.elsewhere);
    let elsewhere = phone.call_in(CallState::Answered).await;
    assert!(
        elsewhere.elsewhere,
        "the phone is told the call was answered elsewhere"
    );
    assert_eq!(phone.error().await.1, ErrorCode::WrongCallState);
    ann.call_in(CallState::Answered).await;
}

#[tokio::test]
async fn following_the_callee_link_answers_a_ringing_call() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let call = ann.call("bob").await.id;
    let link = bob.call_in(CallState::Ringing).await.link.unwrap();
    // Asking whether the link works (HEAD, as a link preview would) answers nothing.
    let head = http().head(&link).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["cache-control"], "no-store");
    ann.nothing_pending().await;
    let response = http().get(&link).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let answered = ann.call_in(CallState::Answered).await;
    assert_eq!(answered.id, call);
    assert!(bob.call_in(CallState::Answered).await.elsewhere);
}

#[tokio::test]
async fn calls_per_minute_are_limited() {
    let server = TestServer::start_with(|s| s.calls_per_minute = 2).await;
    let mut ann = server.user("ann").await;
    let _bob = server.user("bob").await;
    ann.call("bob").await;
    ann.send(Command::Call { to: "bob".into() }).await;
    ann.call_in(CallState::Cancelled).await;
    ann.call_in(CallState::Ringing).await;
    ann.send(Command::Call { to: "bob".into() }).await;
    assert_eq!(ann.error().await.1, ErrorCode::RateLimited);
}

#[tokio::test]
async fn a_caller_who_leaves_cancels_the_ringing_call() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    ann.call("bob").await;
    bob.call_in(CallState::Ringing).await;
    ann.close().await;
    let cancelled = bob.call_in(CallState::Cancelled).await;
    assert_eq!(cancelled.reason.as_deref(), Some("Ann went offline"));
}

#[tokio::test]
async fn a_refused_call_leaves_the_current_call_alone() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let call = ann.call("bob").await.id;
    bob.call_in(CallState::Ringing).await;
    bob.answer(&call).await;
    ann.call_in(CallState::Answered).await;
    bob.call_in(CallState::Answered).await;
    for to in ["ann", "nobody"] {
        ann.send(Command::Call { to: to.into() }).await;
        ann.error().await;
    }
    bob.nothing_pending().await;
    ann.send(Command::Hangup { call: call.clone() }).await;
    assert_eq!(ann.call_in(CallState::Ended).await.id, call);
}
