//! Command-line flags: what to drive, how hard, and how often to repeat each run.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::scenario::Ramp;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard-bench",
    version,
    about = "Drives a Switchboard server over real WebSockets and prints what it measured"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Clone, Debug, Args)]
pub struct Common {
    /// Drive the server already running at this URL (ws://IP:PORT/ws) instead of starting one
    /// per run.
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Drive the nodes of a running cluster: comma-separated ws:// URLs; user n connects to
    /// the (n mod count)th, so most calls are between nodes.
    #[arg(long, global = true, value_delimiter = ',')]
    pub urls: Vec<String>,
    /// With --url: the server's process id, to read its memory and CPU time.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// With --url: the server's SQLite database, to check what it recorded.
    #[arg(long, global = true)]
    pub db: Option<PathBuf>,
    /// The server binary to start [default: `switchboard` next to this tool].
    #[arg(long, global = true)]
    pub server_bin: Option<PathBuf>,
    /// Sign identities with this HS256 secret (and start the server with it) instead of
    /// logging in with demo identities.
    #[arg(long, global = true)]
    pub jwt_secret: Option<String>,
    /// An extra server setting for servers this tool starts, e.g. SWITCHBOARD_SEND_QUEUE=128.
    #[arg(long = "server-env", global = true, value_parser = key_value)]
    pub server_env: Vec<(String, String)>,
    /// Worker processes holding the sessions (each holds at most ~19,000: one socket is one
    /// open file).
    #[arg(long, global = true, default_value_t = 2)]
    pub workers: usize,
    /// Loopback source addresses to spread connections over: 127.0.0.2 onwards.
    #[arg(long, global = true, default_value_t = 8)]
    pub sources: u8,
    /// WebSocket handshakes in flight at once, per worker.
    #[arg(long, global = true, default_value_t = 64)]
    pub concurrency: usize,
    /// Times each measurement is repeated (a fresh server each time); medians are printed.
    #[arg(long, global = true, default_value_t = 3)]
    pub runs: usize,
}

/// Raising the rate step by step, for the scenarios that can.
#[derive(Clone, Copy, Debug, Args)]
pub struct RampArgs {
    /// Raise the rate step by step and report the highest whose p99 stays within --p99-ms with
    /// nothing lost or doubled: the ring's for calls, the cross-node ring's for a cluster, the
    /// deliveries' for presence, each timed from when its send was due.
    #[arg(long)]
    ramp: bool,
    /// Each ramp step multiplies the rate by this.
    #[arg(long, default_value_t = 1.25)]
    ramp_factor: f64,
    /// The p99 a ramp step must stay within, in milliseconds.
    #[arg(long, default_value_t = 10.0)]
    p99_ms: f64,
}

impl RampArgs {
    /// The ramp asked for, if any.
    pub fn ramp(self) -> Option<Ramp> {
        self.ramp.then_some(Ramp {
            factor: self.ramp_factor,
            p99_ms: self.p99_ms,
        })
    }
}

fn key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text}: expected KEY=VALUE"))?;
    Ok((key.to_string(), value.to_string()))
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Sessions log in and stay: connect rate and server memory per session.
    Idle {
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Seconds to hold the sessions before reading the server's memory.
        #[arg(long, default_value_t = 3.0)]
        hold: f64,
    },
    /// Calls between random online users: ring and answer latency, achieved rate.
    Calls {
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Calls per second (all workers together).
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Seconds of calling per measurement.
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
        #[command(flatten)]
        ramp: RampArgs,
        /// Misbehaving clients to run beside the calls (never reading, flooding, oversized
        /// frames, garbage), reconnecting whenever cut off; server memory is read before and
        /// after, and a server this tool started must log no panic.
        #[arg(long, default_value_t = 0)]
        misbehaving: usize,
        /// Seconds of the same calls and misbehaving clients run first, followed by the same
        /// settling time, before the server's memory is read as the start: then the start is a
        /// server that has been busy once, and the run shows whether a long spell leaves more.
        #[arg(long, default_value_t = 0.0)]
        warmup: f64,
    },
    /// Several nodes on one Redis (redis-server must be installed): same-node against
    /// cross-node ring latency, memory per session, and with --kill-after a node's SIGKILL.
    Cluster {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value_t = 3000)]
        sessions: usize,
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long, default_value_t = 20.0)]
        secs: f64,
        /// SIGKILL the first node this many seconds into the calls.
        #[arg(long)]
        kill_after: Option<f64>,
        #[command(flatten)]
        ramp: RampArgs,
        /// Seconds to hold the sessions before reading memory (with --rate 0: idle sessions
        /// only, no calls).
        #[arg(long, default_value_t = 3.0)]
        hold: f64,
    },
    /// Users go off and online while others watch them: deliveries per second and latency.
    Presence {
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Watchers per user.
        #[arg(long, default_value_t = 20)]
        watchers: usize,
        /// Presence changes per second (all workers together).
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Seconds of changes per measurement.
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
        #[command(flatten)]
        ramp: RampArgs,
    },
    /// The server is killed (SIGKILL) and restarted on the same database under connected
    /// sessions: time until all are back, and whether any call was lost.
    Storm {
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Calls left ringing across the kill.
        #[arg(long, default_value_t = 100)]
        ringing: usize,
    },
    /// The machine's own ceiling: small loopback TCP writes per second, without Switchboard.
    Baseline {
        /// Sockets written to in turn.
        #[arg(long, default_value_t = 1000)]
        sockets: usize,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
    },
    /// Internal: one worker process (driven over stdin/stdout by the others).
    #[command(hide = true)]
    Worker,
}
