//! Calls on a node of a cluster: every change is decided through Redis on the call's current
//! version (by the link, with the same `calls::step`), and every node applies the changes it
//! hears to its copy of the live calls and tells its own sessions. What this node asked for
//! comes back as a decision, and it answers whoever asked.

use std::time::Duration;

use switchboard_proto::{CallId, CallState, ErrorCode, Role};
use tokio::sync::oneshot;

use super::{LinkAction, SessionId, engine::Engine};
use crate::{
    calls::{Call, Input},
    cluster::{CallChange, Origin, SharedCall},
    rooms::Joiner,
    store::CallRecord,
};

/// Who waits for a change this node asked the cluster to decide.
pub(super) enum Pending {
    /// A session's command: a refusal is its answer (a success reaches it as the call's event).
    Command { session: SessionId, re: Option<u32> },
    /// An HTTP handler following or hanging up a link.
    Link {
        token: String,
        reply: oneshot::Sender<Option<Joiner>>,
    },
    /// The site's backend: the call as decided, or why not.
    Backend(oneshot::Sender<Result<Call, ErrorCode>>),
    /// Nobody: a timer, or a participant gone offline.
    Quiet,
}

impl Engine {
    pub(super) fn pend(&mut self, pending: Pending) -> u64 {
        self.next_op += 1;
        self.pending.insert(self.next_op, pending);
        self.next_op
    }

    fn origin(&self, session: SessionId, re: Option<u32>) -> Option<Origin> {
        Some(Origin {
            node: self.cluster.as_ref()?.node().to_string(),
            session,
            re,
        })
    }

    /// Asks the cluster to place a call: it rings if the callee is free anywhere. `from`: the
    /// session that asked, if one did. Returns the change's number, under which a session's
    /// refusal is told to it (the backend's caller puts its own reply there instead).
    pub(super) fn place_shared(
        &mut self,
        from: Option<(SessionId, Option<u32>)>,
        record: CallRecord,
    ) -> u64 {
        let callee = &record.call.callee.id;
        let known_here = self.directory.is_known(callee) || self.directory.is_online(callee);
        let (origin, pending) = match from {
            Some((session, re)) => (self.origin(session, re), Pending::Command { session, re }),
            None => (None, Pending::Quiet),
        };
        let op = self.pend(pending);
        if let Some(cluster) = &self.cluster {
            let shared = SharedCall {
                version: 1,
                record,
                handled_by: None,
            };
            cluster.place(op, shared, origin, known_here);
        }
        op
    }

    /// Asks the cluster to feed an input to a call.
    pub(super) fn step_shared(
        &mut self,
        id: &CallId,
        input: Input,
        from: Option<(SessionId, Option<u32>)>,
        pending: Pending,
    ) {
        let origin = from.and_then(|(session, re)| self.origin(session, re));
        let op = self.pend(pending);
        let now = self.clock.now();
        if let Some(cluster) = &self.cluster {
            cluster.step(op, id.clone(), input, origin, now);
        }
    }

    /// A link followed or hung up on this node: the answer waits for the cluster's decision.
    /// Returns the reply back if the action changes nothing and can be answered at once.
    pub(super) fn link_shared(
        &mut self,
        token: String,
        action: LinkAction,
        reply: oneshot::Sender<Option<Joiner>>,
    ) -> Option<(String, LinkAction, oneshot::Sender<Option<Joiner>>)> {
        let Some((id, role)) = self.calls.link(&token) else {
            let _ = reply.send(None);
            return None;
        };
        let Some(live) = self.calls.get(&id) else {
            let _ = reply.send(None);
            return None;
        };
        let participant = live.call.participant(role).id.clone();
        let input = match (&action, role, live.call.state) {
            (_, Role::Caller, CallState::Ringing) => {
                let _ = reply.send(None);
                return None;
            }
            (LinkAction::Join, Role::Callee, CallState::Ringing) => {
                Input::Answer { by: participant }
            }
            (LinkAction::Hangup, _, _) => Input::Hangup { by: participant },
            _ => return Some((token, action, reply)),
        };
        self.step_shared(&id, input, None, Pending::Link { token, reply });
        None
    }

