//! The server's log on stderr: text, or one JSON object per line; its level from `log_level`
//! (`RUST_LOG`, when set, wins), changeable while the server runs.

use serde::{Deserialize, Serialize};
use tracing_subscriber::{EnvFilter, Registry, fmt, prelude::*, reload};

/// How each log line is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, message and fields), for log
    /// collectors.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log_level {0:?}: {1}")]
    Level(String, String),
    #[error("a logger is already installed")]
    Installed,
}

/// Changes the running log's level.
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
}

/// The filter `level` describes, e.g. `info`, or `info,switchboard::calls=warn`.
pub fn parse_level(level: &str) -> Result<EnvFilter, LogError> {
    EnvFilter::builder()
        .parse(level)
        .map_err(|e| LogError::Level(level.to_string(), e.to_string()))
}

/// The filter for `level`, or for `RUST_LOG` when that is set.
fn filter(level: &str) -> Result<EnvFilter, LogError> {
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => parse_level(&directives),
        _ => parse_level(level),
    }
}

/// Installs the process's logger.
pub fn init(format: LogFormat, level: &str) -> Result<LogLevel, LogError> {
    let (filter, handle) = reload::Layer::new(filter(level)?);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Text => registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    installed.map_err(|_| LogError::Installed)?;
    Ok(LogLevel { handle })
}

impl LogLevel {
    /// Applies `level` from now on.
    pub fn set(&self, level: &str) -> Result<(), LogError> {
        self.handle
            .reload(filter(level)?)
            .map_err(|e| LogError::Level(level.to_string(), e.to_string()))
    }
}
