//! What one tab knows of the user's calls, and which page callbacks each server event causes.
//!
//! Pure: no browser types, so the 2010 contract is tested natively. Every tab runs its own
//! tracker over the same event stream, so all tabs agree without asking each other.

use std::collections::VecDeque;

use switchboard_proto::{CallId, CallState, CallView, Command, Event, LogoutReason, Role, UserRef};

use crate::callbacks::Callback;
use crate::small_map::SmallMap;

/// How many finished calls are remembered, so a late repeat of their last state is ignored.
const DONE_MEMORY: usize = 32;

#[derive(Debug, Default)]
pub struct Tracker {
    /// The user this browser is logged in as, if any.
    user: Option<UserRef>,
    /// Calls still ringing or answered, as last seen.
    calls: SmallMap<CallId, CallView>,
    done: VecDeque<CallId>,
    /// The page shows "rejected" information that a new call should clear.
    shown_rejected: bool,
    /// Last known presence of watched users: (display name, online).
    presence: SmallMap<String, (Option<String>, bool)>,
}

impl Tracker {
    pub fn user(&self) -> Option<&UserRef> {
        self.user.as_ref()
    }

    pub fn logged_in(&self) -> bool {
        self.user.is_some()
    }

    /// The callbacks one server event causes. `re_call` says the event answers a `call`
    /// command, so an error means the call could not ring.
    pub fn apply(&mut self, ev: &Event, re_call: bool) -> Vec<Callback> {
        match ev {
            Event::Welcome { .. } => vec![],
            Event::LoggedIn { user } => {
                let changed = self.user.as_ref() != Some(user);
                if self.user.as_ref().is_some_and(|u| u.id != user.id) {
                    self.forget_calls();
                }
                self.user = Some(user.clone());
                if changed {
                    vec![Callback::StatusChange(true)]
                } else {
                    vec![]
                }
            }
            Event::LoggedOut { reason } => {
                let mut out = self.forget_calls();
                if self.user.take().is_some() || *reason != LogoutReason::Requested {
                    out.push(Callback::StatusChange(false));
                }
                match reason {
                    LogoutReason::Requested => {}
                    LogoutReason::Elsewhere => {
                        out.push(Callback::status("logged in from another place"));
                    }
                    LogoutReason::Revoked => out.push(Callback::status("logged out by the site")),
                }
                out
            }
            Event::Presence { user, name, online } => {
                let entry = (name.clone(), *online);
                if self.presence.get(user) == Some(&entry) {
                    return vec![];
                }
                self.presence.insert(user.clone(), entry);
                vec![presence_callback(user, name.as_deref(), *online)]
            }
            Event::Error { code, message } => {
                let text = if message.is_empty() {
                    code.describe().to_owned()
                } else {
                    message.clone()
                };
                if re_call {
                    vec![Callback::MakeCall(false), Callback::StatusMessage(text)]
                } else {
                    vec![Callback::StatusMessage(text)]
                }
            }
            Event::Call(view) => self.apply_call(view),
        }
    }

    fn apply_call(&mut self, view: &CallView) -> Vec<Callback> {
        if self.done.contains(&view.id) {
            return vec![];
        }
        let prev = self.calls.get(&view.id).map(|v| v.state);
        if prev == Some(view.state) {
            // A repeat (resume, new tab): keep the newest view, tell the page nothing new.
            self.calls.insert(view.id.clone(), view.clone());
            return vec![];
        }
        let out = match view.role {
            Role::Caller => self.caller_callbacks(view, prev),
            Role::Callee => callee_callbacks(view, prev),
        };
        if view.state.is_final() {
            self.calls.remove(&view.id);
            if self.done.len() == DONE_MEMORY {
                self.done.pop_front();
            }
            self.done.push_back(view.id.clone());
        } else {
            self.calls.insert(view.id.clone(), view.clone());
        }
        out
    }

    fn caller_callbacks(&mut self, view: &CallView, prev: Option<CallState>) -> Vec<Callback> {
        let name = view.peer.name.clone();
        match view.state {
            CallState::Ringing => {
                let mut out = vec![];
                if std::mem::take(&mut self.shown_rejected) {
                    out.push(Callback::ClearRejected);
                }
                out.push(Callback::MakeCall(true));
                out
            }
            CallState::Answered => vec![Callback::CallAnswered {
                name,
                link: view.link.clone().unwrap_or_default(),
            }],
            CallState::Rejected => {
                self.shown_rejected = true;
                vec![Callback::CallRejected { name }]
            }
            CallState::Missed | CallState::Cancelled | CallState::Failed | CallState::Ended => {
                let reason = reason_text(view);
                let mut out = vec![Callback::StatusMessage(reason.clone())];
                if prev == Some(CallState::Answered) {
                    out.push(Callback::ClearAnswered);
                }
                if view.state == CallState::Ended {
                    out.push(Callback::CallEnded { name, reason });
                }
                out
            }
        }
    }

