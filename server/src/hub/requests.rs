//! Routing each session's requests to what handles them, refusing what fails with a typed
//! error, and ending sessions: their grace ran out, or the server is shutting down.

use std::time::Instant;

use switchboard_proto::{ErrorCode, Event};

use super::{Attached, Request, SessionId, engine::Engine};
use crate::{calls::Input, store::Write};

impl Engine {
    pub(super) fn request(
        &mut self,
        at: Attached,
        re: Option<u32>,
        request: Request,
        received: Instant,
    ) {
        // A connection replaced by a resume may still be sending: ignore it.
        if !self.sessions.is_current(at) {
            return;
        }
        let session = at.session;
        // On one node the events are handed over before this returns; a cluster decides in
        // Redis first, so only one node's latency is measured here.
        let timed = match (&request, &self.cluster) {
            (Request::Call { .. }, None) => Some(&self.metrics.ring_seconds),
            (Request::Answer(_), None) => Some(&self.metrics.answer_seconds),
            _ => None,
        }
        .cloned();
        let result = match request {
            Request::Login(user) => self.login(session, re, user),
            Request::Logout => self.logout(session, re),
            Request::Call { to } => self.place_call(session, re, to),
            Request::Answer(call) => self.act_on_call(session, re, call, |by| Input::Answer { by }),
            Request::Reject(call) => self.act_on_call(session, re, call, |by| Input::Reject { by }),
            Request::Cancel(call) => self.act_on_call(session, re, call, |by| Input::Cancel { by }),
            Request::Hangup(call) => self.act_on_call(session, re, call, |by| Input::Hangup { by }),
            Request::Watch(users) => self.watch(session, re, users),
            Request::Refused(code) => Err(code),
        };
        match result {
            Err(code) => self.refuse(session, re, code),
            Ok(()) => {
                if let Some(histogram) = timed {
                    histogram.observe(received.elapsed().as_secs_f64());
                }
            }
        }
    }

    pub(super) fn refuse(&mut self, session: SessionId, re: Option<u32>, code: ErrorCode) {
        self.metrics.refused(code);
        self.sessions.deliver(
            session,
            re,
            &Event::Error {
                code,
                message: code.describe().to_string(),
            },
        );
    }

    /// The session's client did not come back within the grace period: its user may go
    /// offline, and it is forgotten.
    pub(super) fn expire_session(&mut self, session: SessionId) {
        self.leave_user(session);
        self.set_watching(session, Vec::new());
        self.sessions.remove(session);
    }

    /// Notes when everybody online was last seen, and closes every connection.
    pub(super) fn close_all(&mut self) {
        let now = self.clock.now();
        for user in self.directory.everyone_online() {
            self.writes.push(Write::SeenUser { user, at: now });
        }
        self.sessions.close_all();
    }
}
