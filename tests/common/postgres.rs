//! A real PostgreSQL (Debian's packages) on a free loopback port, in a temporary directory.
//! The cluster is initialised once per test binary into a template directory; each server
//! starts from a copy of it and is stopped when dropped. As root, PostgreSQL runs as the
//! `postgres` user, since it refuses to run as root. A missing PostgreSQL fails the test.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use tempfile::TempDir;

pub struct PostgresServer {
    pub port: u16,
    data: PathBuf,
    _dir: TempDir,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: the newest installed version.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (Debian package postgresql; .ci/run installs it)")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL server binary")
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// A PostgreSQL program, to run as the `postgres` user when this is root.
fn program(name: &str) -> Command {
    let binary = bin_dir().join(name);
    if as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(&binary);
        command
    } else {
        Command::new(&binary)
    }
}

/// Runs a PostgreSQL program; it must succeed.
fn run(name: &str, args: &[&str]) {
    let output = program(name)
        .args(args)
        .output()
        .expect("a PostgreSQL program runs");
    assert!(
        output.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Lets the `postgres` user own `dir` when this is root.
fn hand_over(dir: &Path) {
    if as_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// A freshly initialised cluster (user `switchboard`, trusted on loopback), made once.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            hand_over(dir.path());
            let data = dir.path().join("data");
            run(
                "initdb",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-U",
                    "switchboard",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            );
            dir
        })
        .path()
}

impl PostgresServer {
    /// Starts a server on a copy of the template cluster and waits until it takes connections.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let status = Command::new("cp")
            .arg("-a")
            .arg(template().join("data"))
            .arg(&data)
            .status()
            .unwrap();
        assert!(status.success(), "copying the template cluster");
        hand_over(dir.path());
        let server = Self {
            port,
            data,
            _dir: dir,
        };
        server.resume();
        server
    }

    /// Stops the server (its clients lose their connections) until [`Self::resume`].
    pub fn pause(&self) {
        run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts the server (again) on its port and data.
    pub fn resume(&self) {
        let dir = self.data.parent().unwrap();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            dir.display()
        );
        run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                dir.join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// A URL of a database of its own on this server, created now.
    pub fn database(&self, name: &str) -> String {
        run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "switchboard",
                name,
            ],
        );
        format!("postgres://switchboard@127.0.0.1:{}/{name}", self.port)
    }

    /// The rows a query returns, each as its columns' text.
    pub fn query(&self, database: &str, sql: &str) -> Vec<Vec<String>> {
        let output = Command::new(bin_dir().join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "switchboard",
            ])
            .args(["-d", database, "-A", "-t", "-F", "\t", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // Already stopped by a test that paused it: nothing to do.
        let data = self.data.to_string_lossy().to_string();
        let _ = program("pg_ctl")
            .args(["-D", data.as_str(), "-m", "immediate", "stop"])
            .output();
    }
}
