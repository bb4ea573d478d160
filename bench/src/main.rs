//! `switchboard-bench`: a load tool for the Switchboard server. The process the user starts
//! coordinates; the sessions live in worker processes (this same binary, `worker`), so no one
//! process runs out of file descriptors and the measuring clients use both cores.

mod cli;
mod identity;
mod machine;
mod misbehave;
mod net;
mod pool;
mod redis;
mod scenario;
mod server;
mod stats;
mod target;
mod wire;
mod worker;

use clap::Parser;
use cli::{Cli, Scenario};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Scenario::Worker = cli.scenario {
        return worker::main();
    }
    machine::raise_nofile();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let common = &cli.common;
    let ok = runtime.block_on(async {
        match cli.scenario {
            Scenario::Idle { sessions, hold } => scenario::idle::run(common, sessions, hold).await,
            Scenario::Calls {
                sessions,
                rate,
                secs,
                ramp,
                misbehaving,
                warmup,
            } => {
                let options = scenario::calls::Options {
                    sessions,
                    rate,
                    secs,
                    ramp: ramp.ramp(),
                    misbehaving,
                    warmup,
                };
                scenario::calls::run(common, &options).await
            }
            Scenario::Cluster {
                nodes,
                sessions,
                rate,
                secs,
                kill_after,
                ramp,
                hold,
            } => {
                let options = scenario::cluster::Options {
                    nodes,
                    sessions,
                    rate,
                    secs,
                    kill_after,
                    ramp: ramp.ramp(),
                    hold,
                };
                scenario::cluster::run(common, &options).await
            }
            Scenario::Presence {
                sessions,
                watchers,
                rate,
                secs,
                ramp,
            } => {
                let options = scenario::presence::Options {
                    sessions,
                    watchers,
                    rate,
                    secs,
                    ramp: ramp.ramp(),
                };
                scenario::presence::run(common, &options).await
            }
            Scenario::Storm { sessions, ringing } => {
                scenario::storm::run(common, sessions, ringing).await
            }
            Scenario::Baseline { sockets, secs } => {
                scenario::baseline::run(common, sockets, secs).await
            }
            Scenario::Worker => Ok(true),
        }
    })?;
    if !ok {
        println!("RESULT: FAILED (see above)");
        std::process::exit(1);
    }
    println!("RESULT: OK");
    Ok(())
}
