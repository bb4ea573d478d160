//! Acting on a user: logging them out everywhere, for a ban or a changed password.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::Serialize;
use switchboard_proto::{ErrorCode, validate_user_id};
use utoipa::ToSchema;

use super::{
    Api,
    error::{ApiError, ErrorBody},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedOut {
    #[schema(example = "ann")]
    pub user: String,
    /// How many sessions were logged out (0 for a user who had none).
    pub sessions: u64,
}

/// Logs a user out of every session, on every node: each of their tabs is told
/// (`logged_out`, reason `revoked`) and stays logged out until its page logs in again. The
/// user goes offline at once. Calls that ring for or from them end as when a user goes offline;
/// an answered call goes on until hung up or ended with `POST /api/v1/calls/{id}/end`. Tokens
/// already issued stay valid until they expire, so a page holding one can log in again: keep
/// token lifetimes short, or stop renewing them for a banned user.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/logout",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, body = LoggedOut),
        (status = 400, description = "`invalid_user_id`", body = ErrorBody),
        (status = 503, description = "`unavailable`: Redis cannot be reached", body = ErrorBody),
    )
)]
pub async fn log_out(
    State(api): State<Api>,
    Path(user): Path<String>,
) -> Result<Json<LoggedOut>, ApiError> {
    if !validate_user_id(&user) {
        return Err(ErrorCode::InvalidUserId.into());
    }
    let sessions = api
        .hub()
        .log_out_everywhere(user.clone())
        .await
        .map_err(|code| api.refused(code))?;
    Ok(Json(LoggedOut { user, sessions }))
}
