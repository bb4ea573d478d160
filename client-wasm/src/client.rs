//! One tab's client: the page's commands, delivery of server events to the page exactly once,
//! and the tab's place among the other tabs (leader or follower).
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
use crate::election::{LockElection, Vote};
use crate::leader::Leader;
use crate::lifecycle::{self, Lifecycle, PageChange};
use crate::page::{self, Sinks};
use crate::relay::{Identity, Intent, Relay, SessionRef, TabId};
use crate::tracker::Tracker;

/// How often the watchdog looks at the leader (and the leader sends its beat).
const TICK_MS: u32 = 500;
/// The leader's beat interval.
pub const BEAT_MS: f64 = 1000.0;
/// A visible follower that heard nothing for this long pings the leader. A leader hidden for
/// long has its timers throttled (beats may come a minute apart), but it still answers a ping
/// at once: channel messages are not throttled, only a frozen tab stays silent.
const QUIET_MS: f64 = 2500.0;
/// A pinged leader that stays silent this long is taken to be frozen.
const PING_MS: f64 = 1000.0;
/// Without Web Locks: a leader silent this long is replaced.
const FALLBACK_SILENCE_MS: f64 = 2500.0;
/// Without Web Locks: how long a claim waits for a better-placed rival.
const CLAIM_MS: f64 = 300.0;

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

enum Election {
    Locks(LockElection),
    /// No Web Locks: tabs claim leadership over the channel; the lowest tab id wins a tie.
    Fallback {
        claim_until: Option<f64>,
        outbid: bool,
    },
}

/// The connection of this tab to the other tabs, for one server.
pub struct Link {
    pub socket_url: String,
    pub channel: Channel,
    election: Election,
    pub leader: Option<Leader>,
    /// The newest server session known, so this tab can resume it if it comes to lead.
    pub shared: Option<SessionRef>,
    last_heard: f64,
    ping_at: Option<f64>,
    /// This tab has the leader's picture of the session (snapshot received, or it leads).
    synced: bool,
    /// This tab left the page or was frozen: it takes no part until it is back.
    away: bool,
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

