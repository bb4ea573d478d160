//! Calls at the hub: placing them, feeding participants' commands, links and timers to the
//! call book, and performing what each step asks for (records, notifications, rooms).

use std::time::Duration;

use switchboard_proto::{
    CallId, CallState, CallView, ErrorCode, Event, Role, UserRef, validate_user_id,
};

use super::{LinkAction, SessionId, call_book::Live, cluster_calls::Pending, engine::Engine};
use crate::{
    calls::{self, Call, Effect, Input, Reachability},
    rooms::Joiner,
    store::{CallRecord, Write},
};

/// Bytes of randomness in a call id (after its time) and in a link token.
const CALL_ID_BYTES: usize = 9;
const LINK_BYTES: usize = 24;

/// A call that was placed.
pub(super) enum Placed {
    /// It rings (one node).
    Ringing(Call),
    /// The cluster decides whether it rings, as change `op` of this node's.
    Deciding(u64),
}

impl Engine {
    pub(super) fn place_call(
        &mut self,
        session: SessionId,
        re: Option<u32>,
        to: String,
    ) -> Result<(), ErrorCode> {
        let caller_id = self
            .sessions
            .user(session)
            .ok_or(ErrorCode::NotLoggedIn)?
            .to_string();
        let caller = UserRef {
            name: self.directory.online_name(&caller_id),
            id: caller_id,
        };
        self.place(caller, to, Some((session, re))).map(drop)
    }

    /// Places a call from `caller` to `to` under the same rules whoever asks: a session's
    /// command (`from`), or the site's backend on the caller's behalf (`None`); either way
    /// every session of both users hears of it.
    pub(super) fn place(
        &mut self,
        caller: UserRef,
        to: String,
        from: Option<(SessionId, Option<u32>)>,
    ) -> Result<Placed, ErrorCode> {
        if !validate_user_id(&to) {
            return Err(ErrorCode::InvalidUserId);
        }
        // Every write of a call under way is kept however far behind the database is; what
        // bounds the backlog is that no new call starts while it is over its limit.
        // (Counted in `switchboard_refusals_total`; `/healthz` says how far behind.)
        if self.store.behind().is_some() {
            return Err(ErrorCode::Overloaded);
        }
        // A node of a cluster places calls only while it reaches the state the nodes share.
        if self.cluster.as_ref().is_some_and(|c| !c.is_up()) {
            return Err(ErrorCode::Unavailable);
        }
        if let Some(limiter) = &self.limiter
            && limiter.check_key(&caller.id).is_err()
        {
            return Err(ErrorCode::RateLimited);
        }
        let callee = UserRef {
            name: self.directory.name(&to).unwrap_or_default().to_string(),
            id: to,
        };
        let reach = match self.cluster {
            // Who is free, offline or never seen is decided in Redis, with the call.
            Some(_) => Reachability::Free,
            None => self.reach(&callee.id, &caller.id),
        };
        let now = self.clock.now();
        let id = call_id(now);
        let (call, _) = calls::place(
            id.clone(),
            caller,
            callee,
            reach,
            now,
            self.config.ring_timeout,
        )?;
        if self.cluster.is_some() {
            let record = CallRecord {
                call,
                caller_link: super::token(LINK_BYTES),
                callee_link: super::token(LINK_BYTES),
            };
            return Ok(Placed::Deciding(self.place_shared(from, record)));
        }
        // One outgoing call per user: a call that will ring withdraws the previous one, as in
        // 2010. A refused call changes nothing.
        if let Some(previous) = self.calls.outgoing(&call.caller.id).cloned() {
            let _ = self.transition(&previous, Input::Superseded, None);
        }
        let record = CallRecord {
            call,
            caller_link: super::token(LINK_BYTES),
            callee_link: super::token(LINK_BYTES),
        };
        self.writes.push(Write::Insert(Box::new(record.clone())));
        self.reached(&record.call);
        let placed = record.call.clone();
        self.calls.track(record, now);
        if let Some(live) = self.calls.get(&id) {
            let deliveries = self.notifications(live, from);
            self.send(deliveries);
        }
        Ok(Placed::Ringing(placed))
    }

