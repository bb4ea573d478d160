//! The live calls: each ringing or answered call with its two link tokens, the indexes by user
//! and by link, and the ring and talk timers. Every change of state goes through
//! [`calls::step`], the one place where call rules live; this module keeps its bookkeeping in
//! line with the result.

use std::{collections::HashMap, time::Duration};

use futures_util::StreamExt;
use switchboard_proto::{CallId, CallState, ErrorCode, Role};
use tokio_util::time::{DelayQueue, delay_queue::Key};

use crate::{
    calls::{self, Call, Effect, Input, Millis, Reachability},
    rooms::CallRoom,
    store::CallRecord,
};

/// A call that rings or is answered.
pub struct Live {
    pub call: Call,
    pub caller_link: String,
    pub callee_link: String,
    /// The callee's session that answered or rejected it, if one of this node's did.
    pub handled_by: Option<super::SessionId>,
    /// In a cluster, the version of the shared call this copy is (0 on one node).
    pub version: u64,
    ring: Option<Key>,
    talk: Option<Key>,
}

impl Live {
    /// The link token of a participant.
    pub fn link(&self, role: Role) -> &str {
        match role {
            Role::Caller => &self.caller_link,
            Role::Callee => &self.callee_link,
        }
    }

    /// The role whose link `token` is.
    pub fn role_of_link(&self, token: &str) -> Option<Role> {
        if token == self.caller_link {
            Some(Role::Caller)
        } else if token == self.callee_link {
            Some(Role::Callee)
        } else {
            None
        }
    }

    /// The call with its links, as the store keeps it.
    pub fn record(&self) -> CallRecord {
        CallRecord {
            call: self.call.clone(),
            caller_link: self.caller_link.clone(),
            callee_link: self.callee_link.clone(),
        }
    }

    /// The role `user` has in the call (the caller's, if they are both).
    pub fn role_of(&self, user: &str) -> Role {
        if self.call.caller.id == user {
            Role::Caller
        } else {
            Role::Callee
        }
    }

    /// What the room provider is told of the call.
    pub fn room(&self) -> CallRoom {
        CallRoom {
            id: self.call.id.clone(),
            caller: self.call.caller.clone(),
            callee: self.call.callee.clone(),
        }
    }
}

/// A call's timer that ran out.
#[derive(Clone, Debug)]
enum Timer {
    Ring(CallId),
    Talk(CallId),
}

/// A change the state machine made, for the hub to act on.
pub struct Stepped {
    pub effects: Vec<Effect>,
    /// The call as it ended, if the step released it (else it is still in the book).
    pub released: Option<Live>,
}

pub struct CallBook {
    max_call_duration: Duration,
    calls: HashMap<CallId, Live>,
    /// Live calls each user takes part in.
    by_user: HashMap<String, Vec<CallId>>,
    /// Each user's one outgoing live call.
    outgoing: HashMap<String, CallId>,
    /// Link tokens to the call and participant they belong to.
    links: HashMap<String, (CallId, Role)>,
    timers: DelayQueue<Timer>,
    /// In a cluster: calls that ended lately, and when, so a late copy of one of their changes
    /// does not bring them back. `None` on one node, where no copy can come late.
    ended: Option<HashMap<CallId, Millis>>,
}

/// How long an ended call is remembered in a cluster: far longer than any change takes to
/// reach every node.
const ENDED_KEPT_FOR: Millis = 60_000;

impl CallBook {
    pub fn new(max_call_duration: Duration) -> Self {
        Self {
            max_call_duration,
            calls: HashMap::new(),
            by_user: HashMap::new(),
            outgoing: HashMap::new(),
            links: HashMap::new(),
            timers: DelayQueue::new(),
            ended: None,
        }
    }

    /// A book for a node of a cluster, where changes arrive from elsewhere.
    pub fn clustered(max_call_duration: Duration) -> Self {
        Self {
            ended: Some(HashMap::new()),
            ..Self::new(max_call_duration)
        }
    }

    /// Forgets the calls that ended long enough ago.
    pub fn forget_ended(&mut self, now: Millis) {
        if let Some(ended) = &mut self.ended {
            ended.retain(|_, at| now.saturating_sub(*at) < ENDED_KEPT_FOR);
        }
    }

    pub fn get(&self, id: &CallId) -> Option<&Live> {
        self.calls.get(id)
    }

    /// The live calls `user` takes part in.
    pub fn of_user(&self, user: &str) -> Vec<CallId> {
        self.by_user.get(user).cloned().unwrap_or_default()
    }

    /// Whether `user` takes part in a live call.
    pub fn involves(&self, user: &str) -> bool {
        self.by_user
            .get(user)
            .is_some_and(|calls| !calls.is_empty())
    }

    /// The user's one outgoing live call.
    pub fn outgoing(&self, user: &str) -> Option<&CallId> {
        self.outgoing.get(user)
    }

