//! Latency histograms small enough to send between processes, and the summaries printed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Values below this are counted exactly; above it each power of two has this many buckets,
/// so a reported percentile is within 1/128 (< 0.8 %) of the true one.
const SUB: u64 = 128;
const SUB_BITS: u32 = 7;

/// A log-linear histogram of nanoseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let shift = exp - SUB_BITS;
    let mantissa = v >> shift;
    (SUB + u64::from(shift) * SUB + (mantissa - SUB)) as usize
}

/// The middle of a bucket's range.
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = (i - SUB) / SUB;
    let mantissa = SUB + (i - SUB) % SUB;
    (mantissa << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        let v = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = index(v);
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (0..=1), in nanoseconds.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value(i).min(self.max);
            }
        }
        self.max
    }

    /// Its percentiles; NaN when nothing was recorded, so an empty run never passes a bound.
    pub fn summary(&self) -> Summary {
        if self.total == 0 {
            return Summary {
                count: 0,
                p50: f64::NAN,
                p99: f64::NAN,
                p999: f64::NAN,
                max: f64::NAN,
            };
        }
        Summary {
            count: self.total,
            p50: ms(self.quantile(0.5)),
            p99: ms(self.quantile(0.99)),
            p999: ms(self.quantile(0.999)),
            max: ms(self.max),
        }
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms (n={})",
            self.p50, self.p99, self.p999, self.max, self.count
        )
    }
}

/// The median of a run's figures (the mean of the middle two for an even count); NaN when any
/// run has no figure, so a run that measured nothing is never hidden by the others.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() || values.iter().any(|x| !x.is_finite()) {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Per-field medians of several runs' summaries.
pub fn median_summary(runs: &[Summary]) -> Summary {
    let pick = |f: fn(&Summary) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    Summary {
        count: median(&runs.iter().map(|s| s.count as f64).collect::<Vec<_>>()) as u64,
        p50: pick(|s| s.p50),
        p99: pick(|s| s.p99),
        p999: pick(|s| s.p999),
        max: pick(|s| s.max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_closely() {
        for v in [
            0u64,
            1,
            127,
            128,
            129,
            1_000,
            123_456,
            10_000_000,
            7_000_000_000,
        ] {
            let got = value(index(v));
            let err = got.abs_diff(v) as f64 / (v.max(1)) as f64;
            assert!(err < 0.01, "{v} -> {got}");
        }
    }

    #[test]
    fn quantiles_and_merge() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for i in 1..=1000u64 {
            a.record(Duration::from_micros(i));
        }
        b.record(Duration::from_millis(50));
        a.merge(&b);
        assert_eq!(a.summary().count, 1001);
        let p50 = a.quantile(0.5) as f64 / 1e3;
        assert!((p50 - 500.0).abs() < 5.0, "{p50}");
        assert_eq!(a.summary().max, 50.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
