//! Sessions: attaching connections (new or resumed), detaching them, the grace period, and
//! routing each session's requests.

use std::collections::VecDeque;

use axum::extract::ws::Utf8Bytes;
use switchboard_proto::{ErrorCode, Event, PROTOCOL_VERSION, Resume, close};
use tokio::sync::mpsc;

use super::{
    Attached, Outgoing, Request,
    state::{Conn, Session, State, Timer},
};

/// Bytes of randomness in a resume key.
const KEY_BYTES: usize = 16;

impl State {
    pub(super) fn attach(
        &mut self,
        resume: Option<Resume>,
        outbox: mpsc::Sender<Outgoing>,
    ) -> Attached {
        let conn = self.next_session_id();
        let resumed = resume.and_then(|r| self.keys.get(&r.session).map(|&id| (id, r.last_seq)));
        if let Some((id, _)) = resumed {
            // Nothing past the replay window is replayed, however long ago it was trimmed.
            self.forget_old_events_of(id);
        }
        let (session, last_seq) = match resumed {
            Some((id, last_seq)) => (id, Some(last_seq)),
            None => {
                let id = self.next_session_id();
                let key = Self::token(KEY_BYTES);
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
                (id, None)
            }
        };
        let Some(s) = self.sessions.get_mut(&session) else {
            return Attached { session, conn };
        };
        if let Some(key) = s.grace.take() {
            self.timers.try_remove(&key);
        }
        if let Some(old) = s.conn.take() {
            let _ = old.outbox.try_send(Outgoing::Close(
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
            let key = Self::token(KEY_BYTES);
            self.keys
                .remove(&std::mem::replace(&mut s.key, key.clone()));
            self.keys.insert(key, session);
        }
        let welcome = Event::Welcome {
            v: PROTOCOL_VERSION,
            session: s.key.clone(),
            resumed: missed.is_some(),
            ring_timeout_ms: self.config.ring_timeout.as_millis() as u64,
        };
        let frame = Self::encode(0, None, &Self::body(&welcome));
        // A fresh queue always has room for the welcome.
        let _ = outbox.try_send(Outgoing::Frame(frame.into()));
        s.conn = Some(Conn { id: conn, outbox });
        for frame in missed.unwrap_or_default() {
            self.send_frame(session, frame);
        }
        Attached { session, conn }
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

    pub(super) fn detach(&mut self, at: Attached) {
        let Some(s) = self.sessions.get_mut(&at.session) else {
            return;
        };
        if s.conn.as_ref().is_some_and(|c| c.id == at.conn) {
            s.conn = None;
            self.start_grace(at.session);
        }
    }

    /// Keeps a session without a connection for the grace period, then ends it.
    pub(super) fn start_grace(&mut self, session: u64) {
        let grace = self.config.presence_grace;
        if let Some(s) = self.sessions.get_mut(&session)
            && s.grace.is_none()
        {
            s.grace = Some(self.timers.insert(Timer::Grace(session), grace));
        }
    }

    pub(super) fn expire_session(&mut self, session: u64) {
        if self.sessions.get(&session).is_none_or(|s| s.conn.is_some()) {
            return;
        }
        self.leave_user(session);
        self.set_watching(session, Vec::new());
        if let Some(s) = self.sessions.remove(&session) {
            self.keys.remove(&s.key);
            self.metrics.sessions.dec();
        }
    }

    pub(super) fn close_all(&mut self) {
        let now = self.clock.now();
        for (id, online) in &self.online {
            self.writes.push(crate::store::Write::SeenUser {
                user: switchboard_proto::UserRef {
                    id: id.clone(),
                    name: online.name.clone(),
                },
                at: now,
            });
        }
        for s in self.sessions.values_mut() {
            if let Some(conn) = s.conn.take() {
                let _ = conn
                    .outbox
                    .try_send(Outgoing::Close(1001, "the server is shutting down"));
            }
        }
    }

    pub(super) fn request(&mut self, at: Attached, re: Option<u32>, request: Request) {
        // A connection replaced by a resume may still be sending: ignore it.
        let current = self
            .sessions
            .get(&at.session)
            .and_then(|s| s.conn.as_ref())
            .is_some_and(|c| c.id == at.conn);
        if !current {
            return;
        }
        let session = at.session;
        let result = match request {
            Request::Login(user) => self.login(session, re, user),
            Request::Logout => self.logout(session, re),
            Request::Call { to } => self.place_call(session, re, to),
            Request::Answer(call) => {
                self.act_on_call(session, re, call, |by| crate::calls::Input::Answer { by })
            }
            Request::Reject(call) => {
                self.act_on_call(session, re, call, |by| crate::calls::Input::Reject { by })
            }
            Request::Cancel(call) => {
                self.act_on_call(session, re, call, |by| crate::calls::Input::Cancel { by })
            }
            Request::Hangup(call) => {
                self.act_on_call(session, re, call, |by| crate::calls::Input::Hangup { by })
            }
            Request::Watch(users) => self.watch(session, re, users),
            Request::Refused(code) => Err(code),
        };
        if let Err(code) = result {
            self.refuse(session, re, code);
        }
    }

    pub(super) fn refuse(&mut self, session: u64, re: Option<u32>, code: ErrorCode) {
        self.metrics.refused(code);
        self.deliver(
            session,
            re,
            &Event::Error {
                code,
                message: code.describe().to_string(),
            },
        );
    }
}
