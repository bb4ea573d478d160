//! Presence fan-out: users go off and online while K others watch each; deliveries per second
//! and the time from the change to each watcher's event.

use super::{header, merge_connected, print_median};
use crate::{
    cli::Common,
    pool::Pool,
    stats::{Histogram, Summary, median_summary},
    target::Target,
    wire::{Job, Report},
};

pub async fn run(
    common: &Common,
    sessions: usize,
    watchers: usize,
    rate: f64,
    secs: f64,
) -> anyhow::Result<bool> {
    header("presence");
    let (mut per_sec, mut changes, mut latencies) = (Vec::new(), Vec::new(), Vec::<Summary>::new());
    let mut ok = true;
    for run in 1..=common.runs {
        let target = Target::open(common)?;
        let setups = target.setups(common, sessions, watchers, false);
        let workers = setups.len();
        let (mut pool, connected) = Pool::start(setups).await?;
        let c = merge_connected(&connected);
        let millis = (secs * 1000.0) as u64;
        pool.send(|_| Job::Presence {
            rate: rate / workers as f64,
            millis,
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
        let rate_out = deliveries as f64 / seconds;
        let summary = latency.summary();
        println!(
            "run {run}: {} sessions, {watchers} watchers each: {toggles} changes ({:.0}/s), {deliveries} of {expected} deliveries = {rate_out:.0}/s, {errors} errors {codes:?}, {dropped} connections lost",
            c.sessions,
            toggles as f64 / seconds
        );
        println!(
            "  per (change, watcher): {missing} missing, {duplicated} duplicated, {stray} stray; {earlier} news of logins made before the job"
        );
        println!("  delivery {summary}");
        println!(
            "  delivery from the scheduled change {}",
            scheduled.summary()
        );
        ok &= c.failed == 0
            && errors == 0
            && dropped == 0
            && missing == 0
            && duplicated == 0
            && stray == 0
            && deliveries == expected;
        per_sec.push(rate_out);
        changes.push(toggles as f64 / seconds);
        latencies.push(summary);
        pool.quit().await;
    }
    println!(
        "medians of {} runs, {sessions} sessions, {watchers} watchers each:",
        common.runs
    );
    print_median("presence changes", "/s", &changes);
    print_median("deliveries", "/s", &per_sec);
    println!("  delivery {}", median_summary(&latencies));
    Ok(ok)
}
