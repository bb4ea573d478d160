//! The sessions held by this node: their connections, resume keys, event numbering, the
//! replay window, and the grace period a session outlives its socket by. Nothing else in the
//! hub touches a session's fields; it asks this module by session id.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use crate::outbox::{Outbox, TrySendError};
use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use switchboard_proto::{Event, PROTOCOL_VERSION, Resume, close};
use tokio_util::time::{DelayQueue, delay_queue::Key};

use super::{Attached, Clock, ConnId, SessionId, ToClient, frame};
use crate::{calls::Millis, metrics::Metrics};

/// Bytes of randomness in a resume key.
const KEY_BYTES: usize = 16;

/// How sessions behave; taken from the hub's configuration.
#[derive(Clone, Debug)]
pub struct SessionRules {
    /// How long a session without a connection is kept for its client to resume it.
    pub grace: Duration,
    /// At most this many sent events are kept per session (0: none).
    pub replay_events: usize,
    /// How long a sent event is kept for a client that reconnects.
    pub replay_for: Duration,
    /// Told to clients in the welcome.
    pub ring_timeout: Duration,
}

/// A browser's logical connection: it outlives its socket by the grace period, so a client
/// that reconnects resumes it.
struct Session {
    /// The secret a client presents to resume this session.
    key: String,
    conn: Option<Conn>,
    /// The user logged in on this session.
    user: Option<String>,
    /// The sequence number of the last event sent.
    seq: u64,
    /// The last events sent within the replay window, for a client that reconnects to catch
    /// up.
    replay: VecDeque<Kept>,
    watching: Vec<String>,
    /// Armed while the session has no connection.
    grace: Option<Key>,
}

/// An event kept for a client that reconnects.
struct Kept {
    seq: u64,
    /// When it was sent: past the replay window nobody can still be missing it.
    at: Millis,
    frame: Utf8Bytes,
}

struct Conn {
    id: ConnId,
    outbox: Outbox<ToClient>,
}

/// This node's sessions.
pub struct Sessions {
    rules: SessionRules,
    clock: Clock,
    metrics: Arc<Metrics>,
    next_id: u64,
    sessions: HashMap<SessionId, Session>,
    /// Resume keys to sessions.
    keys: HashMap<String, SessionId>,
    /// Grace periods running, one per session without a connection.
    grace: DelayQueue<SessionId>,
}

