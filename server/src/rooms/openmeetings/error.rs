//! What can go wrong talking to OpenMeetings, and how each failure reaches `/join` as a
//! [`RoomError`].

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;

use crate::rooms::RoomError;

/// The API call that failed, so a log line says where it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Login,
    FindRoom,
    Hash,
    CloseRoom,
    DeleteRoom,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Login => "logging in",
            Op::FindRoom => "finding the call's room",
            Op::Hash => "making a participant's link",
            Op::CloseRoom => "closing the call's room",
            Op::DeleteRoom => "deleting the call's room",
        })
    }
}

/// A failed OpenMeetings call. Messages never carry a URL: login URLs hold the password on
/// OpenMeetings before 9.0, and every other URL holds a session id.
#[derive(Debug, thiserror::Error)]
pub enum OmError {
    /// No connection, or it broke: `detail` is the whole cause chain (reqwest's own message
    /// is only "error sending request").
    #[error("{op}: {detail}")]
    Transport { op: Op, detail: String },
    #[error("{op}: no answer within {limit:?}{hint}")]
    Timeout {
        op: Op,
        limit: Duration,
        hint: &'static str,
    },
    /// OpenMeetings answered `"type":"ERROR"`, e.g. `error.bad.credentials`.
    #[error("{op}: OpenMeetings said {message:?}")]
    Refused { op: Op, message: String },
    /// HTTP 500 `error.notallowed`: the session id died (idle, server restart, or taken over by
    /// a used hash) or the API account lacks the SOAP right.
    #[error("{op}: not allowed (session expired, or the API account lacks the SOAP right)")]
    NotAllowed { op: Op },
    #[error("{op}: HTTP {status}")]
    Http { op: Op, status: StatusCode },
    #[error("{op}: redirected (check that the OpenMeetings URL is the final https address)")]
    Redirected { op: Op },
    #[error("{op}: unexpected answer: {reason}")]
    Malformed { op: Op, reason: String },
}

impl OmError {
    pub fn transport(op: Op, source: reqwest::Error) -> Self {
        let source = source.without_url();
        let mut detail = source.to_string();
        let mut cause = std::error::Error::source(&source);
        while let Some(err) = cause {
            detail.push_str(": ");
            detail.push_str(&err.to_string());
            cause = err.source();
        }
        OmError::Transport { op, detail }
    }

    /// Whether the session may have been lost, so that logging in again and repeating the call
    /// may help: `error.notallowed`, or a bare HTTP 500, which is how OpenMeetings before 6.3
    /// answers a bad session.
    pub fn may_be_lost_session(&self) -> bool {
        match self {
            OmError::NotAllowed { op } => *op != Op::Login,
            OmError::Http { op, status } => {
                *op != Op::Login && *status == StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => false,
        }
    }
}

impl From<OmError> for RoomError {
    fn from(err: OmError) -> Self {
        let text = err.to_string();
        match err {
            OmError::Transport { .. } | OmError::Timeout { .. } => RoomError::Unreachable(text),
            OmError::Http {
                status:
                    StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT,
                ..
            } => {
                // A reverse proxy in front of a stopped OpenMeetings.
                RoomError::Unreachable(text)
            }
            OmError::Refused { .. }
            | OmError::NotAllowed { .. }
            | OmError::Http {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                ..
            } => RoomError::Refused(text),
            OmError::Http { .. } | OmError::Redirected { .. } | OmError::Malformed { .. } => {
                RoomError::Protocol(text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room_error(err: OmError) -> RoomError {
        RoomError::from(err)
    }

    #[test]
    fn maps_each_failure_to_what_join_tells() {
        let op = Op::Hash;
        assert!(matches!(
            room_error(OmError::Timeout {
                op,
                limit: Duration::from_secs(1),
                hint: ""
            }),
            RoomError::Unreachable(_)
        ));
        assert!(matches!(
            room_error(OmError::Http {
                op,
                status: StatusCode::BAD_GATEWAY
            }),
            RoomError::Unreachable(_)
        ));
        assert!(matches!(
            room_error(OmError::Http {
                op,
                status: StatusCode::INTERNAL_SERVER_ERROR
            }),
            RoomError::Refused(_)
        ));
        assert!(matches!(
            room_error(OmError::NotAllowed { op }),
            RoomError::Refused(_)
        ));
        assert!(matches!(
            room_error(OmError::Refused { op, message: "error.bad.credentials".into() }),
            RoomError::Refused(m) if m.contains("error.bad.credentials")
        ));
        assert!(matches!(
            room_error(OmError::Http {
                op,
                status: StatusCode::NOT_FOUND
            }),
            RoomError::Protocol(_)
        ));
        assert!(matches!(
            room_error(OmError::Redirected { op }),
            RoomError::Protocol(_)
        ));
    }

    #[test]
    fn a_bare_500_on_a_session_call_may_be_a_lost_session() {
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        assert!(
            OmError::Http {
                op: Op::Hash,
                status
            }
            .may_be_lost_session()
        );
        assert!(OmError::NotAllowed { op: Op::FindRoom }.may_be_lost_session());
        assert!(
            !OmError::Http {
                op: Op::Login,
                status
            }
            .may_be_lost_session()
        );
        let status = StatusCode::NOT_FOUND;
        assert!(
            !OmError::Http {
                op: Op::Hash,
                status
            }
            .may_be_lost_session()
        );
    }
}
