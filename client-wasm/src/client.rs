//! One tab's client: the page's commands, and delivery of server events to the page exactly
//! once. Its place among the other tabs is in `tabs`, the leader's socket in `leader`.
//!
//! Every entry point (page call, socket event, tab message, timer) runs through [`with_tab`],
//! which fires the page callbacks only after releasing the client, so a callback may call
//! `sv_*` again.

use std::cell::RefCell;
use std::collections::HashMap;

use gloo_timers::callback::Interval;
use switchboard_proto::{Command, Event, LogoutReason, ServerFrame};

use crate::address;
use crate::callbacks::Callback;
use crate::channel::Channel;
use crate::election::LockElection;
use crate::leader::Leader;
use crate::lifecycle::Lifecycle;
use crate::page::{self, Sinks};
use crate::relay::{Identity, Intent, Relay, SessionRef, TabId};
use crate::tabs::{Election, FALLBACK_SILENCE_MS};
use crate::tracker::Tracker;

/// How often the watchdog looks at the leader (and the leader sends its beat).
const TICK_MS: u32 = 500;
/// The leader's beat interval.
pub const BEAT_MS: f64 = 1000.0;
/// Unacknowledged commands kept for a new leader.
const UNACKED_MAX: usize = 8;

thread_local! {
    static TAB: RefCell<Option<Tab>> = const { RefCell::new(None) };
}

/// Runs `f` on this tab's client (made on first use), then fires the callbacks it produced.
pub fn with_tab(f: impl FnOnce(&mut Tab)) {
    let fired = TAB.with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            web_sys::console::warn_1(&"switchboard: re-entrant call dropped".into());
            return None;
        };
        let tab = slot.get_or_insert_with(Tab::new);
        f(tab);
        Some((std::mem::take(&mut tab.out), tab.sinks.functions()))
    });
    if let Some((out, sinks)) = fired {
        for cb in &out {
            page::fire(cb, &sinks);
        }
    }
}

pub fn now() -> f64 {
    js_sys::Date::now()
}

/// The connection of this tab to the other tabs, for one server.
pub struct Link {
    pub socket_url: String,
    pub channel: Channel,
    pub(crate) election: Election,
    pub leader: Option<Leader>,
    /// The newest server session known, so this tab can resume it if it comes to lead.
    pub shared: Option<SessionRef>,
    pub(crate) last_heard: f64,
    pub(crate) ping_at: Option<f64>,
    /// This tab has the leader's picture of the session (snapshot received, or it leads).
    pub(crate) synced: bool,
    /// This tab left the page or was frozen: it takes no part until it is back.
    pub(crate) away: bool,
    _watchdog: Interval,
}

pub struct Tab {
    pub id: TabId,
    pub out: Vec<Callback>,
    pub sinks: Sinks,
    pub tracker: Tracker,
    /// Highest sequence number delivered, per server session.
    seen: HashMap<String, u64>,
    pub intent: Intent,
    pub watch: Vec<String>,
    pub link: Option<Link>,
    reported_master: Option<bool>,
    /// Commands sent to the leader and not yet acknowledged: (number, JSON, is a call, when).
    /// A leader that goes away between posting and taking them would lose them; the next
    /// leader gets them instead.
    pub(crate) unacked: Vec<(u32, String, bool, f64)>,
    next_command: u32,
    _lifecycle: Lifecycle,
}

impl Tab {
    fn new() -> Self {
        Self {
            id: (js_sys::Math::random() * 9_007_199_254_740_991.0) as TabId,
            out: vec![],
            sinks: Sinks::default(),
            tracker: Tracker::default(),
            seen: HashMap::new(),
            intent: Intent::default(),
            watch: vec![],
            link: None,
            reported_master: None,
            unacked: vec![],
            next_command: 0,
            _lifecycle: Lifecycle::watch(|change| with_tab(|t| t.on_page(change))),
        }
    }

    pub fn status(&mut self, text: impl Into<String>) {
        self.out.push(Callback::status(text));
    }

    /// Leadership comes from a Web Lock (rather than from claims over the channel).
    pub fn uses_locks(&self) -> bool {
        matches!(
            self.link.as_ref().map(|l| &l.election),
            Some(Election::Locks(_))
        )
    }

    pub fn leads(&self) -> bool {
        self.link.as_ref().is_some_and(|l| l.leader.is_some())
    }

    pub fn post(&self, msg: &Relay) {
        if let Some(link) = &self.link {
            link.channel.post(msg);
        }
    }

    pub(crate) fn report_master(&mut self, leads: bool) {
        if self.reported_master != Some(leads) {
            self.reported_master = Some(leads);
            self.out.push(Callback::MasterStatus(leads));
        }
    }

    // ----- page commands -----

