//! The OpenMeetings room provider against the fake OpenMeetings: one room per call, a fresh
//! hash per click, both login styles, and a server that is down, slow or forgetful.

use std::time::{Duration, Instant};

use switchboard::rooms::{
    AfterCall, CallRoom, JoinTarget, Joiner, OpenMeetings, OpenMeetingsConfig, RoomError,
    RoomProvider,
};
use switchboard_proto::{CallId, CallState, Command, ErrorCode, Event, Role, UserRef};

use crate::common::TestServer;
use crate::common::fake_openmeetings::{
    FakeCall, FakeOpenMeetings, FakeOptions, LoginStyle, PASSWORD, USER, hash_in,
};
use crate::common::server::http;

fn call(id: &str) -> CallRoom {
    CallRoom {
        id: CallId(id.into()),
        caller: UserRef {
            id: "u-1".into(),
            name: "Ann <b>Lee</b>".into(),
        },
        callee: UserRef {
            id: "u-2".into(),
            name: "Bob".into(),
        },
    }
}

fn joiner(room: &CallRoom, role: Role) -> Joiner {
    Joiner {
        room: room.clone(),
        role,
        token: format!("token-{role:?}"),
        ends_at: None,
    }
}

fn config(fake: &FakeOpenMeetings) -> OpenMeetingsConfig {
    OpenMeetingsConfig::new(fake.base_url(), USER, PASSWORD)
}

fn provider(config: OpenMeetingsConfig) -> OpenMeetings {
    OpenMeetings::new(config).expect("a valid OpenMeetings config")
}

async fn link(provider: &OpenMeetings, joiner: &Joiner) -> String {
    match provider.join(joiner).await {
        Ok(JoinTarget::Redirect(link)) => link,
        other => panic!("expected a redirect, got {other:?}"),
    }
}

/// Follows a link as the browser would: status and page text.
async fn follow(link: &str) -> (u16, String) {
    let answer = reqwest::get(link).await.expect("the fake answers");
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

#[tokio::test]
async fn both_participants_get_their_own_hash_of_one_room() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let om = provider(config(&fake));
    let room = call("c-42");

    let caller_link = link(&om, &joiner(&room, Role::Caller)).await;
    let callee_link = link(&om, &joiner(&room, Role::Callee)).await;

    let prefix = format!("{}/hash?secure=", fake.base_url());
    assert!(caller_link.starts_with(&prefix), "{caller_link}");
    assert_ne!(hash_in(&caller_link), hash_in(&callee_link));

    let rooms = fake.rooms();
    assert_eq!(rooms.len(), 1);
    let made = &rooms[0];
    assert_eq!(made.kind, "CONFERENCE");
    assert_eq!(made.external_type.as_deref(), Some("switchboard"));
    assert_eq!(made.external_id.as_deref(), Some("c-42"));
    assert_eq!(made.dto["capacity"], 2);
    assert_eq!(made.dto["isPublic"], false);

    let hashes = fake.hashes();
    assert_eq!(hashes.len(), 2);
    assert!(hashes.iter().all(|h| h.room_id == made.id));
    assert_eq!(hashes[0].user_field("externalId"), Some("u-1"));
    assert_eq!(hashes[0].user_field("login"), Some("u-1"));
    assert_eq!(hashes[0].user_field("firstname"), Some("Ann <b>Lee</b>"));
    assert_eq!(hashes[0].user_field("externalType"), Some("switchboard"));
    assert_eq!(hashes[1].user_field("externalId"), Some("u-2"));
    assert_eq!(hashes[0].options["moderator"], true);
    assert_eq!(hashes[0].options["allowSameURLMultipleTimes"], false);
    // A session per hash: a shared one would log both participants in as the last one.
    assert_ne!(hashes[0].sid, hashes[1].sid);

    let (status, page) = follow(&caller_link).await;
    assert_eq!(status, 200);
    assert!(page.contains("Welcome, Ann <b>Lee</b>"), "{page}");
    let (status, page) = follow(&callee_link).await;
    assert_eq!(status, 200);
    assert!(page.contains("Welcome, Bob"), "{page}");
}

