//! What the writer thread and the store's handles share: whether the database takes writes right
//! now (for `/healthz`), how many writes were given up (for the exit code), and when to stop
//! retrying (set at shutdown).

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use prometheus_client::metrics::{
    counter::Counter, family::Family, gauge::Gauge, histogram::Histogram,
};

use super::{Instruments, StoreError, Write};
use crate::metrics::OutcomeLabel;

/// How long the writer keeps retrying once the server stops: long enough for a short lock to
/// lift, short enough to finish before a supervisor's own stop timeout (often 10 s) kills us.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(5);

pub(super) struct Shared {
    /// Why the last attempt to write failed; `None` once an attempt succeeds.
    problem: Mutex<Option<String>>,
    /// Writes given up for good since the store opened: a non-zero count fails the shutdown.
    pub(super) lost: AtomicU64,
    /// When the writer stops retrying; unset until shutdown, since until then every write is
    /// worth waiting for.
    deadline: Mutex<Option<Instant>>,
    /// `switchboard_store_errors_total`, by outcome: `retried` attempts and `lost` writes.
    errors: Family<OutcomeLabel, Counter>,
    /// Writes queued and not yet committed (or given up).
    backlog: Gauge,
    /// The backlog over which the store reports itself behind.
    backlog_limit: u64,
    commit_seconds: Histogram,
}

impl Shared {
    pub(super) fn new(backlog_limit: u64, instruments: Instruments) -> Self {
        Self {
            problem: Mutex::new(None),
            lost: AtomicU64::new(0),
            deadline: Mutex::new(None),
            errors: instruments.errors,
            backlog: instruments.backlog,
            backlog_limit,
            commit_seconds: instruments.commit_seconds,
        }
    }

    /// A batch committed in `took`.
    pub(super) fn committed(&self, took: std::time::Duration) {
        self.commit_seconds.observe(took.as_secs_f64());
    }

    /// `n` more writes are queued.
    pub(super) fn queued(&self, n: usize) {
        self.backlog.inc_by(n as i64);
    }

    /// `n` queued writes are committed or given up.
    pub(super) fn settled(&self, n: usize) {
        self.backlog.dec_by(n as i64);
    }

    /// The backlog, when it is over the limit.
    pub(super) fn behind(&self) -> Option<u64> {
        let backlog = self.backlog.get().max(0) as u64;
        (backlog > self.backlog_limit).then_some(backlog)
    }

    /// An attempt to commit failed and will be made again.
    pub(super) fn retrying(&self, error: &dyn std::fmt::Display) {
        self.count("retried");
        self.failing(error);
    }

    /// The database takes no writes: `/healthz` says why until an attempt succeeds.
    pub(super) fn failing(&self, error: &dyn std::fmt::Display) {
        let mut problem = self.problem.lock().unwrap_or_else(PoisonError::into_inner);
        let now = error.to_string();
        if problem.as_deref() != Some(&now) {
            let backlog = self.backlog.get();
            tracing::warn!(%error, backlog, "the database takes no writes");
            *problem = Some(now);
        }
    }

    /// An attempt to commit succeeded.
    pub(super) fn wrote(&self) {
        let mut problem = self.problem.lock().unwrap_or_else(PoisonError::into_inner);
        if problem.take().is_some() {
            tracing::info!("the database takes writes again");
        }
    }

    /// Gives up on one write: counted, and logged with what it was about.
    pub(super) fn lose(&self, write: &Write, reason: &dyn std::fmt::Display) {
        self.lost.fetch_add(1, Ordering::Relaxed);
        self.count("lost");
        let (call, user) = write.subject();
        tracing::error!(call, user, %reason, "a database write was lost");
    }

    fn count(&self, outcome: &'static str) {
        self.errors.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// Starts the shutdown countdown (once).
    pub(super) fn close(&self) {
        self.deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(|| Instant::now() + SHUTDOWN_PATIENCE);
    }

    /// How long retrying may still go on: `None` while the server runs.
    pub(super) fn time_left(&self) -> Option<Duration> {
        let deadline = *self.deadline.lock().unwrap_or_else(PoisonError::into_inner);
        deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Err when any write has been given up since the store opened.
    pub(super) fn outcome(&self) -> Result<(), StoreError> {
        match self.lost.load(Ordering::Relaxed) {
            0 => Ok(()),
            lost => Err(StoreError::Lost(lost)),
        }
    }
}

/// Whether the store can write, for `/healthz`. Cheap to clone; it does not keep the writer
/// running.
#[derive(Clone)]
pub struct Health(pub(super) Arc<Shared>);

impl Health {
    /// Why the database takes no writes right now, or is too far behind to take new calls;
    /// `None` when all is well.
    pub fn problem(&self) -> Option<String> {
        let failing = self
            .0
            .problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        failing.or_else(|| {
            self.0.behind().map(|backlog| {
                format!("the database is {backlog} writes behind: new calls are refused")
            })
        })
    }
}
