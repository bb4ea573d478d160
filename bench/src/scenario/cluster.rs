//! Several nodes on one Redis, started by the tool: sessions spread over the nodes (user n on
//! node n mod count, so most calls are between nodes), calls at a given rate with the ring
//! latency of same-node and cross-node calls side by side, server and Redis memory, and (with
//! `--kill`) one node killed with SIGKILL mid-run: how long until its sessions are back on the
//! others, and whether any call was lost or recorded twice.

use std::time::Duration;

use super::{calls::stage, header, merge_connected, print_median};
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
}

/// How long the others take to treat a killed node as dead, on the tool's nodes.
const NODE_TIMEOUT: &str = "4s";
/// How long sessions may take to be back on the other nodes.
const PATIENCE: Duration = Duration::from_secs(60);

pub async fn run(common: &Common, o: &Options) -> anyhow::Result<bool> {
    header("cluster");
    let mut ok = true;
    let (mut same, mut cross, mut backs) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=common.runs {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-cluster")
            .tempdir()?;
        let redis = Redis::start(dir.path())?;
        let db = dir.path().join("switchboard.db");
        let launch = Launch {
            bin: common
                .server_bin
                .clone()
                .unwrap_or_else(Launch::default_bin),
            jwt_secret: common.jwt_secret.clone(),
            env: [
                ("SWITCHBOARD_REDIS_URL".to_string(), redis.url()),
                (
                    "SWITCHBOARD_NODE_TIMEOUT".to_string(),
                    NODE_TIMEOUT.to_string(),
                ),
            ]
            .into_iter()
            .chain(common.server_env.iter().cloned())
            .collect(),
        };
        let mut processes = Vec::new();
        for i in 0..o.nodes {
            let log = dir.path().join(format!("node{i}.log"));
            processes.push(Process::start_logging(
                &launch,
                server::free_addr()?,
                &db,
                &log,
            )?);
        }
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
        let rss: Vec<u64> = processes
            .iter()
            .filter_map(|p| server::rss_kib(p.pid()).ok())
            .collect();
        let redis_bytes = redis.used_memory().unwrap_or(0);
        println!(
            "run {run}: {} sessions on {} nodes ({} failed); node RSS {:?} KiB ({:.2} KiB of node memory per session); Redis {} KiB ({:.0} B per session)",
            c.sessions,
            o.nodes,
            c.failed,
            rss,
            rss.iter().sum::<u64>() as f64 / c.sessions.max(1) as f64,
            redis_bytes / 1024,
            redis_bytes as f64 / c.sessions.max(1) as f64,
        );
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
        let s = stage(&mut pool, workers, o.rate, o.secs).await?;
        s.print("  ");
        if let Some(killing) = killing {
            let killed = killing.await?;
            pool.send(|_| Job::AwaitBack {
                millis: PATIENCE.as_millis() as u64,
                node: Some(0),
            })
            .await?;
            let killed_ms = killed.duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
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
            "  records: {records} calls for {} placed; {live} left ringing or answered; {doubled} states recorded twice",
            s.placed
        );
        ok &= live == 0 && doubled == 0 && (o.kill_after.is_some() || records == s.placed);
    }
    println!(
        "medians of {} runs, {} sessions on {} nodes:",
        common.runs, o.sessions, o.nodes
    );
    println!("  ring same node  {}", median_summary(&same));
    println!("  ring cross node {}", median_summary(&cross));
    let ratio: Vec<f64> = same
        .iter()
        .zip(&cross)
        .map(|(s, c)| c.p99 / s.p99.max(f64::EPSILON))
        .collect();
    print_median("cross-node p99 / same-node p99", "", &ratio);
    if !backs.is_empty() {
        print_median("sessions back after a node's SIGKILL", "s", &backs);
    }
    Ok(ok)
}

/// Calls recorded, calls left ringing or answered, and (call, state) events recorded twice.
fn records(db: &std::path::Path) -> anyhow::Result<(u64, u64, u64)> {
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