#[tokio::test]
async fn a_second_click_gets_a_new_hash() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let om = provider(config(&fake));
    let caller = joiner(&call("c-1"), Role::Caller);

    let first = link(&om, &caller).await;
    assert_eq!(follow(&first).await.0, 200);
    // Hashes are single-use: the same link again is refused...
    assert_eq!(follow(&first).await.0, 403);
    // ...so clicking the Switchboard link again mints a new one.
    let second = link(&om, &caller).await;
    assert_ne!(hash_in(&first), hash_in(&second));
    assert_eq!(follow(&second).await.0, 200);
    assert_eq!(fake.rooms().len(), 1);
}

#[tokio::test]
async fn logs_in_by_get_on_openmeetings_8_and_remembers() {
    let fake = FakeOpenMeetings::start(FakeOptions::v8()).await;
    let om = provider(config(&fake));
    let room = call("c-8");

    link(&om, &joiner(&room, Role::Caller)).await;
    link(&om, &joiner(&room, Role::Callee)).await;

    let logins: Vec<_> = fake.logins().iter().map(|l| (l.method, l.ok)).collect();
    assert_eq!(
        logins,
        [("POST", false), ("GET", true), ("GET", true)],
        "POST once, refused with 405, then GET only"
    );
    assert!(fake.logins().iter().all(|l| l.user == USER));
}

#[tokio::test]
async fn logs_in_by_post_on_openmeetings_9() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let om = provider(config(&fake));
    let room = call("c-9");

    link(&om, &joiner(&room, Role::Caller)).await;
    link(&om, &joiner(&room, Role::Callee)).await;

    let logins: Vec<_> = fake.logins().iter().map(|l| (l.method, l.ok)).collect();
    assert_eq!(logins, [("POST", true), ("POST", true)]);
}

#[tokio::test]
async fn a_session_lost_half_way_is_replaced() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let om = provider(config(&fake));
    let room = call("c-lost");

    fake.expire_sids_before_next(FakeCall::Hash);
    let entry = link(&om, &joiner(&room, Role::Caller)).await;

    assert_eq!(
        fake.logins().len(),
        2,
        "logged in again after error.notallowed"
    );
    assert_eq!(fake.rooms().len(), 1);
    assert_eq!(follow(&entry).await.0, 200);

    // The room id is remembered, so the second participant needs no room call at all.
    fake.expire_sids_before_next(FakeCall::FindRoom);
    link(&om, &joiner(&room, Role::Callee)).await;
    assert_eq!(fake.logins().len(), 3);
    assert_eq!(fake.count(FakeCall::FindRoom), 1);
}

#[tokio::test]
async fn a_session_lost_on_openmeetings_6_is_replaced_too() {
    // Before 6.3 a bad session is a bare HTTP 500 page, not error.notallowed.
    let fake = FakeOpenMeetings::start(FakeOptions::v6()).await;
    let om = provider(config(&fake));

    fake.expire_sids_before_next(FakeCall::FindRoom);
    let entry = link(&om, &joiner(&call("c-six"), Role::Caller)).await;
    assert_eq!(follow(&entry).await.0, 200);
    let good_logins = fake.logins().iter().filter(|l| l.ok).count();
    assert_eq!(good_logins, 2);
}

#[tokio::test]
async fn idle_sessions_expire_but_every_click_logs_in_afresh() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    fake.set_sid_idle(Duration::from_millis(300));
    let om = provider(config(&fake));
    let caller = joiner(&call("c-idle"), Role::Caller);

    let stale = link(&om, &caller).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A hash lives only as long as its session: an old link is dead...
    assert_eq!(follow(&stale).await.0, 403);
    // ...but a new click works, with a new session.
    let fresh = link(&om, &caller).await;
    assert_eq!(follow(&fresh).await.0, 200);

    fake.expire_all_sids();
    let again = link(&om, &caller).await;
    assert_eq!(follow(&again).await.0, 200);
}

#[tokio::test]
async fn bad_credentials_are_a_clear_error() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let mut config = config(&fake);
    config.password = "not-the-password".into();
    let om = provider(config);

    let err = om
        .join(&joiner(&call("c-creds"), Role::Caller))
        .await
        .expect_err("bad credentials");
    let RoomError::Refused(message) = &err else {
        panic!("expected Refused, got {err:?}");
    };
    assert!(message.contains("error.bad.credentials"), "{message}");
    assert!(!message.contains("not-the-password"), "{message}");
    assert!(fake.rooms().is_empty());
}

