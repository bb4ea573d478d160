//! Reasons the server gives when it refuses a command or a connection.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON or not a known command.
    BadFrame,
    /// The frame was larger than the server accepts.
    FrameTooLarge,
    /// The first frame was not `hello`, or `hello` came twice.
    HelloRequired,
    UnsupportedVersion,
    /// The command needs a logged-in session.
    NotLoggedIn,
    InvalidUserId,
    InvalidName,
    /// The token's signature, algorithm or claims are wrong.
    BadToken,
    TokenExpired,
    /// The server accepts only signed identities.
    SignedIdentityRequired,
    /// The server has no secret to check tokens with.
    TokensNotConfigured,
    TooManySessions,
    RateLimited,
    TooManyWatched,
    /// Nobody with that id has ever been online here.
    UnknownUser,
    Offline,
    Busy,
    SelfCall,
    NoSuchCall,
    /// The call exists but this user may not do that to it.
    NotYourCall,
    /// The call is not in a state that allows the command.
    WrongCallState,
    /// The conferencing server could not make a room.
    RoomFailed,
    ShuttingDown,
    /// The server is too far behind (its database cannot keep up) to take new calls now.
    Overloaded,
    /// The shared state the nodes of a cluster decide on (Redis) cannot be reached now.
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// A human-readable sentence for status lines.
    pub fn describe(self) -> &'static str {
        match self {
            Self::BadFrame => "the message was not understood",
            Self::FrameTooLarge => "the message was too large",
            Self::HelloRequired => "the connection must start with hello",
            Self::UnsupportedVersion => "this protocol version is not supported",
            Self::NotLoggedIn => "you are not logged in",
            Self::InvalidUserId => "the user id is empty, too long or has forbidden characters",
            Self::InvalidName => "the display name is empty, too long or not printable",
            Self::BadToken => "the identity token is not valid",
            Self::TokenExpired => "the identity token has expired",
            Self::SignedIdentityRequired => "this server accepts only signed identities",
            Self::TokensNotConfigured => "this server cannot check signed identities",
            Self::TooManySessions => "this user has too many open sessions",
            Self::RateLimited => "too many requests; wait a moment",
            Self::TooManyWatched => "too many users watched",
            Self::UnknownUser => "no such user",
            Self::Offline => "the user is offline",
            Self::Busy => "the user is busy",
            Self::SelfCall => "you cannot call yourself",
            Self::NoSuchCall => "no such call",
            Self::NotYourCall => "that call is not yours to change",
            Self::WrongCallState => "the call is no longer in that state",
            Self::RoomFailed => "no conference room could be made",
            Self::ShuttingDown => "the server is shutting down",
            Self::Overloaded => "the server is overloaded; try again in a moment",
            Self::Unavailable => "calls are unavailable for a moment; try again shortly",
            Self::Internal => "internal server error",
        }
    }
}