    /// Drops every live call (logout, another user): clears what the page shows for them.
    pub fn forget_calls(&mut self) -> Vec<Callback> {
        let mut out = vec![];
        for view in std::mem::take(&mut self.calls).into_values() {
            match (view.role, view.state) {
                (Role::Callee, _) => out.push(Callback::ClearIncoming),
                (Role::Caller, CallState::Answered) => out.push(Callback::ClearAnswered),
                _ => {}
            }
        }
        out
    }

    /// The events that bring a fresh tab to this tab's picture of the session.
    pub fn snapshot(&self) -> Vec<Event> {
        let mut events = vec![];
        if let Some(user) = &self.user {
            events.push(Event::LoggedIn { user: user.clone() });
        }
        events.extend(self.calls.values().cloned().map(Event::Call));
        events.extend(
            self.presence
                .iter()
                .map(|(user, (name, online))| Event::Presence {
                    user: user.clone(),
                    name: name.clone(),
                    online: *online,
                }),
        );
        events
    }

    /// Known presence of the given users, for a page that starts watching them.
    pub fn known_presence(&self, users: &[String]) -> Vec<Callback> {
        users
            .iter()
            .filter_map(|u| {
                let (name, online) = self.presence.get(u)?;
                Some(presence_callback(u, name.as_deref(), *online))
            })
            .collect()
    }

    fn find(&self, role: Role, states: &[CallState]) -> Option<&CallView> {
        // The newest matching call: ids are random, so pick by insertion is not possible;
        // there is at most one outgoing call, and incoming ones beyond one are busy-refused.
        self.calls
            .values()
            .find(|v| v.role == role && states.contains(&v.state))
    }

    /// The command `sv_answercall` sends, or the status line explaining why none.
    pub fn answer(&self) -> Result<Command, &'static str> {
        self.find(Role::Callee, &[CallState::Ringing])
            .map(|v| Command::Answer { call: v.id.clone() })
            .ok_or("there is no incoming call to answer")
    }

    pub fn reject(&self) -> Result<Command, &'static str> {
        self.find(Role::Callee, &[CallState::Ringing])
            .map(|v| Command::Reject { call: v.id.clone() })
            .ok_or("there is no incoming call to reject")
    }

    /// `sv_clearoutgoingcall`: withdraw a ringing call, hang up an answered one.
    pub fn clear_outgoing(&self) -> Result<Command, &'static str> {
        let view = self
            .find(Role::Caller, &[CallState::Ringing, CallState::Answered])
            .ok_or("there is no outgoing call")?;
        Ok(match view.state {
            CallState::Ringing => Command::Cancel {
                call: view.id.clone(),
            },
            _ => Command::Hangup {
                call: view.id.clone(),
            },
        })
    }

    /// `sv_clearincomingcall`: reject a ringing call, hang up an answered one.
    pub fn clear_incoming(&self) -> Result<Command, &'static str> {
        let view = self
            .find(Role::Callee, &[CallState::Ringing, CallState::Answered])
            .ok_or("there is no incoming call")?;
        Ok(match view.state {
            CallState::Ringing => Command::Reject {
                call: view.id.clone(),
            },
            _ => Command::Hangup {
                call: view.id.clone(),
            },
        })
    }

    /// `sv_hangup`: end whichever call is answered.
    pub fn hangup(&self) -> Result<Command, &'static str> {
        self.calls
            .values()
            .find(|v| v.state == CallState::Answered)
            .map(|v| Command::Hangup { call: v.id.clone() })
            .ok_or("there is no answered call")
    }
}

fn callee_callbacks(view: &CallView, prev: Option<CallState>) -> Vec<Callback> {
    let name = view.peer.name.clone();
    let shown = prev == Some(CallState::Ringing);
    match view.state {
        CallState::Ringing => vec![Callback::IncomingCall {
            name,
            link: view.link.clone().unwrap_or_default(),
        }],
        // This browser answered: the page already knows, it only gets a status line.
        CallState::Answered if !view.elsewhere => {
            vec![Callback::status(
                ["call with ", &name, " answered"].concat(),
            )]
        }
        CallState::Answered => vec![Callback::ClearIncoming],
        CallState::Missed => {
            let mut out = vec![];
            if shown {
                out.push(Callback::ClearIncoming);
            }
            out.push(Callback::CallMissed { name });
            out
        }
        CallState::Ended => vec![
            Callback::ClearIncoming,
            Callback::CallEnded {
                name,
                reason: reason_text(view),
            },
        ],
        CallState::Rejected | CallState::Cancelled | CallState::Failed => {
            if shown || prev.is_none() {
                vec![Callback::ClearIncoming]
            } else {
                vec![]
            }
        }
    }
}

