//! The hub's state and its event loop: messages in, timers firing, writes out to the store.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use switchboard_proto::CallId;
use tokio::sync::mpsc;
use tokio_util::time::{DelayQueue, delay_queue::Key};

use super::{Clock, ConnId, HubConfig, Msg, Outgoing, SessionId};
use crate::{
    calls::Millis,
    calls::{Call, Input},
    metrics::Metrics,
    rooms::RoomProvider,
    store::{Loaded, Store, Write},
};

/// How often the hub lets go of what it no longer needs: rate limiter entries, and kept events
/// past the replay window.
const HOUSEKEEPING: Duration = Duration::from_secs(10);

/// A browser's logical connection: it outlives its socket by the grace period, so a client
/// that reconnects resumes it.
pub(super) struct Session {
    /// The secret a client presents to resume this session.
    pub key: String,
    pub conn: Option<Conn>,
    /// The user logged in on this session.
    pub user: Option<String>,
    /// The sequence number of the last event sent.
    pub seq: u64,
    /// The last events sent within the replay window, for a client that reconnects to catch
    /// up.
    pub replay: VecDeque<Kept>,
    pub watching: Vec<String>,
    /// Armed while the session has no connection.
    pub grace: Option<Key>,
}

/// An event kept for a client that reconnects.
pub(super) struct Kept {
    pub seq: u64,
    /// When it was sent: past the replay window nobody can still be missing it.
    pub at: Millis,
    pub frame: Utf8Bytes,
}

pub(super) struct Conn {
    pub id: ConnId,
    pub outbox: mpsc::Sender<Outgoing>,
}

/// A user with at least one session.
pub(super) struct Online {
    pub name: String,
    pub sessions: Vec<SessionId>,
}

/// A call that rings or is answered.
pub(super) struct Live {
    pub call: Call,
    pub caller_link: String,
    pub callee_link: String,
    /// The callee's session that answered or rejected it, if one did.
    pub handled_by: Option<SessionId>,
    pub ring: Option<Key>,
    pub talk: Option<Key>,
}

#[derive(Clone, Debug)]
pub(super) enum Timer {
    Grace(SessionId),
    Ring(CallId),
    Talk(CallId),
}

pub(super) struct State {
    pub config: HubConfig,
    pub clock: Clock,
    pub next_id: u64,
    pub sessions: HashMap<SessionId, Session>,
    /// Resume keys to sessions.
    pub keys: HashMap<String, SessionId>,
    pub online: HashMap<String, Online>,
    /// Every user ever seen, with their last display name: the rest are unknown.
    pub known: HashMap<String, String>,
    /// Sessions following each user's presence.
    pub watchers: HashMap<String, HashSet<SessionId>>,
    pub calls: HashMap<CallId, Live>,
    /// Live calls each user takes part in.
    pub user_calls: HashMap<String, Vec<CallId>>,
    /// Each user's one outgoing live call.
    pub outgoing: HashMap<String, CallId>,
    /// Link tokens to the call and participant they belong to.
    pub links: HashMap<String, (CallId, switchboard_proto::Role)>,
    pub timers: DelayQueue<Timer>,
    /// Calls per minute per user.
    pub limiter: Option<DefaultKeyedRateLimiter<String>>,
    /// Logins per minute per session, so no client can mint users without end.
    pub login_limiter: Option<DefaultKeyedRateLimiter<SessionId>>,
    /// Writes for the store, sent after each message is handled.
    pub writes: Vec<Write>,
    pub store: Store,
    pub rooms: Arc<dyn RoomProvider>,
    pub metrics: Arc<Metrics>,
}

