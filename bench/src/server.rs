//! The server under test: a `switchboard` process this tool starts (sized for load by
//! environment variables), or one already running at a URL.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// How to start the server.
#[derive(Clone, Debug)]
pub struct Launch {
    pub bin: PathBuf,
    pub jwt_secret: Option<String>,
    /// Extra `KEY=VALUE` settings, applied after the tool's own.
    pub env: Vec<(String, String)>,
}

impl Launch {
    /// The server the flags ask for (`--server-bin`, `--jwt-secret`), with `env` first and the
    /// flags' `--server-env` settings after it, so those win.
    pub fn from_flags(common: &crate::cli::Common, env: Vec<(String, String)>) -> Launch {
        Launch {
            bin: common
                .server_bin
                .clone()
                .unwrap_or_else(Launch::default_bin),
            jwt_secret: common.jwt_secret.clone(),
            env: env
                .into_iter()
                .chain(common.server_env.iter().cloned())
                .collect(),
        }
    }

    /// The server binary next to this tool's own (both live in `target/<profile>/`).
    pub fn default_bin() -> PathBuf {
        std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join("switchboard")))
            .unwrap_or_else(|| PathBuf::from("switchboard"))
    }
}

/// A server process the tool owns; it is killed if still running when dropped.
pub struct Process {
    child: Child,
    launch: Launch,
    pub addr: SocketAddr,
    pub db: PathBuf,
    log: PathBuf,
}

impl Process {
    /// Starts the server on `addr` with its database at `db`, and waits until it answers.
    pub fn start(launch: &Launch, addr: SocketAddr, db: &Path) -> anyhow::Result<Self> {
        Self::start_logging(launch, addr, db, &db.with_extension("log"))
    }

    /// [`Process::start`] with its log (stderr) at `log`: nodes sharing a database each keep
    /// their own.
    pub fn start_logging(
        launch: &Launch,
        addr: SocketAddr,
        db: &Path,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let log = log.to_path_buf();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = Command::new(&launch.bin);
        cmd.env("SWITCHBOARD_LISTEN", addr.to_string())
            .env("SWITCHBOARD_DB", db)
            // Load comes from a few thousand users calling far more often than people do.
            .env("SWITCHBOARD_CALLS_PER_MINUTE", "0")
            // The presence scenario logs users in again and again on one connection.
            .env("SWITCHBOARD_LOGINS_PER_MINUTE", "0")
            // Thousands of users come from a handful of loopback addresses, each sending far
            // more than a person would.
            .env("SWITCHBOARD_LOGINS_PER_IP_PER_MINUTE", "0")
            .env("SWITCHBOARD_CONNECTIONS_PER_IP", "0")
            .env("SWITCHBOARD_MESSAGES_PER_SECOND", "0")
            .env("SWITCHBOARD_WATCHES_PER_MINUTE", "0")
            .env("SWITCHBOARD_MAX_CONNECTIONS", "0")
            .env("SWITCHBOARD_MAX_SESSIONS", "0")
            .env("SWITCHBOARD_RING_TIMEOUT", "120s")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(secret) = &launch.jwt_secret {
            cmd.env("SWITCHBOARD_JWT_SECRET", secret);
        }
        for (key, value) in &launch.env {
            cmd.env(key, value);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("while starting {}", launch.bin.display()))?;
        let mut process = Process {
            child,
            launch: launch.clone(),
            addr,
            db: db.to_path_buf(),
            log,
        };
        process.wait_ready(Duration::from_secs(30))?;
        Ok(process)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, patience: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                bail!("the server exited with {status}:\n{log}");
            }
            if healthy(self.addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server did not answer /healthz within {patience:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The lines of the server's log (its stderr) that report a panic.
    pub fn panics(&self) -> anyhow::Result<Vec<String>> {
        let log = std::fs::read_to_string(&self.log)
            .with_context(|| format!("while reading {}", self.log.display()))?;
        Ok(log
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(String::from)
            .collect())
    }

    /// SIGKILL: no graceful shutdown, no final flush.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Starts a new process on the same address and database.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let next = Process::start(&self.launch, self.addr, &self.db)?;
        // The old process is already reaped, so dropping it does nothing more.
        drop(std::mem::replace(self, next));
        Ok(())
    }

    /// SIGTERM, so the server commits what it has queued; SIGKILL after 20 s.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = Pid::from_raw(i32::try_from(self.pid())?);
        kill(pid, Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                return self.kill();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS line")
}

/// CPU time a process has used, in clock ticks (1/100 s on Linux): all of it (threads that
/// ended included), and the part of its threads whose name starts with `thread`.
pub fn cpu_ticks(pid: u32, thread: &str) -> anyhow::Result<(u64, u64)> {
    // utime and stime are the 14th and 15th fields; the name before them may hold spaces,
    // so count from the closing parenthesis.
    let ticks = |stat: &str| -> Option<u64> {
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    };
    let total = ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
        .context("unreadable /proc stat")?;
    let mut named = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.starts_with(thread) {
            named += std::fs::read_to_string(path.join("stat"))
                .ok()
                .as_deref()
                .and_then(ticks)
                .unwrap_or(0);
        }
    }
    Ok((total, named))
}

/// `GET /healthz` answered 200.
pub fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).is_ok() && answer.starts_with(b"HTTP/1.1 200")
}

/// The allocator's own figures from the server's `/metrics`, in bytes: what is allocated
/// (live) and what it keeps resident; None if the server does not report them.
pub fn allocator_bytes(addr: SocketAddr) -> Option<(u64, u64)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let gauge = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .map(|value| value as u64)
    };
    Some((
        gauge("switchboard_memory_allocated_bytes")?,
        gauge("switchboard_memory_resident_bytes")?,
    ))
}

/// A free port on 127.0.0.1, so a restarted server can come back on the same address.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// `ws://host:port/path` → the socket address.
pub fn addr_of(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("ws://")
        .context("only ws:// URLs are supported")?;
    let host = rest.split('/').next().unwrap_or(rest);
    host.parse()
        .with_context(|| format!("{host} is not an IP address and port"))
}
