//! The calls job: places calls between random free users of this worker at a steady rate;
//! the sessions answer and hang up each one as soon as it arrives.

use std::time::Duration;

use super::{
    pacer::Pacer,
    shared::{Cmd, Mode, Shared},
    wait_until,
};
use crate::wire::CallsDone;

/// How long calls still in flight at the end may take to finish.
const DRAIN: Duration = Duration::from_secs(5);

pub async fn run(shared: &Shared, rate: f64, length: Duration) -> CallsDone {
    shared.reset();
    shared.mode.set(Mode::Calls);
    *shared.free.borrow_mut() = (0..shared.users.len())
        .filter(|&i| shared.users[i].online.get())
        .collect();
    let mut pacer = Pacer::start(rate, length);
    let started = pacer.started();
    let (mut placed, mut skipped) = (0u64, 0u64);
    while let Some(due) = pacer.due().await {
        while placed + skipped < due {
            // When this call was due: the tool's own lateness counts against the server too.
            let scheduled = pacer.scheduled(placed + skipped);
            let mut free = shared.free.borrow_mut();
            if free.len() < 2 {
                skipped += 1;
                continue;
            }
            let pick = rand::random_range(0..free.len());
            let caller = free.swap_remove(pick);
            let pick = rand::random_range(0..free.len());
            let callee = free.swap_remove(pick);
            drop(free);
            let _ = shared.users[caller].tx.send(Cmd::Call(callee, scheduled));
            placed += 1;
        }
    }
    let placing = started.elapsed();
    let completed = &shared.counters.completed;
    wait_until(shared, DRAIN, || completed.get() >= placed).await;
    shared.mode.set(Mode::Idle);
    // Completions after the placing time count, so the time they took counts too.
    let last = shared.counters.last_done.get();
    let seconds = last.map_or(placing, |at| (at - started).max(placing));
    CallsDone {
        placed,
        completed: completed.get(),
        skipped,
        errors: shared.counters.errors.get(),
        error_codes: shared.error_codes.borrow().clone(),
        dropped: shared.counters.dropped.get(),
        seconds: seconds.as_secs_f64(),
        placing_seconds: placing.as_secs_f64(),
        ring: shared.ring.borrow().clone(),
        ring_scheduled: shared.ring_scheduled.borrow().clone(),
        ring_same_node: shared.ring_same_node.borrow().clone(),
        ring_cross_node: shared.ring_cross_node.borrow().clone(),
        answer: shared.answer.borrow().clone(),
    }
}