impl Sessions {
    pub fn new(rules: SessionRules, clock: Clock, metrics: Arc<Metrics>) -> Self {
        Self {
            rules,
            clock,
            metrics,
            next_id: 0,
            sessions: HashMap::new(),
            keys: HashMap::new(),
            grace: DelayQueue::new(),
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Gives a new connection its session: the resumed one if the key is known, else a new one.
    /// The welcome, then any missed events, are queued on `outbox`.
    pub fn attach(&mut self, resume: Option<Resume>, outbox: Outbox<ToClient>) -> Attached {
        let conn = self.next_id();
        let resumed = resume.and_then(|r| self.keys.get(&r.session).map(|&id| (id, r.last_seq)));
        if let Some((id, _)) = resumed {
            // Nothing past the replay window is replayed, however long ago it was trimmed.
            self.forget_old_events_of(id);
        }
        let (session, last_seq) = match resumed {
            Some((id, last_seq)) => (id, Some(last_seq)),
            None => (self.create(), None),
        };
        let Some(s) = self.sessions.get_mut(&session) else {
            return Attached { session, conn };
        };
        if let Some(key) = s.grace.take() {
            self.grace.try_remove(&key);
        }
        if let Some(old) = s.conn.take() {
            let _ = old.outbox.try_send(ToClient::Close(
                close::REPLACED,
                "resumed by another connection",
            ));
        }
        // A resume is honoured only if the kept events reach back to what the client last saw;
        // otherwise the client is told to start afresh (it logs in again and gets the state).
        let missed = last_seq.and_then(|last_seq| Self::missed_since(s, last_seq));
        if last_seq.is_some() && missed.is_none() {
            // A fresh start under a fresh key, numbered from 1: nothing the client kept of the
            // old session can be mistaken for the new one.
            s.seq = 0;
            s.replay.clear();
            let key = super::token(KEY_BYTES);
            self.keys
                .remove(&std::mem::replace(&mut s.key, key.clone()));
            self.keys.insert(key, session);
        }
        let welcome = Event::Welcome {
            v: PROTOCOL_VERSION,
            session: s.key.clone(),
            resumed: missed.is_some(),
            ring_timeout_ms: self.rules.ring_timeout.as_millis() as u64,
        };
        let frame = frame::encode(0, None, &frame::body(&welcome));
        // A fresh queue always has room for the welcome.
        let _ = outbox.try_send(ToClient::Frame(frame.into()));
        s.conn = Some(Conn { id: conn, outbox });
        for frame in missed.unwrap_or_default() {
            self.send_frame(session, frame);
        }
        Attached { session, conn }
    }

    fn create(&mut self) -> SessionId {
        let id = self.next_id();
        let key = super::token(KEY_BYTES);
        self.keys.insert(key.clone(), id);
        self.sessions.insert(
            id,
            Session {
                key,
                conn: None,
                user: None,
                seq: 0,
                replay: VecDeque::new(),
                watching: Vec::new(),
                grace: None,
            },
        );
        self.metrics.sessions.inc();
        id
    }

    /// The kept events after `last_seq`, or None if they no longer reach back that far.
    fn missed_since(s: &Session, last_seq: u64) -> Option<Vec<Utf8Bytes>> {
        let covered = s.seq <= last_seq
            || s.replay
                .front()
                .is_some_and(|kept| kept.seq <= last_seq + 1);
        covered.then(|| {
            s.replay
                .iter()
                .filter(|kept| kept.seq > last_seq)
                .map(|kept| kept.frame.clone())
                .collect()
        })
    }

    /// The connection is gone; its session waits out the grace period.
    pub fn detach(&mut self, at: Attached) {
        let Some(s) = self.sessions.get_mut(&at.session) else {
            return;
        };
        if s.conn.as_ref().is_some_and(|c| c.id == at.conn) {
            s.conn = None;
            self.start_grace(at.session);
        }
    }

    /// Whether `at` is its session's current connection (a connection replaced by a resume may
    /// still be sending).
    pub fn is_current(&self, at: Attached) -> bool {
        self.sessions
            .get(&at.session)
            .and_then(|s| s.conn.as_ref())
            .is_some_and(|c| c.id == at.conn)
    }

    /// Keeps a session without a connection for the grace period, then ends it.
    fn start_grace(&mut self, session: SessionId) {
        if let Some(s) = self.sessions.get_mut(&session)
            && s.grace.is_none()
        {
            s.grace = Some(self.grace.insert(session, self.rules.grace));
        }
    }

    /// The next session whose grace period ran out without a connection coming back; pending
    /// while none is running.
    pub async fn next_expired(&mut self) -> SessionId {
        loop {
            if self.grace.is_empty() {
                std::future::pending::<()>().await;
            }
            if let Some(expired) = self.grace.next().await {
                let session = expired.into_inner();
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.grace = None;
                    if s.conn.is_none() {
                        return session;
                    }
                }
            }
        }
    }

    /// Forgets a session whose grace ran out; the caller has taken its user and watch list off
    /// first.
    pub fn remove(&mut self, session: SessionId) {
        if let Some(s) = self.sessions.remove(&session) {
            self.keys.remove(&s.key);
            if let Some(key) = s.grace {
                self.grace.try_remove(&key);
            }
            self.metrics.sessions.dec();
        }
    }

    /// The user logged in on the session.
    pub fn user(&self, session: SessionId) -> Option<&str> {
        self.sessions.get(&session).and_then(|s| s.user.as_deref())
    }

    /// Puts `user` on the session (or none), returning the one it had.
    pub fn set_user(&mut self, session: SessionId, user: Option<String>) -> Option<String> {
        let s = self.sessions.get_mut(&session)?;
        std::mem::replace(&mut s.user, user)
    }

    /// Replaces the users the session watches, returning the old list (none for a session
    /// that is gone).
    pub fn set_watching(&mut self, session: SessionId, users: Vec<String>) -> Option<Vec<String>> {
        self.sessions
            .get_mut(&session)
            .map(|s| std::mem::replace(&mut s.watching, users))
    }

    /// Closes every connection: the server is shutting down.
    pub fn close_all(&mut self) {
        for s in self.sessions.values_mut() {
            if let Some(conn) = s.conn.take() {
                let _ = conn
                    .outbox
                    .try_send(ToClient::Close(1001, "the server is shutting down"));
            }
        }
    }

    pub fn deliver(&mut self, session: SessionId, re: Option<u32>, event: &Event) {
        self.deliver_body(session, re, &frame::body(event));
    }

    /// Sequences an encoded event for a session, keeps it for replay, and sends it if the
    /// session has a connection.
    pub fn deliver_body(&mut self, session: SessionId, re: Option<u32>, body: &str) {
        let keep = self.rules.replay_events;
        let now = self.clock.now();
        let since = self.replay_since(now);
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        s.seq += 1;
        let frame: Utf8Bytes = frame::encode(s.seq, re, body).into();
        if keep > 0 {
            Self::trim_replay(s, keep - 1, since);
            s.replay.push_back(Kept {
                seq: s.seq,
                at: now,
                frame: frame.clone(),
            });
        }
        self.send_frame(session, frame);
    }

    /// The oldest time a kept event may carry now.
    fn replay_since(&self, now: Millis) -> Millis {
        now.saturating_sub(self.rules.replay_for.as_millis() as Millis)
    }

    /// Drops the kept events older than `since`, and the oldest beyond `keep`.
    fn trim_replay(s: &mut Session, keep: usize, since: Millis) {
        while s
            .replay
            .front()
            .is_some_and(|kept| s.replay.len() > keep || kept.at < since)
        {
            s.replay.pop_front();
        }
    }

    /// Lets go of the events every session keeps for longer than the replay window, so a busy
    /// spell's events do not stay in memory for good on sessions that have since gone quiet.
    pub fn forget_old_events(&mut self) {
        let (keep, since) = self.replay_bounds();
        for s in self.sessions.values_mut() {
            Self::forget_before(s, keep, since);
        }
    }

    /// [`Self::forget_old_events`] for one session.
    fn forget_old_events_of(&mut self, session: SessionId) {
        let (keep, since) = self.replay_bounds();
        if let Some(s) = self.sessions.get_mut(&session) {
            Self::forget_before(s, keep, since);
        }
    }

    /// How many events a session may keep, and the oldest time one may carry now.
    fn replay_bounds(&self) -> (usize, Millis) {
        (
            self.rules.replay_events,
            self.replay_since(self.clock.now()),
        )
    }

    fn forget_before(s: &mut Session, keep: usize, since: Millis) {
        Self::trim_replay(s, keep, since);
        if s.replay.is_empty() {
            // Hands back the room a busy spell made.
            s.replay = VecDeque::new();
        }
    }

    /// Sends an already sequenced frame; a connection whose queue is full is cut off (its
    /// session can resume and catch up from the replay window).
    fn send_frame(&mut self, session: SessionId, frame: Utf8Bytes) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(conn) = &s.conn else {
            return;
        };
        match conn.outbox.try_send(ToClient::Frame(frame)) {
            Ok(()) => {
                self.metrics.messages_out.inc();
            }
            Err(TrySendError::Full(_)) => {
                tracing::info!(session, "cutting off a connection that does not read");
                self.metrics.slow_clients.inc();
                // Dropping the sender tells the connection's task to close as too slow.
                s.conn = None;
                self.start_grace(session);
            }
            Err(TrySendError::Closed(_)) => {
                s.conn = None;
                self.start_grace(session);
            }
        }
    }
}
