//! The HTTP API for the site's backend, against a real server: keys, presence, live calls in
//! pages, history read back from the SQLite file, calls placed and ended for users (seen by
//! their real WebSocket clients), logging users out everywhere, the rate limit, the OpenAPI
//! description, and the same across two nodes of a cluster on a real Redis.

use std::{
    collections::{BTreeSet, HashSet},
    time::Duration,
};

use reqwest::{Method, header::HeaderMap};
use serde_json::{Value, json};
use switchboard_proto::{CallState, Command, ErrorCode, Event, LogoutReason, Role};
use tokio::time::Instant;

use crate::{
    cluster::{node_with, watcher},
    common::{TestServer, postgres::PostgresServer, redis::RedisServer},
    store::until,
};

const KEY: &str = "api-key-one-0123456789abcdef0123456789";
/// A second key, as during a rotation.
const NEXT_KEY: &str = "api-key-two-0123456789abcdef0123456789";

/// A server with the API on and no request rate limit, so polling tests are never refused.
async fn server() -> TestServer {
    TestServer::start_with(with_keys).await
}

fn with_keys(s: &mut switchboard::config::Settings) {
    s.api_keys = vec![KEY.into(), NEXT_KEY.into()];
    s.api_requests_per_second = 0;
}

/// An API answer: status, JSON body (Null when there is none), headers.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    headers: HeaderMap,
}

impl Answer {
    /// The error code of an error answer.
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// Asserts an error answer with this status and code, and a message.
    fn refused(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{self:?}");
        assert!(
            !self.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{self:?}"
        );
    }

    fn ok(self) -> Value {
        assert!((200..300).contains(&self.status), "{self:?}");
        self.body
    }
}

