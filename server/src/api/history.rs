//! Call history, read from the database: one user's calls, or everybody's, within a time
//! range, newest first, in pages.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
};
use serde::Deserialize;
use switchboard_proto::{ErrorCode, validate_user_id};
use utoipa::IntoParams;

use super::{
    Api,
    calls::CallPage,
    error::{ApiError, ErrorBody},
    invalid_query,
    paging::{self, Cursor},
    reader::HistoryQuery,
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Only the calls this user placed or received. Without it every call in the range is
    /// read, which scans the whole table: prefer it on a large database.
    user: Option<String>,
    /// Calls placed at or after this time (ms since the Unix epoch).
    since: Option<u64>,
    /// Calls placed before this time (ms since the Unix epoch).
    until: Option<u64>,
    /// From a previous page's `next_cursor`.
    cursor: Option<String>,
    /// Calls per page, 1 to 200 (default 50).
    limit: Option<usize>,
}

/// Recorded calls, newest first, in pages: every state a call reached is in its times, and the
/// calls still live are there too. Calls placed while paging never shift a page (they are newer
/// than the first).
#[utoipa::path(
    get,
    path = "/api/v1/history",
    tag = "history",
    params(HistoryParams),
    responses(
        (status = 200, body = CallPage),
        (status = 400, description = "`invalid_user_id`, `invalid_request`", body = ErrorBody),
        (status = 503, description = "`overloaded`: too many history reads at once; `unavailable`", body = ErrorBody),
    )
)]
pub async fn list(
    State(api): State<Api>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<CallPage>, ApiError> {
    let Query(params) = params.map_err(invalid_query)?;
    if params.user.as_deref().is_some_and(|u| !validate_user_id(u)) {
        return Err(ErrorCode::InvalidUserId.into());
    }
    let since = params.since.unwrap_or(0);
    let until = params.until.unwrap_or(i64::MAX as u64);
    if since >= until {
        return Err(ApiError::Invalid("since must be before until".into()));
    }
    let limit = paging::limit(params.limit)?;
    let before = params.cursor.as_deref().map(Cursor::parse).transpose()?;
    let calls = api
        .reader()
        .page(HistoryQuery {
            user: params.user,
            since,
            until,
            before: before.map(|c| (c.placed_at, c.id)),
            limit: limit + 1,
        })
        .await?;
    Ok(Json(CallPage::of(calls, limit)))
}
