//! The `switchboard` binary: reads the configuration, starts the server, stops it on a signal.

use anyhow::Context;
use clap::Parser;
use sd_notify::NotifyState;
use switchboard::{Config, config::Cli, logging, reload::Reloader};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(&cli).context("while reading the configuration")?;
    let log_level = logging::init(config.log_format, &config.log_level)?;
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("while binding {}", config.listen))?;
    let running = switchboard::start(config, listener, shutdown_signal())
        .await
        .context("while starting")?;
    // Scripts and tests wait for this line; systemd (Type=notify) for this message.
    println!("switchboard listening on http://{}", running.addr);
    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
    #[cfg(unix)]
    tokio::spawn(reload_on_hangup(cli, running.reloader(), log_level));
    // Exits non-zero, saying how many, when writes could not be saved.
    running.finished().await.context("while stopping")?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

/// On each SIGHUP, reads the configuration again and applies what can change while running.
#[cfg(unix)]
async fn reload_on_hangup(cli: Cli, reloader: Reloader, log_level: logging::LogLevel) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP: no configuration reloads");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let _ = sd_notify::notify(false, &[NotifyState::Reloading]);
        match Config::load(&cli) {
            Err(e) => tracing::error!(error = %e, "configuration not reloaded: it is invalid"),
            Ok(config) => {
                let level = config.log_level.clone();
                let reloaded = reloader.apply(config).await;
                if reloaded.applied.contains(&"log_level")
                    && let Err(e) = log_level.set(&level)
                {
                    tracing::error!(error = %e, "log_level not reloaded");
                }
                tracing::info!(
                    applied = ?reloaded.applied,
                    need_restart = ?reloaded.need_restart,
                    "configuration reloaded"
                );
                if !reloaded.need_restart.is_empty() {
                    tracing::warn!(
                        settings = ?reloaded.need_restart,
                        "changed settings that only a restart applies"
                    );
                }
            }
        }
        let _ = sd_notify::notify(false, &[NotifyState::Ready]);
    }
}