fn reason_text(view: &CallView) -> String {
    view.reason.clone().unwrap_or_else(|| {
        let name = &view.peer.name;
        match view.state {
            CallState::Missed => [name, " did not answer"].concat(),
            CallState::Cancelled => ["call to ", name, " cancelled"].concat(),
            other => ["call with ", name, " ", other.as_str()].concat(),
        }
    })
}

fn presence_callback(id: &str, name: Option<&str>, online: bool) -> Callback {
    Callback::Presence {
        id: id.to_owned(),
        name: name.unwrap_or(id).to_owned(),
        online,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::ErrorCode;

    fn call(id: &str, role: Role, state: CallState) -> Event {
        Event::Call(CallView {
            id: CallId(id.into()),
            role,
            peer: UserRef {
                id: "bob".into(),
                name: "Bob".into(),
            },
            state,
            link: (!state.is_final()).then(|| format!("https://j/{id}")),
            elsewhere: false,
            rings_for_ms: None,
            reason: None,
        })
    }

    fn elsewhere(mut ev: Event) -> Event {
        if let Event::Call(v) = &mut ev {
            v.elsewhere = true;
        }
        ev
    }

    fn names(cbs: &[Callback]) -> Vec<&'static str> {
        cbs.iter().map(Callback::name).collect()
    }

    #[test]
    fn login_and_logout() {
        let mut t = Tracker::default();
        let user = UserRef {
            id: "ann".into(),
            name: "Ann".into(),
        };
        let ev = Event::LoggedIn { user };
        assert_eq!(t.apply(&ev, false), vec![Callback::StatusChange(true)]);
        assert_eq!(t.apply(&ev, false), vec![], "a repeat is not a change");
        let out = t.apply(
            &Event::LoggedOut {
                reason: LogoutReason::Elsewhere,
            },
            false,
        );
        assert_eq!(
            out,
            vec![
                Callback::StatusChange(false),
                Callback::status("logged in from another place")
            ]
        );
    }

    #[test]
    fn a_logout_by_the_site_is_reported() {
        let mut t = Tracker::default();
        t.apply(
            &Event::LoggedIn {
                user: UserRef {
                    id: "ann".into(),
                    name: "Ann".into(),
                },
            },
            false,
        );
        t.apply(&call("c1", Role::Callee, CallState::Ringing), false);
        let out = t.apply(
            &Event::LoggedOut {
                reason: LogoutReason::Revoked,
            },
            false,
        );
        assert_eq!(
            names(&out),
            [
                "my_clearincoming",
                "my_onstatuschange",
                "my_onstatusmessage"
            ]
        );
        assert!(out.contains(&Callback::StatusChange(false)));
        assert!(out.contains(&Callback::status("logged out by the site")));
    }

    #[test]
    fn caller_flow_answered_then_ended() {
        let mut t = Tracker::default();
        assert_eq!(
            t.apply(&call("c1", Role::Caller, CallState::Ringing), true),
            vec![Callback::MakeCall(true)]
        );
        assert_eq!(
            t.apply(&call("c1", Role::Caller, CallState::Ringing), false),
            vec![],
            "once per call"
        );
        assert_eq!(
            t.apply(&call("c1", Role::Caller, CallState::Answered), false),
            vec![Callback::CallAnswered {
                name: "Bob".into(),
                link: "https://j/c1".into()
            }]
        );
        assert_eq!(
            t.clear_outgoing().unwrap(),
            Command::Hangup {
                call: CallId("c1".into())
            }
        );
        let out = t.apply(&call("c1", Role::Caller, CallState::Ended), false);
        assert_eq!(
            names(&out),
            ["my_onstatusmessage", "my_clearanswered", "my_oncallended"]
        );
        assert!(
            t.apply(&call("c1", Role::Caller, CallState::Ended), false)
                .is_empty()
        );
        assert!(t.clear_outgoing().is_err());
    }

    #[test]
    fn caller_rejected_then_new_call_clears_it() {
        let mut t = Tracker::default();
        t.apply(&call("c1", Role::Caller, CallState::Ringing), true);
        assert_eq!(
            t.apply(&call("c1", Role::Caller, CallState::Rejected), false),
            vec![Callback::CallRejected { name: "Bob".into() }]
        );
        assert_eq!(
            t.apply(&call("c2", Role::Caller, CallState::Ringing), true),
            vec![Callback::ClearRejected, Callback::MakeCall(true)]
        );
        assert_eq!(
            t.clear_outgoing().unwrap(),
            Command::Cancel {
                call: CallId("c2".into())
            }
        );
        let out = t.apply(&call("c2", Role::Caller, CallState::Missed), false);
        assert_eq!(out, vec![Callback::status("Bob did not answer")]);
    }

    #[test]
    fn refused_call_reports_false_with_reason() {
        let mut t = Tracker::default();
        let err = Event::Error {
            code: ErrorCode::Offline,
            message: "the user is offline".into(),
        };
        assert_eq!(
            t.apply(&err, true),
            vec![
                Callback::MakeCall(false),
                Callback::status("the user is offline")
            ]
        );
        assert_eq!(
            t.apply(&err, false),
            vec![Callback::status("the user is offline")]
        );
    }

    #[test]
    fn callee_flow() {
        let mut t = Tracker::default();
        assert!(t.answer().is_err());
        assert_eq!(
            t.apply(&call("c1", Role::Callee, CallState::Ringing), false),
            vec![Callback::IncomingCall {
                name: "Bob".into(),
                link: "https://j/c1".into()
            }]
        );
        assert!(
            t.apply(&call("c1", Role::Callee, CallState::Ringing), false)
                .is_empty()
        );
        assert_eq!(
            t.answer().unwrap(),
            Command::Answer {
                call: CallId("c1".into())
            }
        );
        assert_eq!(
            t.clear_incoming().unwrap(),
            Command::Reject {
                call: CallId("c1".into())
            }
        );
        assert_eq!(
            names(&t.apply(&call("c1", Role::Callee, CallState::Answered), false)),
            ["my_onstatusmessage"]
        );
        assert_eq!(
            t.clear_incoming().unwrap(),
            Command::Hangup {
                call: CallId("c1".into())
            }
        );
    }

    #[test]
    fn callee_cleared_when_handled_elsewhere_or_withdrawn() {
        for end in [
            elsewhere(call("c", Role::Callee, CallState::Answered)),
            call("c", Role::Callee, CallState::Rejected),
            call("c", Role::Callee, CallState::Cancelled),
            call("c", Role::Callee, CallState::Failed),
        ] {
            let mut t = Tracker::default();
            t.apply(&call("c", Role::Callee, CallState::Ringing), false);
            assert_eq!(
                t.apply(&end, false),
                vec![Callback::ClearIncoming],
                "{end:?}"
            );
        }
        let mut t = Tracker::default();
        t.apply(&call("c", Role::Callee, CallState::Ringing), false);
        assert_eq!(
            names(&t.apply(&call("c", Role::Callee, CallState::Missed), false)),
            ["my_clearincoming", "my_oncallmissed"]
        );
    }

    #[test]
    fn snapshot_replays_to_a_fresh_tab() {
        let mut t = Tracker::default();
        t.apply(
            &Event::LoggedIn {
                user: UserRef {
                    id: "ann".into(),
                    name: "Ann".into(),
                },
            },
            false,
        );
        t.apply(&call("c1", Role::Callee, CallState::Ringing), false);
        let mut fresh = Tracker::default();
        let out: Vec<_> = t
            .snapshot()
            .iter()
            .flat_map(|e| fresh.apply(e, false))
            .collect();
        assert_eq!(names(&out), ["my_onstatuschange", "my_onincomingcall"]);
    }

    #[test]
    fn presence_fires_on_change_only() {
        let mut t = Tracker::default();
        let ev = |online| Event::Presence {
            user: "bob".into(),
            name: Some("Bob".into()),
            online,
        };
        assert_eq!(t.apply(&ev(true), false).len(), 1);
        assert!(t.apply(&ev(true), false).is_empty());
        assert_eq!(
            t.apply(&ev(false), false),
            vec![Callback::Presence {
                id: "bob".into(),
                name: "Bob".into(),
                online: false
            }]
        );
        assert_eq!(t.known_presence(&["bob".into(), "zed".into()]).len(), 1);
    }

    #[test]
    fn logout_clears_what_the_page_shows() {
        let mut t = Tracker::default();
        t.apply(
            &Event::LoggedIn {
                user: UserRef {
                    id: "ann".into(),
                    name: "Ann".into(),
                },
            },
            false,
        );
        t.apply(&call("c1", Role::Callee, CallState::Ringing), false);
        let out = t.apply(
            &Event::LoggedOut {
                reason: LogoutReason::Requested,
            },
            false,
        );
        assert_eq!(names(&out), ["my_clearincoming", "my_onstatuschange"]);
    }
}
