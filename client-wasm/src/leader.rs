//! The leading tab's side: the one WebSocket of the browser, its session, reconnection with
//! backoff and resume, and the relay of every server event to the other tabs.

use std::collections::VecDeque;

use gloo_timers::callback::Timeout;
use switchboard_proto::{
    Auth, Command, ErrorCode, Event, PROTOCOL_VERSION, Resume, ServerFrame, close,
};

use crate::backoff::Backoff;
use crate::client::{BEAT_MS, Tab, now, with_tab};
use crate::relay::{Identity, Intent, Relay, SessionRef, TabId};
use crate::small_map::SmallMap;
use crate::socket::{Socket, SocketEvent};
use crate::token;
use crate::{json, wire};

/// Commands kept while the socket is down; more than this and the page is told.
const OUTBOX_MAX: usize = 32;
/// `call` command ids remembered, to tell which error answers a call.
const CALL_IDS_MAX: usize = 16;

/// State that exists only while this tab leads; dropping it closes the socket.
#[derive(Default)]
pub struct Leader {
    socket: Option<Socket>,
    /// Bumped per socket, so events of a socket already replaced are ignored.
    generation: u32,
    /// `welcome` arrived on the current socket.
    ready: bool,
    backoff: Backoff,
    retry: Option<Timeout>,
    next_id: u32,
    call_ids: VecDeque<u32>,
    /// Commands kept while the socket is down, sent once the server welcomes the next one.
    outbox: VecDeque<Queued>,
    /// The id of the login command awaiting its answer.
    login_id: Option<u32>,
    /// The identity last sent in a login the server accepted (or is considering).
    sent: Option<Identity>,
    /// An identity the server refused: not sent again until the page or the provider gives
    /// another (a refused token would otherwise be retried on every reconnection).
    refused: Option<Identity>,
    /// Asks for a fresh token shortly before the current one expires.
    renew: Option<Timeout>,
    /// The user this session is logged in as, by the server's word.
    logged_in_as: Option<String>,
    /// The connection was lost and the page was told so.
    lost: bool,
    pub watches: SmallMap<TabId, Vec<String>>,
    sent_watch: Option<Vec<String>>,
    last_beat: f64,
}

/// A command waiting for the connection.
struct Queued {
    /// The command as JSON text.
    cmd: String,
    /// It is a `call`, whose error answer means "could not ring".
    call: bool,
}

impl Leader {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Tab {
    fn leader(&mut self) -> Option<&mut Leader> {
        self.link.as_mut().and_then(|l| l.leader.as_mut())
    }

    /// A status line for every tab.
    fn announce(&mut self, text: &str) {
        self.status(text);
        self.post(&Relay::Status { text: text.into() });
    }

    pub fn beat(&mut self) {
        if !self.leads() {
            return;
        }
        let msg = Relay::Beat {
            tab: self.id,
            session: self.link.as_ref().and_then(|l| l.shared.clone()),
            intent: self.intent.clone(),
        };
        self.post(&msg);
        if let Some(leader) = self.leader() {
            leader.last_beat = now();
        }
    }

    pub fn leader_tick(&mut self, t: f64) {
        if self.leader().is_some_and(|l| t - l.last_beat >= BEAT_MS) {
            self.beat();
        }
    }

    pub fn connect(&mut self) {
        let Some(link) = &mut self.link else { return };
        let url = link.socket_url.clone();
        let Some(leader) = link.leader.as_mut() else {
            return;
        };
        if leader.socket.is_some() {
            return;
        }
        leader.retry = None;
        leader.ready = false;
        leader.generation += 1;
        let generation = leader.generation;
        let opened = Socket::open(&url, move |ev| with_tab(|t| t.on_socket(generation, ev)));
        match opened {
            Ok(socket) => leader.socket = Some(socket),
            Err(_) => self.retry_later(),
        }
    }

    fn retry_later(&mut self) {
        let Some(leader) = self.leader() else { return };
        let delay = leader.backoff.next_delay(js_sys::Math::random());
        leader.retry = Some(Timeout::new(delay, || with_tab(Tab::connect)));
    }

    fn on_socket(&mut self, generation: u32, ev: SocketEvent) {
        if self.leader().is_none_or(|l| l.generation != generation) {
            return;
        }
        match ev {
            SocketEvent::Open => {
                let resume = self.link.as_ref().and_then(|l| l.shared.clone());
                let hello = Command::Hello {
                    v: PROTOCOL_VERSION,
                    resume: resume.map(|s| Resume {
                        session: s.key,
                        last_seq: s.last_seq,
                    }),
                };
                let text = wire::command_json(&hello);
                self.write(None, &text);
            }
            SocketEvent::Text(text) => {
                if let Some(frame) = json::parse(&text).and_then(|v| wire::frame(&v)) {
                    self.on_frame(frame, text);
                }
            }
            SocketEvent::Closed { code } => self.on_closed(code),
        }
    }

