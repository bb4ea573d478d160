//! The protocol's frames in and out of JSON without serde: server frames read through
//! [`Json`], commands and events written with [`Writer`]. The types are `switchboard_proto`'s
//! own; the tests below check every shape against what their serde derives read and write.

use switchboard_proto::{
    Auth, CallId, CallState, CallView, Command, ErrorCode, Event, LogoutReason, Role, ServerFrame,
    UserRef,
};

use crate::json::{Json, Writer};

/// Every error code by its wire name.
const ERROR_CODES: [(&str, ErrorCode); 26] = [
    ("bad_frame", ErrorCode::BadFrame),
    ("frame_too_large", ErrorCode::FrameTooLarge),
    ("hello_required", ErrorCode::HelloRequired),
    ("unsupported_version", ErrorCode::UnsupportedVersion),
    ("not_logged_in", ErrorCode::NotLoggedIn),
    ("invalid_user_id", ErrorCode::InvalidUserId),
    ("invalid_name", ErrorCode::InvalidName),
    ("bad_token", ErrorCode::BadToken),
    ("token_expired", ErrorCode::TokenExpired),
    (
        "signed_identity_required",
        ErrorCode::SignedIdentityRequired,
    ),
    ("tokens_not_configured", ErrorCode::TokensNotConfigured),
    ("too_many_sessions", ErrorCode::TooManySessions),
    ("rate_limited", ErrorCode::RateLimited),
    ("too_many_watched", ErrorCode::TooManyWatched),
    ("unknown_user", ErrorCode::UnknownUser),
    ("offline", ErrorCode::Offline),
    ("busy", ErrorCode::Busy),
    ("self_call", ErrorCode::SelfCall),
    ("no_such_call", ErrorCode::NoSuchCall),
    ("not_your_call", ErrorCode::NotYourCall),
    ("wrong_call_state", ErrorCode::WrongCallState),
    ("room_failed", ErrorCode::RoomFailed),
    ("shutting_down", ErrorCode::ShuttingDown),
    ("overloaded", ErrorCode::Overloaded),
    ("unavailable", ErrorCode::Unavailable),
    ("internal", ErrorCode::Internal),
];

/// A server frame, or `None` for anything this client does not understand.
pub fn frame<V: Json>(v: &V) -> Option<ServerFrame> {
    Some(ServerFrame {
        seq: v.whole("seq")?,
        re: v.whole("re").and_then(|n| u32::try_from(n).ok()),
        ev: event(&v.get("ev")?)?,
    })
}

pub fn event<V: Json>(v: &V) -> Option<Event> {
    Some(match v.text("type")?.as_str() {
        "welcome" => Event::Welcome {
            v: u32::try_from(v.whole("v")?).ok()?,
            session: v.text("session")?,
            resumed: v.get("resumed")?.as_flag()?,
            ring_timeout_ms: v.whole("ring_timeout_ms")?,
        },
        "logged_in" => Event::LoggedIn {
            user: user(&v.get("user")?)?,
        },
        "logged_out" => Event::LoggedOut {
            reason: match v.text("reason")?.as_str() {
                "requested" => LogoutReason::Requested,
                "elsewhere" => LogoutReason::Elsewhere,
                "revoked" => LogoutReason::Revoked,
                _ => return None,
            },
        },
        "call" => Event::Call(CallView {
            id: CallId(v.text("id")?),
            role: match v.text("role")?.as_str() {
                "caller" => Role::Caller,
                "callee" => Role::Callee,
                _ => return None,
            },
            peer: user(&v.get("peer")?)?,
            state: CallState::parse(&v.text("state")?)?,
            link: v.text("link"),
            elsewhere: v.flag("elsewhere"),
            rings_for_ms: v.whole("rings_for_ms"),
            reason: v.text("reason"),
        }),
        "presence" => Event::Presence {
            user: v.text("user")?,
            name: v.text("name"),
            online: v.get("online")?.as_flag()?,
        },
        "error" => {
            let code = v.text("code")?;
            Event::Error {
                code: ERROR_CODES.iter().find(|(n, _)| *n == code)?.1,
                message: v.text("message").unwrap_or_default(),
            }
        }
        _ => return None,
    })
}

fn user<V: Json>(v: &V) -> Option<UserRef> {
    Some(UserRef {
        id: v.text("id")?,
        name: v.text("name")?,
    })
}

