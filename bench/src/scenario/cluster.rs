//! Several nodes on one Redis, started by the tool: sessions spread over the nodes (user n on
//! node n mod count, so most calls are between nodes), calls at a given rate with the ring
//! latency of same-node and cross-node calls side by side, server and Redis memory, and (with
//! `--kill-after`) one node killed with SIGKILL mid-run: how long until its sessions are back
//! on the others, and whether any call was lost or recorded twice. With `--rate 0` the sessions
//! only log in and stay (memory per session); with `--ramp` the rate rises until the cross-node
//! ring p99 leaves its bound.

use std::{
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{
    Ramp,
    calls::{Stage, stage},
    header, merge_connected, print_median,
};
use crate::{
    cli::Common,
    pool::Pool,
    redis::Redis,
    server::{self, Launch, Process},
    stats::median_summary,
    target::Target,
    wire::{Job, Node, Report},
};

pub struct Options {
    pub nodes: usize,
    pub sessions: usize,
    pub rate: f64,
    pub secs: f64,
    /// SIGKILL the first node this far into the calls.
    pub kill_after: Option<f64>,
    pub ramp: Option<Ramp>,
    /// Seconds the sessions are held before memory is read.
    pub hold: f64,
}

/// How long the others take to treat a killed node as dead, on the tool's nodes.
const NODE_TIMEOUT: &str = "4s";
/// How long sessions may take to be back on the other nodes.
const PATIENCE: Duration = Duration::from_secs(60);

pub async fn run(common: &Common, o: &Options) -> anyhow::Result<bool> {
    header("cluster");
    let mut ok = true;
    let (mut same, mut cross, mut backs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut node_kib, mut redis_bytes, mut best_rates) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=common.runs {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-cluster")
            .tempdir()?;
        let redis = Redis::start(dir.path())?;
        let db = dir.path().join("switchboard.db");
        let mut processes = start_nodes(common, o.nodes, &redis, dir.path(), &db)?;
        let rss_empty = rss_of(&processes);
        let redis_empty = redis.used_memory().unwrap_or(0);
        let nodes: Vec<Node> = processes
            .iter()
            .map(|p| Node {
                server: p.addr,
                url: format!("ws://{}/ws", p.addr),
            })
            .collect();
        let target = Target::of_nodes(nodes);
        let setups = target.setups(common, o.sessions, 0, o.kill_after.is_some());
        let workers = setups.len();
        let (mut pool, connected) = Pool::start(setups).await?;
        let c = merge_connected(&connected);
        tokio::time::sleep(Duration::from_secs_f64(o.hold)).await;
        let rss = rss_of(&processes);
        let grown: u64 = rss
            .iter()
            .zip(&rss_empty)
            .map(|(loaded, empty)| loaded.saturating_sub(*empty))
            .sum();
        let per_session = grown as f64 / c.sessions.max(1) as f64;
        let redis_grown = redis.used_memory().unwrap_or(0).saturating_sub(redis_empty);
        let redis_per_session = redis_grown as f64 / c.sessions.max(1) as f64;
        println!(
            "run {run}: {} sessions on {} nodes ({} failed) in {:.2} s; node RSS {rss_empty:?} KiB empty, {rss:?} KiB loaded ({per_session:.2} KiB of node memory per session); Redis grew {} KiB ({redis_per_session:.0} B per session)",
            c.sessions,
            o.nodes,
            c.failed,
            c.seconds,
            redis_grown / 1024,
        );
        ok &= c.failed == 0 && c.sessions == o.sessions;
        node_kib.push(per_session);
        redis_bytes.push(redis_per_session);
        if o.rate <= 0.0 {
            pool.quit().await;
            continue;
        }
        let killing = o.kill_after.map(|after| {
            let victim = processes.remove(0);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(after)).await;
                let mut victim = victim;
                let killed = std::time::SystemTime::now();
                let _ = victim.kill();
                killed
            })
        });
        let (s, placed) = match &o.ramp {
            Some(ramp) => {
                let (best, placed) = ramp_up(&mut pool, workers, o, ramp).await?;
                let rate = best.as_ref().map_or(0.0, |s| s.rate);
                println!(
                    "  highest rate with cross-node ring p99 <= {} ms: {rate:.0} calls/s",
                    ramp.p99_ms
                );
                best_rates.push(rate);
                match best {
                    Some(best) => (best, placed),
                    None => {
                        ok = false;
                        pool.quit().await;
                        continue;
                    }
                }
            }
            None => {
                let s = stage(&mut pool, workers, o.rate, o.secs).await?;
                s.print("  ");
                let placed = s.placed;
                (s, placed)
            }
        };
        if let Some(killing) = killing {
            let back = await_back(&mut pool, killing.await?).await?;
            backs.push(back);
        } else {
            ok &= s.clean();
        }
        println!(
            "  ring, caller and callee on one node:       {}",
            s.ring_same_node
        );
        println!(
            "  ring, caller and callee on different nodes: {}",
            s.ring_cross_node
        );
        same.push(s.ring_same_node);
        cross.push(s.ring_cross_node);
        pool.quit().await;
        for process in &mut processes {
            process.stop()?;
        }
        let (records, live, doubled) = records(&db)?;
        println!(
            "  records: {records} calls for {placed} placed; {live} left ringing or answered; {doubled} states recorded twice",
        );
        ok &= live == 0 && doubled == 0 && (o.kill_after.is_some() || records == placed);
    }
    println!(
        "medians of {} runs, {} sessions on {} nodes:",
        common.runs, o.sessions, o.nodes
    );
    print_median("node memory", "KiB/session", &node_kib);
    print_median("Redis memory", "B/session", &redis_bytes);
    if same.is_empty() {
        return Ok(ok);
    }
    println!("  ring same node  {}", median_summary(&same));
    println!("  ring cross node {}", median_summary(&cross));
    let ratio: Vec<f64> = same
        .iter()
        .zip(&cross)
        .map(|(s, c)| c.p99 / s.p99.max(f64::EPSILON))
        .collect();
    print_median("cross-node p99 / same-node p99", "", &ratio);
    if !best_rates.is_empty() {
        print_median(
            "highest rate within the cross-node p99",
            "calls/s",
            &best_rates,
        );
    }
    if !backs.is_empty() {
        print_median("sessions back after a node's SIGKILL", "s", &backs);
    }
    Ok(ok)
}

