//! Hostile and broken clients: forged identities, foreign origins, malformed and oversized
//! frames, and readers that do not keep up. Each gets a clear error; nobody else notices.

use std::{net::SocketAddr, time::Duration};

use futures_util::SinkExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use switchboard_proto::{Auth, CallState, Command, ErrorCode, Event, LogoutReason, close};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
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
    bystander.nothing_pending().await;
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
    bystander.nothing_pending().await;
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

#[tokio::test]
async fn tokens_for_another_audience_or_issuer_are_refused() {
    let server = TestServer::start_with(|s| {
        s.jwt_secret = Some(SECRET.into());
        s.jwt_audience = Some("switchboard".into());
        s.jwt_issuer = Some("https://forum.example.org".into());
    })
    .await;
    let claims = |extra: serde_json::Value| {
        let mut claims = json!({"sub": "u-17", "name": "Ann", "exp": in_an_hour()});
        if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            claims.extend(extra.clone());
        }
        token(Algorithm::HS256, SECRET, claims)
    };
    for extra in [
        json!({}),
        json!({"aud": "billing", "iss": "https://forum.example.org"}),
        json!({"aud": "switchboard", "iss": "https://shop.example.org"}),
    ] {
        let mut client = server.client().await;
        let id = client
            .send(Command::Login {
                auth: Auth::Token(claims(extra.clone())),
            })
            .await;
        assert_eq!(
            client.error().await,
            (Some(id), ErrorCode::BadToken),
            "{extra}"
        );
        assert_eq!(client.closed().await, Some(close::PROTOCOL));
    }
    let mut client = server.client().await;
    client
        .send(Command::Login {
            auth: Auth::Token(claims(
                json!({"aud": "switchboard", "iss": "https://forum.example.org"}),
            )),
        })
        .await;
    assert!(matches!(client.event().await, Event::LoggedIn { .. }));
}

#[tokio::test]
async fn no_frame_carries_the_identity_token() {
    let server = signed_server().await;
    let token = token(
        Algorithm::HS256,
        SECRET,
        json!({"sub": "u-17", "name": "Ann", "exp": in_an_hour()}),
    );
    let login = || Command::Login {
        auth: Auth::Token(token.clone()),
    };
    // Two tabs of one user, each logging in (twice, as a page that reloads its identity).
    let mut tabs = [server.client().await, server.client().await];
    for tab in &mut tabs {
        tab.send(login()).await;
        tab.send(login()).await;
    }
    let mut bob = server.client().await;
    let bob_token = self::token(
        Algorithm::HS256,
        SECRET,
        json!({"sub": "bob", "name": "Bob", "exp": in_an_hour()}),
    );
    bob.send(Command::Login {
        auth: Auth::Token(bob_token),
    })
    .await;
    bob.event().await;
    bob.send(Command::Call { to: "u-17".into() }).await;
    for tab in &mut tabs {
        let mut frames = Vec::new();
        while let Some(Ok(frame)) = tab.try_next(Duration::from_millis(300)).await {
            frames.push(serde_json::to_string(&frame).unwrap());
        }
        assert!(frames.len() >= 3, "{frames:?}");
        for frame in frames {
            assert!(!frame.contains(&token), "{frame}");
        }
    }
}

#[tokio::test]
async fn names_with_invisible_or_reversing_characters_are_refused() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for name in [
        "Ann\u{202E}nimdA",
        "Ann\u{200B}",
        "\u{2066}Ann",
        "Ann\u{FEFF}",
        "Ann\u{2028}Lee",
    ] {
        client
            .send(Command::Login {
                auth: Auth::Demo {
                    id: "ann".into(),
                    name: name.into(),
                },
            })
            .await;
        assert_eq!(client.error().await.1, ErrorCode::InvalidName, "{name:?}");
    }
    // Refused names changed nothing: the session logs in normally afterwards.
    client.login("ann", "Ann Lee").await;
}

#[tokio::test]
async fn a_logged_out_session_hears_no_more_presence() {
    let server = TestServer::start().await;
    let mut ann = server.user("ann").await;
    ann.send(Command::Watch {
        users: vec!["bob".into()],
    })
    .await;
    assert!(!ann.presence().await.2);
    ann.send(Command::Logout).await;
    assert_eq!(
        ann.event().await,
        Event::LoggedOut {
            reason: LogoutReason::Requested
        }
    );
    let _bob = server.user("bob").await;
    // Bob's login went out to his watchers before it was answered: nothing may be queued.
    ann.nothing_pending().await;
}

#[tokio::test]
async fn a_session_that_logs_in_as_someone_else_drops_the_old_watch_list() {
    let server = TestServer::start().await;
    let mut tab = server.user("ann").await;
    tab.send(Command::Watch {
        users: vec!["bob".into()],
    })
    .await;
    assert!(!tab.presence().await.2);
    tab.login("cat", "Cat").await;
    let _bob = server.user("bob").await;
    // Bob's login went out to his watchers before it was answered: nothing may be queued.
    tab.nothing_pending().await;
}

#[tokio::test]
async fn a_session_logged_out_elsewhere_hears_no_more_presence() {
    let server = TestServer::start_with(|s| s.single_session = true).await;
    let mut first = server.user("ann").await;
    first
        .send(Command::Watch {
            users: vec!["bob".into()],
        })
        .await;
    assert!(!first.presence().await.2);
    let _second = server.user("ann").await;
    assert_eq!(
        first.event().await,
        Event::LoggedOut {
            reason: LogoutReason::Elsewhere
        }
    );
    let _bob = server.user("bob").await;
    // Bob's login went out to his watchers before it was answered: nothing may be queued.
    first.nothing_pending().await;
}