    fn on_closed(&mut self, code: u16) {
        let locks = self.uses_locks();
        let Some(leader) = self.leader() else { return };
        leader.socket = None;
        leader.ready = false;
        // Its answer, if any, comes with the session's replay or not at all.
        leader.login_id = None;
        // Another tab resumed this session. Without locks it won the leadership; with them
        // this tab holds the lock, so the other one is a thawed former leader about to learn
        // it lost: take the session back.
        if code == close::REPLACED && !locks {
            self.step_down(false);
            return;
        }
        if !std::mem::replace(&mut leader.lost, true) {
            self.announce("connection to the server lost; reconnecting");
        }
        self.retry_later();
    }

    fn on_frame(&mut self, frame: ServerFrame, text: String) {
        if let Event::Welcome {
            session, resumed, ..
        } = &frame.ev
        {
            self.on_welcome(session, *resumed, frame.seq);
            return;
        }
        let Some(session) = self.link.as_ref().and_then(|l| l.shared.clone()) else {
            return;
        };
        let re_call = frame
            .re
            .is_some_and(|re| self.leader().is_some_and(|l| l.call_ids.contains(&re)));
        self.post(&Relay::Frame {
            session: session.key.clone(),
            frame: text,
            re_call,
        });
        self.deliver(&session.key, &frame, re_call);
        let answers_login =
            frame.re.is_some() && self.leader().is_some_and(|l| l.login_id == frame.re);
        match frame.ev {
            Event::LoggedIn { user } => {
                if let Some(leader) = self.leader() {
                    leader.logged_in_as = Some(user.id);
                    if answers_login {
                        leader.login_id = None;
                    }
                }
                self.schedule_renewal();
                self.send_watch(true);
            }
            Event::LoggedOut { .. } => {
                if let Some(leader) = self.leader() {
                    leader.sent = None;
                    leader.logged_in_as = None;
                }
            }
            Event::Error { code, .. } if answers_login => self.login_refused(code),
            _ => {}
        }
    }

    /// The server refused the login: that identity is not sent again; an expired token is
    /// replaced through the provider when the page gave one.
    fn login_refused(&mut self, code: ErrorCode) {
        let Some(leader) = self.leader() else { return };
        leader.login_id = None;
        leader.refused = leader.sent.take();
        if matches!(code, ErrorCode::TokenExpired | ErrorCode::BadToken) {
            self.renew_token(true);
        }
    }

    /// Gets a fresh token: from this tab's provider, or from another tab's.
    fn renew_token(&mut self, refused: bool) {
        if self.provider.is_some() {
            self.ask_provider();
            return;
        }
        self.post(&Relay::NeedToken);
        if refused {
            self.announce("your session has expired: log in again to go online");
        }
    }

    /// Sets the timer that renews the token in use before it expires.
    fn schedule_renewal(&mut self) {
        let t = now();
        let Some(leader) = self.leader() else { return };
        let Some(exp) = leader.sent.as_ref().and_then(Identity::expires_ms) else {
            leader.renew = None;
            return;
        };
        let wait = (token::renew_at(exp, t) - t) as u32;
        leader.renew = Some(Timeout::new(wait, || {
            with_tab(|t| {
                if let Some(leader) = t.leader() {
                    leader.renew = None;
                }
                t.renew_token(false);
            });
        }));
    }

    fn on_welcome(&mut self, key: &str, resumed: bool, seq: u64) {
        let Some(link) = &mut self.link else { return };
        if !resumed || link.shared.as_ref().is_none_or(|s| s.key != key) {
            link.shared = Some(SessionRef {
                key: key.to_owned(),
                last_seq: seq,
            });
        }
        let user = self.tracker.user().map(|u| u.id.clone());
        let Some(leader) = link.leader.as_mut() else {
            return;
        };
        leader.ready = true;
        leader.backoff.reset();
        if resumed {
            // A resumed session is still logged in as before.
            leader.logged_in_as = leader.logged_in_as.take().or(user);
        } else {
            leader.sent = None;
            leader.logged_in_as = None;
            leader.sent_watch = None;
        }
        if std::mem::take(&mut leader.lost) {
            self.announce("reconnected to the server");
        }
        self.beat();
        self.maybe_login();
        let queued: Vec<Queued> = self
            .leader()
            .map(|l| l.outbox.drain(..).collect())
            .unwrap_or_default();
        for q in queued {
            self.leader_send(q.cmd, q.call);
        }
        if resumed {
            self.send_watch(false);
        }
    }

    /// Writes a `ClientFrame` around a command's JSON text.
    fn write(&mut self, id: Option<u32>, cmd: &str) -> bool {
        let text = wire::client_frame(id, cmd);
        self.leader()
            .and_then(|l| l.socket.as_ref())
            .is_some_and(|s| s.send(&text))
    }

    /// Sends a command now, or keeps it until the connection is back.
    pub fn leader_send(&mut self, cmd: String, call: bool) {
        self.leader_send_numbered(cmd, call);
    }

