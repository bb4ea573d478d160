//! What the coordinating process and its worker processes say to each other: one JSON object
//! per line, jobs on the worker's stdin, reports on its stdout.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::stats::Histogram;

/// The sessions a worker holds, given once at its start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Setup {
    /// The nodes to connect to: user `n` connects to node `n % nodes.len()` (one node: all).
    pub nodes: Vec<Node>,
    /// Global index of this worker's first user; users are named `<tag>.<index>`.
    pub first_user: usize,
    /// Fresh for every run, so a run never meets users a previous run left in their grace
    /// period on a shared server.
    pub tag: String,
    pub users: usize,
    pub sources: Vec<Ipv4Addr>,
    /// Sign identities with this secret instead of using demo logins.
    pub jwt_secret: Option<String>,
    /// Handshakes in flight at once, per worker.
    pub concurrency: usize,
    /// Each user watches this many of the worker's other users.
    pub watch: usize,
    /// Reconnect (and log in again) whenever a connection drops.
    pub reconnect: bool,
}

/// One server (or node of a cluster) to connect to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    pub server: SocketAddr,
    pub url: String,
}

impl Setup {
    /// The node a user (by global index) connects to on its `tries`th attempt: its own node
    /// first, the next one after each lost or failed connection (its node may be gone).
    pub fn node_of(&self, user: usize, tries: u32) -> &Node {
        let n = self.nodes.len();
        &self.nodes[(user + tries.saturating_sub(1) as usize) % n]
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Job {
    /// Place calls at `rate` per second for `millis`, each answered and hung up at once.
    Calls { rate: f64, millis: u64 },
    /// Log users out and back in at `rate` per second for `millis`.
    Presence { rate: f64, millis: u64 },
    /// User `2i` calls user `2i+1` for the first `pairs` pairs; nobody answers.
    Ring { pairs: usize },
    /// Report once every session (or, with `node`, every session of that node) is logged in
    /// again, and every ringing call rang again.
    AwaitBack { millis: u64, node: Option<usize> },
    /// Close every connection and exit.
    Quit,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Connected {
    pub sessions: usize,
    pub failed: usize,
    /// From the first connect to the last `logged_in`, in seconds.
    pub seconds: f64,
    /// Connect + hello + login, per session.
    pub login: Histogram,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CallsDone {
    pub placed: u64,
    pub completed: u64,
    /// Calls due but not placed because every user was already in a call.
    pub skipped: u64,
    pub errors: u64,
    pub error_codes: Vec<String>,
    /// Connections lost during the job.
    pub dropped: u64,
    /// From the first call's scheduled time to the last completion (or the end of placing,
    /// whichever is later): the time the counted work took.
    pub seconds: f64,
    /// The time calls were being placed.
    pub placing_seconds: f64,
    /// From the command's sending to the callee's event.
    pub ring: Histogram,
    /// From the command's scheduled time (`start + n / rate`) to the callee's event: what a
    /// caller would see if the tool itself fell behind (no coordinated omission).
    pub ring_scheduled: Histogram,
    pub answer: Histogram,
    /// With several nodes: the ring of calls whose caller and callee are on the same node, and
    /// on different ones.
    pub ring_same_node: Histogram,
    pub ring_cross_node: Histogram,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PresenceDone {
    pub toggles: u64,
    /// Events that matched the next change a watcher was due to hear of its user.
    pub deliveries: u64,
    /// Deliveries expected from the toggles placed (toggles × watchers).
    pub expected: u64,
    /// (change, watcher) pairs never heard of.
    pub missing: u64,
    /// Events repeating the state a watcher had already been told.
    pub duplicated: u64,
    /// Events about a user the watcher does not watch, or a change that never happened.
    pub stray: u64,
    /// `online` events about a login made before the job began, heard after it began.
    pub earlier: u64,
    pub errors: u64,
    pub error_codes: Vec<String>,
    /// Connections lost during the job.
    pub dropped: u64,
    pub seconds: f64,
    pub latency: Histogram,
    /// From the change's scheduled time, as `CallsDone::ring_scheduled`.
    pub latency_scheduled: Histogram,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Report {
    Connected(Connected),
    Calls(CallsDone),
    Presence(PresenceDone),
    /// Ringing calls seen by their callees.
    Ringing {
        calls: usize,
    },
    /// Every session logged in again; the last at `last_at_ms` (Unix time, 0: none).
    Back {
        sessions: usize,
        last_at_ms: u64,
    },
    /// After `Back`: ringing calls that rang again for their callee.
    Rerung {
        calls: usize,
    },
    Failed(String),
}
