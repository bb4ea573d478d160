//! What the site's backend asks of the hub through the HTTP API: who is online, the live calls,
//! and acting for a user (placing a call, ending one, logging them out everywhere) under the
//! same rules as a session's commands.

use std::cmp::Ordering;

use switchboard_proto::{CallId, ErrorCode, LogoutReason, UserRef};
use tokio::sync::oneshot;

use super::{Hub, HubGone, Msg, call_flow::Placed, cluster_calls::Pending, engine::Engine};
use crate::calls::{Call, Input, Millis};

/// A user's presence as the backend is told it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPresence {
    pub user: String,
    /// As online now, else as last seen; `None` for a user never seen.
    pub name: Option<String>,
    pub online: bool,
    /// When they came online, while they are.
    pub since: Option<Millis>,
    /// Their open sessions, those waiting out the grace period after a disconnect included.
    pub sessions: usize,
}

/// Which live calls to list: those of `user` (or all), in order of (placed_at, id), after
/// `after`, at most `limit`.
#[derive(Clone, Debug, Default)]
pub struct LiveQuery {
    pub user: Option<String>,
    pub after: Option<(Millis, CallId)>,
    pub limit: usize,
}

type Answer<T> = oneshot::Sender<Result<T, ErrorCode>>;

pub(super) enum Ask {
    Presence {
        users: Vec<String>,
        reply: oneshot::Sender<Vec<UserPresence>>,
    },
    OnlineCount(oneshot::Sender<usize>),
    LiveCalls {
        query: LiveQuery,
        reply: oneshot::Sender<Vec<Call>>,
    },
    LiveCall {
        id: CallId,
        reply: oneshot::Sender<Option<Call>>,
    },
    Place {
        caller: String,
        callee: String,
        reply: Answer<Call>,
    },
    End {
        id: CallId,
        reason: String,
        reply: Answer<Call>,
    },
    LogOut {
        user: String,
        reply: Answer<u64>,
    },
}

impl Hub {
    async fn backend<T>(&self, ask: impl FnOnce(oneshot::Sender<T>) -> Ask) -> Result<T, HubGone> {
        self.ask(|reply| Msg::Backend(ask(reply))).await
    }

    /// The presence of each of `users` on this node (one node; a cluster's is read from Redis).
    pub async fn presence(&self, users: Vec<String>) -> Result<Vec<UserPresence>, HubGone> {
        self.backend(|reply| Ask::Presence { users, reply }).await
    }

    /// How many users are online.
    pub async fn online_count(&self) -> Result<usize, HubGone> {
        self.backend(Ask::OnlineCount).await
    }

    /// A page of live calls (in a cluster, every node holds them all).
    pub async fn live_calls(&self, query: LiveQuery) -> Result<Vec<Call>, HubGone> {
        self.backend(|reply| Ask::LiveCalls { query, reply }).await
    }

    /// One live call.
    pub async fn live_call(&self, id: CallId) -> Result<Option<Call>, HubGone> {
        self.backend(|reply| Ask::LiveCall { id, reply }).await
    }

    /// Places a call on behalf of `caller`, who must be online: it rings `callee` as if placed
    /// from the caller's page, and the caller's sessions see it.
    pub async fn place_for(&self, caller: String, callee: String) -> Result<Call, ErrorCode> {
        self.backend(|reply| Ask::Place {
            caller,
            callee,
            reply,
        })
        .await
        .unwrap_or(Err(ErrorCode::ShuttingDown))
    }

    /// Ends a live call for the site: cancelled if it rings, ended if answered.
    pub async fn end_call(&self, id: CallId, reason: String) -> Result<Call, ErrorCode> {
        self.backend(|reply| Ask::End { id, reason, reply })
            .await
            .unwrap_or(Err(ErrorCode::ShuttingDown))
    }

    /// Logs every session of `user` out (`revoked`), on every node; returns how many there
    /// were.
    pub async fn log_out_everywhere(&self, user: String) -> Result<u64, ErrorCode> {
        self.backend(|reply| Ask::LogOut { user, reply })
            .await
            .unwrap_or(Err(ErrorCode::ShuttingDown))
    }
}

