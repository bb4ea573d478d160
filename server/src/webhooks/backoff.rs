//! Pauses between attempts at an event, and at an endpoint that failed a whole round:
//! exponential from one second, capped, with jitter so the events queued during an outage are
//! not all retried in the same instant.

use std::time::Duration;

/// The pause after a first failure.
const FIRST: Duration = Duration::from_secs(1);

/// The pause after the `failures`th failure in a row (1 for the first), at most `cap`; `unit`
/// is a random number in [0, 1). Half of it is fixed and half random: never zero, never in
/// lock-step with other senders.
pub fn pause(failures: u32, cap: Duration, unit: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    let ceiling = FIRST.saturating_mul(1 << doublings).min(cap);
    ceiling / 2 + ceiling.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
}

/// [`pause`] with a fresh random number.
pub fn random_pause(failures: u32, cap: Duration) -> Duration {
    pause(failures, cap, rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_secs(600);

    #[test]
    fn doubles_from_a_second() {
        assert_eq!(pause(1, CAP, 0.0), Duration::from_millis(500));
        assert_eq!(pause(1, CAP, 1.0), Duration::from_secs(1));
        assert_eq!(pause(2, CAP, 1.0), Duration::from_secs(2));
        assert_eq!(pause(5, CAP, 1.0), Duration::from_secs(16));
        // Zero failures is treated as the first.
        assert_eq!(pause(0, CAP, 1.0), Duration::from_secs(1));
    }

    #[test]
    fn stops_growing_at_the_cap() {
        assert_eq!(pause(11, CAP, 1.0), CAP);
        assert_eq!(pause(u32::MAX, CAP, 1.0), CAP);
        assert_eq!(pause(u32::MAX, CAP, 0.0), CAP / 2);
        assert_eq!(
            pause(3, Duration::from_secs(2), 1.0),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn jitter_stays_within_the_upper_half() {
        for failures in 1..20 {
            let ceiling = pause(failures, CAP, 1.0);
            for _ in 0..50 {
                let p = random_pause(failures, CAP);
                assert!(p >= ceiling / 2 && p <= ceiling, "{failures}: {p:?}");
            }
        }
    }
}
