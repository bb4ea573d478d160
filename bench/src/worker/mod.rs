//! A worker process: holds its share of the sessions on one thread and runs the jobs the
//! coordinator sends on stdin, reporting each on stdout.

mod calls;
mod pacer;
mod presence;
mod session;
mod shared;

use std::{
    cell::{Cell, RefCell},
    io::Write,
    rc::Rc,
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    sync::{Notify, Semaphore, mpsc},
    task::LocalSet,
};

use crate::wire::{Connected, Job, Report, Setup};
use shared::{Counters, Mode, Shared, User};

pub fn main() -> anyhow::Result<()> {
    crate::machine::raise_nofile();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    LocalSet::new().block_on(&runtime, serve())
}

fn report(report: &Report) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, report);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

async fn serve() -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let setup: Setup = serde_json::from_str(&lines.next_line().await?.context("no setup")?)?;
    let shared = start(setup);
    report(&Report::Connected(connected(&shared).await));
    while let Some(line) = lines.next_line().await? {
        let job: Job = serde_json::from_str(&line)?;
        let answer = match job {
            Job::Calls { rate, millis } => {
                Report::Calls(calls::run(&shared, rate, Duration::from_millis(millis)).await)
            }
            Job::Presence { rate, millis } => {
                Report::Presence(presence::run(&shared, rate, Duration::from_millis(millis)).await)
            }
            Job::Ring { pairs } => ring(&shared, pairs).await,
            Job::AwaitBack { millis, node } => {
                await_back(&shared, Duration::from_millis(millis), node).await;
                continue;
            }
            // Exiting closes every socket with a reset (they linger 0).
            Job::Quit => return Ok(()),
        };
        report(&answer);
    }
    Ok(())
}

/// Builds the users and spawns one task per session.
fn start(setup: Setup) -> Rc<Shared> {
    let mut receivers = Vec::with_capacity(setup.users);
    let users = (0..setup.users)
        .map(|i| {
            let (tx, rx) = mpsc::unbounded_channel();
            receivers.push(rx);
            User {
                id: format!("{}.{}", setup.tag, setup.first_user + i),
                tx,
                sent_at: Cell::new(None),
                scheduled_at: Cell::new(None),
                calling: Cell::new(None),
                changes: RefCell::default(),
                answered_at: Cell::new(None),
                online: Cell::new(false),
                generation: Cell::new(0),
                rung_in: Cell::new(0),
            }
        })
        .collect();
    let permits = Rc::new(Semaphore::new(setup.concurrency.max(1)));
    let shared = Rc::new(Shared {
        setup,
        users,
        mode: Cell::new(Mode::Idle),
        counters: Counters::default(),
        error_codes: RefCell::new(Vec::new()),
        login: RefCell::default(),
        ring: RefCell::default(),
        ring_scheduled: RefCell::default(),
        ring_same_node: RefCell::default(),
        ring_cross_node: RefCell::default(),
        answer: RefCell::default(),
        presence: RefCell::default(),
        presence_scheduled: RefCell::default(),
        heard: RefCell::default(),
        free: RefCell::new(Vec::new()),
        changed: Notify::new(),
    });
    for (i, rx) in receivers.into_iter().enumerate() {
        tokio::task::spawn_local(session::run(shared.clone(), i, rx, permits.clone()));
    }
    shared
}

/// Waits until `done` holds or `patience` runs out; true if it holds.
async fn wait_until(shared: &Shared, patience: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + patience;
    while !done() {
        let notified = shared.changed.notified();
        // Counters change without a wake-up too (a dropped connection), so look again soon.
        let wake = tokio::time::Instant::now() + Duration::from_millis(50);
        if tokio::time::timeout_at(wake.min(deadline), notified)
            .await
            .is_err()
            && tokio::time::Instant::now() >= deadline
        {
            return done();
        }
    }
    true
}

async fn connected(shared: &Shared) -> Connected {
    let started = Instant::now();
    let n = shared.users.len();
    let c = &shared.counters;
    wait_until(shared, Duration::from_secs(300), || {
        c.logged_in.get() + c.failed.get() >= n
    })
    .await;
    Connected {
        sessions: c.logged_in.get(),
        failed: c.failed.get(),
        seconds: started.elapsed().as_secs_f64(),
        login: shared.login.borrow().clone(),
    }
}

/// User `2i` calls user `2i+1`; waits until every callee heard it ring.
async fn ring(shared: &Shared, pairs: usize) -> Report {
    shared.reset();
    shared.mode.set(Mode::Ring);
    let pairs = pairs.min(shared.users.len() / 2);
    let now = std::time::Instant::now();
    for i in 0..pairs {
        let _ = shared.users[2 * i]
            .tx
            .send(shared::Cmd::Call(2 * i + 1, now));
    }
    let rung = &shared.counters.rung;
    wait_until(shared, Duration::from_secs(30), || rung.get() >= pairs).await;
    Report::Ringing { calls: rung.get() }
}

/// Reports `Back` once every session logged in on a new connection, then `Rerung` once every
/// call that rang before rang again (or `patience` ran out).
async fn await_back(shared: &Shared, patience: Duration, node: Option<usize>) {
    let setup = &shared.setup;
    let n = match node {
        Some(node) => (0..shared.users.len())
            .filter(|i| (setup.first_user + i) % setup.nodes.len() == node)
            .count(),
        None => shared.users.len(),
    };
    let c = &shared.counters;
    wait_until(shared, patience, || c.back.get() >= n).await;
    let last_at_ms = c
        .last_back
        .get()
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    report(&Report::Back {
        sessions: c.back.get(),
        last_at_ms,
    });
    let expected = c.rung.get();
    wait_until(shared, Duration::from_secs(10), || {
        c.rerung.get() >= expected
    })
    .await;
    report(&Report::Rerung {
        calls: c.rerung.get(),
    });
}
