//! Misbehaving clients run beside a measurement for its whole length: some never read, some
//! flood, some send oversized frames, some send garbage. Each reconnects whenever the server
//! cuts it off; what matters is that the well-behaved sessions do not notice them.

mod clients;

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::task::JoinHandle;

/// The four ways a client misbehaves; client `i` is `KINDS[i % 4]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Sends frames the server answers, and never reads a byte (tiny receive buffer).
    NeverRead,
    /// Sends commands as fast as the socket takes them (and reads the answers).
    Flood,
    /// Sends 5 KB frames (over the server's message limit) and 70 KB frames (over its frame
    /// limit).
    Oversized,
    /// Sends invalid JSON, binary frames, then random bytes that are no WebSocket frame at all.
    Garbage,
}

pub const KINDS: [Kind; 4] = [Kind::NeverRead, Kind::Flood, Kind::Oversized, Kind::Garbage];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::NeverRead => "never-read",
            Kind::Flood => "flood",
            Kind::Oversized => "oversized",
            Kind::Garbage => "garbage",
        }
    }

    /// Each kind connects from its own loopback address, kept apart from the well-behaved
    /// sessions' 127.0.0.2 onwards, so per-address limits on one never touch the others.
    fn source(self) -> Ipv4Addr {
        let index = KINDS.iter().position(|k| *k == self).unwrap_or(0) as u8;
        Ipv4Addr::new(127, 0, 0, 101 + index)
    }
}

/// What one kind of client saw, counted by all its clients together.
#[derive(Debug, Default)]
pub struct Counts {
    /// WebSocket handshakes that succeeded.
    pub opened: AtomicU64,
    /// Connections the server closed or reset.
    pub cut_off: AtomicU64,
    /// Connections or handshakes the server refused.
    pub refused: AtomicU64,
    pub frames: AtomicU64,
    /// Connections open right now.
    pub open_now: AtomicU64,
}

impl Counts {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Where the clients connect and how they log in.
#[derive(Clone, Debug)]
pub struct Aim {
    pub server: SocketAddr,
    pub url: String,
    pub jwt_secret: Option<String>,
}

/// The running clients; they stop (and drop their connections) on [`Misbehaving::stop`].
pub struct Misbehaving {
    counts: Vec<(Kind, usize, Arc<Counts>)>,
    tasks: Vec<JoinHandle<()>>,
}

impl Misbehaving {
    pub fn start(aim: &Aim, clients: usize) -> Misbehaving {
        let counts: Vec<_> = KINDS
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                let n = clients / KINDS.len() + usize::from(i < clients % KINDS.len());
                (*kind, n, Arc::new(Counts::default()))
            })
            .collect();
        let tasks = (0..clients)
            .map(|i| {
                let (kind, _, counts) = &counts[i % KINDS.len()];
                tokio::spawn(clients::run(*kind, i, aim.clone(), counts.clone()))
            })
            .collect();
        Misbehaving { counts, tasks }
    }

    /// Stops every client and prints what each kind saw.
    pub fn stop(self) {
        println!("  misbehaving clients (each kind from its own address, 127.0.0.101 onwards):");
        for (kind, n, c) in &self.counts {
            println!(
                "    {:<10} {n} clients: {} connections opened, {} cut off by the server, {} refused, {} frames sent, {} still open at the end",
                kind.name(),
                Counts::get(&c.opened),
                Counts::get(&c.cut_off),
                Counts::get(&c.refused),
                Counts::get(&c.frames),
                Counts::get(&c.open_now),
            );
        }
        for task in &self.tasks {
            // Dropping a client's socket resets it (linger 0); nothing is left to clean up.
            task.abort();
        }
    }
}
