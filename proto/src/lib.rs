//! Wire messages shared by the Switchboard server and its clients, so the two cannot drift.
//!
//! Every WebSocket message is one JSON text frame. A client sends [`ClientFrame`]s, the first of
//! which must be [`Command::Hello`]; the server answers with [`ServerFrame`]s, each carrying a
//! per-session sequence number so a client that reconnects can say what it last saw.
//!
//! ```text
//! → {"cmd":{"type":"hello","v":1}}
//! ← {"seq":0,"ev":{"type":"welcome","v":1,"session":"q3…","resumed":false,"ring_timeout_ms":45000}}
//! → {"id":1,"cmd":{"type":"login","auth":{"demo":{"id":"ann","name":"Ann"}}}}
//! ← {"seq":1,"re":1,"ev":{"type":"logged_in","user":{"id":"ann","name":"Ann"}}}
//! → {"id":2,"cmd":{"type":"call","to":"bob"}}
//! ← {"seq":2,"re":2,"ev":{"type":"call","id":"Xb…","role":"caller","peer":{"id":"bob","name":"Bob"},"state":"ringing"}}
//! ```

mod command;
mod error;
mod event;
mod ids;

pub use command::{Auth, ClientFrame, Command, Resume};
pub use error::ErrorCode;
pub use event::{CallState, CallView, Event, LogoutReason, Role, ServerFrame, UserRef};
pub use ids::{CallId, MAX_NAME_CHARS, MAX_USER_ID_LEN, validate_name, validate_user_id};

/// The protocol version spoken by this crate; a `hello` with another version is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// WebSocket close codes the server uses, beside the standard ones.
pub mod close {
    /// The session was replaced by a newer connection that resumed it.
    pub const REPLACED: u16 = 4000;
    /// The client did not read its events fast enough.
    pub const TOO_SLOW: u16 = 4001;
    /// The client broke the protocol (no hello, bad version, bad token).
    pub const PROTOCOL: u16 = 4002;
    /// The user logged in from another place (single-session mode).
    pub const ELSEWHERE: u16 = 4003;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_as_documented() {
        let login: ClientFrame = serde_json::from_str(
            r#"{"id":1,"cmd":{"type":"login","auth":{"demo":{"id":"ann","name":"Ann"}}}}"#,
        )
        .unwrap();
        assert_eq!(
            login,
            ClientFrame::with_id(
                1,
                Command::Login {
                    auth: Auth::Demo {
                        id: "ann".into(),
                        name: "Ann".into()
                    }
                }
            )
        );
        let token: ClientFrame =
            serde_json::from_str(r#"{"cmd":{"type":"login","auth":{"token":"a.b.c"}}}"#).unwrap();
        assert_eq!(
            token.cmd,
            Command::Login {
                auth: Auth::Token("a.b.c".into())
            }
        );

        let frame = ServerFrame {
            seq: 2,
            re: Some(2),
            ev: Event::Call(CallView {
                id: CallId("c1".into()),
                role: Role::Caller,
                peer: UserRef {
                    id: "bob".into(),
                    name: "Bob".into(),
                },
                state: CallState::Ringing,
                link: None,
                elsewhere: false,
                rings_for_ms: Some(45_000),
                reason: None,
            }),
        };
        let text = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            text,
            r#"{"seq":2,"re":2,"ev":{"type":"call","id":"c1","role":"caller","peer":{"id":"bob","name":"Bob"},"state":"ringing","rings_for_ms":45000}}"#
        );
        assert_eq!(serde_json::from_str::<ServerFrame>(&text).unwrap(), frame);
    }

    #[test]
    fn unknown_commands_are_errors() {
        assert!(serde_json::from_str::<ClientFrame>(r#"{"cmd":{"type":"explode"}}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"cmd":{"type":"call"}}"#).is_err());
    }

    #[test]
    fn call_states_parse_back() {
        for state in [CallState::Ringing, CallState::Missed, CallState::Ended] {
            assert_eq!(CallState::parse(state.as_str()), Some(state));
        }
        assert_eq!(CallState::parse("nope"), None);
    }
}
