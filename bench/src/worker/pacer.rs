//! The schedule a job sends on: a thread that sleeps to each send's due time and tells the
//! worker how many sends are due. The runtime's own timer wakes on whole milliseconds only, so a
//! send paced by it would leave up to two milliseconds late, and that lateness would be counted
//! against the server in the latency from the scheduled send.

use std::{
    thread,
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

/// The shortest time between two wake-ups of the pacing thread: at high rates it hands over
/// several sends at a time rather than waking for each.
const MIN_GAP: Duration = Duration::from_micros(100);

/// Sends at `rate` per second from `started` for `length`.
pub struct Pacer {
    due: mpsc::UnboundedReceiver<u64>,
    rate: f64,
    started: Instant,
}

impl Pacer {
    pub fn start(rate: f64, length: Duration) -> Pacer {
        let started = Instant::now();
        let total = (rate * length.as_secs_f64()).ceil() as u64;
        let (tx, due) = mpsc::unbounded_channel();
        thread::spawn(move || {
            let mut handed = 0;
            while handed < total {
                let next = started + Duration::from_secs_f64(handed as f64 / rate);
                let now = Instant::now();
                if next > now {
                    thread::sleep(next - now);
                }
                // Every send due by now, so none waits for a later wake-up.
                let elapsed = started.elapsed().as_secs_f64();
                handed = ((elapsed * rate) as u64 + 1).clamp(handed + 1, total);
                if tx.send(handed).is_err() {
                    return;
                }
                thread::sleep(MIN_GAP);
            }
        });
        Pacer { due, rate, started }
    }

    /// How many sends are due in all since the start; `None` once the schedule is over.
    pub async fn due(&mut self) -> Option<u64> {
        let mut due = self.due.recv().await?;
        while let Ok(more) = self.due.try_recv() {
            due = more;
        }
        Some(due)
    }

    /// When send number `n` (from 0) was due.
    pub fn scheduled(&self, n: u64) -> Instant {
        self.started + Duration::from_secs_f64(n as f64 / self.rate)
    }

    pub fn started(&self) -> Instant {
        self.started
    }
}