    /// How `user` can be reached by `caller`.
    fn reach(&self, user: &str, caller: &str) -> Reachability {
        if self.directory.is_online(user) || self.directory.is_here(user) {
            self.calls.reach(user, caller)
        } else if self.directory.is_known(user) {
            Reachability::Offline
        } else {
            Reachability::Unknown
        }
    }

    /// Takes a call that was live when the server stopped back into the hub: it rings on (or
    /// stays answered) if its time has not run out, else it is missed (or ended) now.
    pub(super) fn restore(&mut self, record: CallRecord) {
        let id = record.call.id.clone();
        let now = self.clock.now();
        self.calls.track(record, now);
        if let Some(input) = self.calls.overdue(&id, now) {
            let _ = self.transition(&id, input, None);
        }
    }

    /// A participant's command on a call.
    pub(super) fn act_on_call(
        &mut self,
        session: SessionId,
        re: Option<u32>,
        call: CallId,
        input: impl FnOnce(String) -> Input,
    ) -> Result<(), ErrorCode> {
        let user = self
            .sessions
            .user(session)
            .ok_or(ErrorCode::NotLoggedIn)?
            .to_string();
        self.transition(&call, input(user), Some((session, re)))
            .map(drop)
    }

    /// Feeds an input to the call book and performs the effects. `from` is the session (and
    /// command id) that caused it, if any. Returns the call as it is now on one node; in a
    /// cluster the change is decided in Redis, and `None` is returned at once.
    pub(super) fn transition(
        &mut self,
        id: &CallId,
        input: Input,
        from: Option<(SessionId, Option<u32>)>,
    ) -> Result<Option<Call>, ErrorCode> {
        if self.cluster.is_some() {
            let pending = match from {
                Some((session, re)) => Pending::Command { session, re },
                None => Pending::Quiet,
            };
            self.step_shared(id, input, from, pending);
            return Ok(None);
        }
        let now = self.clock.now();
        let stepped = self
            .calls
            .step(id, input, now, from.map(|(session, _)| session))?;
        let Some(live) = stepped.released.as_ref().or_else(|| self.calls.get(id)) else {
            return Ok(None);
        };
        let changed = live.call.clone();
        if stepped.effects.contains(&Effect::Persist) {
            self.writes.push(Write::Update(Box::new(live.call.clone())));
            self.reached(&live.call);
        }
        let deliveries = if stepped.effects.contains(&Effect::Notify) {
            self.notifications(live, from)
        } else {
            Vec::new()
        };
        self.send(deliveries);
        if let Some(live) = stepped.released
            && live.call.answered_at.is_some()
        {
            let rooms = self.rooms.clone();
            let room = live.room();
            tokio::spawn(async move { rooms.call_over(&room).await });
        }
        Ok(Some(changed))
    }

    /// Counts and logs a call's new state, once per change wherever it was decided. The log
    /// names the call and its parties, never their links.
    pub(super) fn reached(&self, call: &Call) {
        self.metrics.call_reached(call.state);
        tracing::info!(
            target: "switchboard::calls",
            call = %call.id.0,
            state = call.state.as_str(),
            caller = %call.caller.id,
            callee = %call.callee.id,
            reason = call.reason.as_deref().unwrap_or_default(),
            "call {}",
            call.state.as_str()
        );
    }

    /// The call's state for every session of both participants.
    pub(super) fn notifications(
        &self,
        live: &Live,
        from: Option<(SessionId, Option<u32>)>,
    ) -> Vec<(SessionId, Option<u32>, Event)> {
        let mut deliveries = Vec::new();
        for role in [Role::Caller, Role::Callee] {
            for session in self.directory.sessions(&live.call.participant(role).id) {
                let re = from.and_then(|(s, re)| if s == session { re } else { None });
                deliveries.push((session, re, Event::Call(self.view(live, role, session))));
            }
        }
        deliveries
    }

    pub(super) fn send(&mut self, deliveries: Vec<(SessionId, Option<u32>, Event)>) {
        for (session, re, event) in deliveries {
            self.sessions.deliver(session, re, &event);
        }
    }

