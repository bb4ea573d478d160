//! Calls between random online users: ring and answer latency at a given rate, or (ramp) the
//! highest rate whose ring p99 stays within bounds; then checks every call was recorded.

use super::{Ramp, header, merge_connected, print_cpu, print_median};
use crate::{
    cli::Common,
    misbehave::{Aim, Misbehaving},
    pool::Pool,
    server::Process,
    stats::{Histogram, Summary, median_summary},
    target::{Persisted, Target},
    wire::{CallsDone, Job, Report},
};

pub struct Options {
    pub sessions: usize,
    pub rate: f64,
    pub secs: f64,
    /// Raise the rate step by step while the ring p99 (from the scheduled send) stays in
    /// bounds; `None` for one step at `rate`.
    pub ramp: Option<Ramp>,
    /// Misbehaving clients running beside the calls.
    pub misbehaving: usize,
    /// Seconds of calls and misbehaving clients, then [`SETTLE`], before memory is first read.
    pub warmup: f64,
}

/// One measurement at one rate, all workers together.
pub struct Stage {
    pub rate: f64,
    /// Calls completed per second of the time they took.
    achieved: f64,
    /// Calls placed (refused or not) per second of placing: whether the tool kept the rate.
    placing: f64,
    pub placed: u64,
    pub completed: u64,
    skipped: u64,
    errors: u64,
    dropped: u64,
    codes: Vec<String>,
    ring: Summary,
    ring_scheduled: Summary,
    answer: Summary,
    pub ring_same_node: Summary,
    pub ring_cross_node: Summary,
}

impl Stage {
    fn merge(rate: f64, reports: Vec<CallsDone>) -> Stage {
        let (mut ring, mut answer) = (Histogram::default(), Histogram::default());
        let mut ring_scheduled = Histogram::default();
        let (mut same, mut cross) = (Histogram::default(), Histogram::default());
        let mut codes = Vec::new();
        for r in &reports {
            ring.merge(&r.ring);
            ring_scheduled.merge(&r.ring_scheduled);
            answer.merge(&r.answer);
            same.merge(&r.ring_same_node);
            cross.merge(&r.ring_cross_node);
            codes.extend(r.error_codes.iter().cloned());
        }
        codes.sort();
        codes.dedup();
        let seconds = reports.iter().map(|r| r.seconds).fold(0.0, f64::max);
        let completed = reports.iter().map(|r| r.completed).sum::<u64>();
        let placed = reports.iter().map(|r| r.placed).sum::<u64>();
        let placing_seconds = reports
            .iter()
            .map(|r| r.placing_seconds)
            .fold(0.0, f64::max);
        Stage {
            rate,
            achieved: completed as f64 / seconds,
            placing: placed as f64 / placing_seconds,
            placed,
            completed,
            skipped: reports.iter().map(|r| r.skipped).sum(),
            errors: reports.iter().map(|r| r.errors).sum(),
            dropped: reports.iter().map(|r| r.dropped).sum(),
            codes,
            ring: ring.summary(),
            ring_scheduled: ring_scheduled.summary(),
            answer: answer.summary(),
            ring_same_node: same.summary(),
            ring_cross_node: cross.summary(),
        }
    }

    /// Every call due was placed and completed, at (nearly) the asked rate, without errors.
    pub fn clean(&self) -> bool {
        self.errors == 0
            && self.dropped == 0
            && self.skipped == 0
            && self.completed == self.placed
            && self.placing >= 0.95 * self.rate
    }

    pub fn print(&self, prefix: &str) {
        println!(
            "{prefix}rate {:.0}/s: achieved {:.0} calls/s, {} placed, {} completed, {} skipped, {} errors {:?}, {} connections lost",
            self.rate,
            self.achieved,
            self.placed,
            self.completed,
            self.skipped,
            self.errors,
            self.codes,
            self.dropped
        );
        println!("{prefix}  ring   {}", self.ring);
        println!(
            "{prefix}  ring from the scheduled send {}",
            self.ring_scheduled
        );
        println!("{prefix}  answer {}", self.answer);
    }
}