fn user_json(user: &UserRef) -> String {
    Writer::object()
        .text("id", &user.id)
        .text("name", &user.name)
        .finish()
}

/// An event as the server writes it (the leader hands its picture to new tabs this way).
pub fn event_json(ev: &Event) -> String {
    match ev {
        Event::Welcome {
            v,
            session,
            resumed,
            ring_timeout_ms,
        } => Writer::object()
            .text("type", "welcome")
            .number("v", u64::from(*v))
            .text("session", session)
            .flag("resumed", *resumed)
            .number("ring_timeout_ms", *ring_timeout_ms),
        Event::LoggedIn { user } => Writer::object()
            .text("type", "logged_in")
            .raw("user", &user_json(user)),
        Event::LoggedOut { reason } => Writer::object().text("type", "logged_out").text(
            "reason",
            match reason {
                LogoutReason::Requested => "requested",
                LogoutReason::Elsewhere => "elsewhere",
                LogoutReason::Revoked => "revoked",
            },
        ),
        Event::Call(view) => {
            let w = Writer::object()
                .text("type", "call")
                .text("id", &view.id.0)
                .text(
                    "role",
                    match view.role {
                        Role::Caller => "caller",
                        Role::Callee => "callee",
                    },
                )
                .raw("peer", &user_json(&view.peer))
                .text("state", view.state.as_str())
                .opt_text("link", view.link.as_deref());
            let w = if view.elsewhere {
                w.flag("elsewhere", true)
            } else {
                w
            };
            let w = match view.rings_for_ms {
                Some(ms) => w.number("rings_for_ms", ms),
                None => w,
            };
            w.opt_text("reason", view.reason.as_deref())
        }
        Event::Presence { user, name, online } => Writer::object()
            .text("type", "presence")
            .text("user", user)
            .opt_text("name", name.as_deref())
            .flag("online", *online),
        Event::Error { code, message } => Writer::object()
            .text("type", "error")
            .text(
                "code",
                ERROR_CODES
                    .iter()
                    .find(|(_, c)| c == code)
                    .map_or("internal", |(n, _)| n),
            )
            .text("message", message),
    }
    .finish()
}

/// A command as JSON text (the `cmd` of a client frame).
pub fn command_json(cmd: &Command) -> String {
    let typed = |t: &str| Writer::object().text("type", t);
    match cmd {
        Command::Hello { v, resume } => {
            let w = typed("hello").number("v", u64::from(*v));
            match resume {
                Some(r) => w.raw(
                    "resume",
                    &Writer::object()
                        .text("session", &r.session)
                        .number("last_seq", r.last_seq)
                        .finish(),
                ),
                None => w,
            }
        }
        Command::Login { auth } => {
            let auth = match auth {
                Auth::Token(token) => Writer::object().text("token", token),
                Auth::Demo { id, name } => Writer::object().raw(
                    "demo",
                    &Writer::object().text("id", id).text("name", name).finish(),
                ),
            };
            typed("login").raw("auth", &auth.finish())
        }
        Command::Logout => typed("logout"),
        Command::Call { to } => typed("call").text("to", to),
        Command::Answer { call } => typed("answer").text("call", &call.0),
        Command::Reject { call } => typed("reject").text("call", &call.0),
        Command::Cancel { call } => typed("cancel").text("call", &call.0),
        Command::Hangup { call } => typed("hangup").text("call", &call.0),
        Command::Watch { users } => typed("watch").texts("users", users),
    }
    .finish()
}

