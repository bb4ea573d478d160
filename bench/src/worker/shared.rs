//! What one worker's sessions share: their users, the current job's mode, counters and
//! histograms. A worker runs on one thread, so plain `Cell`s and `RefCell`s do.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    time::Instant,
};

use tokio::sync::{Notify, mpsc};

use crate::{stats::Histogram, wire::Setup};

/// What a session's task is asked to send.
#[derive(Debug)]
pub enum Cmd {
    /// Call this worker's user at that local index; the call was due at that instant.
    Call(usize, Instant),
    /// Log out if logged in, else log in again; due at that instant.
    Toggle(Instant),
}

/// What one watcher heard of one watched user's changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Heard {
    /// The index of the first change after the last one heard.
    pub next: usize,
    /// Changes heard of.
    pub matched: usize,
}

/// One presence change a user made during a presence job.
#[derive(Clone, Copy, Debug)]
pub struct Change {
    pub scheduled: Instant,
    pub sent: Instant,
    /// Online after it.
    pub online: bool,
}

/// What the current job wants the sessions to do with the events they receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Idle,
    /// Answer every ringing call, hang up every answered one.
    Calls,
    /// Time presence deliveries.
    Presence,
    /// Let calls ring; count them.
    Ring,
}

pub struct User {
    pub id: String,
    pub tx: mpsc::UnboundedSender<Cmd>,
    /// When this user last placed a call, and when that call was due.
    pub sent_at: Cell<Option<Instant>>,
    pub scheduled_at: Cell<Option<Instant>>,
    /// The user this one last called (a worker index), until the call is refused.
    pub calling: Cell<Option<usize>>,
    /// The presence changes this user made in the current job, in order.
    pub changes: RefCell<Vec<Change>>,
    /// When this user (as callee) last answered.
    pub answered_at: Cell<Option<Instant>>,
    /// Logged in (as far as this tool asked).
    pub online: Cell<bool>,
    /// How many times this session's connection was (re)made; 1 after the first login.
    pub generation: Cell<u32>,
    /// The generation in which a ringing call last reached this user as callee.
    pub rung_in: Cell<u32>,
}

#[derive(Default)]
pub struct Counters {
    pub logged_in: Cell<usize>,
    pub failed: Cell<usize>,
    /// Sessions that logged in again after losing their first connection, and when the last
    /// did.
    pub back: Cell<usize>,
    pub last_back: Cell<Option<std::time::SystemTime>>,
    pub completed: Cell<u64>,
    /// When the last call completed, or the last presence delivery matched its change.
    pub last_done: Cell<Option<Instant>>,
    pub deliveries: Cell<u64>,
    pub duplicated: Cell<u64>,
    /// Presence events about a login made before the job began.
    pub earlier: Cell<u64>,
    pub stray: Cell<u64>,
    pub errors: Cell<u64>,
    /// Ringing calls seen by their callee on the first connection, and after a reconnect.
    pub rung: Cell<usize>,
    pub rerung: Cell<usize>,
    /// Connections the server closed (or that failed) while in use.
    pub dropped: Cell<u64>,
}

pub struct Shared {
    pub setup: Setup,
    pub users: Vec<User>,
    pub mode: Cell<Mode>,
    pub counters: Counters,
    pub error_codes: RefCell<Vec<String>>,
    pub login: RefCell<Histogram>,
    pub ring: RefCell<Histogram>,
    pub ring_scheduled: RefCell<Histogram>,
    pub ring_same_node: RefCell<Histogram>,
    pub ring_cross_node: RefCell<Histogram>,
    pub answer: RefCell<Histogram>,
    pub presence: RefCell<Histogram>,
    pub presence_scheduled: RefCell<Histogram>,
    /// Per (watcher, watched user): what the watcher heard of the watched user's changes.
    pub heard: RefCell<HashMap<(usize, usize), Heard>>,
    /// Users not in a call, for the call scheduler.
    pub free: RefCell<Vec<usize>>,
    /// Woken whenever a counter the controller waits on changes.
    pub changed: Notify,
}

impl Shared {
    /// This worker's index for a global user id `<tag>.<n>`.
    pub fn local(&self, id: &str) -> Option<usize> {
        let (tag, n) = id.split_once('.')?;
        if tag != self.setup.tag {
            return None;
        }
        let n: usize = n.parse().ok()?;
        let i = n.checked_sub(self.setup.first_user)?;
        (i < self.users.len()).then_some(i)
    }

    pub fn error(&self, code: String) {
        self.counters.errors.set(self.counters.errors.get() + 1);
        let mut codes = self.error_codes.borrow_mut();
        if codes.len() < 8 && !codes.contains(&code) {
            codes.push(code);
        }
    }

    pub fn bump(cell: &Cell<usize>) {
        cell.set(cell.get() + 1);
    }

    /// Clears what the previous job measured.
    pub fn reset(&self) {
        let c = &self.counters;
        c.completed.set(0);
        c.last_done.set(None);
        c.deliveries.set(0);
        c.duplicated.set(0);
        c.earlier.set(0);
        c.stray.set(0);
        self.heard.borrow_mut().clear();
        for user in &self.users {
            user.changes.borrow_mut().clear();
        }
        c.errors.set(0);
        c.dropped.set(0);
        self.error_codes.borrow_mut().clear();
        *self.ring.borrow_mut() = Histogram::default();
        *self.ring_scheduled.borrow_mut() = Histogram::default();
        *self.ring_same_node.borrow_mut() = Histogram::default();
        *self.ring_cross_node.borrow_mut() = Histogram::default();
        *self.answer.borrow_mut() = Histogram::default();
        *self.presence.borrow_mut() = Histogram::default();
        *self.presence_scheduled.borrow_mut() = Histogram::default();
    }
}
