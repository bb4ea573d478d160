//! Signed webhooks to the site's backend: every call step and presence change it should hear
//! of is queued in the database's outbox by the store's writer, in the same transaction as the
//! change, and one sender per URL delivers the queue, at least once and in order per call and
//! per user. The hub never waits on any of it.

mod backoff;
mod config;
mod deliver;
mod event;
mod outbox;
mod queue;
mod sign;

use std::{path::Path, sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub use config::WebhookConfig;
pub use outbox::Recorder;
pub use queue::QueueError;

use crate::metrics::Metrics;

/// The longest a connection to an endpoint may take to open: a host that does not answer is
/// down, whatever `webhook_timeout` allows for a slow answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the outbox depth gauge is brought up to date.
const DEPTH_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The database the store writes the outbox to; the senders open their own connection to it.
pub enum Database<'a> {
    Sqlite(&'a Path),
    Postgres(&'a str),
}

/// The running senders. [`Webhooks::stop`] ends them; what they have not delivered stays
/// queued for the next start.
pub struct Webhooks {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Webhooks {
    /// Starts one sender per URL on its own connection to `database` (which the store has
    /// already migrated), and returns the recorder the store's writer queues events with.
    pub async fn start(
        config: &WebhookConfig,
        database: Database<'_>,
        metrics: Arc<Metrics>,
    ) -> Result<(Webhooks, Recorder), WebhookError> {
        let queue = match database {
            Database::Sqlite(path) => queue::Queue::sqlite(path).await?,
            Database::Postgres(url) => queue::Queue::postgres(url).await?,
        };
        let urls: Vec<String> = config.urls.iter().map(|u| u.as_str().to_string()).collect();
        let forgotten = queue.forget_other_urls(urls.clone()).await?;
        if forgotten > 0 {
            tracing::warn!(
                forgotten,
                "queued webhooks for URLs no longer in webhook_urls were dropped"
            );
            metrics
                .webhooks
                .get_or_create(&crate::metrics::OutcomeLabel {
                    outcome: "given_up",
                })
                .inc_by(forgotten);
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(CONNECT_TIMEOUT))
            // A redirect would send the signed event somewhere it was not configured to go.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(deliver::BATCH)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let shared = Arc::new(deliver::Shared {
            client,
            secret: config.secret.clone(),
            queue,
            outcomes: metrics.webhooks.clone(),
            retry_for: config.retry_for,
            backoff_max: config.backoff_max,
            claim_for: config.timeout * 2 + CONNECT_TIMEOUT,
        });
        let (committed, watching) = watch::channel(());
        let stop = CancellationToken::new();
        let mut tasks: Vec<JoinHandle<()>> = config
            .urls
            .iter()
            .map(|url| {
                let sender = deliver::Sender {
                    url: url.clone(),
                    shared: shared.clone(),
                    committed: watching.clone(),
                    stop: stop.clone(),
                };
                tokio::spawn(sender.run())
            })
            .collect();
        tasks.push(tokio::spawn(keep_depth(shared, metrics, stop.clone())));
        Ok((Webhooks { stop, tasks }, Recorder::new(urls, committed)))
    }

    /// Stops the senders, letting go of the rows they were sending.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Keeps `switchboard_webhook_outbox` up to date: events queued and not yet delivered or given
/// up, across every URL (and, in a cluster, every node).
async fn keep_depth(shared: Arc<deliver::Shared>, metrics: Arc<Metrics>, stop: CancellationToken) {
    let mut every = tokio::time::interval(DEPTH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        match shared.queue.depth().await {
            Ok(depth) => {
                metrics.webhook_outbox.set(depth);
            }
            Err(e) => tracing::debug!(error = %e, "the webhook outbox depth could not be read"),
        }
    }
}
