//! Delivering events: sequencing, encoding, keeping the replay window, and cutting off
//! connections that do not read.

use std::collections::VecDeque;

use axum::extract::ws::Utf8Bytes;
use switchboard_proto::Event;
use tokio::sync::mpsc::error::TrySendError;

use super::{
    Outgoing, SessionId,
    state::{Kept, Session, State},
};
use crate::calls::Millis;

impl State {
    /// An event's JSON, encoded once however many sessions receive it.
    pub(super) fn body(event: &Event) -> String {
        serde_json::to_string(event).unwrap_or_else(|e| {
            tracing::error!(error = %e, "encoding an event failed");
            r#"{"type":"error","code":"internal","message":"internal server error"}"#.into()
        })
    }

    /// A server frame around an encoded event.
    pub(super) fn encode(seq: u64, re: Option<u32>, body: &str) -> String {
        match re {
            Some(re) => format!(r#"{{"seq":{seq},"re":{re},"ev":{body}}}"#),
            None => format!(r#"{{"seq":{seq},"ev":{body}}}"#),
        }
    }

    pub(super) fn deliver(&mut self, session: SessionId, re: Option<u32>, event: &Event) {
        self.deliver_body(session, re, &Self::body(event));
    }

    /// Sequences an encoded event for a session, keeps it for replay, and sends it if the
    /// session has a connection.
    pub(super) fn deliver_body(&mut self, session: SessionId, re: Option<u32>, body: &str) {
        let keep = self.config.limits.replay_events;
        let now = self.clock.now();
        let since = self.replay_since(now);
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        s.seq += 1;
        let frame: Utf8Bytes = Self::encode(s.seq, re, body).into();
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
        now.saturating_sub(self.config.replay_for.as_millis() as Millis)
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
    pub(super) fn forget_old_events(&mut self) {
        let (keep, since) = self.replay_bounds();
        for s in self.sessions.values_mut() {
            Self::forget_before(s, keep, since);
        }
    }

    /// [`Self::forget_old_events`] for one session.
    pub(super) fn forget_old_events_of(&mut self, session: SessionId) {
        let (keep, since) = self.replay_bounds();
        if let Some(s) = self.sessions.get_mut(&session) {
            Self::forget_before(s, keep, since);
        }
    }

    /// How many events a session may keep, and the oldest time one may carry now.
    fn replay_bounds(&self) -> (usize, Millis) {
        (
            self.config.limits.replay_events,
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
    pub(super) fn send_frame(&mut self, session: SessionId, frame: Utf8Bytes) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(conn) = &s.conn else {
            return;
        };
        match conn.outbox.try_send(Outgoing::Frame(frame)) {
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
