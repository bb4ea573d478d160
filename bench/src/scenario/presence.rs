//! Presence fan-out: users go off and online while K others watch each; deliveries per second
//! and the time from the change to each watcher's event, at one rate or (ramp) raised step by
//! step to the highest whose delivery p99 stays within bounds.

use std::time::Duration;

use super::{Ramp, header, merge_connected, print_cpu, print_median};
use crate::{
    cli::Common,
    pool::Pool,
    stats::{Histogram, Summary, median_summary},
    target::Target,
    wire::{Job, Report},
};

/// The pause between two ramp steps, so the last step's re-logins are heard before the next.
const BETWEEN_STEPS: Duration = Duration::from_secs(1);
/// The pause once every session is online, before the first step: what a server does after
/// thousands of logins (Switchboard records each user) is over before presence is timed.
const AFTER_LOGINS: Duration = Duration::from_secs(3);

pub struct Options {
    pub sessions: usize,
    pub watchers: usize,
    pub rate: f64,
    pub secs: f64,
    /// Each step multiplies the rate by this, while the delivery p99 (from the scheduled change)
    /// stays within `p99_ms`; `None` for one step at `rate`.
    pub ramp: Option<Ramp>,
}

/// One measurement at one rate, all workers together.
struct Stage {
    deliveries: u64,
    changes_per_sec: f64,
    deliveries_per_sec: f64,
    latency: Summary,
    scheduled: Summary,
    /// Every change heard exactly once by each of its watchers, nothing else heard, no error.
    clean: bool,
}

pub async fn run(common: &Common, o: &Options) -> anyhow::Result<bool> {
    header("presence");
    let (mut per_sec, mut changes, mut latencies) = (Vec::new(), Vec::new(), Vec::<Summary>::new());
    let mut highest = Vec::new();
    let mut ok = true;
    for run in 1..=common.runs {
        let target = Target::open(common)?;
        let setups = target.setups(common, o.sessions, o.watchers, false);
        let workers = setups.len();
        let (mut pool, connected) = Pool::start(setups).await?;
        let c = merge_connected(&connected);
        println!(
            "run {run}: {} sessions, {} watchers each",
            c.sessions, o.watchers
        );
        ok &= c.failed == 0;
        tokio::time::sleep(AFTER_LOGINS).await;
        let mut rate = o.rate;
        let mut best: Option<Stage> = None;
        loop {
            let cpu_before = target.cpu_ticks();
            let s = stage(&mut pool, workers, rate, o.secs).await?;
            print_cpu(cpu_before, target.cpu_ticks(), s.deliveries, "delivery");
            let Some(ramp) = &o.ramp else {
                ok &= s.clean;
                best = Some(s);
                break;
            };
            // Timed from when each change was due, so the tool falling behind cannot flatter a
            // step.
            if !(s.clean && s.scheduled.p99 <= ramp.p99_ms) {
                break;
            }
            best = Some(s);
            rate *= ramp.factor;
            tokio::time::sleep(BETWEEN_STEPS).await;
        }
        pool.quit().await;
        match (&o.ramp, best) {
            (Some(ramp), best) => {
                let rate = best.map_or(0.0, |s| s.deliveries_per_sec);
                println!(
                    "  highest clean delivery rate with p99 <= {} ms: {rate:.0} deliveries/s",
                    ramp.p99_ms
                );
                highest.push(rate);
            }
            (None, Some(s)) => {
                per_sec.push(s.deliveries_per_sec);
                changes.push(s.changes_per_sec);
                latencies.push(s.latency);
            }
            (None, None) => {}
        }
    }
    println!(
        "medians of {} runs, {} sessions, {} watchers each:",
        common.runs, o.sessions, o.watchers
    );
    if o.ramp.is_some() {
        print_median(
            "highest delivery rate with p99 in bounds",
            "deliveries/s",
            &highest,
        );
    } else {
        print_median("presence changes", "/s", &changes);
        print_median("deliveries", "/s", &per_sec);
        println!("  delivery {}", median_summary(&latencies));
    }
    Ok(ok)
}

/// Changes at `rate` for `secs`, every worker its share; prints what it measured.
async fn stage(pool: &mut Pool, workers: usize, rate: f64, secs: f64) -> anyhow::Result<Stage> {
    pool.send(|_| Job::Presence {
        rate: rate / workers as f64,
        millis: (secs * 1000.0) as u64,
    })
    .await?;
    let (mut toggles, mut deliveries, mut expected, mut errors, mut dropped) = (0, 0, 0, 0, 0);
    let (mut missing, mut duplicated, mut stray, mut earlier) = (0, 0, 0, 0);
    let mut seconds: f64 = 0.0;
    let (mut latency, mut scheduled) = (Histogram::default(), Histogram::default());
    let mut codes = Vec::new();
    for (report, _) in pool.reports().await? {
        let Report::Presence(p) = report else {
            anyhow::bail!("expected Presence, got {report:?}");
        };
        toggles += p.toggles;
        deliveries += p.deliveries;
        expected += p.expected;
        missing += p.missing;
        duplicated += p.duplicated;
        stray += p.stray;
        earlier += p.earlier;
        errors += p.errors;
        dropped += p.dropped;
        seconds = seconds.max(p.seconds);
        latency.merge(&p.latency);
        scheduled.merge(&p.latency_scheduled);
        codes.extend(p.error_codes);
    }
    let deliveries_per_sec = deliveries as f64 / seconds;
    let changes_per_sec = toggles as f64 / seconds;
    println!(
        "  rate {rate:.0}/s: {toggles} changes ({changes_per_sec:.0}/s), {deliveries} of {expected} deliveries = {deliveries_per_sec:.0}/s, {errors} errors {codes:?}, {dropped} connections lost"
    );
    println!(
        "    per (change, watcher): {missing} missing, {duplicated} duplicated, {stray} stray; {earlier} news of logins made before the job"
    );
    let (latency, scheduled) = (latency.summary(), scheduled.summary());
    println!("    delivery {latency}");
    println!("    delivery from the scheduled change {scheduled}");
    Ok(Stage {
        deliveries,
        changes_per_sec,
        deliveries_per_sec,
        latency,
        scheduled,
        clean: errors == 0
            && dropped == 0
            && missing == 0
            && duplicated == 0
            && stray == 0
            && deliveries == expected,
    })
}
