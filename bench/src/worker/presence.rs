//! The presence job: logs users out and back in at a steady rate, each user in turn, while
//! the sessions watching them time each delivery.
//!
//! Half the users change (even indices) and the other half watch (odd indices): the server
//! drops a session's watch list when it logs out, so a watcher that went offline itself would
//! rightly miss changes, and every expected delivery must go to a watcher that is online.
//!
//! Each event is matched to the change it reports, per (watcher, watched user): the first change
//! made so far, at or after the one the watcher last heard of, with the same state (changes
//! passed over on the way were missed). What matches is a delivery; an event repeating the
//! state of the change last heard, with no newer change of that state made yet, is a duplicate;
//! an `online` event before any change of the job is the user's own login heard late (the job
//! starts as soon as the last `logged_in` arrives, and the watchers' news of those last logins
//! may still be on its way): counted apart as earlier; anything else (a user it does not
//! watch, a state no change produced) is stray; changes a watcher never heard of are missing.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use super::{
    pacer::Pacer,
    shared::{Cmd, Mode, Shared},
    wait_until,
};
use crate::wire::PresenceDone;

/// How long deliveries still in flight at the end may take.
const DRAIN: Duration = Duration::from_secs(5);

/// Whether user `me` (this worker's index) watches others in the presence job.
pub fn watches(me: usize) -> bool {
    me % 2 == 1
}

/// Whether `watcher` has `user` on its watch list: user `w` watches `w + 1 ..= w + watch`.
fn watching(shared: &Shared, watcher: usize, user: usize) -> bool {
    let n = shared.users.len();
    let distance = (user + n - watcher) % n;
    watches(watcher) && distance >= 1 && distance <= shared.setup.watch.min(n.saturating_sub(1))
}

/// Matches one presence event heard by `watcher` to the change it reports.
pub fn heard(shared: &Shared, watcher: usize, user: &str, online: bool, now: Instant) {
    let c = &shared.counters;
    let bump = |cell: &std::cell::Cell<u64>| cell.set(cell.get() + 1);
    let Some(watched) = shared.local(user).filter(|&u| watching(shared, watcher, u)) else {
        bump(&c.stray);
        return;
    };
    let changes = shared.users[watched].changes.borrow();
    let mut heard = shared.heard.borrow_mut();
    let pair = heard.entry((watcher, watched)).or_default();
    let next = pair.next;
    match changes[next..]
        .iter()
        .position(|change| change.online == online)
    {
        Some(skipped) => {
            let change = &changes[next + skipped];
            pair.next = next + skipped + 1;
            pair.matched += 1;
            bump(&c.deliveries);
            c.last_done.set(Some(now));
            shared.presence.borrow_mut().record(now - change.sent);
            shared
                .presence_scheduled
                .borrow_mut()
                .record(now - change.scheduled);
            shared.changed.notify_waiters();
        }
        None if next > 0 && changes[next - 1].online == online => bump(&c.duplicated),
        None if next == 0 && online => bump(&c.earlier),
        _ => bump(&c.stray),
    }
}

pub async fn run(shared: &Shared, rate: f64, length: Duration) -> PresenceDone {
    shared.reset();
    shared.mode.set(Mode::Presence);
    let n = shared.users.len();
    let watch = shared.setup.watch.min(n.saturating_sub(1));
    // User `w` watches `w + 1 ..= w + watch`, so `u` is watched by the watchers among
    // `u - watch ..= u - 1`.
    let watchers_of = |u: usize| (1..=watch).filter(|k| watches((u + n - k) % n)).count() as u64;
    // A shuffled round: each user changes again only after all the others did, so a delivery
    // is never timed against a newer change of the same user.
    let mut order: Vec<usize> = (0..n).filter(|&u| !watches(u)).collect();
    let rounds = order.len().max(1) as u64;
    order.shuffle(&mut rand::rng());
    let mut pacer = Pacer::start(rate, length);
    let started = pacer.started();
    let mut toggles = 0u64;
    let mut expected = 0u64;
    while let Some(due) = pacer.due().await {
        while toggles < due && !order.is_empty() {
            let scheduled = pacer.scheduled(toggles);
            let user = order[(toggles % rounds) as usize];
            let _ = shared.users[user].tx.send(Cmd::Toggle(scheduled));
            expected += watchers_of(user);
            toggles += 1;
        }
    }
    let deliveries = &shared.counters.deliveries;
    wait_until(shared, DRAIN, || deliveries.get() >= expected).await;
    shared.mode.set(Mode::Idle);
    // Deliveries after the placing time count, so the time they took counts too.
    let last = shared.counters.last_done.get();
    let seconds = last
        .map_or(length, |at| (at - started).max(length))
        .as_secs_f64();
    // What was owed, from the changes actually sent, against what each watcher heard.
    let heard = shared.heard.borrow();
    let (mut owed, mut missing) = (0u64, 0u64);
    for (u, user) in shared.users.iter().enumerate() {
        let made = user.changes.borrow().len();
        for w in (0..n).filter(|&w| watching(shared, w, u)) {
            owed += made as u64;
            let matched = heard.get(&(w, u)).map_or(0, |pair| pair.matched);
            missing += made.saturating_sub(matched) as u64;
        }
    }
    // Leave everyone logged in for the next job.
    let now = Instant::now();
    for user in shared.users.iter().filter(|u| !u.online.get()) {
        let _ = user.tx.send(Cmd::Toggle(now));
    }
    PresenceDone {
        toggles,
        deliveries: deliveries.get(),
        expected: owed.max(expected),
        missing,
        duplicated: shared.counters.duplicated.get(),
        stray: shared.counters.stray.get(),
        earlier: shared.counters.earlier.get(),
        errors: shared.counters.errors.get(),
        error_codes: shared.error_codes.borrow().clone(),
        dropped: shared.counters.dropped.get(),
        seconds,
        latency: shared.presence.borrow().clone(),
        latency_scheduled: shared.presence_scheduled.borrow().clone(),
    }
}