pub async fn stage(pool: &mut Pool, workers: usize, rate: f64, secs: f64) -> anyhow::Result<Stage> {
    let millis = (secs * 1000.0) as u64;
    pool.send(|_| Job::Calls {
        rate: rate / workers as f64,
        millis,
    })
    .await?;
    let reports = pool
        .reports()
        .await?
        .into_iter()
        .map(|(report, _)| match report {
            Report::Calls(done) => Ok(done),
            other => anyhow::bail!("expected Calls, got {other:?}"),
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Stage::merge(rate, reports))
}

pub async fn run(common: &Common, o: &Options) -> anyhow::Result<bool> {
    header(if o.ramp.is_some() {
        "calls --ramp"
    } else {
        "calls"
    });
    let mut results: Vec<Stage> = Vec::new();
    let mut ok = true;
    for run in 1..=common.runs {
        let mut target = Target::open(common)?;
        let began_ms = unix_ms();
        let setups = target.setups(common, o.sessions, 0, false);
        let workers = setups.len();
        let tag = setups[0].tag.clone();
        let (mut pool, connected) = Pool::start(setups).await?;
        let c = merge_connected(&connected);
        println!(
            "run {run}: {} sessions online ({} failed)",
            c.sessions, c.failed
        );
        let mut rss_start = target.rss_kib();
        let mut heap_start = target.allocator();
        // Every call placed in this run, in every stage, and those the server refused: each
        // call it took must be recorded, and each the tool completed recorded as completed.
        let (mut placed, mut refused, mut completed) = (0, 0, 0);
        if o.warmup > 0.0 {
            let rogues = start_misbehaving(&target, common, o.misbehaving);
            let s = stage(&mut pool, workers, o.rate, o.warmup).await?;
            s.print("  warm-up ");
            ok &= s.clean();
            placed += s.placed;
            refused += s.errors;
            completed += s.completed;
            if let Some(rogues) = rogues {
                rogues.stop();
            }
            if rss_start.is_some() {
                tokio::time::sleep(SETTLE).await;
            }
            rss_start = target.rss_kib();
            heap_start = target.allocator();
        }
        let rogues = start_misbehaving(&target, common, o.misbehaving);
        let mut best: Option<Stage> = None;
        let mut rate = o.rate;
        loop {
            let cpu_before = target.cpu_ticks();
            let s = stage(&mut pool, workers, rate, o.secs).await?;
            s.print("  ");
            print_cpu(cpu_before, target.cpu_ticks(), s.completed, "call");
            placed += s.placed;
            refused += s.errors;
            completed += s.completed;
            let Some(ramp) = &o.ramp else {
                ok &= s.clean();
                best = Some(s);
                break;
            };
            // Timed from when each call was due, so the tool falling behind cannot flatter a step.
            if !(s.clean() && s.ring_scheduled.p99 <= ramp.p99_ms) {
                break;
            }
            best = Some(s);
            rate *= ramp.factor;
        }
        if let Some(rogues) = rogues {
            let rss_busy = target.rss_kib();
            let heap_busy = target.allocator();
            rogues.stop();
            // The server frees what the stage and the misbehaving clients left once it sees
            // their sockets go and its windows pass; only worth waiting for if it is measured.
            if rss_busy.is_some() {
                tokio::time::sleep(SETTLE).await;
            }
            let rss_end = target.rss_kib();
            ok &= print_memory(o.warmup, rss_start, rss_busy, rss_end);
            print_allocator([heap_start, heap_busy, target.allocator()]);
        }
        pool.quit().await;
        if let Some(process) = target.process.as_mut() {
            // A graceful stop commits whatever is still queued; then every call must be there.
            process.stop()?;
            ok &= no_panics(process);
        }
        if let Some(db) = target.db() {
            let p = Persisted::settled(&db, &tag, began_ms, completed, PERSIST_PATIENCE).await?;
            println!(
                "  persisted: {} call records for {placed} calls placed ({refused} refused, {completed} completed): {} answered then ended with their times, {} left ringing or answered",
                p.calls, p.answered_then_ended, p.live
            );
            // Every call the server took is recorded (a refusal is an error the tool counted);
            // a ramp's last step fails by design and its calls may end any way.
            ok &= p.calls <= placed
                && p.calls + refused >= placed
                && (o.ramp.is_some() || (p.answered_then_ended == completed && p.live == 0));
        }
        match best {
            Some(s) => {
                if let Some(ramp) = &o.ramp {
                    println!(
                        "  highest clean rate with ring p99 <= {} ms: {:.0} calls/s",
                        ramp.p99_ms, s.rate
                    );
                }
                results.push(s);
            }
            None => println!("  no rate passed"),
        }
    }
    if results.is_empty() {
        return Ok(false);
    }
    println!(
        "medians of {} runs, {} sessions:",
        results.len(),
        o.sessions
    );
    if o.ramp.is_some() {
        let rates: Vec<f64> = results.iter().map(|s| s.rate).collect();
        print_median("highest rate with ring p99 in bounds", "calls/s", &rates);
    }
    let achieved: Vec<f64> = results.iter().map(|s| s.achieved).collect();
    print_median("achieved", "calls/s", &achieved);
    let rings: Vec<Summary> = results.iter().map(|s| s.ring).collect();
    let scheduled: Vec<Summary> = results.iter().map(|s| s.ring_scheduled).collect();
    let answers: Vec<Summary> = results.iter().map(|s| s.answer).collect();
    println!("  ring   {}", median_summary(&rings));
    println!(
        "  ring from the scheduled send {}",
        median_summary(&scheduled)
    );
    println!("  answer {}", median_summary(&answers));
    println!(
        "  2010 design: a call was noticed on the callee's next 15 s poll: 7,500 ms on average, 15,000 ms at worst"
    );
    Ok(ok)
}

/// The misbehaving clients, when asked for, aimed at the server under test.
fn start_misbehaving(target: &Target, common: &Common, clients: usize) -> Option<Misbehaving> {
    (clients > 0).then(|| {
        let aim = Aim {
            server: target.server,
            url: target.url.clone(),
            jwt_secret: common.jwt_secret.clone(),
        };
        Misbehaving::start(&aim, clients)
    })
}

/// How long the server gets, once the stage is over and the misbehaving clients are gone, before
/// its memory is read again: what a busy spell leaves is let go within the replay window (the
/// default `idle_timeout` plus `presence_grace`, 55 s), the hub's housekeeping (10 s) and the
/// allocator's decay (10 s).
const SETTLE: std::time::Duration = std::time::Duration::from_secs(80);
/// How long a server someone else runs may take to commit the last calls of a run.
const PERSIST_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How much more memory the server may hold after the run than before it.
const MEMORY_GROWTH: f64 = 1.10;

/// Server memory before, during and after the misbehaving clients' run; fails when what the
/// server holds after it has grown by more than [`MEMORY_GROWTH`].
fn print_memory(warmup: f64, start: Option<u64>, busy: Option<u64>, end: Option<u64>) -> bool {
    match (start, busy, end) {
        (Some(start), Some(busy), Some(end)) => {
            let growth = end as f64 / start.max(1) as f64;
            let when = if warmup > 0.0 {
                format!("{warmup}s of warm-up and {}s later", SETTLE.as_secs())
            } else {
                "with the sessions online".to_string()
            };
            println!(
                "  server RSS: {start} KiB at the start ({when}), {busy} KiB at the end of the stage, \
                 {end} KiB {}s after the misbehaving clients left (end/start {growth:.2}, at most {MEMORY_GROWTH:.2})",
                SETTLE.as_secs()
            );
            growth <= MEMORY_GROWTH
        }
        _ => {
            println!("  server RSS: unknown (give --server-pid with --url)");
            true
        }
    }
}

/// The allocator's view at the same three moments: what is live against what it keeps, to tell
/// memory still in use from fragmentation.
fn print_allocator(moments: [Option<(u64, u64)>; 3]) {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let parts: Vec<String> = moments
        .iter()
        .map(|m| match m {
            Some((allocated, resident)) => format!(
                "{:.1} MiB allocated / {:.1} MiB resident",
                mib(*allocated),
                mib(*resident)
            ),
            None => "unknown".to_string(),
        })
        .collect();
    println!(
        "  server allocator at the start, end of the stage, and after: {}",
        parts.join("; ")
    );
}

/// Scans the log of a server this tool started: a panic anywhere fails the run.
fn no_panics(process: &Process) -> bool {
    match process.panics() {
        Ok(lines) if lines.is_empty() => {
            println!("  server log: no panics");
            true
        }
        Ok(lines) => {
            println!("  server log: {} panics, first: {}", lines.len(), lines[0]);
            false
        }
        Err(e) => {
            println!("  server log: unreadable ({e:#})");
            false
        }
    }
}