async fn request(
    server: &TestServer,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<String>,
) -> Answer {
    let mut request = reqwest::Client::new().request(method, server.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    Answer {
        status,
        body,
        headers,
    }
}

async fn get(server: &TestServer, path: &str) -> Answer {
    request(server, Method::GET, path, Some(KEY), None).await
}

async fn post(server: &TestServer, path: &str, body: Value) -> Answer {
    let body = (!body.is_null()).then(|| body.to_string());
    request(server, Method::POST, path, Some(KEY), body).await
}

/// The presence entry of `user`, as the API answers it.
async fn presence(server: &TestServer, user: &str) -> Value {
    let mut answer = get(server, &format!("/api/v1/presence?users={user}"))
        .await
        .ok();
    answer["users"][0].take()
}

/// Every page of a list, following `next_cursor` from `first` (a path with a query string).
async fn all_pages(server: &TestServer, first: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("{first}&cursor={cursor}"),
            None => first.to_string(),
        };
        let page = get(server, &path).await.ok();
        pages.push(page["calls"].as_array().unwrap().clone());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return pages,
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

/// Each call's place in a list: (placed_at, id).
fn order_keys(calls: &[Value]) -> Vec<(u64, String)> {
    calls
        .iter()
        .map(|c| {
            let at = c["placed_at"].as_u64().unwrap();
            (at, c["id"].as_str().unwrap().to_string())
        })
        .collect()
}

fn ids(calls: &[Value]) -> Vec<String> {
    calls
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn without_keys_the_api_is_not_there() {
    let server = TestServer::start().await;
    for path in [
        "/api/v1/openapi.json",
        "/api/v1/presence?users=ann",
        "/api/v1/presence/count",
        "/api/v1",
    ] {
        let answer = request(&server, Method::GET, path, Some(KEY), None).await;
        assert_eq!(answer.status, 404, "{path}");
    }
    let logout = request(
        &server,
        Method::POST,
        "/api/v1/users/ann/logout",
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(logout.status, 404);
}

#[tokio::test]
async fn only_a_configured_key_opens_the_api() {
    let server = server().await;
    let path = "/api/v1/presence/count";
    let missing = request(&server, Method::GET, path, None, None).await;
    missing.refused(401, "unauthorized");
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    for wrong in [&KEY[..KEY.len() - 1], "", &format!("{KEY}x")] {
        let answer = request(&server, Method::GET, path, Some(wrong), None).await;
        answer.refused(401, "unauthorized");
    }
    let basic = reqwest::Client::new()
        .get(server.url(path))
        .basic_auth("api", Some(KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    // Both keys of a rotation work.
    for key in [KEY, NEXT_KEY] {
        let answer = request(&server, Method::GET, path, Some(key), None).await;
        assert_eq!(answer.ok(), json!({"online": 0}));
    }
    // A path that is no endpoint: the key first, then 404.
    let nowhere = "/api/v1/no-such-thing";
    request(&server, Method::GET, nowhere, None, None)
        .await
        .refused(401, "unauthorized");
    get(&server, nowhere).await.refused(404, "not_found");
}

#[tokio::test]
async fn presence_of_users_and_how_many_are_online() {
    let server = server().await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let _ann_here = server.user("ann").await;
    let _ann_there = server.user("ann").await;
    let bob = server.user("bob").await;

    let answer = get(&server, "/api/v1/presence?users=ann,bob,cid,ann")
        .await
        .ok();
    let users = answer["users"].as_array().unwrap();
    assert_eq!(users.len(), 3, "a repeated id is answered once: {answer}");
    let ann = &users[0];
    assert_eq!(
        (&ann["id"], &ann["name"], &ann["online"], &ann["sessions"]),
        (&json!("ann"), &json!("Ann"), &json!(true), &json!(2))
    );
    let since = ann["since"].as_u64().expect("since when ann is online");
    assert!(since >= before, "{since} {before}");
    assert_eq!(
        (&users[1]["id"], &users[1]["online"], &users[1]["sessions"]),
        (&json!("bob"), &json!(true), &json!(1))
    );
    assert_eq!(
        users[2],
        json!({"id": "cid", "name": null, "online": false, "since": null, "sessions": 0}),
        "never seen"
    );
    assert_eq!(
        get(&server, "/api/v1/presence/count").await.ok(),
        json!({"online": 2})
    );

    // Bob's last connection goes: offline once the grace period is over, known by name.
    bob.close().await;
    until("Bob to be offline", || async {
        presence(&server, "bob").await["online"] == json!(false)
    })
    .await;
    assert_eq!(
        presence(&server, "bob").await,
        json!({"id": "bob", "name": "Bob", "online": false, "since": null, "sessions": 0})
    );
    assert_eq!(
        get(&server, "/api/v1/presence/count").await.ok(),
        json!({"online": 1})
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_its_code() {
    let server = server().await;
    let _ann = server.user("ann").await;
    let many = (0..257)
        .map(|i| format!("u{i}"))
        .collect::<Vec<_>>()
        .join(",");
    for (path, code) in [
        ("/api/v1/presence?users=ann,b%20b", "invalid_user_id"),
        ("/api/v1/presence?users=", "invalid_user_id"),
        ("/api/v1/presence", "invalid_request"),
        (
            &format!("/api/v1/presence?users={many}") as &str,
            "invalid_request",
        ),
        ("/api/v1/calls?limit=0", "invalid_request"),
        ("/api/v1/calls?limit=201", "invalid_request"),
        ("/api/v1/calls?limit=ten", "invalid_request"),
        ("/api/v1/calls?cursor=made-up", "invalid_request"),
        ("/api/v1/calls?user=%3Cscript%3E", "invalid_user_id"),
        ("/api/v1/calls/no%20such", "invalid_request"),
        ("/api/v1/history?since=10&until=10", "invalid_request"),
        ("/api/v1/history?since=-1", "invalid_request"),
        ("/api/v1/history?user=a%20b", "invalid_user_id"),
        ("/api/v1/history?cursor=bm90LmEgY3Vyc29y", "invalid_request"),
    ] {
        get(&server, path).await.refused(400, code);
    }
    for (path, body, code) in [
        ("/api/v1/calls", "{not json", "invalid_request"),
        ("/api/v1/calls", "", "invalid_request"),
        ("/api/v1/calls", r#"{"caller":"ann"}"#, "invalid_request"),
        (
            "/api/v1/calls",
            r#"{"caller":"ann","callee":"bob","extra":1}"#,
            "invalid_request",
        ),
        (
            "/api/v1/calls",
            r#"{"caller":"ann","callee":"b b"}"#,
            "invalid_user_id",
        ),
        (
            "/api/v1/calls",
            r#"{"caller":"ann","callee":"ann"}"#,
            "self_call",
        ),
        (
            "/api/v1/calls/abc/end",
            r#"{"reason":"ann\u202egnp.exe"}"#,
            "invalid_request",
        ),
        (
            "/api/v1/calls/abc/end",
            &json!({"reason": "x".repeat(101)}).to_string(),
            "invalid_request",
        ),
        ("/api/v1/calls/abc/end", r#"{"why":"x"}"#, "invalid_request"),
        ("/api/v1/users/a%20b/logout", "", "invalid_user_id"),
    ] {
        let answer = request(
            &server,
            Method::POST,
            path,
            Some(KEY),
            Some(body.to_string()),
        )
        .await;
        answer.refused(400, code);
    }
    // Too large a body is refused before it is read whole.
    let huge = json!({"caller": "ann", "callee": "x".repeat(64 * 1024)}).to_string();
    let answer = request(
        &server,
        Method::POST,
        "/api/v1/calls",
        Some(KEY),
        Some(huge),
    )
    .await;
    answer.refused(413, "frame_too_large");
}

#[tokio::test]
async fn a_call_placed_for_a_user_rings_the_callee_and_shows_on_the_callers_tabs() {
    let server = server().await;
    let mut ann_one = server.user("ann").await;
    let mut ann_two = server.user("ann").await;
    let mut bob = server.user("bob").await;

    let asked = Instant::now();
    let placed = post(
        &server,
        "/api/v1/calls",
        json!({"caller": "ann", "callee": "bob"}),
    )
    .await;
    assert_eq!(placed.status, 201, "{placed:?}");
    let call = placed.body;
    assert_eq!(call["state"], "ringing");
    assert_eq!(call["caller"], json!({"id": "ann", "name": "Ann"}));
    assert_eq!(call["callee"], json!({"id": "bob", "name": "Bob"}));
    assert!(call.get("caller_link").is_none() && call.get("link").is_none());
    let id = call["id"].as_str().unwrap();

    let ringing = bob.call_in(CallState::Ringing).await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "rang after {:?}",
        asked.elapsed()
    );
    assert_eq!((ringing.id.0.as_str(), ringing.role), (id, Role::Callee));
    assert_eq!(ringing.peer.name, "Ann");
    assert!(
        ringing.link.is_some(),
        "the callee can answer from the ring"
    );
    for tab in [&mut ann_one, &mut ann_two] {
        let seen = tab.call_in(CallState::Ringing).await;
        assert_eq!((seen.id.0.as_str(), seen.role), (id, Role::Caller));
        assert_eq!(seen.peer.name, "Bob");
    }
    // It is the caller's own call: the callee answers, the caller's tabs see it.
    bob.answer(&ringing.id).await;
    assert_eq!(ann_one.call_in(CallState::Answered).await.id, ringing.id);
    assert_eq!(
        get(&server, &format!("/api/v1/calls/{id}")).await.ok()["state"],
        "answered"
    );

    // The same refusals as from a page.
    let _cid = server.user("cid").await;
    let mut dan = server.user("dan").await;
    dan.send(Command::Logout).await;
    dan.event().await;
    for (caller, callee, status, code) in [
        ("eve", "bob", 409, "not_logged_in"),
        ("cid", "nobody", 404, "unknown_user"),
        ("cid", "dan", 409, "offline"),
        ("cid", "bob", 409, "busy"),
    ] {
        post(
            &server,
            "/api/v1/calls",
            json!({"caller": caller, "callee": callee}),
        )
        .await
        .refused(status, code);
    }
}

#[tokio::test]
async fn the_site_ends_a_ringing_or_answered_call() {
    let server = server().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;

    let ringing = ann.call("bob").await;
    bob.call_in(CallState::Ringing).await;
    let ended = post(
        &server,
        &format!("/api/v1/calls/{}/end", ringing.id),
        json!({"reason": "ended by support"}),
    )
    .await
    .ok();
    assert_eq!(
        (&ended["state"], &ended["reason"]),
        (&json!("cancelled"), &json!("ended by support"))
    );
    for side in [&mut ann, &mut bob] {
        let told = side.call_in(CallState::Cancelled).await;
        assert_eq!(told.reason.as_deref(), Some("ended by support"));
    }

    let answered = ann.call("bob").await;
    bob.call_in(CallState::Ringing).await;
    bob.answer(&answered.id).await;
    ann.call_in(CallState::Answered).await;
    bob.call_in(CallState::Answered).await;
    let path = format!("/api/v1/calls/{}/end", answered.id);
    let ended = post(&server, &path, Value::Null).await.ok();
    assert_eq!(ended["state"], "ended");
    assert!(ended["ended_at"].as_u64().is_some());
    for side in [&mut ann, &mut bob] {
        let told = side.call_in(CallState::Ended).await;
        assert_eq!(told.reason.as_deref(), Some("the site ended the call"));
    }
    post(&server, &path, Value::Null)
        .await
        .refused(404, "no_such_call");
    post(&server, "/api/v1/calls/NoSuchCall123/end", Value::Null)
        .await
        .refused(404, "no_such_call");
    get(&server, "/api/v1/calls/NoSuchCall123")
        .await
        .refused(404, "no_such_call");

    // Over, the call is read from the database, as it ended.
    until("the ended call to be recorded", || async {
        get(&server, &format!("/api/v1/calls/{}", answered.id))
            .await
            .body["state"]
            == "ended"
    })
    .await;
    let recorded = get(&server, &format!("/api/v1/calls/{}", answered.id))
        .await
        .ok();
    assert_eq!(recorded["reason"], "the site ended the call");
    assert!(recorded["answered_at"].as_u64() <= recorded["ended_at"].as_u64());
}

#[tokio::test]
async fn live_calls_come_in_pages_without_duplicates_or_gaps() {
    let server = server().await;
    let mut clients = Vec::new();
    let mut placed = Vec::new();
    for pair in 0..7 {
        let mut caller = server.user(&format!("u{}", 2 * pair)).await;
        let callee = server.user(&format!("u{}", 2 * pair + 1)).await;
        placed.push(caller.call(&format!("u{}", 2 * pair + 1)).await.id.0);
        clients.push((caller, callee));
    }

    let first = get(&server, "/api/v1/calls?limit=3").await.ok();
    let mut seen: Vec<Value> = first["calls"].as_array().unwrap().clone();
    assert_eq!(seen.len(), 3);
    // A call placed between two pages comes on a later one.
    let mut late = server.user("u14").await;
    let _late_callee = server.user("u15").await;
    placed.push(late.call("u15").await.id.0);
    let mut cursor = first["next_cursor"].as_str().unwrap().to_string();
    let mut sizes = vec![3];
    loop {
        let page = get(&server, &format!("/api/v1/calls?limit=3&cursor={cursor}"))
            .await
            .ok();
        let calls = page["calls"].as_array().unwrap();
        sizes.push(calls.len());
        seen.extend(calls.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(sizes, [3, 3, 2]);
    let listed = ids(&seen);
    assert_eq!(listed.len(), placed.len(), "no call twice");
    assert_eq!(
        listed.iter().collect::<HashSet<_>>(),
        placed.iter().collect::<HashSet<_>>(),
        "every call, the late one too"
    );
    assert!(
        order_keys(&seen).windows(2).all(|w| w[0] < w[1]),
        "oldest first, across pages"
    );

    let one = all_pages(&server, "/api/v1/calls?user=u4&limit=200").await;
    assert_eq!(one.len(), 1);
    assert_eq!(ids(&one[0]), [placed[2].clone()]);
    assert_eq!(one[0][0]["caller"]["id"], "u4");
    let none = all_pages(&server, "/api/v1/calls?user=nobody").await;
    assert_eq!(none, [Vec::<Value>::new()]);
}

#[tokio::test]
async fn history_is_read_back_from_the_database_in_pages() {
    let server = server().await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;

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

    let talked = bob.call("ann").await.id;
    ann.call_in(CallState::Ringing).await;
    ann.answer(&talked).await;
    ann.call_in(CallState::Answered).await;
    bob.call_in(CallState::Answered).await;
    bob.send(Command::Hangup {
        call: talked.clone(),
    })
    .await;
    ann.call_in(CallState::Ended).await;
    bob.call_in(CallState::Ended).await;

    let placed = post(
        &server,
        "/api/v1/calls",
        json!({"caller": "ann", "callee": "bob"}),
    )
    .await
    .ok();
    let by_site = placed["id"].as_str().unwrap().to_string();
    ann.call_in(CallState::Ringing).await;
    bob.call_in(CallState::Ringing).await;
    post(
        &server,
        &format!("/api/v1/calls/{by_site}/end"),
        Value::Null,
    )
    .await
    .ok();
    ann.call_in(CallState::Cancelled).await;
    bob.call_in(CallState::Cancelled).await;
    let still_ringing = ann.call("bob").await.id;

    let expected: HashSet<(String, &str)> = [
        (still_ringing.0.clone(), "ringing"),
        (by_site.clone(), "cancelled"),
        (talked.0.clone(), "ended"),
        (cancelled.0.clone(), "cancelled"),
        (rejected.0.clone(), "rejected"),
    ]
    .into_iter()
    .collect();
    until("every call to be recorded as it ended", || async {
        let page = get(&server, "/api/v1/history?user=ann&limit=200")
            .await
            .ok();
        let states: HashSet<(String, &str)> = page["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let state = match c["state"].as_str().unwrap() {
                    "ringing" => "ringing",
                    "cancelled" => "cancelled",
                    "ended" => "ended",
                    "rejected" => "rejected",
                    _ => "other",
                };
                (c["id"].as_str().unwrap().to_string(), state)
            })
            .collect();
        states == expected
    })
    .await;
    let db_calls: i64 = rusqlite::Connection::open(&server.db)
        .unwrap()
        .query_row("SELECT count(*) FROM calls", [], |row| row.get(0))
        .unwrap();
    assert_eq!(db_calls, 5);

    let page = get(&server, "/api/v1/history?user=ann&limit=200")
        .await
        .ok();
    let all = page["calls"].as_array().unwrap().clone();
    assert!(
        order_keys(&all).windows(2).all(|w| w[0] > w[1]),
        "newest first"
    );
    // Pages of two, newest first, for either participant and for everybody.
    for first in [
        "/api/v1/history?user=ann&limit=2",
        "/api/v1/history?user=bob&limit=2",
        "/api/v1/history?limit=2",
    ] {
        let pages = all_pages(&server, first).await;
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1], "{first}");
        assert_eq!(
            ids(&pages.concat()),
            ids(&all),
            "{first}: newest first, each once"
        );
    }
    let call = |id: &str| all.iter().find(|c| c["id"] == id).unwrap().clone();
    let talked_call = call(&talked.0);
    assert_eq!(talked_call["caller"]["id"], "bob");
    assert_eq!(talked_call["reason"], "Bob hung up");
    assert!(talked_call["answered_at"].as_u64().is_some());
    assert_eq!(call(&by_site)["reason"], "the site ended the call");
    assert!(call(&still_ringing.0)["ring_deadline"].as_u64().is_some());
    assert!(call(&rejected.0)["ring_deadline"].is_null(), "over");

    // A time range: placed from `since`, before `until`.
    let times: Vec<u64> = all
        .iter()
        .map(|c| c["placed_at"].as_u64().unwrap())
        .collect();
    let cut = times[2];
    let since = ids(
        &all_pages(&server, &format!("/api/v1/history?since={cut}&limit=200"))
            .await
            .concat(),
    );
    let until_cut = ids(&all_pages(
        &server,
        &format!("/api/v1/history?user=bob&until={cut}&limit=200"),
    )
    .await
    .concat());
    let expect_since: Vec<String> = ids(&all)
        .into_iter()
        .zip(&times)
        .filter(|(_, at)| **at >= cut)
        .map(|(id, _)| id)
        .collect();
    let expect_until: Vec<String> = ids(&all)
        .into_iter()
        .zip(&times)
        .filter(|(_, at)| **at < cut)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(since, expect_since);
    assert_eq!(until_cut, expect_until);
    assert!(!since.is_empty() && !until_cut.is_empty());
    let nobody = all_pages(&server, "/api/v1/history?user=cid").await;
    assert_eq!(nobody, [Vec::<Value>::new()]);
}

#[tokio::test]
async fn history_is_read_back_from_postgresql_too() {
    let pg = PostgresServer::start();
    let url = pg.database("history");
    let server = TestServer::start_with(|s| {
        with_keys(s);
        s.database_url = Some(url);
    })
    .await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    let mut placed = Vec::new();
    for _ in 0..3 {
        let call = ann.call("bob").await.id;
        bob.call_in(CallState::Ringing).await;
        bob.send(Command::Reject { call: call.clone() }).await;
        ann.call_in(CallState::Rejected).await;
        bob.call_in(CallState::Rejected).await;
        placed.push(call.0);
    }
    until("the calls to be recorded", || async {
        let page = get(&server, "/api/v1/history?user=bob&limit=200")
            .await
            .ok();
        let calls = page["calls"].as_array().unwrap();
        calls.len() == 3 && calls.iter().all(|c| c["state"] == "rejected")
    })
    .await;
    for first in [
        "/api/v1/history?user=ann&limit=2",
        "/api/v1/history?limit=2",
    ] {
        let pages = all_pages(&server, first).await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
        let all = pages.concat();
        assert!(order_keys(&all).windows(2).all(|w| w[0] > w[1]), "{first}");
        let listed: HashSet<String> = ids(&all).into_iter().collect();
        assert_eq!(listed, placed.iter().cloned().collect());
    }
    let one = get(&server, &format!("/api/v1/calls/{}", placed[0]))
        .await
        .ok();
    assert_eq!(
        (&one["state"], &one["reason"]),
        (&json!("rejected"), &json!("Bob rejected the call"))
    );
    let empty = all_pages(&server, "/api/v1/history?user=cid").await;
    assert_eq!(empty, [Vec::<Value>::new()]);
}

#[tokio::test]
async fn logging_a_user_out_everywhere_tells_every_session() {
    let server = server().await;
    let mut ann_one = server.user("ann").await;
    let mut ann_two = server.user("ann").await;
    let mut bob = server.user("bob").await;
    bob.send(Command::Watch {
        users: vec!["ann".into()],
    })
    .await;
    assert!(bob.presence().await.2);
    let mut cid = server.user("cid").await;
    let ringing = cid.call("ann").await;
    for tab in [&mut ann_one, &mut ann_two] {
        tab.call_in(CallState::Ringing).await;
    }

    let answer = post(&server, "/api/v1/users/ann/logout", Value::Null)
        .await
        .ok();
    assert_eq!(answer, json!({"user": "ann", "sessions": 2}));
    for tab in [&mut ann_one, &mut ann_two] {
        assert_eq!(
            tab.event().await,
            Event::LoggedOut {
                reason: LogoutReason::Revoked
            }
        );
    }
    // Offline at once, for the API and for watchers; the call that rang for her is missed.
    assert_eq!(presence(&server, "ann").await["online"], false);
    assert_eq!(presence(&server, "ann").await["sessions"], 0);
    assert_eq!(
        bob.presence().await,
        ("ann".into(), Some("Ann".into()), false)
    );
    let missed = cid.call_in(CallState::Missed).await;
    assert_eq!(missed.id, ringing.id);
    // The tabs stay connected but logged out.
    ann_one.send(Command::Call { to: "cid".into() }).await;
    assert_eq!(ann_one.error().await.1, ErrorCode::NotLoggedIn);
    ann_two.nothing_pending().await;

    // Nobody to log out is no error.
    assert_eq!(
        post(&server, "/api/v1/users/ann/logout", Value::Null)
            .await
            .ok(),
        json!({"user": "ann", "sessions": 0})
    );
}

#[tokio::test]
async fn each_key_is_held_to_its_request_rate_and_recovers() {
    let server = TestServer::start_with(|s| {
        with_keys(s);
        s.api_requests_per_second = 1;
        s.api_burst = 2;
    })
    .await;
    let path = "/api/v1/presence/count";
    for _ in 0..2 {
        get(&server, path).await.ok();
    }
    let refused = get(&server, path).await;
    refused.refused(429, "rate_limited");
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(wait, 1, "a request a second: the next within a second");
    // The other key has a budget of its own.
    let other = request(&server, Method::GET, path, Some(NEXT_KEY), None).await;
    other.ok();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    get(&server, path).await.ok();
}

/// Every operation the description lists, as (method, path).
const ROUTES: [(&str, &str); 9] = [
    ("get", "/api/v1/calls"),
    ("get", "/api/v1/calls/{id}"),
    ("get", "/api/v1/history"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/presence"),
    ("get", "/api/v1/presence/count"),
    ("post", "/api/v1/calls"),
    ("post", "/api/v1/calls/{id}/end"),
    ("post", "/api/v1/users/{id}/logout"),
];

#[tokio::test]
async fn the_openapi_description_lists_every_route_the_api_serves() {
    let server = server().await;
    let document = request(&server, Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .ok();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3."),
        "OpenAPI 3.x"
    );
    let mut listed = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            listed.insert((method.clone(), path.clone()));
            // Every operation but the description needs the key.
            let open = operation["security"] == json!([{}]);
            assert_eq!(open, path == "/api/v1/openapi.json", "{method} {path}");
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(
        document["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    assert_eq!(document["security"], json!([{"api_key": []}]));

    // Each listed operation is served (an error of its own, never the router's 404 or 405),
    // and what is not listed is not.
    let mut codes = HashSet::new();
    for (method, path) in &listed {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let path = path.replace("{id}", "probe");
        let answer = request(&server, method.clone(), &path, Some(KEY), None).await;
        assert!(
            answer.status != 405 && answer.code() != "not_found",
            "{method} {path}: {answer:?}"
        );
        codes.insert(answer.status);
    }
    assert!(codes.contains(&200));
    get(&server, "/api/v1/users/probe")
        .await
        .refused(404, "not_found");
    let wrong_method = request(&server, Method::DELETE, "/api/v1/presence", Some(KEY), None).await;
    assert_eq!(wrong_method.status, 405);
}

#[tokio::test]
async fn across_two_nodes_the_answers_and_actions_are_cluster_wide() {
    let redis = RedisServer::start();
    let a = node_with(&redis, None, with_keys).await;
    let b = node_with(&redis, None, with_keys).await;
    // Cid on A watches Bob: once she hears him online, node A knows he is.
    let mut cid = watcher(&a, "cid", &["bob"]).await;
    let mut ann_a = a.user("ann").await;
    let mut ann_b = b.user("ann").await;
    let mut bob = b.user("bob").await;
    assert_eq!(
        cid.presence().await,
        ("bob".into(), Some("Bob".into()), true)
    );

    until("node A to count everyone online", || async {
        get(&a, "/api/v1/presence/count").await.body == json!({"online": 3})
    })
    .await;
    for node in [&a, &b] {
        let answer = get(node, "/api/v1/presence?users=bob,ann,dan").await.ok();
        let users = answer["users"].as_array().unwrap();
        assert_eq!(
            (&users[0]["online"], &users[0]["sessions"]),
            (&json!(true), &json!(1)),
            "{answer}"
        );
        assert!(users[0]["since"].as_u64().is_some());
        assert_eq!(users[1]["sessions"], 2, "one session on each node");
        assert_eq!(users[2]["online"], false);
    }

    // A call placed through node A for Bob, who is on node B, rings Ann on both nodes.
    let placed = post(
        &a,
        "/api/v1/calls",
        json!({"caller": "bob", "callee": "ann"}),
    )
    .await;
    assert_eq!(placed.status, 201, "{placed:?}");
    let id = placed.body["id"].as_str().unwrap().to_string();
    assert_eq!(bob.call_in(CallState::Ringing).await.id.0, id);
    for tab in [&mut ann_a, &mut ann_b] {
        let seen = tab.call_in(CallState::Ringing).await;
        assert_eq!((seen.id.0.as_str(), seen.role), (id.as_str(), Role::Callee));
    }
    for node in [&a, &b] {
        until("every node to list the live call", || async {
            ids(get(node, "/api/v1/calls").await.body["calls"]
                .as_array()
                .unwrap())
                == [id.clone()]
        })
        .await;
    }
    post(
        &a,
        "/api/v1/calls",
        json!({"caller": "cid", "callee": "ann"}),
    )
    .await
    .refused(409, "busy");
    let ended = post(&b, &format!("/api/v1/calls/{id}/end"), Value::Null)
        .await
        .ok();
    assert_eq!(ended["state"], "cancelled");
    for side in [&mut bob, &mut ann_a, &mut ann_b] {
        side.call_in(CallState::Cancelled).await;
    }

    // Bob, on node B, logged out through node A.
    let answer = post(&a, "/api/v1/users/bob/logout", Value::Null).await.ok();
    assert_eq!(answer, json!({"user": "bob", "sessions": 1}));
    assert_eq!(
        bob.event().await,
        Event::LoggedOut {
            reason: LogoutReason::Revoked
        }
    );
    assert_eq!(
        cid.presence().await,
        ("bob".into(), Some("Bob".into()), false)
    );
    for node in [&a, &b] {
        assert_eq!(presence(node, "bob").await["online"], false);
    }
    bob.send(Command::Call { to: "ann".into() }).await;
    assert_eq!(bob.error().await.1, ErrorCode::NotLoggedIn);

    // Ann, on both nodes, logged out through node B.
    let answer = post(&b, "/api/v1/users/ann/logout", Value::Null).await.ok();
    assert_eq!(answer, json!({"user": "ann", "sessions": 2}));
    for tab in [&mut ann_a, &mut ann_b] {
        assert_eq!(
            tab.event().await,
            Event::LoggedOut {
                reason: LogoutReason::Revoked
            }
        );
    }
    until("node B to count only Cid online", || async {
        get(&b, "/api/v1/presence/count").await.body == json!({"online": 1})
    })
    .await;
}
