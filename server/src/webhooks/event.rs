//! What the site's backend is told: the events a recorded change causes, each with its id, its
//! place among its subject's events, and its JSON body exactly as it will be sent. Pure: the
//! store's writer calls it with what the database held before the change.

use serde::Serialize;
use switchboard_proto::{CallState, UserRef};

use crate::calls::{Call, Millis};

/// One event for the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The same for the same change however often it is recorded: `<call id>.<state>`,
    /// `<user id>.<online|offline>.<at>`.
    pub id: String,
    /// Events of one subject (`call:<id>`, `user:<id>`) are delivered in `step` order.
    pub subject: String,
    pub step: i64,
    pub body: String,
}

#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: String,
    at: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    call: Option<CallBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a UserRef>,
}

/// The call as it was when the event happened.
#[derive(Serialize)]
struct CallBody<'a> {
    id: &'a str,
    caller: &'a UserRef,
    callee: &'a UserRef,
    state: &'static str,
    placed_at: Millis,
    answered_at: Option<Millis>,
    ended_at: Option<Millis>,
    reason: Option<&'a str>,
}

/// A call's steps: ringing, answered, and the state it ended in.
fn step_of(state: CallState) -> i64 {
    match state {
        CallState::Ringing => 0,
        CallState::Answered => 1,
        _ => 2,
    }
}

/// The events a call's new record causes, given the state the database held before (`None`:
/// no row). A change recorded twice, or late (an older state after a newer one), causes none;
/// a record that skips a state (a cluster's ended call whose earlier records were not written
/// yet) causes the skipped events too, in order.
pub fn call_events(before: Option<CallState>, call: &Call) -> Vec<Event> {
    let reached = before.map(step_of);
    let mut events = Vec::new();
    if reached.is_none() {
        events.push(call_event(call, CallState::Ringing));
    }
    if call.answered_at.is_some() && reached.is_none_or(|step| step < 1) {
        events.push(call_event(call, CallState::Answered));
    }
    if step_of(call.state) == 2 && reached.is_none_or(|step| step < 2) {
        events.push(call_event(call, call.state));
    }
    events
}

/// The event of `call` reaching `state`, with the call as it was then.
fn call_event(call: &Call, state: CallState) -> Event {
    let id = format!("{}.{}", call.id.0, state.as_str());
    let step = step_of(state);
    let (at, answered_at, ended_at, reason) = match step {
        0 => (call.placed_at, None, None, None),
        1 => (
            call.answered_at.unwrap_or(call.placed_at),
            call.answered_at,
            None,
            None,
        ),
        _ => (
            call.changed_at(),
            call.answered_at,
            call.ended_at,
            call.reason.as_deref(),
        ),
    };
    let body = Body {
        id: &id,
        kind: format!("call.{}", state.as_str()),
        at,
        call: Some(CallBody {
            id: &call.id.0,
            caller: &call.caller,
            callee: &call.callee,
            state: state.as_str(),
            placed_at: call.placed_at,
            answered_at,
            ended_at,
            reason,
        }),
        user: None,
    };
    Event {
        subject: format!("call:{}", call.id.0),
        step,
        body: to_json(&body),
        id,
    }
}

/// The event of `user` coming online or going offline at `at`.
pub fn presence_event(user: &UserRef, online: bool, at: Millis) -> Event {
    let word = if online { "online" } else { "offline" };
    let id = format!("{}.{word}.{at}", user.id);
    let body = Body {
        id: &id,
        kind: format!("user.{word}"),
        at,
        call: None,
        user: Some(user),
    };
    Event {
        subject: format!("user:{}", user.id),
        step: i64::try_from(at).unwrap_or(i64::MAX),
        body: to_json(&body),
        id,
    }
}

