//! Calls: the live ones (of one user or all, in pages), one call by id, placing a call on behalf
//! of a user, and ending a call for the site. Actions go through the hub under the same rules
//! as a session's commands, so every participant's tabs see them.

use axum::{
    Json,
    body::Bytes,
    extract::{
        Path, Query, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use switchboard_proto::{CallState, ErrorCode, UserRef, validate_name, validate_user_id};
use utoipa::{IntoParams, ToSchema};

use super::{
    Api, body,
    error::ApiError,
    error::ErrorBody,
    invalid_query, json_body,
    paging::{self, Cursor},
};
use crate::{calls::Call, hub::LiveQuery};

/// What an ended call's participants are told when the site gives no reason.
const DEFAULT_REASON: &str = "the site ended the call";

/// A call as the API shows it; its participants' join links are theirs alone and never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallInfo {
    #[schema(example = "Xb3kq9Zr0aT1mW2e")]
    pub id: String,
    pub state: CallStatus,
    pub caller: Participant,
    pub callee: Participant,
    /// When it was placed (ms since the Unix epoch).
    pub placed_at: u64,
    /// While it rings: when it will be missed.
    pub ring_deadline: Option<u64>,
    pub answered_at: Option<u64>,
    /// When it reached its final state.
    pub ended_at: Option<u64>,
    /// Why it is over, in words.
    #[schema(example = "Bob hung up")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Ringing,
    Answered,
    Rejected,
    Cancelled,
    Missed,
    Failed,
    Ended,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Participant {
    #[schema(example = "bob")]
    pub id: String,
    #[schema(example = "Bob")]
    pub name: String,
}

impl From<UserRef> for Participant {
    fn from(user: UserRef) -> Self {
        Self {
            id: user.id,
            name: user.name,
        }
    }
}

impl From<Call> for CallInfo {
    fn from(call: Call) -> Self {
        let state = match call.state {
            CallState::Ringing => CallStatus::Ringing,
            CallState::Answered => CallStatus::Answered,
            CallState::Rejected => CallStatus::Rejected,
            CallState::Cancelled => CallStatus::Cancelled,
            CallState::Missed => CallStatus::Missed,
            CallState::Failed => CallStatus::Failed,
            CallState::Ended => CallStatus::Ended,
        };
        Self {
            id: call.id.0,
            ring_deadline: (call.state == CallState::Ringing).then_some(call.ring_deadline),
            state,
            caller: call.caller.into(),
            callee: call.callee.into(),
            placed_at: call.placed_at,
            answered_at: call.answered_at,
            ended_at: call.ended_at,
            reason: call.reason,
        }
    }
}

/// A page of calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallPage {
    pub calls: Vec<CallInfo>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

impl CallPage {
    /// The page from `items` fetched one longer than `limit`.
    pub fn of(items: Vec<Call>, limit: usize) -> Self {
        let (calls, next_cursor) = paging::split(items, limit);
        Self {
            calls: calls.into_iter().map(CallInfo::from).collect(),
            next_cursor,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveCallsQuery {
    /// Only the calls this user takes part in.
    user: Option<String>,
    /// From a previous page's `next_cursor`.
    cursor: Option<String>,
    /// Calls per page, 1 to 200 (default 50).
    limit: Option<usize>,
}

/// Live calls (ringing or answered), oldest first, in pages. Calls placed while paging come on
/// later pages; calls that end meanwhile drop out.
#[utoipa::path(
    get,
    path = "/api/v1/calls",
    tag = "calls",
    params(LiveCallsQuery),
    responses(
        (status = 200, body = CallPage),
        (status = 400, description = "`invalid_user_id`, `invalid_request`", body = ErrorBody),
    )
)]
pub async fn live(
    State(api): State<Api>,
    query: Result<Query<LiveCallsQuery>, QueryRejection>,
) -> Result<Json<CallPage>, ApiError> {
    let Query(query) = query.map_err(invalid_query)?;
    if query.user.as_deref().is_some_and(|u| !validate_user_id(u)) {
        return Err(ErrorCode::InvalidUserId.into());
    }
    let limit = paging::limit(query.limit)?;
    let after = query.cursor.as_deref().map(Cursor::parse).transpose()?;
    let calls = api
        .hub()
        .live_calls(LiveQuery {
            user: query.user,
            after: after.map(|c| (c.placed_at, c.id)),
            limit: limit + 1,
        })
        .await
        .map_err(|_| ErrorCode::ShuttingDown)?;
    Ok(Json(CallPage::of(calls, limit)))
}

/// One call: live, else as recorded.
#[utoipa::path(
    get,
    path = "/api/v1/calls/{id}",
    tag = "calls",
    params(("id" = String, Path, description = "The call's id")),
    responses(
        (status = 200, body = CallInfo),
        (status = 404, description = "`no_such_call`", body = ErrorBody),
    )
)]
pub async fn get(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<CallInfo>, ApiError> {
    let id = paging::call_id(&id)?;
    let live = api
        .hub()
        .live_call(id.clone())
        .await
        .map_err(|_| ErrorCode::ShuttingDown)?;
    let call = match live {
        Some(call) => call,
        None => api.reader().call(id).await?.ok_or(ErrorCode::NoSuchCall)?,
    };
    Ok(Json(call.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceCall {
    /// Who calls: must be online. The call is theirs, as if placed from their page.
    #[schema(example = "ann")]
    pub caller: String,
    /// Who is called.
    #[schema(example = "bob")]
    pub callee: String,
}

/// Places a call on behalf of a user who is online: the callee rings exactly as if the caller
/// had called from their page, and the caller's tabs see the call. The caller's earlier
/// outgoing call, if any, is withdrawn (one outgoing call per user).
#[utoipa::path(
    post,
    path = "/api/v1/calls",
    tag = "calls",
    request_body = PlaceCall,
    responses(
        (status = 201, description = "The call rings", body = CallInfo),
        (status = 400, description = "`invalid_request`, `invalid_user_id`, `self_call`", body = ErrorBody),
        (status = 413, description = "`frame_too_large`: a body over 16 KiB", body = ErrorBody),
        (status = 404, description = "`unknown_user`: nobody with the callee's id was ever online", body = ErrorBody),
        (status = 409, description = "`not_logged_in`: the caller is not online; `offline`, `busy`: the callee", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the caller's calls per minute", body = ErrorBody),
        (status = 503, description = "`overloaded`, `unavailable`", body = ErrorBody),
    )
)]
pub async fn place(
    State(api): State<Api>,
    request: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CallInfo>), ApiError> {
    let PlaceCall { caller, callee } = json_body(&body(request)?)?;
    if !validate_user_id(&caller) || !validate_user_id(&callee) {
        return Err(ErrorCode::InvalidUserId.into());
    }
    let call = api
        .hub()
        .place_for(caller, callee)
        .await
        .map_err(|code| match code {
            ErrorCode::NotLoggedIn => ApiError::Refused {
                code,
                message: Some("the caller is not online"),
            },
            ErrorCode::Offline => ApiError::Refused {
                code,
                message: Some("the callee is offline"),
            },
            code => api.refused(code),
        })?;
    Ok((StatusCode::CREATED, Json(call.into())))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndCall {
    /// Why, as both participants are told it and the record keeps it: 1 to 100 printable
    /// characters (default "the site ended the call").
    #[schema(example = "ended by support")]
    pub reason: Option<String>,
}

/// Ends a live call for the site: a ringing call is cancelled, an answered one ended; both
/// participants' tabs are told, with the reason.
#[utoipa::path(
    post,
    path = "/api/v1/calls/{id}/end",
    tag = "calls",
    params(("id" = String, Path, description = "The call's id")),
    request_body(content = EndCall, description = "Optional: an empty body ends the call with the default reason"),
    responses(
        (status = 200, description = "The call as it ended", body = CallInfo),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 404, description = "`no_such_call`: no live call has this id", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn end(
    State(api): State<Api>,
    Path(id): Path<String>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<CallInfo>, ApiError> {
    let id = paging::call_id(&id)?;
    let request = body(request)?;
    let EndCall { reason } = if request.is_empty() {
        EndCall::default()
    } else {
        json_body(&request)?
    };
    let reason = match reason {
        Some(reason) if !validate_name(&reason) => {
            return Err(ApiError::Invalid(
                "reason must be 1 to 100 printable characters".into(),
            ));
        }
        Some(reason) => reason,
        None => DEFAULT_REASON.to_string(),
    };
    let call = api
        .hub()
        .end_call(id, reason)
        .await
        .map_err(|code| api.refused(code))?;
    Ok(Json(call.into()))
}
