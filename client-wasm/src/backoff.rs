//! Reconnect delays: exponential with full jitter, so a server restart is not met by a
//! thundering herd of browsers reconnecting in the same millisecond.

/// First delay before reconnecting, in milliseconds.
const FIRST_MS: f64 = 500.0;
/// Longest delay, in milliseconds.
const MAX_MS: f64 = 30_000.0;

#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The delay before the next attempt; `unit` is a random number in [0, 1).
    pub fn next_delay(&mut self, unit: f64) -> u32 {
        let ceiling = (FIRST_MS * 2f64.powi(self.failures.min(16) as i32)).min(MAX_MS);
        self.failures = self.failures.saturating_add(1);
        // Half fixed, half random: never zero, never in lock-step with other browsers.
        (ceiling / 2.0 + ceiling / 2.0 * unit.clamp(0.0, 1.0)) as u32
    }

    /// A connection got through: start over from the shortest delay.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_caps() {
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(0.0), 250);
        assert_eq!(b.next_delay(1.0), 1000);
        let d = b.next_delay(0.5);
        assert!((1000..=2000).contains(&d));
        for _ in 0..30 {
            assert!(b.next_delay(1.0) <= 30_000);
        }
        b.reset();
        assert_eq!(b.next_delay(1.0), 500);
    }
}