/// A client frame around a command's JSON text.
pub fn client_frame(id: Option<u32>, cmd: &str) -> String {
    let w = Writer::object();
    let w = match id {
        Some(id) => w.number("id", u64::from(id)),
        None => w,
    };
    w.raw("cmd", cmd).finish()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::Value;
    use switchboard_proto::{ClientFrame, PROTOCOL_VERSION, Resume};

    fn view(state: CallState, role: Role) -> CallView {
        CallView {
            id: CallId("Xb3".into()),
            role,
            peer: UserRef {
                id: "bob".into(),
                name: "Bob \"<b>\" 山田".into(),
            },
            state,
            link: (!state.is_final()).then(|| "http://127.0.0.1:8080/join/t?a=1&b=2".into()),
            elsewhere: role == Role::Callee && state == CallState::Answered,
            rings_for_ms: (state == CallState::Ringing).then_some(45_000),
            reason: state.is_final().then(|| "Bob hung up".into()),
        }
    }

    /// One frame of every event type and shape the server writes.
    pub(super) fn every_event() -> Vec<Event> {
        let mut events = vec![
            Event::Welcome {
                v: PROTOCOL_VERSION,
                session: "q3k".into(),
                resumed: true,
                ring_timeout_ms: 45_000,
            },
            Event::LoggedIn {
                user: UserRef {
                    id: "ann".into(),
                    name: "Ann".into(),
                },
            },
            Event::LoggedOut {
                reason: LogoutReason::Requested,
            },
            Event::LoggedOut {
                reason: LogoutReason::Elsewhere,
            },
            Event::LoggedOut {
                reason: LogoutReason::Revoked,
            },
            Event::Presence {
                user: "bob".into(),
                name: Some("Bob".into()),
                online: true,
            },
            Event::Presence {
                user: "zed".into(),
                name: None,
                online: false,
            },
        ];
        for state in [
            CallState::Ringing,
            CallState::Answered,
            CallState::Rejected,
            CallState::Cancelled,
            CallState::Missed,
            CallState::Failed,
            CallState::Ended,
        ] {
            for role in [Role::Caller, Role::Callee] {
                events.push(Event::Call(view(state, role)));
            }
        }
        for (_, code) in ERROR_CODES {
            events.push(Event::Error {
                code,
                message: code.describe().into(),
            });
        }
        events
    }

    #[test]
    fn error_code_names_are_the_wire_names() {
        for (name, code) in ERROR_CODES {
            assert_eq!(serde_json::to_value(code).unwrap(), name);
        }
    }

    #[test]
    fn decodes_every_event_the_server_encodes() {
        for (i, ev) in every_event().into_iter().enumerate() {
            let frame = ServerFrame {
                seq: i as u64,
                re: (i % 2 == 0).then_some(i as u32),
                ev,
            };
            let text = serde_json::to_string(&frame).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(super::frame(&v), Some(frame), "{text}");
        }
    }

    #[test]
    fn encodes_events_as_the_server_does() {
        for ev in every_event() {
            let text = event_json(&ev);
            assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), ev, "{text}");
        }
    }

    #[test]
    fn encodes_every_command_as_the_server_reads_it() {
        let call = CallId("c1".into());
        let commands = [
            Command::Hello {
                v: PROTOCOL_VERSION,
                resume: None,
            },
            Command::Hello {
                v: PROTOCOL_VERSION,
                resume: Some(Resume {
                    session: "k".into(),
                    last_seq: 9_007_199_254_740_991,
                }),
            },
            Command::Login {
                auth: Auth::Token("a.b.c".into()),
            },
            Command::Login {
                auth: Auth::Demo {
                    id: "ann".into(),
                    name: "Ann \"\\ <x>".into(),
                },
            },
            Command::Logout,
            Command::Call { to: "bob".into() },
            Command::Answer { call: call.clone() },
            Command::Reject { call: call.clone() },
            Command::Cancel { call: call.clone() },
            Command::Hangup { call },
            Command::Watch {
                users: vec!["a".into(), "b".into()],
            },
            Command::Watch { users: vec![] },
        ];
        for (i, cmd) in commands.into_iter().enumerate() {
            let id = (i % 2 == 0).then_some(i as u32);
            let text = client_frame(id, &command_json(&cmd));
            let read: ClientFrame = serde_json::from_str(&text).unwrap();
            assert_eq!(read, ClientFrame { id, cmd }, "{text}");
        }
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for text in [
            r#"{"seq":1,"ev":{"type":"explode"}}"#,
            r#"{"seq":1,"ev":{"type":"error","code":"new_code","message":"m"}}"#,
            r#"{"seq":-1,"ev":{"type":"logged_out","reason":"requested"}}"#,
            r#"{"ev":{"type":"logged_out","reason":"requested"}}"#,
            r#"[]"#,
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(frame(&v), None, "{text}");
        }
    }
}

#[cfg(all(test, target_arch = "wasm32"))]
mod browser {
    use super::tests::every_event;
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn decodes_every_event_with_the_browsers_parser() {
        for (i, ev) in every_event().into_iter().enumerate() {
            let frame = ServerFrame {
                seq: i as u64 + 1,
                re: Some(7),
                ev,
            };
            let text = serde_json::to_string(&frame).unwrap();
            let v = crate::json::parse(&text).unwrap();
            assert_eq!(super::frame(&v), Some(frame), "{text}");
        }
    }
}
