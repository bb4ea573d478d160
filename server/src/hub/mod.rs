//! The hub: one task that owns presence, sessions and live calls. Connections, HTTP handlers
//! and timers talk to it through a bounded channel; it never touches the database itself, it
//! queues writes for the store.

mod backend;
mod call_book;
mod call_flow;
mod clock;
mod cluster_calls;
mod directory;
mod engine;
mod frame;
mod node_sessions;
mod presence;
mod requests;

use std::{sync::Arc, time::Duration};

use axum::extract::ws::Utf8Bytes;
use switchboard_proto::{CallId, ErrorCode, Resume, UserRef};
use tokio::sync::{mpsc, oneshot};

pub use backend::{LiveQuery, UserPresence};
pub use clock::Clock;
use engine::Engine;

use crate::{
    cluster::{Cluster, ClusterEvent},
    config::Limits,
    metrics::Metrics,
    rooms::{Joiner, RoomProvider},
    store::{Loaded, Store},
};

/// Messages queued for the hub before senders wait.
const QUEUE: usize = 8_192;

pub type SessionId = u64;
pub type ConnId = u64;

/// What the hub sends to a connection's task.
#[derive(Debug)]
pub enum ToClient {
    /// One encoded server frame.
    Frame(Utf8Bytes),
    /// Close the connection with this code and reason.
    Close(u16, &'static str),
}

/// A connection's place at the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attached {
    pub session: SessionId,
    pub conn: ConnId,
}

/// A client command, its credentials already checked by the session task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Login(UserRef),
    Logout,
    Call {
        to: String,
    },
    Answer(CallId),
    Reject(CallId),
    Cancel(CallId),
    Hangup(CallId),
    Watch(Vec<String>),
    /// The session task refused the frame itself; the hub sequences the error.
    Refused(ErrorCode),
}

/// What an HTTP handler does with a participant's link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkAction {
    /// The participant follows the link (a callee's link answers a ringing call).
    Join,
    /// Only ask whether the link works; change nothing.
    Peek,
    /// The participant hung up from the room page.
    Hangup,
    /// The conferencing server failed for this participant; tell their tabs and note it.
    RoomFailed(String),
}

enum Msg {
    Attach {
        resume: Option<Resume>,
        outbox: crate::outbox::Outbox<ToClient>,
        reply: oneshot::Sender<Attached>,
    },
    Request {
        at: Attached,
        re: Option<u32>,
        request: Request,
        /// When the connection handed it over, for the latency histograms.
        received: std::time::Instant,
    },
    Detach(Attached),
    Link {
        token: String,
        action: LinkAction,
        reply: oneshot::Sender<Option<Joiner>>,
    },
    /// A request from the site's backend (the HTTP API).
    Backend(backend::Ask),
    /// New limits from a configuration reload.
    Limits(Limits),
    Shutdown(oneshot::Sender<()>),
}

/// How the hub behaves; taken from the validated configuration.
#[derive(Clone, Debug)]
pub struct HubConfig {
    pub ring_timeout: Duration,
    pub presence_grace: Duration,
    pub max_call_duration: Duration,
    pub single_session: bool,
    pub limits: Limits,
    /// How long a sent event is kept for a client that reconnects: the longest a client can
    /// go without hearing from the server and still resume (the time the server may take to
    /// notice a dead connection, then the grace period). An event older than that on a live
    /// session cannot be missing from any client that can still resume it.
    pub replay_for: Duration,
    /// Join links are `{public_url}/join/{token}`.
    pub public_url: String,
    /// Webhooks are on: users coming online and going offline are recorded for them.
    pub record_presence: bool,
}

/// A handle to the hub task. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    tx: mpsc::Sender<Msg>,
}

#[derive(Debug, thiserror::Error)]
#[error("the server is shutting down")]
pub struct HubGone;

impl Hub {
    /// Starts the hub task with what the store loaded.
    pub fn spawn(
        config: HubConfig,
        loaded: Loaded,
        store: Store,
        rooms: Arc<dyn RoomProvider>,
        metrics: Arc<Metrics>,
        clock: Clock,
        cluster: Option<(Cluster, mpsc::UnboundedReceiver<ClusterEvent>)>,
    ) -> Hub {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (cluster, events) = cluster.unzip();
        let engine = Engine::new(config, loaded, store, rooms, metrics, clock, cluster);
        tokio::spawn(engine.run(rx, events));
        Hub { tx }
    }

    async fn ask<T>(&self, msg: impl FnOnce(oneshot::Sender<T>) -> Msg) -> Result<T, HubGone> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(msg(reply)).await.map_err(|_| HubGone)?;
        answer.await.map_err(|_| HubGone)
    }

    /// Gives a new connection its session: the resumed one if the key is known, else a new one.
    /// The welcome (and any missed events) are already queued on `outbox` when this returns.
    pub async fn attach(
        &self,
        resume: Option<Resume>,
        outbox: crate::outbox::Outbox<ToClient>,
    ) -> Result<Attached, HubGone> {
        self.ask(|reply| Msg::Attach {
            resume,
            outbox,
            reply,
        })
        .await
    }

    pub async fn request(
        &self,
        at: Attached,
        re: Option<u32>,
        request: Request,
    ) -> Result<(), HubGone> {
        self.tx
            .send(Msg::Request {
                at,
                re,
                request,
                received: std::time::Instant::now(),
            })
            .await
            .map_err(|_| HubGone)
    }

    /// The connection is gone; its session waits out the grace period.
    pub async fn detach(&self, at: Attached) {
        let _ = self.tx.send(Msg::Detach(at)).await;
    }

    /// Resolves a participant's link token and acts on it; `None` for a token that names no live
    /// call (or a caller's link before the call is answered).
    pub async fn link(&self, token: String, action: LinkAction) -> Option<Joiner> {
        self.ask(|reply| Msg::Link {
            token,
            action,
            reply,
        })
        .await
        .ok()
        .flatten()
    }

    /// Puts new limits in force: the call and login rates (restarted when changed), sessions per
    /// user and users kept in memory. Each session's replay window keeps the size it was given.
    pub async fn set_limits(&self, limits: Limits) {
        let _ = self.tx.send(Msg::Limits(limits)).await;
    }

    /// Whether the hub task is still running (it only stops at shutdown).
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Closes every connection and hands the last writes to the store.
    pub async fn shutdown(&self) {
        let _ = self.ask(Msg::Shutdown).await;
    }
}

/// A fresh random token: `bytes` random bytes, base64url.
pub(crate) fn token(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