    /// Sends a session the state of every live call of its user.
    pub(super) fn send_calls(&mut self, session: SessionId, re: Option<u32>) {
        let Some(user) = self.sessions.user(session) else {
            return;
        };
        let events: Vec<_> = self
            .calls
            .of_user(user)
            .iter()
            .filter_map(|id| self.calls.get(id))
            .map(|live| {
                (
                    session,
                    re,
                    Event::Call(self.view(live, live.role_of(user), session)),
                )
            })
            .collect();
        self.send(events);
    }

    fn view(&self, live: &Live, role: Role, session: SessionId) -> CallView {
        let call = &live.call;
        let peer = match role {
            Role::Caller => &call.callee,
            Role::Callee => &call.caller,
        };
        let has_link = match role {
            Role::Callee => matches!(call.state, CallState::Ringing | CallState::Answered),
            Role::Caller => call.state == CallState::Answered,
        };
        CallView {
            id: call.id.clone(),
            role,
            peer: peer.clone(),
            state: call.state,
            link: has_link.then(|| self.link_url(live.link(role))),
            elsewhere: role == Role::Callee
                && matches!(call.state, CallState::Answered | CallState::Rejected)
                && live.handled_by != Some(session),
            rings_for_ms: (call.state == CallState::Ringing)
                .then(|| call.ring_deadline.saturating_sub(self.clock.now())),
            reason: call.reason.clone(),
        }
    }

    fn link_url(&self, token: &str) -> String {
        format!("{}/join/{token}", self.config.public_url)
    }

    /// Resolves a link token for an HTTP handler and performs `action`.
    pub(super) fn link(&mut self, token: &str, action: LinkAction) -> Option<Joiner> {
        let (id, role) = self.calls.link(token)?;
        let live = self.calls.get(&id)?;
        let room = live.room();
        let participant = live.call.participant(role).id.clone();
        match (&action, role, live.call.state) {
            // The caller's link exists from the start but is handed out only once answered.
            (_, Role::Caller, CallState::Ringing) => return None,
            // Following the link is how a 2010 page answers: the callee wants to talk.
            (LinkAction::Join, Role::Callee, CallState::Ringing) => {
                self.transition(&id, Input::Answer { by: participant }, None)
                    .ok()?;
            }
            (LinkAction::Join | LinkAction::Peek, _, _) => {}
            (LinkAction::Hangup, _, _) => {
                self.transition(&id, Input::Hangup { by: participant }, None)
                    .ok()?;
            }
            (LinkAction::RoomFailed(why), _, _) => self.room_failed(&id, &participant, why),
        }
        let ends_at = self.calls.get(&id)?.call.answered_at.map(|answered| {
            std::time::UNIX_EPOCH + Duration::from_millis(answered) + self.config.max_call_duration
        });
        Some(Joiner {
            room,
            role,
            token: token.to_string(),
            ends_at,
        })
    }

    /// The conferencing server failed a participant: note it on the call and tell their tabs.
    /// The call stays as it is, so a later click can retry.
    fn room_failed(&mut self, id: &CallId, participant: &str, why: &str) {
        self.writes.push(Write::Note {
            call: id.clone(),
            at: self.clock.now(),
            detail: format!("room for {participant}: {why}"),
        });
        // The cause stays in the record: it may name servers or quote the conferencing
        // server, which is none of the participant's business.
        let event = Event::Error {
            code: ErrorCode::RoomFailed,
            message: ErrorCode::RoomFailed.describe().to_string(),
        };
        for session in self.directory.sessions(participant) {
            self.sessions.deliver(session, None, &event);
        }
    }
}

/// A new call's id: the time it was placed in fixed-width hex, then random bytes. Ids made
/// close in time sort together, so the database adds each to the end of its index instead of
/// rewriting a page picked at random.
fn call_id(now: crate::calls::Millis) -> CallId {
    CallId(format!("{:012x}{}", now, super::token(CALL_ID_BYTES)))
}

#[cfg(test)]
mod tests {
    use super::call_id;

    #[test]
    fn call_ids_sort_by_time_and_never_repeat() {
        let earlier = call_id(1_764_000_000_000);
        let later = call_id(1_764_000_000_001);
        assert!(earlier < later, "{earlier} sorts after {later}");
        assert_ne!(call_id(5), call_id(5));
        assert_eq!(later.0.len(), 24);
    }
}
