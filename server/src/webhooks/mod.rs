//! Signed webhooks to the site's backend: every call step and presence change it should hear
//! of is queued in the database's outbox by the store's writer, in the same transaction as the
//! change, and one sender per URL delivers the queue, at least once and in order per call and
//! per user. The hub never waits on any of it. The URLs and the secret can be replaced while
//! the server runs.

mod backoff;
mod config;
mod deliver;
mod event;
mod outbox;
mod queue;
mod sign;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use arc_swap::ArcSwap;
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use url::Url;

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
/// queued for the next start. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks(Arc<Running>);

struct Running {
    stop: CancellationToken,
    shared: Arc<deliver::Shared>,
    /// The URLs the writer queues events for.
    urls: Arc<ArcSwap<Vec<String>>>,
    committed: watch::Receiver<()>,
    /// One sender per URL, each stopped on its own when its URL is dropped.
    senders: Mutex<HashMap<Url, (CancellationToken, JoinHandle<()>)>>,
    depth: Mutex<Option<JoinHandle<()>>>,
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
        let urls = url_strings(&config.urls);
        forget_others(&queue, urls.clone(), &metrics).await?;
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
            secret: ArcSwap::from_pointee(config.secret.clone()),
            queue,
            outcomes: metrics.webhooks.clone(),
            retry_for: config.retry_for,
            backoff_max: config.backoff_max,
            claim_for: config.timeout * 2 + CONNECT_TIMEOUT,
        });
        let (committed, watching) = watch::channel(());
        let stop = CancellationToken::new();
        let urls = Arc::new(ArcSwap::from_pointee(urls));
        let depth = tokio::spawn(keep_depth(shared.clone(), metrics, stop.clone()));
        let running = Running {
            stop,
            shared,
            urls: urls.clone(),
            committed: watching,
            senders: Mutex::default(),
            depth: Mutex::new(Some(depth)),
        };
        for url in &config.urls {
            running.start_sender(url.clone());
        }
        Ok((Webhooks(Arc::new(running)), Recorder::new(urls, committed)))
    }

    /// Puts new URLs and a new secret in force: events are queued for the new URLs from the
    /// next write on, a dropped URL's sender stops and its queued events are dropped (counted
    /// as given up), and the next signature uses the new secret.
    pub async fn reload(&self, new: &WebhookConfig, metrics: &Metrics) -> Result<(), QueueError> {
        let running = &self.0;
        running.shared.secret.store(Arc::new(new.secret.clone()));
        running.urls.store(Arc::new(url_strings(&new.urls)));
        let added: Vec<Url> = {
            let mut senders = running.lock_senders();
            senders.retain(|url, (stop, _)| {
                let kept = new.urls.contains(url);
                if !kept {
                    stop.cancel();
                }
                kept
            });
            new.urls
                .iter()
                .filter(|u| !senders.contains_key(u))
                .cloned()
                .collect()
        };
        for url in added {
            running.start_sender(url);
        }
        forget_others(&running.shared.queue, url_strings(&new.urls), metrics).await
    }

    /// Stops the senders, letting go of the rows they were sending.
    pub async fn stop(self) {
        let running = &self.0;
        running.stop.cancel();
        let senders: Vec<_> = running
            .lock_senders()
            .drain()
            .map(|(_, (_, task))| task)
            .collect();
        let depth = running
            .depth
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        for task in senders.into_iter().chain(depth) {
            let _ = task.await;
        }
    }
}

impl Running {
    fn start_sender(&self, url: Url) {
        let stop = self.stop.child_token();
        let sender = deliver::Sender {
            url: url.clone(),
            shared: self.shared.clone(),
            committed: self.committed.clone(),
            stop: stop.clone(),
        };
        let task = tokio::spawn(sender.run());
        self.lock_senders().insert(url, (stop, task));
    }

    fn lock_senders(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Url, (CancellationToken, JoinHandle<()>)>> {
        self.senders.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn url_strings(urls: &[Url]) -> Vec<String> {
    urls.iter().map(|u| u.as_str().to_string()).collect()
}

/// Drops what is queued for URLs no longer configured, counting it as given up.
async fn forget_others(
    queue: &queue::Queue,
    urls: Vec<String>,
    metrics: &Metrics,
) -> Result<(), QueueError> {
    let forgotten = queue.forget_other_urls(urls).await?;
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
    Ok(())
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