#[tokio::test]
async fn a_wrong_password_on_openmeetings_9_may_only_time_out_and_says_why() {
    let fake = FakeOpenMeetings::start(FakeOptions {
        wrong_password_delay: Duration::from_secs(3),
        ..FakeOptions::v9()
    })
    .await;
    let mut config = config(&fake);
    config.password = "not-the-password".into();
    config.timeout = Duration::from_millis(500);
    let om = provider(config);

    let started = Instant::now();
    let err = om
        .join(&joiner(&call("c-penalty"), Role::Caller))
        .await
        .expect_err("bad credentials");
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(
        matches!(&err, RoomError::Unreachable(m) if m.contains("wrong password")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_account_without_the_soap_right_is_refused() {
    let fake = FakeOpenMeetings::start(FakeOptions {
        soap_right: false,
        ..FakeOptions::v9()
    })
    .await;
    let om = provider(config(&fake));

    let err = om
        .join(&joiner(&call("c-soap"), Role::Caller))
        .await
        .expect_err("no SOAP right");
    assert!(
        matches!(&err, RoomError::Refused(m) if m.contains("SOAP")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_server_that_is_down_fails_fast_and_a_later_click_works() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let om = provider(config(&fake));
    let caller = joiner(&call("c-down"), Role::Caller);

    fake.go_down().await;
    let started = Instant::now();
    let err = om.join(&caller).await.expect_err("server down");
    assert!(
        matches!(&err, RoomError::Unreachable(m) if m.contains("refused")),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!err.to_string().contains(PASSWORD));

    fake.come_back().await;
    let link = link(&om, &caller).await;
    assert_eq!(follow(&link).await.0, 200);
}

#[tokio::test]
async fn a_dead_proxy_in_front_is_unreachable() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let om = provider(config(&fake));
    let caller = joiner(&call("c-proxy"), Role::Caller);

    fake.set_proxy_down(true);
    let err = om.join(&caller).await.expect_err("502");
    assert!(
        matches!(&err, RoomError::Unreachable(m) if m.contains("502")),
        "{err:?}"
    );
    fake.set_proxy_down(false);
    link(&om, &caller).await;
}

#[tokio::test]
async fn a_slow_server_fails_within_the_timeout() {
    let fake = FakeOpenMeetings::start(FakeOptions::v8()).await;
    let mut config = config(&fake);
    config.timeout = Duration::from_millis(500);
    let om = provider(config);
    let caller = joiner(&call("c-slow"), Role::Caller);

    fake.set_delay(Duration::from_secs(3));
    let started = Instant::now();
    let err = om.join(&caller).await.expect_err("too slow");
    let took = started.elapsed();
    assert!(matches!(err, RoomError::Unreachable(_)), "{err:?}");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    // The login URL of OpenMeetings 8 carries the password: it must not leak into errors.
    assert!(!err.to_string().contains("p4ss"), "{err}");

    fake.set_delay(Duration::ZERO);
    link(&om, &caller).await;
}

#[tokio::test]
async fn the_room_is_closed_deleted_or_kept_after_the_call() {
    for after_call in [AfterCall::Close, AfterCall::Delete, AfterCall::Keep] {
        let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
        let mut config = config(&fake);
        config.after_call = after_call;
        let om = provider(config);
        let room = call("c-over");

        let link = link(&om, &joiner(&room, Role::Caller)).await;
        om.call_over(&room).await;

        let rooms = fake.rooms();
        let (closed, deleted) = (rooms[0].closed, rooms[0].deleted);
        match after_call {
            AfterCall::Close => assert!(closed && !deleted),
            AfterCall::Delete => assert!(deleted && !closed),
            AfterCall::Keep => assert!(!closed && !deleted),
        }
        // A link minted before the end only works while the room does.
        let status = follow(&link).await.0;
        assert_eq!(
            status == 200,
            after_call == AfterCall::Keep,
            "{after_call:?}"
        );
    }
}

#[tokio::test]
async fn a_call_that_ends_while_its_room_is_being_made_still_closes_it() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let mut config = config(&fake);
    config.timeout = Duration::from_secs(3);
    let om = provider(config);
    let room = call("c-midway");
    let caller = joiner(&room, Role::Caller);

    fake.set_delay(Duration::from_millis(200));
    let (joined, ()) = tokio::join!(om.join(&caller), async {
        // Hung up while the click is still logging in.
        tokio::time::sleep(Duration::from_millis(100)).await;
        om.call_over(&room).await;
    });
    assert!(matches!(&joined, Err(RoomError::CallEnded)), "{joined:?}");
    let rooms = fake.rooms();
    assert_eq!(rooms.len(), 1);
    assert!(rooms[0].closed, "the click closed the room it made");
    assert!(fake.hashes().len() <= 1);

    // Ending a call twice, or a call already released, asks nothing more of OpenMeetings.
    let logins = fake.logins().len();
    om.call_over(&room).await;
    assert_eq!(fake.logins().len(), logins);
}

#[tokio::test]
async fn the_end_of_a_call_nobody_joined_costs_nothing() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let om = provider(config(&fake));
    om.call_over(&call("c-unjoined")).await;
    assert!(fake.logins().is_empty());
}

#[tokio::test]
async fn a_failing_release_is_only_logged() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let mut config = config(&fake);
    config.timeout = Duration::from_millis(500);
    let om = provider(config);
    let room = call("c-release");
    link(&om, &joiner(&room, Role::Caller)).await;

    fake.set_delay(Duration::from_secs(3));
    let started = Instant::now();
    om.call_over(&room).await;
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(!fake.rooms()[0].closed);
}

#[tokio::test]
async fn joins_never_make_two_rooms_for_one_call() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let om = provider(config(&fake));
    let room = call("c-race");

    // Both participants click at the same moment.
    let caller = joiner(&room, Role::Caller);
    let callee = joiner(&room, Role::Callee);
    let (a, b) = tokio::join!(om.join(&caller), om.join(&callee));
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    assert_eq!(fake.rooms().len(), 1);
    // One find-or-create, not two racing ones: OpenMeetings does not make it atomic.
    assert_eq!(fake.count(FakeCall::FindRoom), 1);

    // A restarted Switchboard has forgotten the room id; OpenMeetings finds it by call id.
    let restarted = provider(config(&fake));
    link(&restarted, &caller).await;
    assert_eq!(fake.rooms().len(), 1);

    // Another call gets another room.
    link(&om, &joiner(&call("c-other"), Role::Caller)).await;
    assert_eq!(fake.rooms().len(), 2);
}

