//! Hostile and broken clients: forged identities, foreign origins, malformed and oversized
//! frames, and readers that do not keep up. Each gets a clear error; nobody else notices.

use std::time::Duration;

use futures_util::SinkExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use switchboard_proto::{Auth, CallState, Command, ErrorCode, Event, close};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, client::IntoClientRequest},
};

use crate::common::{Client, TestServer};

const SECRET: &str = "a site secret that is long enough";

fn token(alg: Algorithm, secret: &str, claims: serde_json::Value) -> String {
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn in_an_hour() -> u64 {
    jsonwebtoken::get_current_timestamp() + 3600
}

async fn signed_server() -> TestServer {
    TestServer::start_with(|s| s.jwt_secret = Some(SECRET.into())).await
}

#[tokio::test]
async fn a_signed_identity_logs_in() {
    let server = signed_server().await;
    let mut client = server.client().await;
    let token = token(
        Algorithm::HS256,
        SECRET,
        json!({"sub": "u-17", "name": "Ann", "exp": in_an_hour()}),
    );
    client
        .send(Command::Login {
            auth: Auth::Token(token),
        })
        .await;
    match client.event().await {
        Event::LoggedIn { user } => {
            assert_eq!((user.id.as_str(), user.name.as_str()), ("u-17", "Ann"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn forged_expired_and_wrong_algorithm_tokens_are_refused_and_disconnected() {
    let server = signed_server().await;
    let mut bystander = server.client().await;
    let good = token(
        Algorithm::HS256,
        SECRET,
        json!({"sub": "bob", "name": "Bob", "exp": in_an_hour()}),
    );
    bystander
        .send(Command::Login {
            auth: Auth::Token(good),
        })
        .await;
    bystander.event().await;

    let cases = [
        (
            token(
                Algorithm::HS256,
                "somebody else's secret!!",
                json!({"sub": "bob", "name": "Bob", "exp": in_an_hour()}),
            ),
            ErrorCode::BadToken,
        ),
        (
            token(
                Algorithm::HS512,
                SECRET,
                json!({"sub": "bob", "name": "Bob", "exp": in_an_hour()}),
            ),
            ErrorCode::BadToken,
        ),
        (
            token(
                Algorithm::HS256,
                SECRET,
                json!({"sub": "bob", "name": "Bob", "exp": 1_600_000_000}),
            ),
            ErrorCode::TokenExpired,
        ),
        (
            token(
                Algorithm::HS256,
                SECRET,
                json!({"sub": "bob", "exp": in_an_hour()}),
            ),
            ErrorCode::BadToken,
        ),
        ("e30.e30.".to_string(), ErrorCode::BadToken),
    ];
    for (token, code) in cases {
        let mut client = server.client().await;
        let id = client
            .send(Command::Login {
                auth: Auth::Token(token),
            })
            .await;
        assert_eq!(client.error().await, (Some(id), code));
        assert_eq!(client.closed().await, Some(close::PROTOCOL));
    }
    // A demo identity is refused by a server that wants signed ones.
    let mut client = server.client().await;
    client
        .send(Command::Login {
            auth: Auth::Demo {
                id: "bob".into(),
                name: "Bob".into(),
            },
        })
        .await;
    assert_eq!(client.error().await.1, ErrorCode::SignedIdentityRequired);
    assert_eq!(client.closed().await, Some(close::PROTOCOL));

    // The real Bob never noticed.
    bystander.silent_for(Duration::from_millis(200)).await;
    assert_eq!(server.metric("switchboard_users_online").await, 1.0);
}

#[tokio::test]
async fn foreign_origins_are_refused_and_allowed_ones_admitted() {
    let server =
        TestServer::start_with(|s| s.allowed_origins = vec!["https://forum.example.org".into()])
            .await;
    let with_origin = |origin: &str| {
        let mut request = server.ws_url().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        request
    };
    let refused = connect_async(with_origin("https://evil.example")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    assert!(
        connect_async(with_origin("https://forum.example.org"))
            .await
            .is_ok()
    );
    assert!(
        connect_async(with_origin(&format!("http://{}", server.addr)))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn bad_frames_get_typed_errors_and_change_nothing() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;

    ann.send_text("{not json".into()).await;
    assert_eq!(ann.error().await, (None, ErrorCode::BadFrame));
    ann.send_text(r#"{"id":9,"cmd":{"type":"explode"}}"#.into())
        .await;
    assert_eq!(ann.error().await, (Some(9), ErrorCode::BadFrame));
    ann.send_text(r#"{"id":10,"cmd":{"type":"call"}}"#.into())
        .await;
    assert_eq!(ann.error().await, (Some(10), ErrorCode::BadFrame));
    ann.send_text(format!(
        r#"{{"id":11,"cmd":{{"type":"call","to":"{}"}}}}"#,
        "x".repeat(5_000)
    ))
    .await;
    assert_eq!(ann.error().await, (None, ErrorCode::FrameTooLarge));
    ann.ws
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(ann.error().await, (None, ErrorCode::BadFrame));
    let mut anonymous = server.client().await;
    anonymous
        .send(Command::Watch {
            users: vec!["bob".into()],
        })
        .await;
    assert_eq!(anonymous.error().await.1, ErrorCode::NotLoggedIn);
    ann.send(Command::Hello { v: 1, resume: None }).await;
    assert_eq!(ann.error().await.1, ErrorCode::HelloRequired);
    ann.send(Command::Login {
        auth: Auth::Demo {
            id: "ann".into(),
            name: "\u{7}bell".into(),
        },
    })
    .await;
    assert_eq!(ann.error().await.1, ErrorCode::InvalidName);

    // The session still works, and Bob saw none of it.
    ann.call("bob").await;
    bob.call_in(CallState::Ringing).await;
}

#[tokio::test]
async fn a_huge_frame_closes_only_its_own_connection() {
    let server = TestServer::start().await;
    let mut bystander = server.user("bob").await;
    let mut client = server.user("ann").await;
    let _ = client
        .ws
        .send(Message::Text("x".repeat(200_000).into()))
        .await;
    assert_eq!(client.closed().await, Some(1009));
    let mut again = server.user("cat").await;
    again
        .send(Command::Watch {
            users: vec!["bob".into()],
        })
        .await;
    assert!(again.presence().await.2);
    bystander.silent_for(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn the_first_frame_must_be_a_hello_of_this_version() {
    let server = TestServer::start().await;
    for (text, code) in [
        (
            r#"{"cmd":{"type":"hello","v":99}}"#,
            ErrorCode::UnsupportedVersion,
        ),
        (r#"{"cmd":{"type":"logout"}}"#, ErrorCode::HelloRequired),
        ("garbage", ErrorCode::BadFrame),
    ] {
        let (mut ws, _) = connect_async(server.ws_url()).await.unwrap();
        ws.send(Message::Text(text.into())).await.unwrap();
        let mut client = Client::wrap(ws);
        assert_eq!(client.error().await.1, code);
        assert_eq!(client.closed().await, Some(close::PROTOCOL));
    }
}

#[tokio::test]
async fn a_reader_that_does_not_keep_up_is_cut_off() {
    let server = TestServer::start_with(|s| {
        s.replay_events = 2;
        s.max_watched = 2;
        s.send_queue = 12;
        s.logins_per_minute = 0;
        s.logins_per_ip_per_minute = 0;
        s.messages_per_second = 0;
        s.write_timeout = Duration::from_secs(1);
        s.presence_grace = Duration::from_secs(30);
    })
    .await;
    // A small receive window, so the kernel does not absorb megabytes on the reader's behalf.
    let mut slow = Client::connect_with_small_buffer(&server.ws_url()).await;
    slow.login("slow", "Slow").await;
    slow.send(Command::Watch {
        users: vec!["flapper".into()],
    })
    .await;
    assert!(!slow.presence().await.2);

    // The slow client stops reading, for good; a flapping user floods it with presence events.
    let mut flapper = server.client().await;
    // Long names of four-byte characters make each event large, so the flood is short.
    let name = "\u{1F4DE}".repeat(100);
    let mut rounds = 0;
    while server.metric("switchboard_connections").await > 1.0 {
        rounds += 1;
        assert!(rounds <= 100, "the slow reader was never cut off");
        for _ in 0..100 {
            flapper.login("flapper", &name).await;
            flapper.send(Command::Logout).await;
            flapper.event().await;
        }
    }
    // Its connection is gone without it ever reading again: it could not even be told why.
    assert!(server.metric("switchboard_slow_clients_total").await >= 1.0);
    drop(slow);
    // Everyone else carries on.
    let mut other = server.user("other").await;
    other
        .send(Command::Watch {
            users: vec!["slow".into()],
        })
        .await;
    assert!(
        other.presence().await.2,
        "the slow user is still online within the grace period"
    );
}

#[tokio::test]
async fn a_silent_peer_is_found_dead_and_dropped() {
    let server = TestServer::start_with(|s| {
        s.ping_interval = Duration::from_secs(1);
        s.idle_timeout = Duration::from_millis(2_500);
    })
    .await;
    let mut alive = server.user("alive").await;
    // This client never reads again, so it never answers the server's pings.
    let _silent = server.user("silent").await;
    let mut seen_alone = false;
    for _ in 0..100 {
        // Reading lets the live client answer its pings.
        alive.silent_for(Duration::from_millis(50)).await;
        if server.metric("switchboard_connections").await == 1.0 {
            seen_alone = true;
            break;
        }
    }
    assert!(seen_alone, "the silent connection was never dropped");
    alive
        .send(Command::Watch {
            users: vec!["silent".into()],
        })
        .await;
    alive.presence().await;
}
