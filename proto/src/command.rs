//! Commands a client sends to the server.

use serde::{Deserialize, Serialize};

use crate::CallId;

/// One message from a client: a command, and an optional id the server echoes as `re` in the
/// events that answer it, so a client can tell which command an error belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    pub cmd: Command,
}

impl ClientFrame {
    pub fn new(cmd: Command) -> Self {
        Self { id: None, cmd }
    }

    pub fn with_id(id: u32, cmd: Command) -> Self {
        Self { id: Some(id), cmd }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Must be the first frame: the protocol version, and the session to resume, if any.
    Hello {
        v: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
    },
    /// Go online as the user the credentials name (logging out any earlier user first).
    Login { auth: Auth },
    /// Go offline; the session stays open and may log in again.
    Logout,
    /// Call another user; cancels this user's earlier outgoing call.
    Call { to: String },
    /// Answer an incoming call (callee only).
    Answer { call: CallId },
    /// Reject an incoming call (callee only).
    Reject { call: CallId },
    /// Withdraw an outgoing call that still rings (caller only).
    Cancel { call: CallId },
    /// End an answered call (either party).
    Hangup { call: CallId },
    /// Replace the set of users whose presence this session follows.
    Watch { users: Vec<String> },
}

/// Who the client says it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// A JWT (HS256) the site's backend signed: `sub` is the user id, `name` the display name.
    Token(String),
    /// The 2010 trust model, accepted only by a server in demo mode.
    Demo { id: String, name: String },
}

/// What a reconnecting client knows of its previous session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The session key the server gave in `welcome`.
    pub session: String,
    /// The highest sequence number the client has processed.
    pub last_seq: u64,
}
