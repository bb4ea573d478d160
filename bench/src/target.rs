//! The server a run drives: a fresh process in a temporary directory, or a running one.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::Context;
use tempfile::TempDir;

use crate::{
    cli::Common,
    net,
    pool::shares,
    server::{self, Launch, Process},
    wire::{Node, Setup},
};

/// The name of the server's database writer thread, as the kernel keeps it (15 characters).
const STORE_THREAD: &str = "switchboard-sto";

pub struct Target {
    pub server: SocketAddr,
    pub url: String,
    /// Every node sessions are spread over (the one server alone, usually).
    pub nodes: Vec<Node>,
    pub process: Option<Process>,
    pid: Option<u32>,
    /// `--db`: the database of a server someone else runs.
    db: Option<PathBuf>,
    /// Holds the database until the run is over.
    _dir: Option<TempDir>,
}

impl Target {
    pub fn open(common: &Common) -> anyhow::Result<Target> {
        if !common.urls.is_empty() {
            let nodes = common
                .urls
                .iter()
                .map(|url| {
                    Ok(Node {
                        server: server::addr_of(url)?,
                        url: url.clone(),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            return Ok(Target {
                server: nodes[0].server,
                url: nodes[0].url.clone(),
                nodes,
                process: None,
                pid: common.server_pid,
                db: common.db.clone(),
                _dir: None,
            });
        }
        if let Some(url) = &common.url {
            return Ok(Target {
                server: server::addr_of(url)?,
                url: url.clone(),
                nodes: vec![Node {
                    server: server::addr_of(url)?,
                    url: url.clone(),
                }],
                process: None,
                pid: common.server_pid,
                db: common.db.clone(),
                _dir: None,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("switchboard-bench")
            .tempdir()?;
        let launch = Launch::from_flags(common, Vec::new());
        let addr = server::free_addr()?;
        let process = Process::start(&launch, addr, &dir.path().join("switchboard.db"))?;
        Ok(Target {
            server: addr,
            url: format!("ws://{addr}/ws"),
            nodes: vec![Node {
                server: addr,
                url: format!("ws://{addr}/ws"),
            }],
            pid: Some(process.pid()),
            db: None,
            process: Some(process),
            _dir: Some(dir),
        })
    }

    /// Nodes someone else runs (the cluster scenario keeps its own processes).
    pub fn of_nodes(nodes: Vec<Node>) -> Target {
        Target {
            server: nodes[0].server,
            url: nodes[0].url.clone(),
            nodes,
            process: None,
            pid: None,
            db: None,
            _dir: None,
        }
    }

    /// The server's resident memory in KiB, if its process is known.
    pub fn rss_kib(&self) -> Option<u64> {
        server::rss_kib(self.pid()?).ok()
    }

    /// The server's CPU ticks: in all, and in its store's writer thread.
    pub fn cpu_ticks(&self) -> Option<(u64, u64)> {
        server::cpu_ticks(self.pid()?, STORE_THREAD).ok()
    }

    fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::pid).or(self.pid)
    }

    /// The database of the server under test: its own, or `--db` for one someone else runs.
    /// The server's allocator figures (allocated, resident) in bytes, if it reports them.
    pub fn allocator(&self) -> Option<(u64, u64)> {
        server::allocator_bytes(self.server)
    }

    pub fn db(&self) -> Option<PathBuf> {
        self.process
            .as_ref()
            .map(|p| p.db.clone())
            .or(self.db.clone())
    }

    pub fn managed(&mut self) -> anyhow::Result<&mut Process> {
        self.process
            .as_mut()
            .context("this scenario needs a server the tool starts itself (no --url)")
    }

    /// One setup per worker, splitting `sessions` between them.
    pub fn setups(
        &self,
        common: &Common,
        sessions: usize,
        watch: usize,
        reconnect: bool,
    ) -> Vec<Setup> {
        let tag = format!("b{:06x}", rand::random::<u32>() & 0xff_ffff);
        shares(sessions, common.workers)
            .into_iter()
            .map(|(first_user, users)| Setup {
                nodes: self.nodes.clone(),
                first_user,
                tag: tag.clone(),
                users,
                sources: net::source_addrs(common.sources),
                jwt_secret: common.jwt_secret.clone(),
                concurrency: common.concurrency,
                watch,
                reconnect,
            })
            .collect()
    }
}

/// Counts the calls recorded in a database, and those among them still ringing.
pub fn count_calls(db: &Path) -> anyhow::Result<(u64, u64)> {
    let conn = rusqlite::Connection::open(db)?;
    let count = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0));
    Ok((
        count("SELECT count(*) FROM calls")?.try_into()?,
        count("SELECT count(*) FROM calls WHERE state = 'ringing'")?.try_into()?,
    ))
}

/// What a database holds of the calls one run of the tool placed: its users' calls (ids
/// `<tag>.<n>`) since a moment (Unix milliseconds).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Persisted {
    pub calls: u64,
    /// Ended after an answer, with answer and end times in order: how the tool's calls end.
    pub answered_then_ended: u64,
    /// Still ringing or answered.
    pub live: u64,
}

impl Persisted {
    pub fn read(db: &Path, tag: &str, since_ms: u64) -> anyhow::Result<Persisted> {
        let conn = rusqlite::Connection::open(db)?;
        // The tag is letters and digits; `_` and `%` cannot occur in it.
        let users = format!("{tag}.%");
        let count = |condition: &str| -> anyhow::Result<u64> {
            let sql = format!(
                "SELECT count(*) FROM calls WHERE placed_at >= ?1 AND caller_id LIKE ?2 {condition}"
            );
            let n: i64 =
                conn.query_row(&sql, rusqlite::params![since_ms as i64, users], |row| {
                    row.get(0)
                })?;
            Ok(n.try_into()?)
        };
        Ok(Persisted {
            calls: count("")?,
            answered_then_ended: count(
                "AND state = 'ended' AND answered_at >= placed_at AND ended_at >= answered_at",
            )?,
            live: count("AND state IN ('ringing', 'answered')")?,
        })
    }

    /// For a server still running: reads until `placed` calls are answered and ended, or
    /// `patience` passes, since its last writes may still be on their way to the disk.
    pub async fn settled(
        db: &Path,
        tag: &str,
        since_ms: u64,
        placed: u64,
        patience: std::time::Duration,
    ) -> anyhow::Result<Persisted> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            let p = Persisted::read(db, tag, since_ms)?;
            if p.answered_then_ended >= placed || std::time::Instant::now() >= deadline {
                return Ok(p);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}
