//! Wall-clock milliseconds that follow tokio's clock, so paused time in tests moves them too.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::calls::Millis;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    wall_at_start: Millis,
    start: Instant,
}

impl Clock {
    pub fn new() -> Self {
        let wall_at_start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or_default();
        Self {
            wall_at_start,
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> Millis {
        self.wall_at_start + self.start.elapsed().as_millis() as Millis
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
