//! The coordinator's side of the workers: starts one process per share of the sessions, sends
//! them jobs, and gathers their reports.

use std::{process::Stdio, time::Instant};

use anyhow::{Context, bail};
use futures_util::future::join_all;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

use crate::wire::{Connected, Job, Report, Setup};

struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    async fn send<T: serde::Serialize>(&mut self, message: &T) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// The worker's next report, and when it arrived.
    async fn report(&mut self) -> anyhow::Result<(Report, Instant)> {
        let line = self
            .lines
            .next_line()
            .await?
            .context("a worker exited early (see its stderr above)")?;
        let report: Report = serde_json::from_str(&line)?;
        if let Report::Failed(why) = report {
            bail!("a worker failed: {why}");
        }
        Ok((report, Instant::now()))
    }
}

pub struct Pool {
    workers: Vec<Worker>,
}

/// Splits `sessions` users into `workers` contiguous shares.
pub fn shares(sessions: usize, workers: usize) -> Vec<(usize, usize)> {
    let workers = workers.clamp(1, sessions.max(1));
    (0..workers)
        .map(|w| {
            let first = sessions * w / workers;
            (first, sessions * (w + 1) / workers - first)
        })
        .collect()
}

impl Pool {
    /// Starts one worker per setup and waits until each has connected and logged in its
    /// sessions.
    pub async fn start(setups: Vec<Setup>) -> anyhow::Result<(Pool, Vec<Connected>)> {
        let exe = std::env::current_exe()?;
        let mut workers = Vec::new();
        for setup in &setups {
            let mut child = Command::new(&exe)
                .arg("worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .context("while starting a worker")?;
            let stdin = child.stdin.take().context("worker stdin")?;
            let stdout = child.stdout.take().context("worker stdout")?;
            let mut worker = Worker {
                child,
                stdin,
                lines: BufReader::new(stdout).lines(),
            };
            worker.send(setup).await?;
            workers.push(worker);
        }
        let mut pool = Pool { workers };
        let connected = pool
            .reports()
            .await?
            .into_iter()
            .map(|(report, _)| match report {
                Report::Connected(c) => Ok(c),
                other => bail!("expected Connected, got {other:?}"),
            })
            .collect::<anyhow::Result<_>>()?;
        Ok((pool, connected))
    }

    /// Sends each worker its job (`job(worker index)`).
    pub async fn send(&mut self, job: impl Fn(usize) -> Job) -> anyhow::Result<()> {
        for (i, worker) in self.workers.iter_mut().enumerate() {
            worker.send(&job(i)).await?;
        }
        Ok(())
    }

    /// The next report of every worker, in worker order.
    pub async fn reports(&mut self) -> anyhow::Result<Vec<(Report, Instant)>> {
        join_all(self.workers.iter_mut().map(Worker::report))
            .await
            .into_iter()
            .collect()
    }

    pub async fn quit(mut self) {
        let _ = self.send(|_| Job::Quit).await;
        for worker in &mut self.workers {
            let _ = worker.child.wait().await;
        }
    }
}