fn to_json(body: &Body<'_>) -> String {
    // Plain strings and numbers: serialising cannot fail.
    serde_json::to_string(body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};
    use switchboard_proto::CallId;

    use super::*;
    use crate::calls::{Input, Reachability, place, step};

    fn user(id: &str) -> UserRef {
        UserRef {
            id: id.into(),
            name: id.to_uppercase(),
        }
    }

    fn ringing() -> Call {
        place(
            CallId("c1".into()),
            user("ann"),
            user("bob"),
            Reachability::Free,
            1_000,
            Duration::from_secs(45),
        )
        .unwrap()
        .0
    }

    fn ids(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn a_placed_call_rings() {
        let events = call_events(None, &ringing());
        assert_eq!(ids(&events), ["c1.ringing"]);
        let body: Value = serde_json::from_str(&events[0].body).unwrap();
        assert_eq!(
            body,
            json!({
                "id": "c1.ringing", "type": "call.ringing", "at": 1000,
                "call": {
                    "id": "c1", "caller": {"id": "ann", "name": "ANN"},
                    "callee": {"id": "bob", "name": "BOB"}, "state": "ringing",
                    "placed_at": 1000, "answered_at": null, "ended_at": null, "reason": null
                }
            })
        );
        assert_eq!((events[0].subject.as_str(), events[0].step), ("call:c1", 0));
    }

    #[test]
    fn each_step_tells_its_own_state_once() {
        let call = ringing();
        let (answered, _) = step(&call, Input::Answer { by: "bob".into() }, 1_200).unwrap();
        let (ended, _) = step(&answered, Input::Hangup { by: "ann".into() }, 1_900).unwrap();
        assert_eq!(
            ids(&call_events(Some(CallState::Ringing), &answered)),
            ["c1.answered"]
        );
        let events = call_events(Some(CallState::Answered), &ended);
        assert_eq!(ids(&events), ["c1.ended"]);
        let body: Value = serde_json::from_str(&events[0].body).unwrap();
        assert_eq!(body["at"], 1900);
        assert_eq!(body["call"]["answered_at"], 1200);
        assert_eq!(body["call"]["reason"], "ANN hung up");
        // Recorded again, or late: nothing more.
        assert!(call_events(Some(CallState::Ended), &ended).is_empty());
        assert!(call_events(Some(CallState::Answered), &answered).is_empty());
        assert!(call_events(Some(CallState::Ended), &answered).is_empty());
        assert!(call_events(Some(CallState::Answered), &call).is_empty());
    }

    #[test]
    fn every_final_state_has_its_type() {
        let call = ringing();
        let (answered, _) = step(&call, Input::Answer { by: "bob".into() }, 1_200).unwrap();
        for (from, input, kind) in [
            (&call, Input::Reject { by: "bob".into() }, "call.rejected"),
            (&call, Input::Cancel { by: "ann".into() }, "call.cancelled"),
            (&call, Input::RingTimeout, "call.missed"),
            (&call, Input::RoomFailed("no room".into()), "call.failed"),
            (
                &answered,
                Input::RoomFailed("no room".into()),
                "call.failed",
            ),
            (&answered, Input::MaxDuration, "call.ended"),
        ] {
            let (over, _) = step(from, input, 2_000).unwrap();
            let events = call_events(Some(from.state), &over);
            assert_eq!(events.len(), 1, "{kind}");
            let body: Value = serde_json::from_str(&events[0].body).unwrap();
            assert_eq!(body["type"], kind);
            assert_eq!(body["call"]["ended_at"], 2000);
            assert_eq!(events[0].step, 2);
        }
    }

    #[test]
    fn a_record_that_skips_states_tells_them_in_order() {
        let (answered, _) = step(&ringing(), Input::Answer { by: "bob".into() }, 1_200).unwrap();
        let (ended, _) = step(&answered, Input::Hangup { by: "bob".into() }, 1_900).unwrap();
        let events = call_events(None, &ended);
        assert_eq!(ids(&events), ["c1.ringing", "c1.answered", "c1.ended"]);
        assert_eq!(events.iter().map(|e| e.step).collect::<Vec<_>>(), [0, 1, 2]);
        // Each as the call was then: the same bytes as if recorded one by one.
        assert_eq!(events[0], call_events(None, &ringing())[0]);
        assert_eq!(
            events[1],
            call_events(Some(CallState::Ringing), &answered)[0]
        );
        assert_eq!(
            ids(&call_events(Some(CallState::Ringing), &ended)),
            ["c1.answered", "c1.ended"]
        );
    }

    #[test]
    fn presence_events() {
        let event = presence_event(&user("ann"), false, 5_000);
        assert_eq!(event.id, "ann.offline.5000");
        assert_eq!((event.subject.as_str(), event.step), ("user:ann", 5_000));
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(
            body,
            json!({"id": "ann.offline.5000", "type": "user.offline", "at": 5000,
                   "user": {"id": "ann", "name": "ANN"}})
        );
    }
}
