//! Calls at the hub: placing them, feeding inputs to the pure state machine, performing its
//! effects (timers, notifications, links, records), and restoring live calls at start.

use std::time::Duration;

use switchboard_proto::{
    CallId, CallState, CallView, ErrorCode, Event, Role, UserRef, validate_user_id,
};

use super::{
    LinkAction, SessionId,
    state::{Live, State, Timer},
};
use crate::{
    calls::{self, Effect, Input, Reachability, Refusal},
    rooms::{CallRoom, Joiner},
    store::{CallRecord, Write},
};

/// Bytes of randomness in a call id and in a link token.
const CALL_ID_BYTES: usize = 12;
const LINK_BYTES: usize = 24;

impl State {
    pub(super) fn place_call(
        &mut self,
        session: SessionId,
        re: Option<u32>,
        to: String,
    ) -> Result<(), ErrorCode> {
        let caller_id = self
            .sessions
            .get(&session)
            .and_then(|s| s.user.clone())
            .ok_or(ErrorCode::NotLoggedIn)?;
        if !validate_user_id(&to) {
            return Err(ErrorCode::InvalidUserId);
        }
        // Every write of a call under way is kept however far behind the database is; what
        // bounds the backlog is that no new call starts while it is over its limit.
        // (Counted in `switchboard_refusals_total`; `/healthz` says how far behind.)
        if self.store.behind().is_some() {
            return Err(ErrorCode::Overloaded);
        }
        if let Some(limiter) = &self.limiter
            && limiter.check_key(&caller_id).is_err()
        {
            return Err(ErrorCode::RateLimited);
        }
        let caller = UserRef {
            name: self
                .online
                .get(&caller_id)
                .map(|o| o.name.clone())
                .unwrap_or_default(),
            id: caller_id,
        };
        let callee = UserRef {
            name: self
                .online
                .get(&to)
                .map(|o| o.name.clone())
                .or_else(|| self.known.get(&to).cloned())
                .unwrap_or_default(),
            id: to,
        };
        let reach = self.reach(&callee.id, &caller.id);
        let id = CallId(Self::token(CALL_ID_BYTES));
        let now = self.clock.now();
        let (call, _) = calls::place(
            id.clone(),
            caller,
            callee,
            reach,
            now,
            self.config.ring_timeout,
        )?;
        // One outgoing call per user: a call that will ring withdraws the previous one, as in
        // 2010. A refused call changes nothing.
        if let Some(previous) = self.outgoing.get(&call.caller.id).cloned() {
            let _ = self.transition(&previous, Input::Superseded, None);
        }
        let record = CallRecord {
            call,
            caller_link: Self::token(LINK_BYTES),
            callee_link: Self::token(LINK_BYTES),
        };
        self.writes.push(Write::Insert(Box::new(record.clone())));
        self.metrics.call_reached(CallState::Ringing);
        self.track(record);
        self.notify(&id, Some((session, re)));
        Ok(())
    }

    /// How `user` can be reached by `caller`; the caller's own calls (which the new one
    /// replaces) do not make anybody busy.
    fn reach(&self, user: &str, caller: &str) -> Reachability {
        if !self.online.contains_key(user) {
            return if self.known.contains_key(user) {
                Reachability::Offline
            } else {
                Reachability::Unknown
            };
        }
        let busy = self.user_calls.get(user).is_some_and(|calls| {
            calls
                .iter()
                .filter_map(|c| self.calls.get(c))
                .filter(|live| live.call.caller.id != caller)
                .any(|live| {
                    live.call.state == CallState::Answered
                        || (live.call.state == CallState::Ringing && live.call.callee.id == user)
                })
        });
        if busy {
            Reachability::Busy
        } else {
            Reachability::Free
        }
    }

    /// Starts following a live call: indexes, links and its timer.
    fn track(&mut self, record: CallRecord) {
        let CallRecord {
            call,
            caller_link,
            callee_link,
        } = record;
        let now = self.clock.now();
        let id = call.id.clone();
        let timer = match call.state {
            CallState::Ringing => Some(Timer::Ring(id.clone())),
            _ => Some(Timer::Talk(id.clone())),
        };
        let due = match call.state {
            CallState::Ringing => call.ring_deadline,
            _ => call.answered_at.unwrap_or(now) + self.config.max_call_duration.as_millis() as u64,
        };
        let key = timer.map(|t| {
            self.timers
                .insert(t, Duration::from_millis(due.saturating_sub(now)))
        });
        let ringing = call.state == CallState::Ringing;
        self.links
            .insert(caller_link.clone(), (id.clone(), Role::Caller));
        self.links
            .insert(callee_link.clone(), (id.clone(), Role::Callee));
        for user in [&call.caller.id, &call.callee.id] {
            self.user_calls
                .entry(user.clone())
                .or_default()
                .push(id.clone());
        }
        self.outgoing.insert(call.caller.id.clone(), id.clone());
        self.calls.insert(
            id,
            Live {
                call,
                caller_link,
                callee_link,
                handled_by: None,
                ring: key.filter(|_| ringing),
                talk: key.filter(|_| !ringing),
            },
        );
    }