    /// Sends a command now (and returns its id), or keeps it until the connection is back.
    fn leader_send_numbered(&mut self, cmd: String, call: bool) -> Option<u32> {
        let leader = self.leader()?;
        if !leader.ready {
            if leader.outbox.len() >= OUTBOX_MAX {
                self.status("not connected; command dropped");
            } else {
                leader.outbox.push_back(Queued { cmd, call });
            }
            return None;
        }
        leader.next_id = leader.next_id.wrapping_add(1);
        let id = leader.next_id;
        if call {
            if leader.call_ids.len() == CALL_IDS_MAX {
                leader.call_ids.pop_front();
            }
            leader.call_ids.push_back(id);
        }
        self.write(Some(id), &cmd).then_some(id)
    }

    fn send_command(&mut self, cmd: &Command) {
        let text = wire::command_json(cmd);
        self.leader_send(text, false);
    }

    /// Logs in the page's user unless the session already is, with these credentials.
    fn maybe_login(&mut self) {
        let Some(identity) = self.intent.identity.clone() else {
            return;
        };
        let online = self.intent.online;
        let Some(leader) = self.leader() else { return };
        if !online || !leader.ready || leader.login_id.is_some() {
            return;
        }
        if leader.refused.as_ref() == Some(&identity) {
            return;
        }
        if leader.logged_in_as.as_deref() == Some(identity.user().as_str()) {
            match &leader.sent {
                Some(sent) if *sent == identity => return,
                // A tab that took over a logged-in session: the credentials are the ones the
                // previous leader sent; logging in again would gain nothing.
                None => {
                    leader.sent = Some(identity);
                    self.schedule_renewal();
                    return;
                }
                // A fresh token or a new name: log in again (the server keeps the user online).
                Some(_) => {}
            }
        }
        let auth = match identity.token.clone() {
            Some(token) => Auth::Token(token),
            None => Auth::Demo {
                id: identity.id.clone(),
                name: identity.name.clone(),
            },
        };
        let text = wire::command_json(&Command::Login { auth });
        let id = self.leader_send_numbered(text, false);
        if let Some(leader) = self.leader() {
            leader.login_id = id;
            leader.sent = Some(identity);
        }
    }

    /// A login intent reached the leader. `act`: `sv_login`/`sv_logoff` (do it now);
    /// otherwise a tab's `sv_setuserinfo` or a provider's token, taken if it renews ours.
    pub fn apply_intent(&mut self, intent: Intent, act: bool) {
        if !act {
            if let (Some(mine), Some(theirs)) = (&self.intent.identity, intent.identity)
                && theirs.renews(mine)
            {
                self.intent.identity = Some(theirs);
            }
            // Also this tab's own new token, which is in its intent already.
            self.maybe_login();
            self.beat();
            return;
        }
        self.intent = intent;
        let online = self.intent.online;
        let Some(leader) = self.leader() else { return };
        let logged_in = leader.logged_in_as.is_some();
        if online {
            // The page asked again: whatever was refused before may be tried again.
            leader.refused = None;
            self.maybe_login();
        } else if logged_in || leader.login_id.is_some() {
            leader.login_id = None;
            leader.sent = None;
            leader.renew = None;
            self.send_command(&Command::Logout);
        }
        self.beat();
    }

    pub fn leader_join(&mut self, tab: TabId, snapshot: bool, intent: Intent, watch: Vec<String>) {
        if !self.leads() {
            return;
        }
        if snapshot {
            let msg = Relay::Snapshot {
                to: tab,
                session: self.link.as_ref().and_then(|l| l.shared.clone()),
                events: self
                    .tracker
                    .snapshot()
                    .iter()
                    .map(wire::event_json)
                    .collect(),
            };
            self.post(&msg);
        }
        self.apply_intent(intent, false);
        self.leader_watch(tab, watch);
        self.beat();
    }

    pub fn leader_watch(&mut self, tab: TabId, users: Vec<String>) {
        if let Some(leader) = self.leader() {
            leader.watches.insert(tab, users);
            self.send_watch(false);
        }
    }

    pub fn leader_bye(&mut self, tab: TabId) {
        if let Some(leader) = self.leader() {
            leader.watches.remove(&tab);
            self.send_watch(false);
        }
    }

    /// Sends the union of every tab's watch list when it changed (or `force`).
    fn send_watch(&mut self, force: bool) {
        let Some(leader) = self.leader() else { return };
        let logged_in = leader.logged_in_as.is_some();
        let mut users: Vec<String> = vec![];
        for user in leader.watches.values().flatten() {
            if !users.contains(user) {
                users.push(user.clone());
            }
        }
        // The server keeps a set: the same users in another order are no change.
        let same = leader.sent_watch.as_ref().is_some_and(|sent| {
            sent.len() == users.len() && users.iter().all(|u| sent.contains(u))
        });
        if !logged_in || (!force && same) {
            return;
        }
        if users.is_empty() && leader.sent_watch.is_none() {
            return;
        }
        leader.sent_watch = Some(users.clone());
        self.send_command(&Command::Watch { users });
    }
}