#[tokio::test]
async fn settings_reach_openmeetings_and_the_link() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let mut config = config(&fake);
    config.language = Some(2);
    config.moderators = false;
    config.capacity = 3;
    config.room_type = "interview".parse().expect("a room type");
    let om = provider(config);

    let link = link(&om, &joiner(&call("c-set"), Role::Callee)).await;
    assert!(link.ends_with("&language=2"), "{link}");
    let room = &fake.rooms()[0];
    assert_eq!(room.kind, "INTERVIEW");
    assert_eq!(room.dto["capacity"], 3);
    assert_eq!(fake.hashes()[0].options["moderator"], false);
}

#[tokio::test]
async fn a_url_that_is_not_openmeetings_is_a_protocol_error() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    // The right host with a wrong path: every call is a 404.
    let config = OpenMeetingsConfig::new(
        fake.base_url().replace("/openmeetings", "/elsewhere"),
        USER,
        PASSWORD,
    );
    let err = provider(config)
        .join(&joiner(&call("c-404"), Role::Caller))
        .await
        .expect_err("not OpenMeetings");
    assert!(
        matches!(&err, RoomError::Protocol(m) if m.contains("404")),
        "{err:?}"
    );
}

/// A Switchboard server whose rooms come from `fake`.
async fn server_with(fake: &FakeOpenMeetings) -> TestServer {
    server_tweaked(fake, |_| {}).await
}

