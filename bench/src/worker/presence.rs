//! The presence job: logs users out and back in at a steady rate, each user in turn, while
//! the sessions watching them time each delivery.

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

pub async fn run(shared: &Shared, rate: f64, length: Duration) -> PresenceDone {
    shared.reset();
    shared.mode.set(Mode::Presence);
    let n = shared.users.len();
    let watchers = shared.setup.watch.min(n.saturating_sub(1)) as u64;
    // A shuffled round: each user changes again only after all the others did, so a delivery
    // is never timed against a newer change of the same user.
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand::rng());
    let started = Instant::now();
    let mut toggles = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let elapsed = started.elapsed();
        if elapsed >= length {
            break;
        }
        let due = (rate * elapsed.as_secs_f64()) as u64;
        while toggles < due {
            let user = order[(toggles % n as u64) as usize];
            let _ = shared.users[user].tx.send(Cmd::Toggle);
            toggles += 1;
        }
    }
    let placing = started.elapsed();
    let expected = toggles * watchers;
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
