//! One sender per URL: takes the rows that may go next, POSTs them signed (several at once,
//! each of a different subject), and settles them: delivered rows go, failed ones wait a
//! growing pause, and one still failing `webhook_retry_for` after it was queued is given up,
//! counted and logged. When a whole round fails the endpoint is down, and the sender pauses
//! before trying it again, so an outage costs a few requests, not one per queued event.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::future::join_all;
use prometheus_client::metrics::{counter::Counter, family::Family};
use reqwest::header::CONTENT_TYPE;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::{
    backoff::random_pause,
    queue::{Claimed, Queue, Settled},
    sign::{EVENT_ID_HEADER, SIGNATURE_HEADER, signature},
};
use crate::{calls::Millis, metrics::OutcomeLabel};

/// Most rows one sender has in flight: enough to drain a burst (a thousand users coming
/// online) in a few round trips, few enough not to flood the backend.
pub const BATCH: usize = 32;
/// How often a sender looks for rows it was not told of: other nodes' rows, and rows whose
/// pause ran out.
const POLL: Duration = Duration::from_secs(1);
/// The pause after the outbox itself could not be read or written.
const OUTBOX_PAUSE: Duration = Duration::from_secs(1);

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    #[error("answered {0}")]
    Status(reqwest::StatusCode),
}

/// What every sender shares.
pub struct Shared {
    pub client: reqwest::Client,
    /// Replaced when the configuration is reloaded.
    pub secret: arc_swap::ArcSwap<Vec<u8>>,
    pub queue: Queue,
    /// `switchboard_webhooks_total`: `delivered`, `failed` attempts, `given_up` events.
    pub outcomes: Family<OutcomeLabel, Counter>,
    pub retry_for: Duration,
    pub backoff_max: Duration,
    /// How long a claimed row is held: past it, the sender is presumed dead and another takes
    /// the row (which may then arrive twice).
    pub claim_for: Duration,
}

pub struct Sender {
    pub url: Url,
    pub shared: Arc<Shared>,
    /// Changed when the store's writer committed new rows.
    pub committed: watch::Receiver<()>,
    pub stop: CancellationToken,
}

impl Sender {
    pub async fn run(mut self) {
        let url = self.url.as_str().to_string();
        // Rounds in a row in which every attempt failed.
        let mut failing = 0u32;
        let mut outbox_failing = false;
        while !self.stop.is_cancelled() {
            let now = now_ms();
            let until = now + self.shared.claim_for.as_millis() as Millis;
            let claimed = match self.shared.queue.claim(&url, now, until, BATCH).await {
                Ok(claimed) => {
                    if std::mem::take(&mut outbox_failing) {
                        tracing::info!(%url, "the webhook outbox can be read again");
                    }
                    claimed
                }
                Err(e) => {
                    if !std::mem::replace(&mut outbox_failing, true) {
                        tracing::warn!(%url, error = %e, "cannot read the webhook outbox; trying again");
                    }
                    self.pause(OUTBOX_PAUSE).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                self.idle().await;
                continue;
            }
            let attempts = join_all(claimed.iter().map(|row| self.send(row)));
            let results = tokio::select! {
                results = attempts => results,
                () = self.stop.cancelled() => {
                    let seqs = claimed.iter().map(|row| row.seq).collect();
                    if let Err(e) = self.shared.queue.release(seqs).await {
                        tracing::debug!(error = %e, "webhooks in flight not released; they go once their claim runs out");
                    }
                    return;
                }
            };
            let any_delivered = results.iter().any(Result::is_ok);
            let first_failure = results
                .iter()
                .find_map(|r| r.as_ref().err().map(ToString::to_string));
            let settled = self.settle(&claimed, results);
            if let Err(e) = self.shared.queue.settle(&url, settled).await {
                // The rows stay claimed until it runs out, then go again: twice at worst.
                tracing::warn!(%url, error = %e, "webhook outcomes not recorded");
            }
            if any_delivered {
                if failing > 0 {
                    tracing::info!(%url, "the webhook endpoint takes events again");
                    if let Err(e) = self.shared.queue.hurry(&url, now_ms()).await {
                        tracing::debug!(%url, error = %e, "queued webhooks not hurried");
                    }
                }
                failing = 0;
            } else {
                if failing == 0 {
                    tracing::warn!(
                        %url, reason = first_failure.as_deref().unwrap_or_default(),
                        "the webhook endpoint fails; its events are kept and tried again"
                    );
                }
                failing = failing.saturating_add(1);
                self.pause(random_pause(failing, self.shared.backoff_max))
                    .await;
            }
        }
    }

    /// Waits for new rows, the next look, or the stop.
    async fn idle(&mut self) {
        tokio::select! {
            changed = self.committed.changed() => {
                if changed.is_err() {
                    // The writer is gone (stopping): only the periodic look is left.
                    self.pause(POLL).await;
                }
            }
            () = tokio::time::sleep(POLL) => {}
            () = self.stop.cancelled() => {}
        }
    }

    /// Waits `pause`, or until the stop.
    async fn pause(&self, pause: Duration) {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = self.stop.cancelled() => {}
        }
    }

    /// One attempt: the row's body, signed now.
    async fn send(&self, row: &Claimed) -> Result<(), Failure> {
        let t = now_ms() / 1000;
        let response = self
            .shared
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, &row.event_id)
            .header(
                SIGNATURE_HEADER,
                signature(&self.shared.secret.load(), t, row.body.as_bytes()),
            )
            .body(row.body.clone())
            .send()
            .await?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status => Err(Failure::Status(status)),
        }
    }

    /// What becomes of each row after its attempt.
    fn settle(&self, claimed: &[Claimed], results: Vec<Result<(), Failure>>) -> Vec<Settled> {
        let now = now_ms();
        let give_up_after = self.shared.retry_for.as_millis() as Millis;
        let mut settled = Vec::with_capacity(claimed.len());
        for (row, result) in claimed.iter().zip(results) {
            let Err(why) = result else {
                self.count("delivered");
                settled.push(Settled::Done(row.seq));
                continue;
            };
            self.count("failed");
            let attempts = row.attempts.saturating_add(1);
            if now >= row.created_at.saturating_add(give_up_after) {
                self.count("given_up");
                tracing::error!(
                    url = %self.url, event = %row.event_id, attempts, reason = %why,
                    "a webhook was given up: not acknowledged within webhook_retry_for"
                );
                settled.push(Settled::Done(row.seq));
            } else {
                tracing::debug!(url = %self.url, event = %row.event_id, attempts, reason = %why, "a webhook failed");
                let pause = random_pause(attempts, self.shared.backoff_max);
                settled.push(Settled::Retry {
                    seq: row.seq,
                    subject: row.subject.clone(),
                    due_at: now + pause.as_millis() as Millis,
                });
            }
        }
        settled
    }

    fn count(&self, outcome: &'static str) {
        self.shared
            .outcomes
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }
}

pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as Millis
}