/// A Switchboard server whose rooms come from `fake`, with `tweak` applied last.
async fn server_tweaked(
    fake: &FakeOpenMeetings,
    tweak: impl FnOnce(&mut switchboard::config::Settings),
) -> TestServer {
    let url = fake.base_url();
    TestServer::start_with(move |settings| {
        settings.room_url_template = None;
        settings.openmeetings_url = Some(url);
        settings.openmeetings_user = Some(USER.into());
        settings.openmeetings_password = Some(PASSWORD.into());
        settings.openmeetings_timeout = Some(Duration::from_millis(800));
        tweak(settings);
    })
    .await
}

/// Waits until `done` holds, for at most five seconds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Follows a Switchboard `/join` link without following the redirect: status and `Location`.
async fn join_link(link: &str) -> (reqwest::StatusCode, Option<String>) {
    let answer = http().get(link).send().await.expect("switchboard answers");
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (answer.status(), location)
}

#[tokio::test]
async fn a_call_answered_over_websockets_sends_both_to_their_own_hash_of_one_room() {
    let fake = FakeOpenMeetings::start(FakeOptions::v8()).await;
    let server = server_with(&fake).await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;

    let ringing = ann.call("bob").await;
    let incoming = bob.call_in(CallState::Ringing).await;
    let bob_link = incoming.link.clone().expect("the callee's link");
    // Ringing never waits on OpenMeetings: nothing has been asked of it yet.
    assert!(fake.logins().is_empty());

    bob.answer(&incoming.id).await;
    let answered = ann.call_in(CallState::Answered).await;
    let ann_link = answered.link.clone().expect("the caller's link");
    bob.call_in(CallState::Answered).await;

    let (status, ann_target) = join_link(&ann_link).await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    let (status, bob_target) = join_link(&bob_link).await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    let (ann_target, bob_target) = (ann_target.expect("Location"), bob_target.expect("Location"));
    assert!(ann_target.starts_with(&format!("{}/hash?secure=", fake.base_url())));
    assert_ne!(hash_in(&ann_target), hash_in(&bob_target));

    let rooms = fake.rooms();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].external_id.as_deref(), Some(ringing.id.0.as_str()));
    let hashes = fake.hashes();
    assert!(hashes.iter().all(|h| h.room_id == rooms[0].id));
    assert_eq!(hashes[0].user_field("externalId"), Some("ann"));
    assert_eq!(hashes[1].user_field("externalId"), Some("bob"));

    assert!(follow(&ann_target).await.1.contains("Welcome, Ann"));
    assert!(follow(&bob_target).await.1.contains("Welcome, Bob"));

    // Hanging up closes the room (the default), in the background.
    ann.send(Command::Hangup {
        call: ringing.id.clone(),
    })
    .await;
    ann.call_in(CallState::Ended).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !fake.rooms()[0].closed {
        assert!(Instant::now() < deadline, "the room was not closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_join_while_openmeetings_is_down_says_so_and_a_later_click_works() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let server = server_with(&fake).await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    ann.call("bob").await;
    let incoming = bob.call_in(CallState::Ringing).await;
    let bob_link = incoming.link.clone().expect("the callee's link");

    fake.go_down().await;
    let started = Instant::now();
    let answer = http()
        .get(&bob_link)
        .send()
        .await
        .expect("switchboard answers");
    assert_eq!(answer.status(), reqwest::StatusCode::BAD_GATEWAY);
    assert!(started.elapsed() < Duration::from_secs(3));
    let page = answer.text().await.unwrap_or_default();
    assert!(!page.contains(PASSWORD), "{page}");

    fake.come_back().await;
    let (status, target) = join_link(&bob_link).await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    assert!(target.is_some_and(|t| hash_in(&t).is_some()));
}

/// Collects everything logged, at every level, by every crate.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut all) = self.0.lock() {
            all.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_password_never_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // OpenMeetings 8 takes the password in the URL: the riskiest case.
    let fake = FakeOpenMeetings::start(FakeOptions::v8()).await;
    let mut config = config(&fake);
    config.timeout = Duration::from_millis(300);
    tracing::info!(?config, "configured");
    let om = provider(config);
    let room = call("c-logs");
    link(&om, &joiner(&room, Role::Caller)).await;
    fake.set_delay(Duration::from_secs(1));
    let _ = om.join(&joiner(&room, Role::Callee)).await;
    om.call_over(&room).await;
    fake.set_delay(Duration::ZERO);
    fake.go_down().await;
    let _ = om.join(&joiner(&room, Role::Callee)).await;

    let logs = String::from_utf8_lossy(&captured.0.lock().expect("logs")).into_owned();
    assert!(logs.contains("configured"), "the capture works");
    let encoded: String = url::form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect();
    assert!(!logs.contains(PASSWORD), "{logs}");
    assert!(!logs.contains(&encoded), "{logs}");
}

