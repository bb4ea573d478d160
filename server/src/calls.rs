//! The call state machine, pure: `(call, input, now) -> (call, effects)`, no sockets, no clocks.
//!
//! ringing → answered | rejected | cancelled | missed | failed; answered → ended | failed.

use std::time::Duration;

use switchboard_proto::{CallId, CallState, ErrorCode, Role, UserRef};

/// Wall-clock milliseconds since the Unix epoch.
pub type Millis = u64;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Call {
    pub id: CallId,
    pub caller: UserRef,
    pub callee: UserRef,
    pub state: CallState,
    pub placed_at: Millis,
    /// When a ringing call becomes missed.
    pub ring_deadline: Millis,
    pub answered_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    /// Why the call is over, in words.
    pub reason: Option<String>,
}

impl Call {
    /// When the call reached its current state.
    pub fn changed_at(&self) -> Millis {
        self.ended_at.or(self.answered_at).unwrap_or(self.placed_at)
    }

    pub fn participant(&self, role: Role) -> &UserRef {
        match role {
            Role::Caller => &self.caller,
            Role::Callee => &self.callee,
        }
    }
}

/// What the caller's server knows of the callee when a call is placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reachability {
    /// Never seen here.
    Unknown,
    Offline,
    /// Ringing for someone else, or in an answered call.
    Busy,
    Free,
}

/// Something that happens to a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Answer {
        by: String,
    },
    Reject {
        by: String,
    },
    Cancel {
        by: String,
    },
    Hangup {
        by: String,
    },
    /// The caller placed another call.
    Superseded,
    RingTimeout,
    MaxDuration,
    /// A participant went offline (every session gone) while the call rang.
    WentOffline(Role),
    /// No room could be made.
    RoomFailed(String),
    /// The site's backend ends the call: a ringing one is cancelled, an answered one ended,
    /// with the site's reason.
    Terminate {
        reason: String,
    },
}

/// What the caller of [`step`] must do after a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Record the new state.
    Persist,
    /// Tell both participants the new state.
    Notify,
    /// The ring timer is no longer needed.
    StopRinging,
    /// Arm the maximum-duration timer.
    StartTalking,
    /// The call is over: its links stop working and its room is released.
    Release,
}

/// Why an input was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    SelfCall,
    UnknownUser,
    Offline,
    Busy,
    NotYourCall,
    WrongState,
}

impl From<Refusal> for ErrorCode {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::SelfCall => Self::SelfCall,
            Refusal::UnknownUser => Self::UnknownUser,
            Refusal::Offline => Self::Offline,
            Refusal::Busy => Self::Busy,
            Refusal::NotYourCall => Self::NotYourCall,
            Refusal::WrongState => Self::WrongCallState,
        }
    }
}

pub type Transition = Result<(Call, Vec<Effect>), Refusal>;

/// Places a call from `caller` to `callee`, or says why it cannot ring.
pub fn place(
    id: CallId,
    caller: UserRef,
    callee: UserRef,
    reach: Reachability,
    now: Millis,
    ring_timeout: Duration,
) -> Transition {
    if caller.id == callee.id {
        return Err(Refusal::SelfCall);
    }
    match reach {
        Reachability::Unknown => return Err(Refusal::UnknownUser),
        Reachability::Offline => return Err(Refusal::Offline),
        Reachability::Busy => return Err(Refusal::Busy),
        Reachability::Free => {}
    }
    let call = Call {
        id,
        caller,
        callee,
        state: CallState::Ringing,
        placed_at: now,
        ring_deadline: now + ring_timeout.as_millis() as u64,
        answered_at: None,
        ended_at: None,
        reason: None,
    };
    Ok((call, vec![Effect::Persist, Effect::Notify]))
}