    fn report_master(&mut self, leads: bool) {
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

    /// Takes part in the election and asks the leader (if any) for its picture.
    fn join(&mut self) {
        let Some(link) = &mut self.link else { return };
        link.away = false;
        if let Election::Locks(locks) = &link.election {
            locks.start();
        }
        self.announce_join();
    }

    /// Tells the leader what this tab wants (and asks for its picture if needed).
    fn announce_join(&mut self) {
        let Some(link) = &self.link else { return };
        let msg = Relay::Join {
            tab: self.id,
            snapshot: !link.synced,
            intent: self.intent.clone(),
            watch: self.watch.clone(),
        };
        self.post(&msg);
    }

    /// Stops leading (if it did) and leaves the election.
    fn leave(&mut self) {
        self.step_down(true);
        if let Some(link) = &mut self.link {
            link.away = true;
            if let Election::Locks(locks) = &link.election {
                locks.release();
            }
        }
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
            self.post(&Relay::Command {
                tab: self.id,
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

    fn apply_snapshot(&mut self, session: Option<SessionRef>, events: &[String]) {
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

    // ----- tabs -----

    fn heard(&mut self) {
        if let Some(link) = &mut self.link {
            link.last_heard = now();
        }
    }

    fn on_relay(&mut self, msg: Relay) {
        if self.link.as_ref().is_none_or(|l| l.away) {
            return;
        }
        match msg {
            Relay::Frame {
                session,
                frame,
                re_call,
            } => {
                self.heard();
                if let Ok(frame) = serde_json::from_str::<ServerFrame>(&frame) {
                    self.deliver(&session, &frame, re_call);
                }
            }
            Relay::Beat {
                tab,
                session,
                intent,
            } => {
                self.heard();
                if self.leads() {
                    // Without Web Locks two tabs may both claim: the lower id keeps leading.
                    // With them the lock decides, and a beat from a rival is a thawed tab
                    // that has yet to learn it lost the lock.
                    if !self.uses_locks() && tab < self.id {
                        self.step_down(false);
                    }
                    return;
                }
                self.adopt(session, intent);
            }
            Relay::Status { text } => {
                self.heard();
                self.status(text);
            }
            Relay::Snapshot {
                to,
                session,
                events,
            } => {
                self.heard();
                if to == self.id {
                    self.apply_snapshot(session, &events);
                }
            }
            Relay::Leader { tab } => {
                self.heard();
                let locks = matches!(
                    self.link.as_ref().map(|l| &l.election),
                    Some(Election::Locks(_))
                );
                // With Web Locks a rival leader is a stealer, and our `Lost` is on its way.
                if self.leads() && !locks && tab < self.id {
                    self.step_down(false);
                }
                if !self.leads() {
                    self.announce_join();
                }
            }
            Relay::Resign { .. } => {
                // With Web Locks the browser hands the lock on by itself; without, the
                // followers claim at their next tick instead of waiting out the silence.
                if let Some(link) = &mut self.link
                    && matches!(link.election, Election::Fallback { .. })
                {
                    link.last_heard = 0.0;
                }
            }
            Relay::Claim { tab } => self.on_claim(tab),
            Relay::Intent { intent, act } => {
                if self.leads() {
                    self.apply_intent(intent, act);
                } else if act {
                    self.intent.online = intent.online;
                }
            }
            Relay::Join {
                tab,
                snapshot,
                intent,
                watch,
            } => self.leader_join(tab, snapshot, intent, watch),
            Relay::Command { cmd, call, .. } => {
                if self.leads() {
                    self.leader_send(cmd, call);
                }
            }
            Relay::Watch { tab, users } => self.leader_watch(tab, users),
            Relay::Bye { tab } => self.leader_bye(tab),
            Relay::Ping { .. } => self.beat(),
        }
    }

    /// A follower takes the leader's view of the session and of the login intent.
    fn adopt(&mut self, session: Option<SessionRef>, intent: Intent) {
        if let Some(link) = &mut self.link
            && let Some(s) = session
            && link
                .shared
                .as_ref()
                .is_none_or(|old| old.key != s.key || old.last_seq < s.last_seq)
        {
            link.shared = Some(s);
        }
        self.intent.online = intent.online;
        if self.intent.identity.is_none() {
            self.intent.identity = intent.identity;
        }
    }

    fn on_vote(&mut self, vote: Vote) {
        if self.link.as_ref().is_none_or(|l| l.away) {
            return;
        }
        match vote {
            Vote::Lead => self.become_leader(),
            Vote::Follow => {
                self.report_master(false);
                if let Some(Link {
                    election: Election::Locks(locks),
                    ..
                }) = &self.link
                {
                    locks.queue();
                }
            }
            Vote::Lost => {
                self.step_down(false);
                if let Some(link) = &mut self.link {
                    // Taken from a frozen tab: what passed meanwhile may never have reached
                    // it, so it asks the new leader for its picture.
                    link.synced = false;
                    if let Election::Locks(locks) = &link.election {
                        locks.queue();
                    }
                }
                self.announce_join();
            }
        }
    }

    fn on_claim(&mut self, tab: TabId) {
        if self.leads() {
            // A claimant that hears a beat backs off.
            self.beat();
            return;
        }
        if let Some(Link {
            election:
                Election::Fallback {
                    claim_until,
                    outbid,
                },
            ..
        }) = &mut self.link
            && claim_until.is_some()
            && tab < self.id
        {
            *outbid = true;
        }
    }

    fn on_tick(&mut self) {
        let t = now();
        if self.leads() {
            self.leader_tick(t);
            return;
        }
        let id = self.id;
        let Some(link) = &mut self.link else { return };
        if link.away {
            return;
        }
        match &mut link.election {
            Election::Locks(locks) => {
                // Only a visible tab judges the leader: hidden tabs' timers are throttled.
                if !lifecycle::visible() {
                    link.ping_at = None;
                    return;
                }
                match link.ping_at {
                    Some(at) if link.last_heard > at => link.ping_at = None,
                    Some(at) if t - at > PING_MS => {
                        link.ping_at = None;
                        link.last_heard = t;
                        locks.steal();
                        self.status(
                            "the tab holding the connection stopped answering; taking over",
                        );
                    }
                    Some(_) => {}
                    None if t - link.last_heard > QUIET_MS => {
                        link.ping_at = Some(t);
                        link.channel.post(&Relay::Ping { tab: id });
                    }
                    None => {}
                }
            }
            Election::Fallback {
                claim_until,
                outbid,
            } => match *claim_until {
                Some(until) if t >= until => {
                    *claim_until = None;
                    if !*outbid && t - link.last_heard > CLAIM_MS {
                        self.become_leader();
                    }
                }
                Some(_) => {}
                None if t - link.last_heard > FALLBACK_SILENCE_MS => {
                    *claim_until = Some(t + CLAIM_MS);
                    *outbid = false;
                    link.channel.post(&Relay::Claim { tab: id });
                }
                None => {}
            },
        }
    }

    fn on_page(&mut self, change: PageChange) {
        match change {
            PageChange::Hide => {
                self.post(&Relay::Bye { tab: self.id });
                self.leave();
            }
            PageChange::Freeze => self.leave(),
            PageChange::Back => {
                if self.link.as_ref().is_some_and(|l| l.away) {
                    if let Some(link) = &mut self.link {
                        // Events passed by while away: ask for the leader's picture again.
                        link.synced = false;
                        link.last_heard = now();
                    }
                    self.join();
                }
            }
            PageChange::Visible => {
                if !self.leads()
                    && let Some(link) = &mut self.link
                    && link.ping_at.is_none()
                {
                    link.ping_at = Some(now());
                    link.channel.post(&Relay::Ping { tab: self.id });
                }
            }
        }
    }

    fn become_leader(&mut self) {
        let Some(link) = &mut self.link else { return };
        if link.leader.is_some() {
            return;
        }
        link.leader = Some(Leader::new());
        link.synced = true;
        self.report_master(true);
        self.post(&Relay::Leader { tab: self.id });
        let own = self.watch.clone();
        if let Some(leader) = self.link.as_mut().and_then(|l| l.leader.as_mut()) {
            leader.watches.insert(self.id, own);
        }
        self.connect();
    }

    /// Stops leading: closes the socket; `resign` tells the other tabs at once.
    pub fn step_down(&mut self, resign: bool) {
        let Some(link) = &mut self.link else { return };
        if link.leader.take().is_none() {
            return;
        }
        if resign {
            link.channel.post(&Relay::Resign { tab: self.id });
        }
        link.last_heard = now();
        self.report_master(false);
    }
}