#[tokio::test]
async fn never_falls_back_to_a_login_by_get_once_post_has_worked() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let om = provider(config(&fake));
    let caller = joiner(&call("c-post"), Role::Caller);
    link(&om, &caller).await;

    // Something in front of OpenMeetings now refuses POST and offers GET.
    fake.set_login_style(LoginStyle::GetOnly);
    let err = om.join(&caller).await.expect_err("POST refused");
    assert!(
        matches!(&err, RoomError::Protocol(m) if m.contains("405")),
        "{err:?}"
    );
    let methods: Vec<_> = fake.logins().iter().map(|l| l.method).collect();
    assert_eq!(
        methods,
        ["POST", "POST"],
        "the password never went into a URL"
    );
}

#[tokio::test]
async fn room_failures_reach_participants_as_a_plain_sentence() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let server = server_tweaked(&fake, |s| {
        s.openmeetings_password = Some("not-the-password".into());
    })
    .await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    ann.call("bob").await;
    let incoming = bob.call_in(CallState::Ringing).await;
    let bob_link = incoming.link.clone().expect("the callee's link");

    let answer = http().get(&bob_link).send().await.expect("an answer");
    assert_eq!(answer.status(), reqwest::StatusCode::BAD_GATEWAY);
    let page = answer.text().await.unwrap_or_default();
    assert!(page.contains("could not be opened"), "{page}");
    for detail in ["bad.credentials", "OpenMeetings", "logging in"] {
        assert!(!page.contains(detail), "{detail} in {page}");
    }
    let message = loop {
        match bob.event().await {
            Event::Error { code, message } => {
                assert_eq!(code, ErrorCode::RoomFailed);
                break message;
            }
            Event::Call(_) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(message, ErrorCode::RoomFailed.describe());

    // Nor does a broken connection name its cause.
    fake.go_down().await;
    let answer = http().get(&bob_link).send().await.expect("an answer");
    assert_eq!(answer.status(), reqwest::StatusCode::BAD_GATEWAY);
    let page = answer.text().await.unwrap_or_default();
    for detail in ["refused", "os error", "127.0.0.1", "tcp"] {
        assert!(!page.contains(detail), "{detail} in {page}");
    }
}

#[tokio::test]
async fn a_hang_up_while_a_click_makes_the_room_answers_gone_and_closes_it() {
    let fake = FakeOpenMeetings::start(FakeOptions::v9()).await;
    let server = server_tweaked(&fake, |s| {
        s.openmeetings_timeout = Some(Duration::from_secs(5));
    })
    .await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let ringing = ann.call("bob").await;
    let incoming = bob.call_in(CallState::Ringing).await;
    bob.answer(&incoming.id).await;
    ann.call_in(CallState::Answered).await;
    let bob_link = incoming.link.clone().expect("the callee's link");

    fake.set_delay(Duration::from_millis(300));
    let click = tokio::spawn(async move {
        let answer = http().get(&bob_link).send().await.expect("an answer");
        (answer.status(), answer.text().await.unwrap_or_default())
    });
    until("the click reached OpenMeetings", || {
        !fake.logins().is_empty()
    })
    .await;
    ann.send(Command::Hangup {
        call: ringing.id.clone(),
    })
    .await;
    ann.call_in(CallState::Ended).await;

    let (status, page) = click.await.expect("the click");
    assert_eq!(status, reqwest::StatusCode::GONE, "{page}");
    assert!(page.contains("ended"), "{page}");
    until("the room made for the click is closed", || {
        let rooms = fake.rooms();
        !rooms.is_empty() && rooms.iter().all(|r| r.closed)
    })
    .await;
    assert_eq!(fake.rooms().len(), 1);
}
