//! Events the server pushes to a session.

use serde::{Deserialize, Serialize};

use crate::{CallId, ErrorCode};

/// One message from the server. `seq` grows by one per event of the session, starting at 1;
/// frames about the connection rather than the session (the `welcome`, and an error that closes
/// the connection) carry `seq` 0 and are never replayed. `re` names the command this event
/// answers, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFrame {
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub re: Option<u32>,
    pub ev: Event,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The answer to `hello`. `session` is the secret key to resume this session with.
    Welcome {
        v: u32,
        session: String,
        resumed: bool,
        ring_timeout_ms: u64,
    },
    LoggedIn {
        user: UserRef,
    },
    LoggedOut {
        reason: LogoutReason,
    },
    /// The state of a call this user takes part in, sent on every change and on (re)connect.
    Call(CallView),
    /// A watched user went online or offline. `name` is absent for a user never seen.
    Presence {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        online: bool,
    },
    /// A command was refused, or the connection is about to close.
    Error {
        code: ErrorCode,
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserRef {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogoutReason {
    /// The client asked to log out.
    Requested,
    /// Single-session mode: the user logged in from another place.
    Elsewhere,
    /// The site logged the user out of every session (a ban, a changed password): the client
    /// stays logged out until the page logs in again.
    Revoked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Caller,
    Callee,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Ringing,
    Answered,
    Rejected,
    /// The caller withdrew the call while it rang (or placed another call).
    Cancelled,
    /// Nobody answered within the ring timeout.
    Missed,
    /// No room could be made for the call.
    Failed,
    /// An answered call was hung up or ran past its maximum duration.
    Ended,
}

impl CallState {
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Ringing | Self::Answered)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Missed => "missed",
            Self::Failed => "failed",
            Self::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Ringing,
            Self::Answered,
            Self::Rejected,
            Self::Cancelled,
            Self::Missed,
            Self::Failed,
            Self::Ended,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

/// A call as one participant sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallView {
    pub id: CallId,
    /// This user's role in the call.
    pub role: Role,
    /// The other participant.
    pub peer: UserRef,
    pub state: CallState,
    /// This participant's personal join link: the callee's from ringing on, the caller's once
    /// answered. Absent once the call is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// For the callee: another session of this user answered or rejected the call.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub elsewhere: bool,
    /// Milliseconds the call still rings, while ringing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rings_for_ms: Option<u64>,
    /// Why the call ended, in words, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
