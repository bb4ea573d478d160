//! The fake OpenMeetings' routes, each answering as the real REST service does: wrapped JSON
//! roots, objects as JSON text in form fields and query parameters, HTTP 200 for soft errors
//! and HTTP 500 with an `exception` header for a bad session.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::LoginStyle;
use super::state::{FakeCall, FakeRoom, IssuedHash, LoginAttempt, Shared, State as Db, uuid};

type Fields = HashMap<String, String>;
type Fake = State<Arc<Shared>>;

const ROOM_TYPES: [&str; 3] = ["CONFERENCE", "PRESENTATION", "INTERVIEW"];

pub fn router(base: &str, shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/services/info/version", get(version))
        .route(
            "/services/user/login",
            get(login_by_get).post(login_by_post),
        )
        .route("/services/user/hash", post(make_hash))
        .route("/services/room", post(save_room))
        .route("/services/room/close/{key}", get(close_room))
        .route("/services/room/{key}", get(read_room).delete(delete_room))
        .route(
            "/services/room/{key}/{external_type}/{external_id}",
            get(find_or_create_room),
        )
        .route("/hash", get(use_hash))
        .layer(middleware::from_fn_with_state(shared.clone(), slow))
        .with_state(shared);
    Router::new().nest(base, api)
}

/// The "slow" mode (every answer waits for the configured delay) and the dead proxy.
async fn slow(State(shared): Fake, request: Request, next: Next) -> Response {
    let delay = shared.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if shared.proxy_down() {
        let page = "<html><body><h1>502 Bad Gateway</h1></body></html>";
        return (StatusCode::BAD_GATEWAY, page).into_response();
    }
    next.run(request).await
}

async fn version(State(shared): Fake) -> Response {
    let version = match shared.login_style() {
        LoginStyle::GetOnly => "8.0.0",
        LoginStyle::PostOnly => "9.1.0",
    };
    Json(json!({"info": {"version": version, "revision": "fake", "buildDate": "2026-01-01"}}))
        .into_response()
}

async fn login_by_get(State(shared): Fake, Query(query): Query<Fields>) -> Response {
    login(&shared, "GET", LoginStyle::GetOnly, &query).await
}

async fn login_by_post(State(shared): Fake, Form(form): Form<Fields>) -> Response {
    login(&shared, "POST", LoginStyle::PostOnly, &form).await
}