    pub fn set_server(&mut self, url: &str) {
        let Some(socket_url) = address::socket_url(url) else {
            self.status(format!("not a server address: {url}"));
            return;
        };
        if self
            .link
            .as_ref()
            .is_some_and(|l| l.socket_url == socket_url)
        {
            return;
        }
        self.leave();
        let name = address::channel_name(&socket_url);
        let channel = match Channel::open(&name, |msg| with_tab(|t| t.on_relay(msg))) {
            Ok(channel) => channel,
            Err(_) => {
                self.status("this browser cannot share a connection between tabs");
                return;
            }
        };
        let election = match LockElection::new(&name, |vote| with_tab(|t| t.on_vote(vote))) {
            Some(locks) => Election::Locks(locks),
            None => Election::Fallback {
                claim_until: None,
                outbid: false,
            },
        };
        let watchdog = Interval::new(TICK_MS, || with_tab(Tab::on_tick));
        self.link = Some(Link {
            socket_url,
            channel,
            election,
            leader: None,
            shared: None,
            // Without locks, give a leader one quiet period to make itself heard first.
            last_heard: now() - FALLBACK_SILENCE_MS + 1200.0,
            ping_at: None,
            synced: false,
            away: false,
            _watchdog: watchdog,
        });
        self.join();
    }

    pub fn set_user_info(&mut self, identity: Identity) {
        let same_user = self
            .intent
            .identity
            .as_ref()
            .is_some_and(|i| i.id == identity.id);
        if !same_user {
            self.intent.online = true;
        }
        self.intent.identity = Some(identity);
        self.route_intent(false);
    }

    pub fn login(&mut self, identity: Identity) {
        self.intent = Intent {
            identity: Some(identity),
            online: true,
        };
        self.route_intent(true);
    }

    pub fn logoff(&mut self) {
        self.intent.online = false;
        self.route_intent(true);
    }

    fn route_intent(&mut self, act: bool) {
        if self.link.is_none() {
            // Kept for when the server address arrives.
            return;
        }
        let intent = self.intent.clone();
        if self.leads() {
            self.apply_intent(intent, act);
        } else {
            self.post(&Relay::Intent { intent, act });
        }
    }

    /// Sends a command through whichever tab holds the connection.
    pub fn command(&mut self, cmd: Command) {
        if self.link.is_none() {
            if matches!(cmd, Command::Call { .. }) {
                self.out.push(Callback::MakeCall(false));
            }
            self.status("no server address set (sv_setserveraddress)");
            return;
        }
        if matches!(cmd, Command::Call { .. }) && !self.tracker.logged_in() {
            self.out.push(Callback::MakeCall(false));
            self.status("you are not logged in");
            return;
        }
        let call = matches!(cmd, Command::Call { .. });
        let cmd = serde_json::to_string(&cmd).unwrap_or_default();
        if self.leads() {
            self.leader_send(cmd, call);
        } else {
            self.next_command = self.next_command.wrapping_add(1);
            let n = self.next_command;
            if self.unacked.len() == UNACKED_MAX {
                self.unacked.remove(0);
            }
            self.unacked.push((n, cmd.clone(), call, now()));
            self.post(&Relay::Command {
                tab: self.id,
                n,
                cmd,
                call,
            });
        }
    }

    /// A command the tracker derives from the current call, or its status line.
    pub fn call_command(&mut self, pick: impl FnOnce(&Tracker) -> Result<Command, &'static str>) {
        match pick(&self.tracker) {
            Ok(cmd) => self.command(cmd),
            Err(why) => self.status(why),
        }
    }

    pub fn set_watch(&mut self, users: Vec<String>) {
        let known = self.tracker.known_presence(&users);
        self.out.extend(known);
        self.watch = users.clone();
        if self.leads() {
            self.leader_watch(self.id, users);
        } else {
            self.post(&Relay::Watch {
                tab: self.id,
                users,
            });
        }
    }

    // ----- delivery -----

    /// Hands one server event to this tab's page, unless it was delivered already.
    pub fn deliver(&mut self, session: &str, frame: &ServerFrame, re_call: bool) {
        if !self.seen.is_empty() && !self.seen.contains_key(session) {
            // A new server session starts afresh and re-sends every live call after login:
            // whatever this tab shows of the old session's calls may be over.
            let cleared = self.tracker.forget_calls();
            self.out.extend(cleared);
        }
        let seen = self.seen.entry(session.to_owned()).or_default();
        if frame.seq <= *seen {
            return;
        }
        *seen = frame.seq;
        if let Some(link) = &mut self.link {
            link.shared = Some(SessionRef {
                key: session.to_owned(),
                last_seq: frame.seq,
            });
        }
        if let Event::LoggedOut { reason } = &frame.ev {
            // As in 2010, a browser logged out from elsewhere stays out until asked back in.
            if *reason == LogoutReason::Elsewhere {
                self.intent.online = false;
            }
        }
        let cbs = self.tracker.apply(&frame.ev, re_call);
        self.out.extend(cbs);
    }

    pub(crate) fn apply_snapshot(&mut self, session: Option<SessionRef>, events: &[String]) {
        for ev in events {
            if let Ok(ev) = serde_json::from_str::<Event>(ev) {
                let cbs = self.tracker.apply(&ev, false);
                self.out.extend(cbs);
            }
        }
        if let Some(s) = session {
            let seen = self.seen.entry(s.key.clone()).or_default();
            *seen = (*seen).max(s.last_seq);
            if let Some(link) = &mut self.link {
                link.shared = Some(s);
            }
        }
        if let Some(link) = &mut self.link {
            link.synced = true;
        }
    }
}
