//! The measurements, each repeated on a fresh server, and what they have in common.

pub mod baseline;
pub mod calls;
pub mod cluster;
pub mod idle;
pub mod presence;
pub mod storm;

use crate::{
    machine,
    stats::{Histogram, median},
    wire::Connected,
};

/// Raise the rate by `factor` at each step while the scenario's p99, timed from when each send
/// was due, stays within `p99_ms`.
pub struct Ramp {
    pub factor: f64,
    pub p99_ms: f64,
}

/// Prints what was run, where, and how busy the machine already was.
pub fn header(name: &str) {
    let args: Vec<String> = std::env::args().collect();
    println!("# switchboard-bench {name}");
    println!("command: {}", args.join(" "));
    println!("machine: {}", machine::describe());
    println!("load average before: {}", machine::load_average());
}

/// All workers' connect reports as one: sessions, failures, the slowest worker's time.
pub fn merge_connected(reports: &[Connected]) -> Connected {
    let mut login = Histogram::default();
    for r in reports {
        login.merge(&r.login);
    }
    Connected {
        sessions: reports.iter().map(|r| r.sessions).sum(),
        failed: reports.iter().map(|r| r.failed).sum(),
        seconds: reports.iter().map(|r| r.seconds).fold(0.0, f64::max),
        login,
    }
}

/// `label: median (run values)`.
pub fn print_median(label: &str, unit: &str, values: &[f64]) {
    let runs: Vec<String> = values.iter().map(|v| format!("{v:.3}")).collect();
    println!(
        "  {label}: {:.3} {unit} (runs: {})",
        median(values),
        runs.join(", ")
    );
}

/// The server's CPU time per unit of work (a completed call, a delivered event) over a stage:
/// in all, and in its database writer.
pub fn print_cpu(before: Option<(u64, u64)>, after: Option<(u64, u64)>, count: u64, per: &str) {
    let (Some(before), Some(after)) = (before, after) else {
        return;
    };
    // /proc counts in USER_HZ ticks, 100 a second on Linux.
    let micros = |ticks: u64| ticks as f64 * 10_000.0 / count.max(1) as f64;
    let (total, store) = (after.0 - before.0, after.1.saturating_sub(before.1));
    println!(
        "    server CPU per {per}: {:.0} µs ({:.0} µs in the database writer, {:.0} µs in the rest)",
        micros(total),
        micros(store),
        micros(total.saturating_sub(store))
    );
}