    /// Takes a call that was live when the server stopped back into the hub: it rings on (or
    /// stays answered) if its time has not run out, else it is missed (or ended) now.
    pub(super) fn restore(&mut self, record: CallRecord) {
        let id = record.call.id.clone();
        self.track(record);
        let Some(live) = self.calls.get(&id) else {
            return;
        };
        let now = self.clock.now();
        let overdue = match live.call.state {
            CallState::Ringing => (live.call.ring_deadline <= now).then_some(Input::RingTimeout),
            _ => (live.call.answered_at.unwrap_or(0)
                + self.config.max_call_duration.as_millis() as u64
                <= now)
                .then_some(Input::MaxDuration),
        };
        if let Some(input) = overdue {
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
            .get(&session)
            .and_then(|s| s.user.clone())
            .ok_or(ErrorCode::NotLoggedIn)?;
        self.transition(&call, input(user), Some((session, re)))
    }

    /// Feeds an input to the state machine and performs the effects. `from` is the session
    /// (and command id) that caused it, if any.
    pub(super) fn transition(
        &mut self,
        id: &CallId,
        input: Input,
        from: Option<(SessionId, Option<u32>)>,
    ) -> Result<(), ErrorCode> {
        let now = self.clock.now();
        let handles = matches!(input, Input::Answer { .. } | Input::Reject { .. });
        let live = self.calls.get_mut(id).ok_or(ErrorCode::NoSuchCall)?;
        let (next, effects) =
            calls::step(&live.call, input, now).map_err(|r: Refusal| ErrorCode::from(r))?;
        live.call = next;
        if handles {
            live.handled_by = from.map(|(session, _)| session);
        }
        for effect in &effects {
            match effect {
                Effect::Persist => {
                    self.writes.push(Write::Update(Box::new(live.call.clone())));
                    self.metrics.call_reached(live.call.state);
                }
                Effect::StopRinging => {
                    if let Some(key) = live.ring.take() {
                        self.timers.try_remove(&key);
                    }
                }
                Effect::StartTalking => {
                    live.talk = Some(
                        self.timers
                            .insert(Timer::Talk(id.clone()), self.config.max_call_duration),
                    );
                }
                Effect::Notify | Effect::Release => {}
            }
        }
        if effects.contains(&Effect::Notify) {
            self.notify(id, from);
        }
        if effects.contains(&Effect::Release) {
            self.release(id);
        }
        Ok(())
    }

    /// The call is over: forget it, kill its links, and let the room provider clean up.
    fn release(&mut self, id: &CallId) {
        let Some(live) = self.calls.remove(id) else {
            return;
        };
        if let Some(key) = live.talk {
            self.timers.try_remove(&key);
        }
        if let Some(key) = live.ring {
            self.timers.try_remove(&key);
        }
        self.links.remove(&live.caller_link);
        self.links.remove(&live.callee_link);
        for user in [&live.call.caller.id, &live.call.callee.id] {
            if let Some(calls) = self.user_calls.get_mut(user) {
                calls.retain(|c| c != id);
                if calls.is_empty() {
                    self.user_calls.remove(user);
                }
            }
        }
        if self.outgoing.get(&live.call.caller.id) == Some(id) {
            self.outgoing.remove(&live.call.caller.id);
        }
        if live.call.answered_at.is_some() {
            let rooms = self.rooms.clone();
            let room = Self::room(&live);
            tokio::spawn(async move { rooms.call_over(&room).await });
        }
    }

    fn room(live: &Live) -> CallRoom {
        CallRoom {
            id: live.call.id.clone(),
            caller: live.call.caller.clone(),
            callee: live.call.callee.clone(),
        }
    }

    /// Sends the call's state to every session of both participants.
    fn notify(&mut self, id: &CallId, from: Option<(SessionId, Option<u32>)>) {
        let Some(live) = self.calls.get(id) else {
            return;
        };
        let mut deliveries = Vec::new();
        for role in [Role::Caller, Role::Callee] {
            let user = match role {
                Role::Caller => &live.call.caller.id,
                Role::Callee => &live.call.callee.id,
            };
            let sessions = self
                .online
                .get(user)
                .map(|o| o.sessions.clone())
                .unwrap_or_default();
            for session in sessions {
                let re = from.and_then(|(s, re)| if s == session { re } else { None });
                deliveries.push((session, re, Event::Call(self.view(live, role, session))));
            }
        }
        for (session, re, event) in deliveries {
            self.deliver(session, re, &event);
        }
    }

    /// Sends a session the state of every live call of its user.
    pub(super) fn send_calls(&mut self, session: SessionId, re: Option<u32>) {
        let Some(user) = self.sessions.get(&session).and_then(|s| s.user.clone()) else {
            return;
        };
        let ids = self.user_calls.get(&user).cloned().unwrap_or_default();
        let events: Vec<_> = ids
            .iter()
            .filter_map(|id| self.calls.get(id))
            .map(|live| {
                let role = if live.call.caller.id == user {
                    Role::Caller
                } else {
                    Role::Callee
                };
                Event::Call(self.view(live, role, session))
            })
            .collect();
        for event in events {
            self.deliver(session, re, &event);
        }
    }

    fn view(&self, live: &Live, role: Role, session: SessionId) -> CallView {
        let call = &live.call;
        let (peer, token) = match role {
            Role::Caller => (&call.callee, &live.caller_link),
            Role::Callee => (&call.caller, &live.callee_link),
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
            link: has_link.then(|| self.link_url(token)),
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
        let (id, role) = self.links.get(token).cloned()?;
        let live = self.calls.get(&id)?;
        let room = Self::room(live);
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
        let sessions = self
            .online
            .get(participant)
            .map(|o| o.sessions.clone())
            .unwrap_or_default();
        for session in sessions {
            self.deliver(session, None, &event);
        }
    }
}
