//! The Switchboard server: presence and call signalling over WebSockets, backed by SQLite.
//!
//! [`start`] runs a server from a [`Config`] on an already bound listener, so tests start it on
//! port 0 in-process; the `switchboard` binary only parses flags and calls it.

pub mod assets;
pub mod calls;
pub mod config;
pub mod http;
pub mod hub;
pub mod identity;
pub mod metrics;
pub mod rooms;
pub mod session;
pub mod store;

use std::{future::Future, net::SocketAddr, sync::Arc};

use axum::serve::ListenerExt;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub use config::Config;
use config::RoomsConfig;
use hub::{Clock, Hub, HubConfig};
use identity::Identity;
use metrics::Metrics;
use rooms::{BuiltinRoom, OpenMeetings, RoomProvider, UrlTemplate};
use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("setting up OpenMeetings: {0}")]
    Rooms(#[from] rooms::OpenMeetingsSetupError),
    #[error("listening: {0}")]
    Listen(#[from] std::io::Error),
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops gracefully: every session gets a close frame, every pending write is committed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the server has stopped (after a shutdown signal).
    pub async fn finished(mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Starts a server on `listener` and returns once it accepts sessions. It stops when `shutdown`
/// completes or [`Running::stop`] is called.
pub async fn start(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    let addr = listener.local_addr()?;
    let db = config.db.clone();
    let (store, writer, loaded) = tokio::task::spawn_blocking(move || Store::open(&db))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    let metrics = Arc::new(Metrics::default());
    let (rooms, builtin) = room_provider(&config.rooms)?;
    let identity = Identity::new(&config.identity);
    if identity.is_demo() {
        tracing::warn!(
            "DEMO MODE: no jwt_secret is set, so every client says who it is and anyone can be anyone"
        );
    }
    if config.public_url.is_none() && addr.ip().is_unspecified() {
        tracing::warn!(
            %addr,
            "listening on every address without public_url: join links will name {addr}, \
             which browsers cannot reach; set public_url"
        );
    }
    let public_url = config
        .public_url
        .as_ref()
        .map(|u| u.as_str().trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("http://{addr}"));
    let hub = Hub::spawn(
        HubConfig {
            ring_timeout: config.ring_timeout,
            presence_grace: config.presence_grace,
            max_call_duration: config.max_call_duration,
            single_session: config.single_session,
            limits: config.limits.clone(),
            public_url,
        },
        loaded,
        store,
        rooms.clone(),
        metrics.clone(),
        Clock::new(),
    );
    let state = http::AppState {
        session: session::SessionContext {
            hub: hub.clone(),
            identity,
            limits: config.limits.clone(),
            metrics,
        },
        allowed_origins: Arc::new(config.allowed_origins.clone()),
        rooms,
        builtin,
    };
    let app = http::router(state, &config.www);
    let (stop, stopped) = oneshot::channel::<()>();
    let listener = listener.tap_io(|tcp| {
        // Small pushed frames must not wait on Nagle's algorithm.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY failed");
        }
    });
    let task = tokio::spawn(async move {
        let hub_for_shutdown = hub.clone();
        let signal = async move {
            tokio::select! {
                _ = shutdown => {}
                _ = stopped => {}
            }
            hub_for_shutdown.shutdown().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
        {
            tracing::error!(error = %e, "the HTTP server failed");
        }
        drop(hub);
        if tokio::task::spawn_blocking(move || writer.join())
            .await
            .is_err()
        {
            tracing::error!("waiting for the database writer failed");
        }
    });
    tracing::info!(%addr, "switchboard listening");
    Ok(Running {
        addr,
        stop: Some(stop),
        task,
    })
}

type Providers = (Arc<dyn RoomProvider>, Option<Arc<BuiltinRoom>>);

fn room_provider(config: &RoomsConfig) -> Result<Providers, StartError> {
    Ok(match config {
        RoomsConfig::Builtin { ice_servers } => {
            let builtin = Arc::new(BuiltinRoom::new(ice_servers.clone()));
            (builtin.clone(), Some(builtin))
        }
        RoomsConfig::Template(template) => (Arc::new(UrlTemplate::new(template.clone())), None),
        RoomsConfig::OpenMeetings(om) => (Arc::new(OpenMeetings::new(om.clone())?), None),
    })
}
