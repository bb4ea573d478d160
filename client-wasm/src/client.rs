//! One tab's client: the page's commands, and delivery of server events to the page exactly
//! once. Its place among the other tabs is in `tabs`, the leader's socket in `leader`.
//!
//! Every entry point (page call, socket event, tab message, timer) runs through [`with_tab`],
//! which fires the page callbacks only after releasing the client, so a callback may call
//! `sv_*` again.

use std::cell::RefCell;

use gloo_timers::callback::Interval;
use js_sys::{Function, Promise};
use switchboard_proto::{Command, Event, LogoutReason, ServerFrame};
use wasm_bindgen::JsValue;
use wasm_bindgen::closure::Closure;

use crate::address;
use crate::callbacks::Callback;
use crate::channel::Channel;
use crate::election::LockElection;
use crate::json;
use crate::leader::Leader;
use crate::lifecycle::Lifecycle;
use crate::outstanding::Outstanding;
use crate::page::{self, Sinks};
use crate::relay::{Identity, Intent, Relay, SessionRef, TabId};
use crate::small_map::SmallMap;
use crate::succession::{Rule, Succession};
use crate::tracker::Tracker;
use crate::wire;

/// How often the watchdog looks at the leader (and the leader sends its beat).
const TICK_MS: u32 = 500;
/// The leader's beat interval.
pub const BEAT_MS: f64 = 1000.0;

thread_local! {
    static TAB: RefCell<Option<Tab>> = const { RefCell::new(None) };
}

/// Runs `f` on this tab's client (made on first use), then fires the callbacks it produced.
pub fn with_tab(f: impl FnOnce(&mut Tab)) {
    let mut f = Some(f);
    // One body for every caller, rather than one copy per closure type: it is the bundle's
    // largest function once inlined.
    run_on_tab(&mut |t| {
        if let Some(f) = f.take() {
            f(t);
        }
    });
}

#[inline(never)]
fn run_on_tab(f: &mut dyn FnMut(&mut Tab)) {
    let fired = TAB.with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            web_sys::console::warn_1(&"switchboard: re-entrant call dropped".into());
            return None;
        };
        let tab = slot.get_or_insert_with(Tab::new);
        f(tab);
        let out = std::mem::take(&mut tab.out);
        Some((out, tab.sinks.functions(), tab.escape_names))
    });
    if let Some((out, sinks, escape)) = fired {
        for cb in &out {
            page::fire(cb, &sinks, escape);
        }
    }
}

pub fn now() -> f64 {
    js_sys::Date::now()
}

/// The connection of this tab to the other tabs of the same user, for one server.
pub struct Link {
    pub socket_url: String,
    /// The user whose tabs share this link (a token's subject, else the page's id).
    pub user: String,
    pub channel: Channel,
    /// The Web Lock that decides who leads, where the browser has Web Locks.
    pub(crate) locks: Option<LockElection>,
    pub leader: Option<Leader>,
    /// The newest server session known, so this tab can resume it if it comes to lead.
    pub shared: Option<SessionRef>,
    /// What a follower knows of the leader, to replace it when it goes quiet.
    pub(crate) succession: Succession,
    /// This tab has the leader's picture of the session (snapshot received, or it leads).
    pub(crate) synced: bool,
    /// This tab left the page or was frozen: it takes no part until it is back.
    pub(crate) away: bool,
    _watchdog: Interval,
}

/// The two halves of a pending answer from the token provider: got a token, or failed.
struct Asking {
    _got: Closure<dyn FnMut(JsValue)>,
    _failed: Closure<dyn FnMut(JsValue)>,
}

pub struct Tab {
    pub id: TabId,
    pub out: Vec<Callback>,
    pub sinks: Sinks,
    pub tracker: Tracker,
    /// Highest sequence number delivered, per server session.
    seen: SmallMap<String, u64>,
    pub intent: Intent,
    pub watch: Vec<String>,
    pub link: Option<Link>,
    reported_master: Option<bool>,
    /// The page writes names with `innerHTML`: hand them to its callbacks HTML-escaped.
    pub escape_names: bool,
    /// The server's socket URL, once the page named it.
    server: Option<String>,
    /// The page's token provider (`sv_settokenprovider`): asked for a fresh token before the
    /// current one expires and after one was refused.
    pub provider: Option<Function>,
    /// Waits for the provider's answer; replaced (and so ignored) by a newer request.
    asking: Option<Asking>,
    /// Commands sent to the leader and not yet acknowledged, for the next leader.
    pub(crate) unacked: Outstanding,
    _lifecycle: Lifecycle,
}

impl Tab {
    fn new() -> Self {
        Self {
            id: (js_sys::Math::random() * 9_007_199_254_740_991.0) as TabId,
            out: vec![],
            sinks: Sinks::default(),
            tracker: Tracker::default(),
            seen: SmallMap::default(),
            intent: Intent::default(),
            watch: vec![],
            link: None,
            reported_master: None,
            escape_names: false,
            server: None,
            provider: None,
            asking: None,
            unacked: Outstanding::default(),
            _lifecycle: Lifecycle::watch(|change| with_tab(|t| t.on_page(change))),
        }
    }

    pub fn status(&mut self, text: impl Into<String>) {
        self.out.push(Callback::status(text));
    }