fn start_nodes(
    common: &Common,
    count: usize,
    redis: &Redis,
    dir: &Path,
    db: &Path,
) -> anyhow::Result<Vec<Process>> {
    let launch = Launch::from_flags(
        common,
        vec![
            ("SWITCHBOARD_REDIS_URL".to_string(), redis.url()),
            (
                "SWITCHBOARD_NODE_TIMEOUT".to_string(),
                NODE_TIMEOUT.to_string(),
            ),
        ],
    );
    (0..count)
        .map(|i| {
            let log = dir.join(format!("node{i}.log"));
            Process::start_logging(&launch, server::free_addr()?, db, &log)
        })
        .collect()
}

fn rss_of(processes: &[Process]) -> Vec<u64> {
    processes
        .iter()
        .map(|p| server::rss_kib(p.pid()).unwrap_or(0))
        .collect()
}

/// Stages at rising rates while each is clean and its cross-node ring p99 within bounds: the
/// last such stage, and the calls placed in all of them.
async fn ramp_up(
    pool: &mut Pool,
    workers: usize,
    o: &Options,
    ramp: &Ramp,
) -> anyhow::Result<(Option<Stage>, u64)> {
    let (mut best, mut placed, mut rate) = (None, 0, o.rate);
    loop {
        let s = stage(pool, workers, rate, o.secs).await?;
        s.print("  ");
        println!("    cross-node ring {}", s.ring_cross_node);
        placed += s.placed;
        if !(s.clean() && s.ring_cross_node.p99 <= ramp.p99_ms) {
            return Ok((best, placed));
        }
        best = Some(s);
        rate *= ramp.factor;
    }
}

/// Waits until every session of the killed node is back on another: seconds from the kill.
async fn await_back(pool: &mut Pool, killed: SystemTime) -> anyhow::Result<f64> {
    pool.send(|_| Job::AwaitBack {
        millis: PATIENCE.as_millis() as u64,
        node: Some(0),
    })
    .await?;
    let killed_ms = killed.duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let (mut last_ms, mut back_sessions) = (killed_ms, 0);
    for (report, _) in pool.reports().await? {
        if let Report::Back {
            sessions,
            last_at_ms,
        } = report
        {
            back_sessions += sessions;
            last_ms = last_ms.max(last_at_ms);
        }
    }
    // The rerung report that follows; no call was left ringing here.
    pool.reports().await?;
    let back = (last_ms - killed_ms) as f64 / 1000.0;
    println!(
        "  one node killed: {back_sessions} sessions back on the others {back:.3} s after the kill"
    );
    Ok(back)
}

/// Calls recorded, calls left ringing or answered, and (call, state) events recorded twice.
fn records(db: &Path) -> anyhow::Result<(u64, u64, u64)> {
    let conn = rusqlite::Connection::open(db)?;
    let count = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0));
    Ok((
        count("SELECT count(*) FROM calls")?.try_into()?,
        count("SELECT count(*) FROM calls WHERE state IN ('ringing', 'answered')")?.try_into()?,
        count(
            "SELECT count(*) FROM (SELECT 1 FROM call_events WHERE state <> 'note'
             GROUP BY call_id, state HAVING count(*) > 1)",
        )?
        .try_into()?,
    ))
}