async fn login(
    shared: &Shared,
    method: &'static str,
    style: LoginStyle,
    fields: &Fields,
) -> Response {
    let user = fields.get("user").cloned().unwrap_or_default();
    if shared.login_style() != style {
        shared.state().logins.push(LoginAttempt {
            method,
            user,
            ok: false,
        });
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let ok = user == shared.options.user && fields.get("pass") == Some(&shared.options.password);
    shared
        .state()
        .logins
        .push(LoginAttempt { method, user, ok });
    if !ok {
        tokio::time::sleep(shared.options.wrong_password_delay).await;
        return service("ERROR", "error.bad.credentials");
    }
    let sid = shared.state().new_session();
    service("SUCCESS", &sid)
}

/// Runs `then` if `query` carries a live SID with API rights, else answers as OpenMeetings
/// 6.3+ does.
fn authorised(
    shared: &Shared,
    query: &Fields,
    call: FakeCall,
    then: impl FnOnce(&mut Db, &str) -> Response,
) -> Response {
    let sid = query.get("sid").map(String::as_str).unwrap_or_default();
    let mut db = shared.state();
    let allowed = db.session(sid, call).is_some_and(|s| !s.taken_over);
    if !allowed || !shared.options.soap_right {
        return if shared.options.html_errors {
            exception("java.lang.NullPointerException")
        } else {
            not_allowed()
        };
    }
    then(&mut db, sid)
}

async fn find_or_create_room(
    State(shared): Fake,
    Path((kind, external_type, external_id)): Path<(String, String, String)>,
    Query(query): Query<Fields>,
) -> Response {
    if !ROOM_TYPES.contains(&kind.as_str()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    authorised(&shared, &query, FakeCall::FindRoom, |db, _| {
        let found = db.rooms.iter().find(|r| {
            !r.deleted
                && r.kind == kind
                && r.external_type.as_deref() == Some(external_type.as_str())
                && r.external_id.as_deref() == Some(external_id.as_str())
        });
        if let Some(room) = found {
            return room_answer(room);
        }
        let Some(mut dto) = query.get("room").and_then(|text| json_object(text)) else {
            return exception("room: not a RoomDTO");
        };
        dto.insert("type".into(), kind.clone().into());
        dto.insert("externalType".into(), external_type.clone().into());
        dto.insert("externalId".into(), external_id.clone().into());
        room_answer(&db.create_room(dto))
    })
}

async fn save_room(
    State(shared): Fake,
    Query(query): Query<Fields>,
    Form(form): Form<Fields>,
) -> Response {
    authorised(&shared, &query, FakeCall::FindRoom, |db, _| {
        let Some(dto) = form.get("room").and_then(|text| json_object(text)) else {
            return exception("room: not a RoomDTO");
        };
        match dto.get("id").and_then(Value::as_i64) {
            Some(id) => match db.room_mut(id) {
                Some(room) => {
                    room.dto
                        .extend(dto.into_iter().filter(|(_, v)| !v.is_null()));
                    room_answer(room)
                }
                None => exception("no such room"),
            },
            None if dto.get("type").and_then(Value::as_str).is_none() => {
                exception("type is required")
            }
            None => room_answer(&db.create_room(dto)),
        }
    })
}

async fn read_room(
    State(shared): Fake,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Response {
    let Ok(id) = key.parse::<i64>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    authorised(&shared, &query, FakeCall::FindRoom, |db, _| {
        match db.room_mut(id) {
            Some(room) if !room.deleted => room_answer(room),
            _ => StatusCode::NO_CONTENT.into_response(),
        }
    })
}

async fn close_room(
    State(shared): Fake,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Response {
    let Ok(id) = key.parse::<i64>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    authorised(&shared, &query, FakeCall::CloseRoom, |db, _| {
        match db.room_mut(id) {
            Some(room) => {
                room.closed = true;
                service("SUCCESS", "Closed")
            }
            None => service("ERROR", "Not found"),
        }
    })
}

async fn delete_room(
    State(shared): Fake,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Response {
    let Ok(id) = key.parse::<i64>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    authorised(&shared, &query, FakeCall::DeleteRoom, |db, _| {
        match db.room_mut(id).filter(|r| !r.deleted) {
            Some(room) => {
                room.deleted = true;
                service("SUCCESS", "Deleted")
            }
            None => service("SUCCESS", "Not found"),
        }
    })
}

async fn make_hash(
    State(shared): Fake,
    Query(query): Query<Fields>,
    Form(form): Form<Fields>,
) -> Response {
    authorised(&shared, &query, FakeCall::Hash, |db, sid| {
        let (Some(user), Some(options)) = (
            form.get("user").and_then(|t| json_object(t)),
            form.get("options").and_then(|t| json_object(t)),
        ) else {
            return exception("user and options must be JSON objects");
        };
        let text = |key: &str| user.get(key).and_then(Value::as_str).unwrap_or_default();
        if text("externalId").is_empty() || text("externalType").is_empty() {
            return service("ERROR", "externalId and/or externalType are not set");
        }
        let room_id = match options.get("roomId").and_then(Value::as_i64) {
            Some(id) => Some(id),
            // 5.1+: the room may be named by its external id instead.
            None => db
                .rooms
                .iter()
                .find(|r| {
                    !r.deleted
                        && r.external_id.as_deref()
                            == options.get("externalRoomId").and_then(Value::as_str)
                        && r.external_type.as_deref()
                            == options.get("externalType").and_then(Value::as_str)
                })
                .map(|r| r.id),
        };
        let Some(room_id) = room_id.filter(|id| db.rooms.iter().any(|r| r.id == *id && !r.deleted))
        else {
            return service("ERROR", "Room not found");
        };
        let user = Value::Object(user);
        // The trap: the user is stored on the SID's session, replacing any earlier one.
        if let Some(session) = db.sessions.get_mut(sid) {
            session.user = Some(user.clone());
        }
        let hash = uuid();
        db.hashes.push(IssuedHash {
            hash: hash.clone(),
            sid: sid.to_owned(),
            room_id,
            user,
            options: Value::Object(options),
            entered_as: None,
        });
        service("SUCCESS", &hash)
    })
}

/// The browser's entry: `GET /hash?secure=HASH`. Works once (unless the hash allows the same
/// URL many times), only while its SID lives, and turns the SID into the external user's.
async fn use_hash(State(shared): Fake, Query(query): Query<Fields>) -> Response {
    let refused =
        |why: &str| (StatusCode::FORBIDDEN, format!("Invalid hash: {why}")).into_response();
    let secure = query.get("secure").map(String::as_str).unwrap_or_default();
    let mut db = shared.state();
    let Some(index) = db.hashes.iter().position(|h| h.hash == secure) else {
        return refused("unknown");
    };
    let issued = db.hashes[index].clone();
    let reusable = issued.options.get("allowSameURLMultipleTimes") == Some(&Value::Bool(true));
    if issued.entered_as.is_some() && !reusable {
        return refused("already used");
    }
    if !db.is_alive(&issued.sid) {
        return refused("session expired");
    }
    if db
        .room_mut(issued.room_id)
        .is_none_or(|r| r.closed || r.deleted)
    {
        return refused("room closed");
    }
    let Some(session) = db.sessions.get_mut(&issued.sid) else {
        return refused("session expired");
    };
    session.taken_over = true;
    let entered_as = session.user.clone();
    let name = entered_as
        .as_ref()
        .and_then(|u| u.get("firstname"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    db.hashes[index].entered_as = entered_as.or(Some(Value::Null));
    (
        StatusCode::OK,
        format!("Welcome, {name}: room {}", issued.room_id),
    )
        .into_response()
}

fn json_object(text: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn service(kind: &str, message: &str) -> Response {
    Json(json!({"serviceResult": {"message": message, "type": kind}})).into_response()
}

fn room_answer(room: &FakeRoom) -> Response {
    Json(json!({"roomDTO": room.answer()})).into_response()
}

fn not_allowed() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [("exception", "error.notallowed")],
        Json(json!({"serviceResult": {"message": "error.notallowed", "type": "ERROR"}})),
    )
        .into_response()
}

/// An unhandled exception: HTTP 500 with a non-JSON page, as the real server's servlet does.
fn exception(message: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("<html><body><h1>HTTP Status 500</h1><p>{message}</p></body></html>"),
    )
        .into_response()
}