/// Asks for a WebSocket upgrade of `path` over a raw connection, with `origin` (any bytes) and
/// `host` (default: the address dialled); returns the status answered.
pub(crate) async fn upgrade(
    addr: SocketAddr,
    path: &str,
    origin: &[u8],
    host: Option<&str>,
) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let host = host.map_or_else(|| addr.to_string(), str::to_owned);
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: "
    )
    .into_bytes();
    request.extend_from_slice(origin);
    request.extend_from_slice(b"\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let mut status = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        BufReader::new(stream).read_line(&mut status),
    )
    .await
    .expect("an answer")
    .unwrap();
    status
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status:?}"))
}

/// One origin case: what the page claims, the `Host` it reaches the server under, and whether
/// the upgrade is accepted.
struct Case {
    origin: Vec<u8>,
    host: Option<String>,
    accepted: bool,
}

fn case(origin: impl Into<Vec<u8>>, host: Option<String>, accepted: bool) -> Case {
    Case {
        origin: origin.into(),
        host,
        accepted,
    }
}

/// Runs every case against `path` and reports all that went wrong at once.
async fn check_origins(addr: SocketAddr, path: &str, cases: &[Case]) {
    let mut wrong = Vec::new();
    for c in cases {
        let status = upgrade(addr, path, &c.origin, c.host.as_deref()).await;
        let expected = if c.accepted { 101 } else { 403 };
        if status != expected {
            wrong.push(format!(
                "{} (host {:?}): {status}, expected {expected}",
                String::from_utf8_lossy(&c.origin),
                c.host
            ));
        }
    }
    assert!(wrong.is_empty(), "{path}:\n{}", wrong.join("\n"));
}

/// The cases for a server on 127.0.0.1 without `public_url`; `site` is what an allowed
/// other site gets.
fn loopback_cases(port: u16, site: bool) -> Vec<Case> {
    vec![
        case(format!("http://127.0.0.1:{port}"), None, true),
        case(format!("http://localhost:{port}"), None, true),
        case(format!("http://[::1]:{port}"), None, true),
        case(format!("HTTP://LocalHost:{port}"), None, true),
        case(format!("https://127.0.0.1:{port}"), None, false),
        case(format!("http://127.0.0.1:{}", port + 1), None, false),
        case("http://127.0.0.1", None, false),
        // DNS rebinding: the page's host name now resolves to 127.0.0.1.
        case(
            format!("http://rebind.example:{port}"),
            Some(format!("rebind.example:{port}")),
            false,
        ),
        case("null", None, false),
        case(
            [b"http://\xff:", port.to_string().as_bytes()].concat(),
            None,
            false,
        ),
        case(b"http://loc\xffalhost".to_vec(), None, false),
        case("https://evil.example", None, false),
        case("https://forum.example.org", None, site),
    ]
}

/// The cases for a server behind a proxy at https://sb.example.org.
fn proxied_cases(port: u16) -> Vec<Case> {
    let proxy_host = Some(format!("127.0.0.1:{port}"));
    vec![
        // The proxy rewrote `Host` to its upstream address.
        case("https://sb.example.org", proxy_host.clone(), true),
        case("https://SB.example.org:443", proxy_host.clone(), true),
        case(
            "https://sb.example.org",
            Some("sb.example.org".into()),
            true,
        ),
        case(
            "http://sb.example.org",
            Some("sb.example.org".into()),
            false,
        ),
        case(
            "https://sb.example.org:8443",
            Some("sb.example.org:8443".into()),
            false,
        ),
        case(format!("http://127.0.0.1:{port}"), None, false),
        case("null", None, false),
    ]
}

#[tokio::test]
async fn socket_origins_are_judged_by_scheme_host_and_port_not_by_host_header() {
    let server =
        TestServer::start_with(|s| s.allowed_origins = vec!["https://forum.example.org".into()])
            .await;
    check_origins(
        server.addr,
        "/ws",
        &loopback_cases(server.addr.port(), true),
    )
    .await;

    let proxied = TestServer::start_with(|s| {
        s.public_url = Some("https://sb.example.org".into());
        s.allowed_origins = vec!["https://forum.example.org".into()];
    })
    .await;
    let mut cases = proxied_cases(proxied.addr.port());
    cases.push(case("https://forum.example.org", None, true));
    check_origins(proxied.addr, "/ws", &cases).await;
}

/// The path of the signalling socket of an answered call's room page, on a server with the
/// built-in room.
async fn room_signal_path(server: &TestServer) -> String {
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    ann.call("bob").await;
    let incoming = bob.call_in(CallState::Ringing).await;
    bob.answer(&incoming.id).await;
    bob.call_in(CallState::Answered).await;
    let link = incoming.link.expect("the callee's link");
    let path = link
        .find("/join/")
        .map(|at| &link[at..])
        .expect("a join link");
    format!("{path}/signal")
}

#[tokio::test]
async fn room_signalling_admits_only_the_servers_own_origin() {
    let server = TestServer::start_with(|s| {
        s.room_url_template = None;
        s.allowed_origins = vec!["https://forum.example.org".into()];
    })
    .await;
    let path = room_signal_path(&server).await;
    check_origins(
        server.addr,
        &path,
        &loopback_cases(server.addr.port(), false),
    )
    .await;

    let proxied = TestServer::start_with(|s| {
        s.room_url_template = None;
        s.public_url = Some("https://sb.example.org".into());
        s.allowed_origins = vec!["https://forum.example.org".into()];
    })
    .await;
    let path = room_signal_path(&proxied).await;
    let mut cases = proxied_cases(proxied.addr.port());
    cases.push(case("https://forum.example.org", None, false));
    check_origins(proxied.addr, &path, &cases).await;
}