impl Engine {
    pub(super) fn backend(&mut self, ask: Ask) {
        match ask {
            Ask::Presence { users, reply } => {
                let _ = reply.send(users.into_iter().map(|u| self.presence_of(u)).collect());
            }
            Ask::OnlineCount(reply) => {
                let _ = reply.send(self.directory.online_count());
            }
            Ask::LiveCalls { query, reply } => {
                let _ = reply.send(self.live_calls(query));
            }
            Ask::LiveCall { id, reply } => {
                let _ = reply.send(self.calls.get(&id).map(|live| live.call.clone()));
            }
            Ask::Place {
                caller,
                callee,
                reply,
            } => self.place_for(caller, callee, reply),
            Ask::End { id, reason, reply } => {
                let input = Input::Terminate { reason };
                if self.cluster.is_some() {
                    self.step_shared(&id, input, None, Pending::Backend(reply));
                    return;
                }
                let ended = self
                    .transition(&id, input, None)
                    .and_then(|call| call.ok_or(ErrorCode::NoSuchCall));
                let _ = reply.send(ended);
            }
            Ask::LogOut { user, reply } => match &self.cluster {
                // Redis takes the sessions off on every node at once, and each node (this
                // one too) logs its own out when it hears which they were.
                Some(cluster) => cluster.revoke(user, reply),
                None => {
                    let sessions = self.directory.sessions(&user);
                    for &session in &sessions {
                        self.logged_out(session, &user, LogoutReason::Revoked);
                    }
                    let _ = reply.send(Ok(sessions.len() as u64));
                }
            },
        }
    }

    fn presence_of(&self, user: String) -> UserPresence {
        UserPresence {
            name: self.directory.name(&user).map(str::to_string),
            online: self.directory.is_online(&user),
            since: self.directory.online_since(&user),
            sessions: self.directory.sessions(&user).len(),
            user,
        }
    }

    /// The caller must be online (on any node); then the call is placed as their own.
    fn place_for(&mut self, caller: String, callee: String, reply: Answer<Call>) {
        if !self.directory.is_online(&caller) {
            let _ = reply.send(Err(ErrorCode::NotLoggedIn));
            return;
        }
        let caller = UserRef {
            name: self.directory.name(&caller).unwrap_or_default().to_string(),
            id: caller,
        };
        match self.place(caller, callee, None) {
            Ok(Placed::Ringing(call)) => {
                let _ = reply.send(Ok(call));
            }
            // The decision comes back under this number: the reply waits there.
            Ok(Placed::Deciding(op)) => {
                self.pending.insert(op, Pending::Backend(reply));
            }
            Err(code) => {
                let _ = reply.send(Err(code));
            }
        }
    }

    /// The page of live calls `query` asks for, without sorting them all: the hub serves every
    /// session while it does this.
    fn live_calls(&self, query: LiveQuery) -> Vec<Call> {
        let after = |call: &&Call| {
            query
                .after
                .as_ref()
                .is_none_or(|(at, id)| (call.placed_at, &call.id) > (*at, id))
        };
        let mut page: Vec<&Call> = match &query.user {
            Some(user) => self
                .calls
                .of_user(user)
                .iter()
                .filter_map(|id| self.calls.get(id))
                .map(|live| &live.call)
                .filter(after)
                .collect(),
            None => self
                .calls
                .all()
                .map(|live| &live.call)
                .filter(after)
                .collect(),
        };
        if page.len() > query.limit {
            page.select_nth_unstable_by(query.limit, order);
            page.truncate(query.limit);
        }
        page.sort_unstable_by(order);
        page.into_iter().cloned().collect()
    }
}

/// Live calls are listed by when they were placed, then by id.
fn order(a: &&Call, b: &&Call) -> Ordering {
    (a.placed_at, &a.id).cmp(&(b.placed_at, &b.id))
}
