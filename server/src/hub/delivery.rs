//! Delivering events: sequencing, encoding, keeping the replay window, and cutting off
//! connections that do not read.

use axum::extract::ws::Utf8Bytes;
use switchboard_proto::Event;
use tokio::sync::mpsc::error::TrySendError;

use super::{Outgoing, SessionId, state::State};

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
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        s.seq += 1;
        let frame: Utf8Bytes = Self::encode(s.seq, re, body).into();
        if keep > 0 {
            if s.replay.len() == keep {
                s.replay.pop_front();
            }
            s.replay.push_back((s.seq, frame.clone()));
        }
        self.send_frame(session, frame);
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