    /// What became of a change this node asked for.
    pub(super) fn cluster_decided(&mut self, op: u64, result: Result<CallChange, ErrorCode>) {
        let pending = self.pending.remove(&op).unwrap_or(Pending::Quiet);
        match result {
            Ok(change) => {
                // Its record reaches the database through Redis's stream of records.
                self.reached(&change.shared.record.call);
                let id = change.shared.record.call.id.clone();
                let call = change.shared.record.call.clone();
                let ended = self.apply_change(change);
                match pending {
                    Pending::Link { token, reply } => {
                        let _ = reply.send(self.joiner(&token, &id, ended));
                    }
                    Pending::Backend(reply) => {
                        let _ = reply.send(Ok(call));
                    }
                    Pending::Command { .. } | Pending::Quiet => {}
                }
            }
            Err(code) => match pending {
                Pending::Command { session, re } => self.refuse(session, re, code),
                Pending::Link { reply, .. } => {
                    let _ = reply.send(None);
                }
                Pending::Backend(reply) => {
                    let _ = reply.send(Err(code));
                }
                Pending::Quiet => {}
            },
        }
    }

    /// The link's answer after a decision: the call as it is now (or as it ended).
    fn joiner(&self, token: &str, id: &CallId, ended: Option<CallRecord>) -> Option<Joiner> {
        let (record, role) = match ended {
            Some(record) => {
                let role = if record.caller_link == token {
                    Role::Caller
                } else {
                    Role::Callee
                };
                (record, role)
            }
            None => {
                let live = self.calls.get(id)?;
                let role = live.role_of_link(token)?;
                (live.record(), role)
            }
        };
        let ends_at = record.call.answered_at.map(|answered| {
            std::time::UNIX_EPOCH + Duration::from_millis(answered) + self.config.max_call_duration
        });
        Some(Joiner {
            room: crate::rooms::CallRoom {
                id: record.call.id.clone(),
                caller: record.call.caller.clone(),
                callee: record.call.callee.clone(),
            },
            role,
            token: token.to_string(),
            ends_at,
        })
    }

    /// Takes a change into this node's copy of the live calls and tells this node's sessions
    /// of both participants. Returns the call as it ended, if it did.
    pub(super) fn apply_change(&mut self, change: CallChange) -> Option<CallRecord> {
        let me = self.cluster.as_ref()?.node().to_string();
        let CallChange {
            shared,
            from,
            notify,
        } = change;
        let handled_by = shared
            .handled_by
            .filter(|o| o.node == me)
            .map(|o| o.session);
        let id = shared.record.call.id.clone();
        let now = self.clock.now();
        let released = self
            .calls
            .apply(shared.record, shared.version, handled_by, now)?;
        let from = from.filter(|o| o.node == me).map(|o| (o.session, o.re));
        let live = released.as_ref().or_else(|| self.calls.get(&id))?;
        let deliveries = if notify {
            self.notifications(live, from)
        } else {
            Vec::new()
        };
        let ended = released.as_ref().map(|live| live.record());
        self.send(deliveries);
        if let Some(live) = released
            && live.call.answered_at.is_some()
        {
            let rooms = self.rooms.clone();
            let room = live.room();
            tokio::spawn(async move { rooms.call_over(&room).await });
        }
        ended
    }

    /// Every live call, read afresh after the link came back: what changed meanwhile is taken
    /// and told; a call gone from Redis ended while this node could not hear of it.
    pub(super) fn cluster_calls(&mut self, live: Vec<SharedCall>) {
        let ids: std::collections::HashSet<CallId> =
            live.iter().map(|s| s.record.call.id.clone()).collect();
        for shared in live {
            self.apply_change(CallChange {
                shared,
                from: None,
                notify: true,
            });
        }
        let gone: Vec<CallId> = self
            .calls
            .all()
            .map(|live| live.call.id.clone())
            .filter(|id| !ids.contains(id))
            .collect();
        for id in gone {
            self.calls.forget(&id);
        }
    }

    /// After the link came back: this node's sessions and the calls it knows, for Redis.
    pub(super) fn sync_cluster(&mut self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let calls = self
            .calls
            .all()
            .map(|live| SharedCall {
                version: live.version,
                record: live.record(),
                handled_by: None,
            })
            .collect();
        cluster.sync(self.directory.here().collect(), calls);
    }

    /// A user went offline everywhere: calls that ring for or from them cannot be answered.
    pub(super) fn gone_from_cluster(&mut self, user: &str) {
        for call in self.calls.of_user(user) {
            let Some(role) = self.calls.get(&call).map(|live| live.role_of(user)) else {
                continue;
            };
            self.step_shared(&call, Input::WentOffline(role), None, Pending::Quiet);
        }
    }
}