/// Applies `input` to `call` at time `now`.
pub fn step(call: &Call, input: Input, now: Millis) -> Transition {
    use CallState::*;
    let is = |who: &str, user: &UserRef| who == user.id;
    let (state, reason) = match (&input, call.state) {
        (Input::Answer { by }, _) | (Input::Reject { by }, _) if !is(by, &call.callee) => {
            return Err(Refusal::NotYourCall);
        }
        (Input::Cancel { by }, _) if !is(by, &call.caller) => return Err(Refusal::NotYourCall),
        (Input::Hangup { by }, _) if !is(by, &call.caller) && !is(by, &call.callee) => {
            return Err(Refusal::NotYourCall);
        }
        (Input::Answer { .. }, Ringing) => (Answered, None),
        (Input::Reject { .. }, Ringing) => (
            Rejected,
            Some(format!("{} rejected the call", call.callee.name)),
        ),
        (Input::Cancel { .. }, Ringing) => (
            Cancelled,
            Some(format!("{} cancelled the call", call.caller.name)),
        ),
        (Input::Hangup { by }, Answered) => {
            let who = if is(by, &call.caller) {
                &call.caller
            } else {
                &call.callee
            };
            (Ended, Some(format!("{} hung up", who.name)))
        }
        (Input::Superseded, Ringing) => (
            Cancelled,
            Some(format!("{} placed another call", call.caller.name)),
        ),
        (Input::Superseded, Answered) => (
            Ended,
            Some(format!("{} placed another call", call.caller.name)),
        ),
        (Input::RingTimeout, Ringing) => (Missed, Some("nobody answered".to_string())),
        (Input::MaxDuration, Answered) => (
            Ended,
            Some("the call reached its maximum duration".to_string()),
        ),
        (Input::WentOffline(Role::Caller), Ringing) => (
            Cancelled,
            Some(format!("{} went offline", call.caller.name)),
        ),
        (Input::WentOffline(Role::Callee), Ringing) => {
            (Missed, Some(format!("{} went offline", call.callee.name)))
        }
        (Input::RoomFailed(why), Ringing | Answered) => (Failed, Some(why.clone())),
        (Input::Terminate { reason }, Ringing) => (Cancelled, Some(reason.clone())),
        (Input::Terminate { reason }, Answered) => (Ended, Some(reason.clone())),
        _ => return Err(Refusal::WrongState),
    };
    let mut next = call.clone();
    next.state = state;
    next.reason = reason;
    let mut effects = vec![Effect::Persist, Effect::Notify];
    if call.state == Ringing {
        effects.push(Effect::StopRinging);
    }
    if state == Answered {
        next.answered_at = Some(now);
        effects.push(Effect::StartTalking);
    } else {
        next.ended_at = Some(now);
        effects.push(Effect::Release);
    }
    Ok((next, effects))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RING: Duration = Duration::from_secs(45);

    fn user(id: &str) -> UserRef {
        UserRef {
            id: id.into(),
            name: id.to_uppercase(),
        }
    }

    fn ringing() -> Call {
        place(
            CallId("c".into()),
            user("ann"),
            user("bob"),
            Reachability::Free,
            1_000,
            RING,
        )
        .unwrap()
        .0
    }

    fn answered() -> Call {
        step(&ringing(), Input::Answer { by: "bob".into() }, 2_000)
            .unwrap()
            .0
    }

    fn by(id: &str) -> String {
        id.into()
    }

    #[test]
    fn placing_rings_with_a_deadline() {
        let (call, effects) = place(
            CallId("c".into()),
            user("ann"),
            user("bob"),
            Reachability::Free,
            1_000,
            RING,
        )
        .unwrap();
        assert_eq!(call.state, CallState::Ringing);
        assert_eq!(call.ring_deadline, 46_000);
        assert_eq!(effects, [Effect::Persist, Effect::Notify]);
    }

    #[test]
    fn placing_refuses_self_unknown_offline_and_busy() {
        let try_place = |to: &str, reach| {
            place(CallId("c".into()), user("ann"), user(to), reach, 0, RING).map(|_| ())
        };
        assert_eq!(try_place("ann", Reachability::Free), Err(Refusal::SelfCall));
        assert_eq!(
            try_place("bob", Reachability::Unknown),
            Err(Refusal::UnknownUser)
        );
        assert_eq!(
            try_place("bob", Reachability::Offline),
            Err(Refusal::Offline)
        );
        assert_eq!(try_place("bob", Reachability::Busy), Err(Refusal::Busy));
    }

    #[test]
    fn answer_by_the_callee() {
        let (call, effects) = step(&ringing(), Input::Answer { by: by("bob") }, 2_000).unwrap();
        assert_eq!(call.state, CallState::Answered);
        assert_eq!(call.answered_at, Some(2_000));
        assert_eq!(
            effects,
            [
                Effect::Persist,
                Effect::Notify,
                Effect::StopRinging,
                Effect::StartTalking
            ]
        );
    }

    #[test]
    fn only_the_callee_answers_or_rejects() {
        for input in [
            Input::Answer { by: by("ann") },
            Input::Reject { by: by("eve") },
        ] {
            assert_eq!(step(&ringing(), input, 2_000), Err(Refusal::NotYourCall));
        }
    }

    #[test]
    fn reject_by_the_callee() {
        let (call, effects) = step(&ringing(), Input::Reject { by: by("bob") }, 2_000).unwrap();
        assert_eq!(call.state, CallState::Rejected);
        assert_eq!(call.ended_at, Some(2_000));
        assert_eq!(call.reason.as_deref(), Some("BOB rejected the call"));
        assert!(effects.contains(&Effect::Release));
    }

    #[test]
    fn only_the_caller_cancels() {
        assert_eq!(
            step(&ringing(), Input::Cancel { by: by("bob") }, 2_000),
            Err(Refusal::NotYourCall)
        );
        let (call, _) = step(&ringing(), Input::Cancel { by: by("ann") }, 2_000).unwrap();
        assert_eq!(call.state, CallState::Cancelled);
    }

    #[test]
    fn cancel_after_answer_is_the_wrong_state() {
        assert_eq!(
            step(&answered(), Input::Cancel { by: by("ann") }, 3_000),
            Err(Refusal::WrongState)
        );
    }

    #[test]
    fn either_party_hangs_up_an_answered_call() {
        for who in ["ann", "bob"] {
            let (call, effects) = step(&answered(), Input::Hangup { by: by(who) }, 3_000).unwrap();
            assert_eq!(call.state, CallState::Ended);
            assert_eq!(call.reason, Some(format!("{} hung up", who.to_uppercase())));
            assert_eq!(effects, [Effect::Persist, Effect::Notify, Effect::Release]);
        }
        assert_eq!(
            step(&answered(), Input::Hangup { by: by("eve") }, 3_000),
            Err(Refusal::NotYourCall)
        );
        assert_eq!(
            step(&ringing(), Input::Hangup { by: by("ann") }, 3_000),
            Err(Refusal::WrongState)
        );
    }

    #[test]
    fn ring_timeout_misses_only_a_ringing_call() {
        let (call, _) = step(&ringing(), Input::RingTimeout, 46_000).unwrap();
        assert_eq!(call.state, CallState::Missed);
        assert_eq!(
            step(&answered(), Input::RingTimeout, 46_000),
            Err(Refusal::WrongState)
        );
    }

    #[test]
    fn max_duration_ends_only_an_answered_call() {
        let (call, _) = step(&answered(), Input::MaxDuration, 9_000).unwrap();
        assert_eq!(call.state, CallState::Ended);
        assert_eq!(
            step(&ringing(), Input::MaxDuration, 9_000),
            Err(Refusal::WrongState)
        );
    }

    #[test]
    fn a_new_call_supersedes_the_old_one() {
        assert_eq!(
            step(&ringing(), Input::Superseded, 2_000).unwrap().0.state,
            CallState::Cancelled
        );
        assert_eq!(
            step(&answered(), Input::Superseded, 3_000).unwrap().0.state,
            CallState::Ended
        );
    }

    #[test]
    fn going_offline_while_ringing() {
        let (call, _) = step(&ringing(), Input::WentOffline(Role::Caller), 2_000).unwrap();
        assert_eq!(call.state, CallState::Cancelled);
        let (call, _) = step(&ringing(), Input::WentOffline(Role::Callee), 2_000).unwrap();
        assert_eq!(call.state, CallState::Missed);
        assert_eq!(
            step(&answered(), Input::WentOffline(Role::Callee), 3_000),
            Err(Refusal::WrongState)
        );
    }

    #[test]
    fn room_failure_fails_a_live_call() {
        for call in [ringing(), answered()] {
            let (next, _) = step(&call, Input::RoomFailed("down".into()), 3_000).unwrap();
            assert_eq!(next.state, CallState::Failed);
            assert_eq!(next.reason.as_deref(), Some("down"));
        }
    }

    #[test]
    fn the_site_ends_a_ringing_or_answered_call_with_its_reason() {
        let terminate = || Input::Terminate {
            reason: "ended by support".into(),
        };
        let (cancelled, effects) = step(&ringing(), terminate(), 2_000).unwrap();
        assert_eq!(cancelled.state, CallState::Cancelled);
        assert_eq!(cancelled.reason.as_deref(), Some("ended by support"));
        assert!(effects.contains(&Effect::StopRinging) && effects.contains(&Effect::Release));
        let (ended, effects) = step(&answered(), terminate(), 3_000).unwrap();
        assert_eq!(
            (ended.state, ended.ended_at),
            (CallState::Ended, Some(3_000))
        );
        assert_eq!(effects, [Effect::Persist, Effect::Notify, Effect::Release]);
        assert_eq!(step(&ended, terminate(), 4_000), Err(Refusal::WrongState));
    }

    #[test]
    fn final_states_refuse_everything() {
        let rejected = step(&ringing(), Input::Reject { by: by("bob") }, 2_000)
            .unwrap()
            .0;
        for input in [
            Input::Answer { by: by("bob") },
            Input::Reject { by: by("bob") },
            Input::Cancel { by: by("ann") },
            Input::Hangup { by: by("ann") },
            Input::Superseded,
            Input::RingTimeout,
            Input::MaxDuration,
            Input::RoomFailed("x".into()),
            Input::Terminate { reason: "x".into() },
        ] {
            assert_eq!(step(&rejected, input, 3_000), Err(Refusal::WrongState));
        }
    }
}
