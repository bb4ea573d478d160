//! The API's errors: the protocol's typed refusals ([`ErrorCode`]) and the API's own, each
//! answered with an HTTP status and `{"error": {"code": "...", "message": "..."}}`; the cause is
//! logged once, here.

use std::time::Duration;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use switchboard_proto::ErrorCode;
use utoipa::ToSchema;

use super::reader::ReadError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A refusal the WebSocket protocol has a code for; `message` says more than the code's
    /// own sentence where the API knows more (which of two users was offline).
    #[error("{}", message.unwrap_or(code.describe()))]
    Refused {
        code: ErrorCode,
        message: Option<&'static str>,
    },
    /// Input the API refuses before acting: malformed JSON, a bad cursor, a page too large.
    #[error("{0}")]
    Invalid(String),
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthorized,
    #[error("too many requests; retry after {}s", whole_seconds(*retry_after))]
    RateLimited { retry_after: Duration },
    #[error("no such endpoint")]
    NoSuchRoute,
    #[error(transparent)]
    Records(#[from] ReadError),
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        Self::Refused {
            code,
            message: None,
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A protocol error code (`invalid_user_id`, `unknown_user`, `no_such_call`, `busy`,
    /// `offline`, `not_logged_in`, `wrong_call_state`, `self_call`, `rate_limited`,
    /// `overloaded`, `unavailable`, `shutting_down`, `internal`, …) or one of the API's own:
    /// `invalid_request`, `unauthorized`, `not_found`.
    #[schema(example = "unknown_user")]
    pub code: &'static str,
    /// A sentence for people; its wording may change.
    #[schema(example = "no such user")]
    pub message: String,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Refused { code, .. } => status_of(*code),
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NoSuchRoute => StatusCode::NOT_FOUND,
            Self::Records(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Records(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Refused { code, .. } => code_name(*code),
            Self::Invalid(_) => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited { .. } => "rate_limited",
            Self::NoSuchRoute => "not_found",
            Self::Records(ReadError::Busy) => "overloaded",
            Self::Records(e) if e.is_transient() => "unavailable",
            Self::Records(_) => "internal",
        }
    }

    /// What the backend is told; a database's own words stay in the log.
    fn message(&self) -> String {
        match self {
            Self::Records(ReadError::Busy) => ErrorCode::Overloaded.describe().to_string(),
            Self::Records(_) => "the call history cannot be read now".to_string(),
            other => other.to_string(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            _ if self.status() == StatusCode::SERVICE_UNAVAILABLE => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, code = self.code(), "an API request failed");
        } else {
            tracing::debug!(error = %self, code = self.code(), "an API request was refused");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.message(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(after) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(whole_seconds(after)));
        }
        if matches!(self, Self::Unauthorized) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The HTTP status of a protocol refusal.
fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        UnknownUser | NoSuchCall => StatusCode::NOT_FOUND,
        NotLoggedIn | Offline | Busy | NotYourCall | WrongCallState | TooManySessions => {
            StatusCode::CONFLICT
        }
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        FrameTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RoomFailed => StatusCode::BAD_GATEWAY,
        ShuttingDown | Overloaded | Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
        BadFrame
        | HelloRequired
        | UnsupportedVersion
        | InvalidUserId
        | InvalidName
        | BadToken
        | TokenExpired
        | SignedIdentityRequired
        | TokensNotConfigured
        | TooManyWatched
        | SelfCall => StatusCode::BAD_REQUEST,
    }
}

/// The code's name on the wire, as the WebSocket protocol spells it.
fn code_name(code: ErrorCode) -> &'static str {
    use ErrorCode::*;
    match code {
        BadFrame => "bad_frame",
        FrameTooLarge => "frame_too_large",
        HelloRequired => "hello_required",
        UnsupportedVersion => "unsupported_version",
        NotLoggedIn => "not_logged_in",
        InvalidUserId => "invalid_user_id",
        InvalidName => "invalid_name",
        BadToken => "bad_token",
        TokenExpired => "token_expired",
        SignedIdentityRequired => "signed_identity_required",
        TokensNotConfigured => "tokens_not_configured",
        TooManySessions => "too_many_sessions",
        RateLimited => "rate_limited",
        TooManyWatched => "too_many_watched",
        UnknownUser => "unknown_user",
        Offline => "offline",
        Busy => "busy",
        SelfCall => "self_call",
        NoSuchCall => "no_such_call",
        NotYourCall => "not_your_call",
        WrongCallState => "wrong_call_state",
        RoomFailed => "room_failed",
        ShuttingDown => "shutting_down",
        Overloaded => "overloaded",
        Unavailable => "unavailable",
        Internal => "internal",
    }
}

/// A `Retry-After` in whole seconds, rounded up and at least one.
fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_the_protocols() {
        use ErrorCode::*;
        for code in [
            BadFrame,
            FrameTooLarge,
            HelloRequired,
            UnsupportedVersion,
            NotLoggedIn,
            InvalidUserId,
            InvalidName,
            BadToken,
            TokenExpired,
            SignedIdentityRequired,
            TokensNotConfigured,
            TooManySessions,
            RateLimited,
            TooManyWatched,
            UnknownUser,
            Offline,
            Busy,
            SelfCall,
            NoSuchCall,
            NotYourCall,
            WrongCallState,
            RoomFailed,
            ShuttingDown,
            Overloaded,
            Unavailable,
            Internal,
        ] {
            let wire = serde_json::to_value(code).unwrap();
            assert_eq!(wire, code_name(code), "{code:?}");
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(10)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2_001)), 3);
    }
}