impl State {
    pub fn new(
        config: HubConfig,
        loaded: Loaded,
        store: Store,
        rooms: Arc<dyn RoomProvider>,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> Self {
        let limiter = NonZeroU32::new(config.limits.calls_per_minute)
            .map(|per_minute| RateLimiter::keyed(Quota::per_minute(per_minute)));
        let login_limiter = NonZeroU32::new(config.limits.logins_per_minute)
            .map(|per_minute| RateLimiter::keyed(Quota::per_minute(per_minute)));
        let mut state = Self {
            config,
            clock,
            next_id: 0,
            sessions: HashMap::new(),
            keys: HashMap::new(),
            online: HashMap::new(),
            known: loaded.users.into_iter().map(|u| (u.id, u.name)).collect(),
            watchers: HashMap::new(),
            calls: HashMap::new(),
            user_calls: HashMap::new(),
            outgoing: HashMap::new(),
            links: HashMap::new(),
            timers: DelayQueue::new(),
            limiter,
            login_limiter,
            writes: Vec::new(),
            store,
            rooms,
            metrics,
        };
        for record in loaded.live_calls {
            state.restore(record);
        }
        state
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Shutdown(done)) => {
                        self.close_all();
                        self.commit();
                        // The writer drains the queue once the hub lets go of the store, giving
                        // up on what it still cannot commit after a short while.
                        self.store.close();
                        let _ = done.send(());
                        return;
                    }
                    Some(msg) => {
                        self.handle(msg);
                        self.forget_beyond_cap();
                    }
                    None => return,
                },
                Some(expired) = self.timers.next(), if !self.timers.is_empty() => {
                    self.fire(expired.into_inner());
                }
                _ = housekeeping.tick() => {
                    self.forget_old_events();
                    if let Some(limiter) = &self.limiter {
                        limiter.retain_recent();
                    }
                    if let Some(limiter) = &self.login_limiter {
                        limiter.retain_recent();
                    }
                }
            }
            self.commit();
        }
    }

    fn commit(&mut self) {
        for write in self.writes.drain(..) {
            self.store.write(write);
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Attach {
                resume,
                outbox,
                reply,
            } => {
                let attached = self.attach(resume, outbox);
                let _ = reply.send(attached);
            }
            Msg::Request { at, re, request } => self.request(at, re, request),
            Msg::Detach(at) => self.detach(at),
            Msg::Link {
                token,
                action,
                reply,
            } => {
                let _ = reply.send(self.link(&token, action));
            }
            // `run` handles shutdown before dispatching here.
            Msg::Shutdown(_) => {}
        }
    }

    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::Grace(session) => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.grace = None;
                }
                self.expire_session(session);
            }
            Timer::Ring(call) => {
                if let Some(live) = self.calls.get_mut(&call) {
                    live.ring = None;
                }
                let _ = self.transition(&call, Input::RingTimeout, None);
            }
            Timer::Talk(call) => {
                if let Some(live) = self.calls.get_mut(&call) {
                    live.talk = None;
                }
                let _ = self.transition(&call, Input::MaxDuration, None);
            }
        }
    }

    /// Keeps the users held in memory within `max_known_users`: past it, offline users not in a
    /// live call are forgotten (down to nine tenths of the cap, so sweeps are rare). The
    /// database keeps them; until they log in again, calls to them are refused as unknown.
    fn forget_beyond_cap(&mut self) {
        let cap = self.config.limits.max_known_users;
        if cap == 0 || self.known.len() <= cap {
            return;
        }
        let excess = self.known.len() - (cap - cap / 10);
        let forgotten: Vec<String> = self
            .known
            .keys()
            .filter(|user| {
                !self.online.contains_key(*user)
                    && self.user_calls.get(*user).is_none_or(Vec::is_empty)
            })
            .take(excess)
            .cloned()
            .collect();
        for user in &forgotten {
            self.known.remove(user);
        }
        tracing::info!(
            forgotten = forgotten.len(),
            kept = self.known.len(),
            "max_known_users reached: offline users forgotten from memory"
        );
    }

    /// A fresh random token: `bytes` random bytes, base64url.
    pub fn token(bytes: usize) -> String {
        use base64::Engine;
        let mut buf = vec![0u8; bytes];
        rand::fill(&mut buf[..]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
    }

    pub fn next_session_id(&mut self) -> SessionId {
        self.next_id += 1;
        self.next_id
    }
}
