//! Who is online: the presence of chosen users, and how many users are online. In a cluster
//! both are read from what the nodes share in Redis.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
};
use serde::{Deserialize, Serialize};
use switchboard_proto::{ErrorCode, validate_user_id};
use utoipa::{IntoParams, ToSchema};

use super::{Api, error::ApiError, invalid_query};
use crate::hub::UserPresence;

/// Users one request may ask about, as many as one session may watch by default.
pub const MAX_USERS: usize = 256;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PresenceQuery {
    /// Comma-separated user ids, at most 256 (repeats are answered once).
    #[param(example = "ann,bob")]
    users: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceList {
    /// One entry per user asked about, in the order asked.
    pub users: Vec<Presence>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Presence {
    #[schema(example = "ann")]
    pub id: String,
    /// The display name: as online now, else as last seen; null for a user never seen.
    #[schema(example = "Ann")]
    pub name: Option<String>,
    /// Online on any node.
    pub online: bool,
    /// When the user came online (ms since the Unix epoch), while online.
    #[schema(example = 1_767_225_600_000_u64)]
    pub since: Option<u64>,
    /// Open sessions (browsers or devices), those waiting out the grace period after a
    /// disconnect included.
    pub sessions: u64,
}

impl From<UserPresence> for Presence {
    fn from(p: UserPresence) -> Self {
        Self {
            id: p.user,
            name: p.name,
            online: p.online,
            since: p.since,
            sessions: p.sessions as u64,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OnlineCount {
    /// Users online (on any node).
    pub online: u64,
}

/// The presence of the given users.
#[utoipa::path(
    get,
    path = "/api/v1/presence",
    tag = "presence",
    params(PresenceQuery),
    responses(
        (status = 200, body = PresenceList),
        (status = 400, description = "`invalid_user_id`, or `invalid_request` (no ids, too many)", body = super::error::ErrorBody),
        (status = 503, description = "`unavailable`: Redis cannot be reached", body = super::error::ErrorBody),
    )
)]
pub async fn lookup(
    State(api): State<Api>,
    query: Result<Query<PresenceQuery>, QueryRejection>,
) -> Result<Json<PresenceList>, ApiError> {
    let Query(query) = query.map_err(invalid_query)?;
    let users = user_list(&query.users)?;
    let found = match api.cluster() {
        Some(cluster) => cluster.presence(&users).await?,
        None => api
            .hub()
            .presence(users)
            .await
            .map_err(|_| ErrorCode::ShuttingDown)?,
    };
    Ok(Json(PresenceList {
        users: found.into_iter().map(Presence::from).collect(),
    }))
}

/// How many users are online.
#[utoipa::path(
    get,
    path = "/api/v1/presence/count",
    tag = "presence",
    responses(
        (status = 200, body = OnlineCount),
        (status = 503, description = "`unavailable`: Redis cannot be reached", body = super::error::ErrorBody),
    )
)]
pub async fn count(State(api): State<Api>) -> Result<Json<OnlineCount>, ApiError> {
    let online = match api.cluster() {
        Some(cluster) => cluster.online_count().await?,
        None => api
            .hub()
            .online_count()
            .await
            .map_err(|_| ErrorCode::ShuttingDown)? as u64,
    };
    Ok(Json(OnlineCount { online }))
}

/// The ids of a comma-separated list, checked as `watch` checks them, without repeats.
fn user_list(text: &str) -> Result<Vec<String>, ApiError> {
    let mut users: Vec<String> = Vec::new();
    for id in text.split(',') {
        if !validate_user_id(id) {
            return Err(ErrorCode::InvalidUserId.into());
        }
        if !users.iter().any(|u| u == id) {
            users.push(id.to_string());
        }
        if users.len() > MAX_USERS {
            return Err(ApiError::Invalid(format!(
                "at most {MAX_USERS} users at once"
            )));
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_lists_are_checked_and_deduplicated() {
        assert_eq!(user_list("ann,bob,ann").unwrap(), ["ann", "bob"]);
        for bad in ["", "ann,", "ann,,bob", "ann, bob", "<script>"] {
            assert!(
                matches!(
                    user_list(bad),
                    Err(ApiError::Refused {
                        code: ErrorCode::InvalidUserId,
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        let many: Vec<String> = (0..=MAX_USERS).map(|i| format!("u{i}")).collect();
        assert!(matches!(
            user_list(&many.join(",")),
            Err(ApiError::Invalid(_))
        ));
        assert_eq!(
            user_list(&many[..MAX_USERS].join(",")).unwrap().len(),
            MAX_USERS
        );
    }
}