    /// Leadership comes from a Web Lock (rather than from claims over the channel).
    pub fn uses_locks(&self) -> bool {
        self.link.as_ref().is_some_and(|l| l.locks.is_some())
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
            self.status(["not a server address: ", url].concat());
            return;
        };
        self.server = Some(socket_url);
        self.relink();
    }

    /// Joins the tabs of this page's user for this server, leaving those of another user or
    /// server first. A tab joins only once it knows both.
    fn relink(&mut self) {
        let want = match (&self.server, &self.intent.identity) {
            (Some(server), Some(identity)) => Some((server.clone(), identity.user())),
            _ => None,
        };
        let have = self
            .link
            .as_ref()
            .map(|l| (l.socket_url.clone(), l.user.clone()));
        if want == have {
            return;
        }
        if self.link.is_some() {
            self.post(&Relay::Bye { tab: self.id });
            self.leave();
            self.link = None;
        }
        if have.map(|h| h.1) != want.as_ref().map(|w| w.1.clone()) {
            self.forget_user();
        }
        let Some((socket_url, user)) = want else {
            return;
        };
        let name = address::channel_name(&socket_url, &user);
        let channel = match Channel::open(&name, &user, |msg| with_tab(|t| t.on_relay(msg))) {
            Ok(channel) => channel,
            Err(_) => {
                self.status("this browser cannot share a connection between tabs");
                return;
            }
        };
        let locks = LockElection::new(&name, |vote| with_tab(|t| t.on_vote(vote)));
        let rule = if locks.is_some() {
            Rule::Locks
        } else {
            Rule::Claims
        };
        let watchdog = Interval::new(TICK_MS, || with_tab(Tab::on_tick));
        self.link = Some(Link {
            socket_url,
            user,
            channel,
            locks,
            leader: None,
            shared: None,
            succession: Succession::new(rule, self.id, now()),
            synced: false,
            away: false,
            _watchdog: watchdog,
        });
        self.join();
    }

    /// The page now speaks for another user: nothing of the previous one stays on it.
    fn forget_user(&mut self) {
        let cleared = self.tracker.forget_calls();
        self.out.extend(cleared);
        if self.tracker.logged_in() {
            self.out.push(Callback::StatusChange(false));
        }
        self.tracker = Tracker::default();
        self.seen.clear();
        self.unacked.clear();
    }

    pub fn set_user_info(&mut self, identity: Identity) {
        let current = self.intent.identity.as_ref();
        let same_user = current.is_some_and(|i| i.user() == identity.user());
        if !same_user {
            self.intent.online = true;
        }
        // A page that names its user again with the token it was served with must not undo
        // a renewal: a token that lives shorter than the one in use is not taken.
        let stale = current.is_some_and(|c| same_user && c.token.is_some() && !identity.renews(c));
        if stale {
            return;
        }
        self.intent.identity = Some(identity);
        self.relink();
        self.route_intent(false);
    }

    pub fn login(&mut self, identity: Identity) {
        self.intent = Intent {
            identity: Some(identity),
            online: true,
        };
        self.relink();
        self.route_intent(true);
    }

    /// Asks the page's token provider for a fresh token; the answer (a token, or a promise of
    /// one) goes wherever a token from the page would.
    pub fn ask_provider(&mut self) {
        let Some(provider) = &self.provider else {
            return;
        };
        let answer = match provider.call0(&JsValue::NULL) {
            Ok(answer) => answer,
            Err(e) => {
                web_sys::console::error_2(&"switchboard: the token provider threw".into(), &e);
                return;
            }
        };
        let got = Closure::new(|token: JsValue| with_tab(|t| t.fresh_token(token.as_string())));
        let failed = Closure::new(|e: JsValue| {
            web_sys::console::error_2(&"switchboard: the token provider failed".into(), &e);
        });
        let _ = Promise::resolve(&answer).then2(&got, &failed);
        self.asking = Some(Asking {
            _got: got,
            _failed: failed,
        });
    }

    fn fresh_token(&mut self, token: Option<String>) {
        let Some(identity) = self.intent.identity.clone() else {
            return;
        };
        let token = token.filter(|t| !t.trim().is_empty());
        if token.is_none() {
            self.status("the token provider gave no token");
            return;
        }
        self.set_user_info(Identity { token, ..identity });
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
            if self.server.is_none() {
                self.status("no server address set (sv_setserveraddress)");
            } else {
                self.status("you are not logged in");
            }
            return;
        }
        if matches!(cmd, Command::Call { .. }) && !self.tracker.logged_in() {
            self.out.push(Callback::MakeCall(false));
            self.status("you are not logged in");
            return;
        }
        let call = matches!(cmd, Command::Call { .. });
        let cmd = wire::command_json(&cmd);
        if self.leads() {
            self.leader_send(cmd, call);
        } else {
            let n = self.unacked.push(cmd.clone(), call, now());
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
        let seen = self.seen.entry(session.to_owned());
        // Sequence 0 is about the connection, not the session: never replayed, never repeated.
        if frame.seq != 0 {
            if frame.seq <= *seen {
                return;
            }
            *seen = frame.seq;
        }
        if let Some(link) = &mut self.link
            && frame.seq != 0
        {
            link.shared = Some(SessionRef {
                key: session.to_owned(),
                last_seq: frame.seq,
            });
        }
        if let Event::LoggedOut { reason } = &frame.ev {
            // As in 2010, a browser logged out from elsewhere stays out until asked back in;
            // so does one the site logged out (a ban must not be undone by a reconnect).
            if matches!(reason, LogoutReason::Elsewhere | LogoutReason::Revoked) {
                self.intent.online = false;
            }
        }
        let cbs = self.tracker.apply(&frame.ev, re_call);
        self.out.extend(cbs);
    }

    pub(crate) fn apply_snapshot(&mut self, session: Option<SessionRef>, events: &[String]) {
        for ev in events {
            if let Some(ev) = json::parse(ev).and_then(|v| wire::event(&v)) {
                let cbs = self.tracker.apply(&ev, false);
                self.out.extend(cbs);
            }
        }
        if let Some(s) = session {
            let seen = self.seen.entry(s.key.clone());
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
