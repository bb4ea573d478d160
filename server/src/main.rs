//! The `switchboard` binary: reads the configuration, starts the server, stops it on a signal.

use anyhow::Context;
use clap::Parser;
use switchboard::{Config, config::Cli, logging};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(&cli).context("while reading the configuration")?;
    let _log_level = logging::init(config.log_format, &config.log_level)?;
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("while binding {}", config.listen))?;
    let running = switchboard::start(config, listener, shutdown_signal())
        .await
        .context("while starting")?;
    // Scripts and tests wait for this line.
    println!("switchboard listening on http://{}", running.addr);
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
}
