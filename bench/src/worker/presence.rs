//! The presence job: logs users out and back in at a steady rate, each user in turn, while
//! the sessions watching them time each delivery.
//!
//! Half the users change (even indices) and the other half watch (odd indices): the server
//! drops a session's watch list when it logs out, so a watcher that went offline itself would
//! rightly miss changes, and every expected delivery must go to a watcher that is online.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use tokio::time::MissedTickBehavior;

use super::{
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
    let started = Instant::now();
    let mut toggles = 0u64;
    let mut expected = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let elapsed = started.elapsed();
        if elapsed >= length {
            break;
        }
        let due = (rate * elapsed.as_secs_f64()) as u64;
        while toggles < due && !order.is_empty() {
            let user = order[(toggles % rounds) as usize];
            let _ = shared.users[user].tx.send(Cmd::Toggle);
            expected += watchers_of(user);
            toggles += 1;
        }
    }
    let placing = started.elapsed();
    let deliveries = &shared.counters.deliveries;
    wait_until(shared, DRAIN, || deliveries.get() >= expected).await;
    // Leave everyone logged in for the next job.
    for user in shared.users.iter().filter(|u| !u.online.get()) {
        let _ = user.tx.send(Cmd::Toggle);
    }
    shared.mode.set(Mode::Idle);
    PresenceDone {
        toggles,
        deliveries: deliveries.get(),
        expected,
        errors: shared.counters.errors.get(),
        error_codes: shared.error_codes.borrow().clone(),
        dropped: shared.counters.dropped.get(),
        seconds: placing.as_secs_f64(),
        latency: shared.presence.borrow().clone(),
    }
}
