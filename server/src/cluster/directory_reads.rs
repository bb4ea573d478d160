//! Reads of the directory the nodes share, for the site's backend: who is online anywhere,
//! since when and on how many sessions. They go to Redis directly, beside the link's ordered
//! changes, since a backend's question needs no order with this node's own logins.

use redis::AsyncCommands;
use switchboard_proto::ErrorCode;

use super::{Cluster, scripts};
use crate::hub::UserPresence;

impl Cluster {
    /// The presence of each of `users`, in order, as Redis holds it now.
    pub async fn presence(&self, users: &[String]) -> Result<Vec<UserPresence>, ErrorCode> {
        let mut redis = self.reader().ok_or(ErrorCode::Unavailable)?;
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = scripts::PRESENCE.prepare_invoke();
        for user in users {
            invocation.arg(user);
        }
        let fields: Vec<String> = invocation
            .invoke_async(&mut redis)
            .await
            .map_err(unavailable)?;
        if fields.len() != users.len() * 4 {
            tracing::error!(
                fields = fields.len(),
                "Redis answered a presence read with the wrong number of fields"
            );
            return Err(ErrorCode::Internal);
        }
        Ok(users
            .iter()
            .zip(fields.chunks_exact(4))
            .map(|(user, f)| UserPresence {
                user: user.clone(),
                name: (!f[0].is_empty()).then(|| f[0].clone()),
                online: f[1] == "1",
                since: f[2].parse().ok(),
                sessions: f[3].parse().unwrap_or(0),
            })
            .collect())
    }

    /// How many users are online on any node.
    pub async fn online_count(&self) -> Result<u64, ErrorCode> {
        let mut redis = self.reader().ok_or(ErrorCode::Unavailable)?;
        redis.hlen("sb:online").await.map_err(unavailable)
    }
}

/// A failed read: the backend is told to try again; the link notices the outage by itself.
fn unavailable(error: redis::RedisError) -> ErrorCode {
    tracing::warn!(%error, "a read of the shared directory failed");
    ErrorCode::Unavailable
}
