//! The Switchboard server: presence and call signalling over WebSockets, backed by SQLite.
//!
//! [`start`] runs a server from a [`Config`] on an already bound listener, so tests start it on
//! port 0 in-process; the `switchboard` binary only parses flags and calls it.

pub mod admission;
pub mod api;
pub mod assets;
pub mod calls;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod http;
pub mod hub;
pub mod identity;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod origin;
pub mod outbox;
pub mod reload;
pub mod rooms;
pub mod socket;
pub mod store;
pub mod webhooks;

use std::{future::Future, net::SocketAddr, sync::Arc};

use arc_swap::ArcSwap;
use axum::serve::ListenerExt;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use cluster::Cluster;
pub use config::Config;
use config::RoomsConfig;
use hub::{Clock, Hub, HubConfig};
use identity::Identity;
use metrics::Metrics;
use rooms::{BuiltinRoom, OpenMeetings, RoomProvider};
use store::{Instruments, Store};
use webhooks::Webhooks;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("setting up OpenMeetings: {0}")]
    Rooms(#[from] rooms::OpenMeetingsSetupError),
    #[error("listening: {0}")]
    Listen(#[from] std::io::Error),
    #[error("redis_url: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("opening the database for the API: {0}")]
    Api(#[from] api::ReadError),
    #[error(transparent)]
    Webhooks(#[from] webhooks::WebhookError),
}

#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("the server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when not on `addr`.
    pub metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), store::StoreError>>,
    reloader: reload::Reloader,
}

impl Running {
    /// Applies a new configuration's reloadable settings while the server runs.
    pub fn reloader(&self) -> reload::Reloader {
        self.reloader.clone()
    }

    /// Stops gracefully: every session gets a close frame, every pending write is committed or,
    /// when the database takes none, logged as lost.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(e) = self.finished().await {
            tracing::error!(error = %e, "the server stopped uncleanly");
        }
    }

    /// Waits until the server has stopped (after a shutdown signal); fails if any write could
    /// not be saved.
    pub async fn finished(self) -> Result<(), StopError> {
        Ok(self.task.await??)
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
    let metrics_listener = match config.metrics_listen {
        Some(at) => Some(TcpListener::bind(at).await?),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let db = config.db.clone();
    let metrics = match config.cluster {
        Some(_) => Metrics::default().for_cluster(),
        None => Metrics::default(),
    };
    let metrics = match config.webhooks {
        Some(_) => metrics.for_webhooks(),
        None => metrics,
    };
    let metrics = Arc::new(metrics);
    let instruments = Instruments {
        errors: metrics.store_errors.clone(),
        backlog: metrics.store_backlog.clone(),
        commit_seconds: metrics.store_commit_seconds.clone(),
    };
    let backlog_limit = config.store_backlog_limit;
    let priority = config.store_writer_priority;
    let database_url = config.database_url.clone();
    let (store, writer, loaded) = tokio::task::spawn_blocking(move || match database_url {
        Some(url) => Store::open_postgres(&url, backlog_limit, instruments),
        None => Store::open(&db, backlog_limit, priority, instruments),
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))??;
    let webhooks = match &config.webhooks {
        Some(hooks) => {
            let database = match &config.database_url {
                Some(url) => webhooks::Database::Postgres(url),
                None => webhooks::Database::Sqlite(&config.db),
            };
            let (webhooks, recorder) = Webhooks::start(hooks, database, metrics.clone()).await?;
            // Before the hub and the cluster exist, so before the first write.
            store.record_webhooks(recorder);
            Some(webhooks)
        }
        None => None,
    };
    let store_health = store.health();
    let cluster = config
        .cluster
        .as_ref()
        .map(|c| Cluster::start(c, metrics.clone(), store.clone()))
        .transpose()?;
    let cluster_handle = cluster.as_ref().map(|(c, _)| c.clone());
    let (rooms, builtin) = room_provider(&config.rooms, cluster_handle.as_ref())?;
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
            replay_for: config.limits.timing.idle_timeout + config.presence_grace,
            public_url,
            record_presence: config.webhooks.is_some(),
        },
        loaded,
        store,
        rooms.clone(),
        metrics.clone(),
        Clock::new(),
        cluster,
    );
    let origins = Arc::new(ArcSwap::from_pointee(origin::Origins::new(
        config.public_url.as_ref(),
        addr,
        config.allowed_origins.clone(),
    )));
    let api = api::Api::start(&config, hub.clone(), cluster_handle.clone())?;
    let limits = Arc::new(ArcSwap::from_pointee(config.limits.clone()));
    let admission = admission::Admission::new(config.admission.clone());
    let reloader = reload::Reloader {
        origins: origins.clone(),
        addr,
        api: api.clone(),
        hub: hub.clone(),
        limits: limits.clone(),
        admission: admission.clone(),
        webhooks: webhooks.clone(),
        metrics: metrics.clone(),
        current: Arc::new(std::sync::Mutex::new(config.clone())),
    };
    let state = http::AppState {
        session: connection::ConnectionContext {
            hub: hub.clone(),
            identity,
            limits,
            metrics,
            admission,
        },
        origins: origins.clone(),
        store: store_health,
        cluster: cluster_handle,
        rooms,
        builtin,
    };
    let app = http::router(state.clone(), &config.www, metrics_listener.is_none())
        .merge(api::router(api));
    let metrics_task = metrics_listener.map(|listener| {
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, http::metrics_router(state)).await {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        })
    });
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
        // The peer's address is what per-address limits count, unless a trusted proxy names
        // another.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
        {
            tracing::error!(error = %e, "the HTTP server failed");
        }
        if let Some(metrics) = metrics_task {
            metrics.abort();
        }
        drop(hub);
        let written = tokio::task::spawn_blocking(move || writer.join())
            .await
            .unwrap_or(Err(store::StoreError::WriterGone));
        // What they did not deliver stays queued for the next start.
        if let Some(webhooks) = webhooks {
            webhooks.stop().await;
        }
        written
    });
    tracing::info!(%addr, "switchboard listening");
    if let Some(at) = metrics_addr {
        tracing::info!(%at, "/metrics served here only");
    }
    Ok(Running {
        addr,
        metrics_addr,
        stop: Some(stop),
        task,
        reloader,
    })
}

type Providers = (Arc<dyn RoomProvider>, Option<Arc<BuiltinRoom>>);

fn room_provider(config: &RoomsConfig, cluster: Option<&Cluster>) -> Result<Providers, StartError> {
    Ok(match config {
        RoomsConfig::Builtin(ice) => {
            let builtin = Arc::new(match cluster {
                Some(cluster) => {
                    let room = BuiltinRoom::clustered(ice.clone(), cluster.clone());
                    let (sink, mut heard) = tokio::sync::mpsc::unbounded_channel();
                    cluster.hear_rooms(sink);
                    let listener = room.clone();
                    tokio::spawn(async move {
                        while let Some(signal) = heard.recv().await {
                            listener.heard_from_elsewhere(signal);
                        }
                    });
                    room
                }
                None => BuiltinRoom::new(ice.clone()),
            });
            (builtin.clone(), Some(builtin))
        }
        RoomsConfig::Template(template) => (Arc::new(template.clone()), None),
        RoomsConfig::OpenMeetings(om) => (Arc::new(OpenMeetings::new(om.clone())?), None),
    })
}
