//! Settings that change while the server runs (SIGHUP): which are applied at once, and which
//! need a restart. Applied: `allowed_origins` (the next socket upgrade is judged by the new
//! list), `api_keys` and the API's rates (while the API stays on), the limits (below), the
//! webhooks' URLs and secret (while webhooks stay on), and `log_level` (by the caller, which
//! owns the logger). Every other setting that changed is named in the log as needing a restart,
//! and left as it was.
//!
//! Limits: the admission caps, the session cap and the socket buffer judge the next
//! connection; the message size limit applies to every message from then on; a connection's
//! message and watch budgets and its keep-alive timing are those in force when it opened; the
//! hub's call and login rates (restarted when changed), sessions per user and users kept in
//! memory apply at once. A session's send queue, replay window and watch list are sized
//! together when it starts, so those three need a restart.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use arc_swap::ArcSwap;

use crate::{
    Config,
    admission::Admission,
    api::Api,
    config::Limits,
    hub::Hub,
    metrics::Metrics,
    origin::Origins,
    webhooks::{WebhookConfig, Webhooks},
};

/// Applies a new configuration to a running server. Cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    pub(crate) origins: Arc<ArcSwap<Origins>>,
    pub(crate) addr: SocketAddr,
    /// The API, when it is served.
    pub(crate) api: Option<Api>,
    pub(crate) hub: Hub,
    /// What connections read their limits from.
    pub(crate) limits: Arc<ArcSwap<Limits>>,
    pub(crate) admission: Admission,
    /// The senders, when webhooks are on.
    pub(crate) webhooks: Option<Webhooks>,
    pub(crate) metrics: Arc<Metrics>,
    /// The configuration in force, to tell what a new one changes.
    pub(crate) current: Arc<Mutex<Config>>,
}

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Settings now in force.
    pub applied: Vec<&'static str>,
    /// Settings that changed but keep their old value until a restart.
    pub need_restart: Vec<&'static str>,
}

impl Reloader {
    /// Applies what can change safely from `new`, and says what could not.
    pub async fn apply(&self, new: Config) -> Reloaded {
        let (mut reloaded, changed) = self.apply_settings(&new);
        if let Some(limits) = changed.limits {
            self.hub.set_limits(limits).await;
        }
        if let (Some(webhooks), Some(settings)) = (&self.webhooks, changed.webhooks) {
            if let Err(e) = webhooks.reload(&settings, &self.metrics).await {
                tracing::error!(error = %e, "the webhook outbox could not be brought in line with the new URLs");
            }
            reloaded.applied.push("webhook_urls/webhook_secret");
        }
        reloaded
    }

    /// Everything but what waits on another task (the hub, the webhooks' queue): that is
    /// returned, when it changed, for [`Self::apply`] to hand over.
    fn apply_settings(&self, new: &Config) -> (Reloaded, Handover) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let mut reloaded = Reloaded::default();
        if new.allowed_origins != current.allowed_origins {
            self.origins.store(Arc::new(Origins::new(
                current.public_url.as_ref(),
                self.addr,
                new.allowed_origins.clone(),
            )));
            current.allowed_origins = new.allowed_origins.clone();
            reloaded.applied.push("allowed_origins");
        }
        // Keys can be rotated while the API runs; turning it on or off changes the routes.
        if new.api != current.api {
            match (&self.api, &new.api) {
                (Some(api), Some(settings)) => {
                    api.reload(settings);
                    current.api = new.api.clone();
                    reloaded.applied.push("api_keys");
                }
                _ => reloaded.need_restart.push("api_keys"),
            }
        }
        if new.log_level != current.log_level {
            current.log_level = new.log_level.clone();
            reloaded.applied.push("log_level");
        }
        let old = current.limits.clone();
        let sized = |l: &Limits| (l.send_queue, l.replay_events, l.max_watched);
        if sized(&old) != sized(&new.limits) {
            reloaded
                .need_restart
                .push("send_queue/replay_events/max_watched");
        }
        let limits = Limits {
            send_queue: old.send_queue,
            replay_events: old.replay_events,
            max_watched: old.max_watched,
            ..new.limits.clone()
        };
        let hub_limits = (limits != old).then(|| {
            self.limits.store(Arc::new(limits.clone()));
            current.limits = limits.clone();
            reloaded.applied.push("limits");
            limits
        });
        if new.admission != current.admission {
            self.admission.reload(new.admission.clone());
            current.admission = new.admission.clone();
            reloaded.applied.push("admission");
        }
        // The URLs and the secret while webhooks stay on; the client's timeouts are fixed.
        let mut webhooks = None;
        match (&mut current.webhooks, &new.webhooks) {
            (Some(old), Some(settings)) => {
                if (&old.urls, &old.secret) != (&settings.urls, &settings.secret) {
                    old.urls = settings.urls.clone();
                    old.secret = settings.secret.clone();
                    webhooks = Some(settings.clone());
                }
                if (old.retry_for, old.timeout, old.backoff_max)
                    != (settings.retry_for, settings.timeout, settings.backoff_max)
                {
                    reloaded
                        .need_restart
                        .push("webhook_timeout/webhook_retry_for/…");
                }
            }
            (None, None) => {}
            _ => reloaded.need_restart.push("webhook_urls/webhook_secret/…"),
        }
        // Everything else is compared as the server would use it.
        let differs =
            |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
        let c = &*current;
        let fixed: [(&'static str, bool); 16] = [
            ("listen", c.listen != new.listen),
            ("db", c.db != new.db),
            (
                "store_backlog_limit",
                c.store_backlog_limit != new.store_backlog_limit,
            ),
            (
                "store_writer_priority",
                c.store_writer_priority != new.store_writer_priority,
            ),
            ("www", differs(&c.www, &new.www)),
            ("public_url", c.public_url != new.public_url),
            (
                "jwt_secret/jwt_audience/jwt_issuer",
                differs(&c.identity, &new.identity),
            ),
            ("single_session", c.single_session != new.single_session),
            ("ring_timeout", c.ring_timeout != new.ring_timeout),
            ("presence_grace", c.presence_grace != new.presence_grace),
            (
                "max_call_duration",
                c.max_call_duration != new.max_call_duration,
            ),
            ("rooms", differs(&c.rooms, &new.rooms)),
            ("metrics_listen", c.metrics_listen != new.metrics_listen),
            ("redis_url/node_timeout", differs(&c.cluster, &new.cluster)),
            ("database_url", c.database_url != new.database_url),
            ("log_format", c.log_format != new.log_format),
        ];
        reloaded.need_restart.extend(
            fixed
                .into_iter()
                .filter_map(|(name, changed)| changed.then_some(name)),
        );
        let changed = Handover {
            limits: hub_limits,
            webhooks,
        };
        (reloaded, changed)
    }
}

/// Settings that changed and are applied by another task.
struct Handover {
    limits: Option<Limits>,
    webhooks: Option<WebhookConfig>,
}