    /// The call and role a link token belongs to.
    pub fn link(&self, token: &str) -> Option<(CallId, Role)> {
        self.links.get(token).cloned()
    }

    /// Whether an online `user` is free for `caller`; the caller's own calls (which a new one
    /// replaces) do not make anybody busy.
    pub fn reach(&self, user: &str, caller: &str) -> Reachability {
        let busy = self.by_user.get(user).is_some_and(|calls| {
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
    pub fn track(&mut self, record: CallRecord, now: Millis) {
        let CallRecord {
            call,
            caller_link,
            callee_link,
        } = record;
        let id = call.id.clone();
        let ringing = call.state == CallState::Ringing;
        let (timer, due) = if ringing {
            (Timer::Ring(id.clone()), call.ring_deadline)
        } else {
            let answered = call.answered_at.unwrap_or(now);
            (
                Timer::Talk(id.clone()),
                answered + self.max_call_duration.as_millis() as Millis,
            )
        };
        let key = self
            .timers
            .insert(timer, Duration::from_millis(due.saturating_sub(now)));
        self.links
            .insert(caller_link.clone(), (id.clone(), Role::Caller));
        self.links
            .insert(callee_link.clone(), (id.clone(), Role::Callee));
        for user in [&call.caller.id, &call.callee.id] {
            self.by_user
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
                version: 0,
                ring: ringing.then_some(key),
                talk: (!ringing).then_some(key),
            },
        );
    }

    /// In a cluster: takes a call as another node (or this one, through Redis) decided it.
    /// Returns `None` for a copy no newer than the one held; else the call as it ended, if it
    /// did (a call never seen here that is already over comes back as it ended, to be told).
    pub fn apply(
        &mut self,
        record: CallRecord,
        version: u64,
        handled_by: Option<super::SessionId>,
        now: Millis,
    ) -> Option<Option<Live>> {
        let id = record.call.id.clone();
        let stale = self
            .calls
            .get(&id)
            .is_some_and(|live| live.version >= version)
            || self
                .ended
                .as_ref()
                .is_some_and(|ended| ended.contains_key(&id));
        if stale {
            return None;
        }
        let over = !matches!(record.call.state, CallState::Ringing | CallState::Answered);
        if !self.calls.contains_key(&id) {
            if over {
                // Over before this node heard of it: nobody here took part.
                return None;
            }
            self.track(record, now);
        } else if let Some(live) = self.calls.get_mut(&id) {
            let was_ringing = live.call.state == CallState::Ringing;
            live.call = record.call;
            if was_ringing && live.call.state == CallState::Answered {
                if let Some(key) = live.ring.take() {
                    self.timers.try_remove(&key);
                }
                let ends = live.call.answered_at.unwrap_or(now)
                    + self.max_call_duration.as_millis() as Millis;
                live.talk = Some(self.timers.insert(
                    Timer::Talk(id.clone()),
                    Duration::from_millis(ends.saturating_sub(now)),
                ));
            }
        }
        if let Some(live) = self.calls.get_mut(&id) {
            live.version = version;
            live.handled_by = handled_by;
        }
        Some(if over {
            if let Some(ended) = &mut self.ended {
                ended.insert(id.clone(), now);
            }
            self.release(&id)
        } else {
            None
        })
    }

    /// Every live call, for a cluster's Redis that lost them.
    pub fn all(&self) -> impl Iterator<Item = &Live> {
        self.calls.values()
    }

    /// The input a call that was live when the server stopped needs now that its time may have
    /// run out: missed (or ended), or nothing.
    pub fn overdue(&self, id: &CallId, now: Millis) -> Option<Input> {
        let live = self.calls.get(id)?;
        match live.call.state {
            CallState::Ringing => (live.call.ring_deadline <= now).then_some(Input::RingTimeout),
            _ => (live.call.answered_at.unwrap_or(0)
                + self.max_call_duration.as_millis() as Millis
                <= now)
                .then_some(Input::MaxDuration),
        }
    }

    /// Feeds an input to the state machine and keeps the book in line with the result: timers
    /// stopped and started, a released call forgotten with its links.
    pub fn step(
        &mut self,
        id: &CallId,
        input: Input,
        now: Millis,
        session: Option<super::SessionId>,
    ) -> Result<Stepped, ErrorCode> {
        let handles = matches!(input, Input::Answer { .. } | Input::Reject { .. });
        let live = self.calls.get_mut(id).ok_or(ErrorCode::NoSuchCall)?;
        let (next, effects) = calls::step(&live.call, input, now).map_err(ErrorCode::from)?;
        live.call = next;
        if handles {
            live.handled_by = session;
        }
        for effect in &effects {
            match effect {
                Effect::StopRinging => {
                    if let Some(key) = live.ring.take() {
                        self.timers.try_remove(&key);
                    }
                }
                Effect::StartTalking => {
                    live.talk = Some(
                        self.timers
                            .insert(Timer::Talk(id.clone()), self.max_call_duration),
                    );
                }
                Effect::Persist | Effect::Notify | Effect::Release => {}
            }
        }
        let released = if effects.contains(&Effect::Release) {
            self.release(id)
        } else {
            None
        };
        Ok(Stepped { effects, released })
    }

    /// Forgets a call without a step: it ended where this node could not hear of it.
    pub fn forget(&mut self, id: &CallId) {
        self.release(id);
    }

    /// The call is over: forget it and kill its links.
    fn release(&mut self, id: &CallId) -> Option<Live> {
        let mut live = self.calls.remove(id)?;
        for key in [live.talk.take(), live.ring.take()].into_iter().flatten() {
            self.timers.try_remove(&key);
        }
        self.links.remove(&live.caller_link);
        self.links.remove(&live.callee_link);
        for user in [&live.call.caller.id, &live.call.callee.id] {
            if let Some(calls) = self.by_user.get_mut(user) {
                calls.retain(|c| c != id);
                if calls.is_empty() {
                    self.by_user.remove(user);
                }
            }
        }
        if self.outgoing.get(&live.call.caller.id) == Some(id) {
            self.outgoing.remove(&live.call.caller.id);
        }
        Some(live)
    }

    /// The next call whose ring or talk time ran out, with the input that says so; pending
    /// while no timer runs.
    pub async fn next_due(&mut self) -> (CallId, Input) {
        loop {
            if self.timers.is_empty() {
                std::future::pending::<()>().await;
            }
            let Some(expired) = self.timers.next().await else {
                continue;
            };
            match expired.into_inner() {
                Timer::Ring(id) => {
                    if let Some(live) = self.calls.get_mut(&id) {
                        live.ring = None;
                        return (id, Input::RingTimeout);
                    }
                }
                Timer::Talk(id) => {
                    if let Some(live) = self.calls.get_mut(&id) {
                        live.talk = None;
                        return (id, Input::MaxDuration);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use switchboard_proto::UserRef;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn ringing(id: &str, from: &str, to: &str) -> CallRecord {
        let user = |id: &str| UserRef {
            id: id.into(),
            name: id.into(),
        };
        let (call, _) = calls::place(
            CallId(id.into()),
            user(from),
            user(to),
            Reachability::Free,
            1_000,
            MINUTE,
        )
        .unwrap();
        CallRecord {
            call,
            caller_link: format!("{id}-caller"),
            callee_link: format!("{id}-callee"),
        }
    }

    #[tokio::test]
    async fn a_ringing_callee_is_busy_for_others_but_not_for_their_caller() {
        let mut book = CallBook::new(MINUTE);
        book.track(ringing("c1", "ann", "bob"), 1_000);
        assert_eq!(book.reach("bob", "cid"), Reachability::Busy);
        assert_eq!(book.reach("bob", "ann"), Reachability::Free);
        // A caller whose call still rings can be called: they are not talking yet.
        assert_eq!(book.reach("ann", "cid"), Reachability::Free);
        assert_eq!(book.outgoing("ann"), Some(&CallId("c1".into())));
        assert_eq!(
            book.link("c1-callee"),
            Some((CallId("c1".into()), Role::Callee))
        );
    }

    #[tokio::test]
    async fn an_ended_call_leaves_nothing_behind() {
        let mut book = CallBook::new(MINUTE);
        let id = CallId("c1".into());
        book.track(ringing("c1", "ann", "bob"), 1_000);
        let answered = book
            .step(&id, Input::Answer { by: "bob".into() }, 2_000, Some(4))
            .unwrap();
        assert!(answered.released.is_none());
        assert_eq!(book.get(&id).unwrap().handled_by, Some(4));
        assert_eq!(book.reach("ann", "cid"), Reachability::Busy);
        let ended = book
            .step(&id, Input::Hangup { by: "ann".into() }, 3_000, None)
            .unwrap();
        let released = ended.released.expect("the call is released");
        assert_eq!(released.call.state, CallState::Ended);
        assert!(book.get(&id).is_none());
        assert!(book.link("c1-caller").is_none() && book.link("c1-callee").is_none());
        assert!(!book.involves("ann") && !book.involves("bob"));
        assert!(book.outgoing("ann").is_none());
        assert_eq!(
            book.step(&id, Input::Hangup { by: "ann".into() }, 3_000, None)
                .err(),
            Some(ErrorCode::NoSuchCall)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_call_comes_due_at_its_ring_deadline() {
        let mut book = CallBook::new(MINUTE);
        book.track(ringing("c1", "ann", "bob"), 1_000);
        let started = tokio::time::Instant::now();
        let (id, input) = book.next_due().await;
        assert_eq!((id, input), (CallId("c1".into()), Input::RingTimeout));
        assert_eq!(started.elapsed(), MINUTE);
    }
}
