//! Presence: online and offline with a grace period, watching, several sessions, and the 2010
//! single-session rule.

use std::time::Duration;

use switchboard_proto::{Command, Event, LogoutReason};
use tokio::time::Instant;

use crate::common::{PRESENCE_GRACE as GRACE, TestServer};

#[tokio::test]
async fn watchers_see_users_come_and_go_after_the_grace_period() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    ann.send(Command::Watch {
        users: vec!["bob".into(), "nobody".into()],
    })
    .await;
    assert_eq!(ann.presence().await, ("bob".into(), None, false));
    assert_eq!(ann.presence().await, ("nobody".into(), None, false));

    let bob = server.user("bob").await;
    assert_eq!(
        ann.presence().await,
        ("bob".into(), Some("Bob".into()), true)
    );
    assert_eq!(server.metric("switchboard_users_online").await, 2.0);

    let closed = Instant::now();
    bob.close().await;
    // Within the grace period nothing changes (a reload must not flap): the next event is
    // Bob going offline, once the grace period is over.
    assert_eq!(
        ann.presence().await,
        ("bob".into(), Some("Bob".into()), false)
    );
    assert!(
        closed.elapsed() >= GRACE,
        "offline before the grace period ended"
    );
    assert_eq!(server.metric("switchboard_users_online").await, 1.0);
}

#[tokio::test]
async fn a_reload_within_the_grace_period_does_not_flap() {
    let server = TestServer::start_with(|s| s.presence_grace = Duration::from_secs(2)).await;
    let mut ann = server.user("ann").await;
    let bob = server.user("bob").await;
    ann.send(Command::Watch {
        users: vec!["bob".into()],
    })
    .await;
    assert!(ann.presence().await.2);

    bob.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _bob_again = server.user("bob").await;
    // The old session expires after the grace period, but Bob is still online: once it is gone
    // (Ann's session and Bob's new one remain), Ann must have heard nothing about Bob.
    crate::store::until("Bob's old session to expire", || async {
        server.metric("switchboard_sessions").await == 2.0
    })
    .await;
    ann.nothing_pending().await;
}

#[tokio::test]
async fn logout_is_immediate_and_reported() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    ann.send(Command::Watch {
        users: vec!["bob".into()],
    })
    .await;
    assert!(ann.presence().await.2);
    bob.send(Command::Logout).await;
    assert_eq!(
        bob.event().await,
        Event::LoggedOut {
            reason: LogoutReason::Requested
        }
    );
    assert!(!ann.presence().await.2);
}

#[tokio::test]
async fn a_user_is_online_while_any_session_is() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    ann.send(Command::Watch {
        users: vec!["bob".into()],
    })
    .await;
    assert!(!ann.presence().await.2);
    let phone = server.user("bob").await;
    assert!(ann.presence().await.2);
    let laptop = server.user("bob").await;
    phone.close().await;
    // Bob stays online on his laptop well past the phone's grace period; he goes offline only
    // a grace period after the laptop goes too.
    tokio::time::sleep(2 * GRACE).await;
    let laptop_closed = Instant::now();
    laptop.close().await;
    assert!(!ann.presence().await.2);
    assert!(
        laptop_closed.elapsed() >= GRACE,
        "offline when the phone left, with the laptop still there"
    );
}

#[tokio::test]
async fn single_session_mode_logs_the_older_session_out() {
    let server = TestServer::start_with(|s| s.single_session = true).await;
    let mut first = server.user("ann").await;
    let mut watcher = server.user("bob").await;
    watcher
        .send(Command::Watch {
            users: vec!["ann".into()],
        })
        .await;
    assert!(watcher.presence().await.2);

    let _second = server.user("ann").await;
    assert_eq!(
        first.event().await,
        Event::LoggedOut {
            reason: LogoutReason::Elsewhere
        }
    );
    // Ann never went offline in between.
    watcher.nothing_pending().await;
}

#[tokio::test]
async fn sessions_per_user_are_bounded() {
    let server = TestServer::start_with(|s| s.sessions_per_user = 2).await;
    let _one = server.user("ann").await;
    let _two = server.user("ann").await;
    let mut three = server.client().await;
    three
        .send(Command::Login {
            auth: switchboard_proto::Auth::Demo {
                id: "ann".into(),
                name: "Ann".into(),
            },
        })
        .await;
    assert_eq!(
        three.error().await.1,
        switchboard_proto::ErrorCode::TooManySessions
    );
}

#[tokio::test]
async fn watch_lists_are_bounded_and_checked() {
    let server = TestServer::start_with(|s| s.max_watched = 3).await;
    let mut ann = server.user("ann").await;
    let id = ann
        .send(Command::Watch {
            users: (0..4).map(|i| format!("u{i}")).collect(),
        })
        .await;
    assert_eq!(
        ann.error().await,
        (Some(id), switchboard_proto::ErrorCode::TooManyWatched)
    );
    ann.send(Command::Watch {
        users: vec!["<script>".into()],
    })
    .await;
    assert_eq!(
        ann.error().await.1,
        switchboard_proto::ErrorCode::InvalidUserId
    );
}
