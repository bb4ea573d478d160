//! Where a participant who follows their personal `/join` link ends up: the [`RoomProvider`]
//! trait and the providers behind it.

mod builtin;
mod jitsi;
mod openmeetings;
mod template;
mod turn;

use async_trait::async_trait;
use switchboard_proto::{CallId, Role, UserRef};

pub use builtin::{BuiltinRoom, RoomSignal, SignalOutcome, message as builtin_message};
pub use jitsi::JitsiTokens;
pub use openmeetings::{
    AfterCall, OpenMeetings, OpenMeetingsConfig, RoomType, SetupError as OpenMeetingsSetupError,
    UnknownValue,
};
pub use template::UrlTemplate;
pub use turn::{IceConfig, IcePolicy, TurnRelay, is_turn as turn_url_kind};

/// The call a room is for, as a provider sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRoom {
    pub id: CallId,
    pub caller: UserRef,
    pub callee: UserRef,
}

impl CallRoom {
    pub fn participant(&self, role: Role) -> &UserRef {
        match role {
            Role::Caller => &self.caller,
            Role::Callee => &self.callee,
        }
    }
}

/// Who followed a link: the call, and which of its two participants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joiner {
    pub room: CallRoom,
    pub role: Role,
    /// The secret link token that was followed, for providers that serve their own page.
    pub token: String,
    /// When the call will be ended at the latest (answered + `max_call_duration`); `None`
    /// while it rings. Entry tickets that outlive the call would let a leaked link back in.
    pub ends_at: Option<std::time::SystemTime>,
}

impl Joiner {
    pub fn user(&self) -> &UserRef {
        self.room.participant(self.role)
    }
}

/// What `/join` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinTarget {
    /// Send the browser elsewhere (303 See Other).
    Redirect(String),
    /// Serve this HTML page.
    Page(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("the conferencing server could not be reached: {0}")]
    Unreachable(String),
    #[error("the conferencing server refused: {0}")]
    Refused(String),
    #[error("the conferencing server answered something unexpected: {0}")]
    Protocol(String),
    /// The call ended while its room was being made; what was made is released.
    #[error("the call ended while its room was being made")]
    CallEnded,
}

/// Makes rooms for calls. Called when a participant follows their link (so ringing never waits
/// on a conferencing server) and when a call is over.
#[async_trait]
pub trait RoomProvider: Send + Sync + 'static {
    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;

    /// Where `joiner` should go now. Called on every click: a provider whose entry tickets are
    /// single-use makes a fresh one each time.
    async fn join(&self, joiner: &Joiner) -> Result<JoinTarget, RoomError>;

    /// The call is over; release what was made for it.
    async fn call_over(&self, _room: &CallRoom) {}
}
