//! Idle sessions: how fast they log in, and what each costs the server in memory.

use std::time::Duration;

use super::{header, merge_connected, print_median};
use crate::{
    cli::Common,
    pool::Pool,
    stats::{Summary, median_summary},
    target::Target,
};

pub async fn run(common: &Common, sessions: usize, hold: f64) -> anyhow::Result<bool> {
    header("idle");
    let (mut rates, mut per_session, mut logins) = (Vec::new(), Vec::new(), Vec::<Summary>::new());
    let mut ok = true;
    for run in 1..=common.runs {
        let target = Target::open(common)?;
        let empty = target.rss_kib();
        let (pool, connected) = Pool::start(target.setups(common, sessions, 0, false)).await?;
        let c = merge_connected(&connected);
        tokio::time::sleep(Duration::from_secs_f64(hold)).await;
        let loaded = target.rss_kib();
        let rate = c.sessions as f64 / c.seconds;
        let login = c.login.summary();
        print!(
            "run {run}: {} sessions logged in ({} failed) in {:.2} s = {rate:.0}/s; login {login}",
            c.sessions, c.failed, c.seconds
        );
        if let (Some(empty), Some(loaded)) = (empty, loaded) {
            let bytes = (loaded.saturating_sub(empty) * 1024) as f64 / c.sessions.max(1) as f64;
            println!("; server RSS {empty} KiB empty, {loaded} KiB loaded = {bytes:.0} B/session");
            per_session.push(bytes);
        } else {
            println!();
        }
        ok &= c.failed == 0 && c.sessions == sessions;
        rates.push(rate);
        logins.push(login);
        pool.quit().await;
    }
    println!("medians of {} runs, {sessions} sessions:", common.runs);
    print_median("connect rate", "sessions/s", &rates);
    if !per_session.is_empty() {
        print_median("server memory", "bytes/session", &per_session);
        let kib: Vec<f64> = per_session.iter().map(|b| b / 1024.0).collect();
        print_median("server memory", "KiB/session", &kib);
    }
    println!("  login (connect+hello+login): {}", median_summary(&logins));
    println!(
        "  idle cost: 0 HTTP requests/s (2010 design: {sessions}/15 = {:.0} requests/s)",
        sessions as f64 / 15.0
    );
    Ok(ok)
}
