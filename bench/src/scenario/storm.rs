//! A restart storm: the server is killed with SIGKILL under connected sessions and ringing
//! calls, and restarted on the same database; how long until every session is back, and
//! whether every call record and every ringing call survived.

use std::time::{Duration, Instant};

use super::{header, merge_connected, print_median};
use crate::{
    cli::Common,
    pool::Pool,
    target::{Target, count_calls},
    wire::{Job, Report},
};

/// How long the sessions may take to come back before the run counts as failed.
const PATIENCE: Duration = Duration::from_secs(60);

pub async fn run(common: &Common, sessions: usize, ringing: usize) -> anyhow::Result<bool> {
    header("storm");
    let (mut backs, mut restarts) = (Vec::new(), Vec::new());
    let mut ok = true;
    for run in 1..=common.runs {
        let mut target = Target::open(common)?;
        let db = target.db();
        let setups = target.setups(common, sessions, 0, true);
        let workers = setups.len();
        let (mut pool, connected) = Pool::start(setups).await?;
        let c = merge_connected(&connected);
        pool.send(|w| Job::Ring {
            pairs: ringing * (w + 1) / workers - ringing * w / workers,
        })
        .await?;
        let mut rung = 0;
        for (report, _) in pool.reports().await? {
            if let Report::Ringing { calls } = report {
                rung += calls;
            }
        }
        let db = db.ok_or_else(|| anyhow::anyhow!("storm needs a server the tool starts"))?;
        // Ringing is pushed before the record is committed; wait for the commit.
        let committed = Instant::now();
        let mut before = count_calls(&db)?;
        while before.0 < rung as u64 && committed.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            before = count_calls(&db)?;
        }
        pool.send(|_| Job::AwaitBack {
            millis: PATIENCE.as_millis() as u64,
            node: None,
        })
        .await?;
        let process = target.managed()?;
        let killed = Instant::now();
        process.kill()?;
        process.restart()?;
        let restarted = killed.elapsed().as_secs_f64();
        let mut back_sessions = 0;
        let mut last = killed;
        for (report, at) in pool.reports().await? {
            if let Report::Back { sessions, .. } = report {
                back_sessions += sessions;
            }
            last = last.max(at);
        }
        let back = last.duration_since(killed).as_secs_f64();
        let mut rerung = 0;
        for (report, _) in pool.reports().await? {
            if let Report::Rerung { calls } = report {
                rerung += calls;
            }
        }
        let after = count_calls(&db)?;
        println!(
            "run {run}: {} sessions, {rung} calls ringing; SIGKILL, server answering again after {restarted:.3} s; {back_sessions} sessions back after {back:.3} s",
            c.sessions
        );
        println!(
            "  call records {} before, {} after; ringing {} before, {} after; {rerung} of {rung} rang again for their callee",
            before.0, after.0, before.1, after.1
        );
        let clean = c.failed == 0
            && back_sessions == sessions
            && rung == ringing
            && rerung == rung
            && after.0 == before.0
            && before.0 == rung as u64
            && after.1 == before.1;
        if !clean {
            println!("  NOT CLEAN");
        }
        ok &= clean;
        backs.push(back);
        restarts.push(restarted);
        pool.quit().await;
    }
    println!("medians of {} runs, {sessions} sessions:", common.runs);
    print_median("server restart (kill to /healthz)", "s", &restarts);
    print_median("all sessions back (kill to last login)", "s", &backs);
    Ok(ok)
}
