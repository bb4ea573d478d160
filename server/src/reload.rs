//! Settings that change while the server runs (SIGHUP): which are applied at once, and which
//! need a restart. Applied: `allowed_origins` (the next socket upgrade is judged by the new
//! list), `api_keys` and the API's rates (while the API stays on), and `log_level` (by the
//! caller, which owns the logger). Every other setting that changed is named in the log as
//! needing a restart, and left as it was.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use arc_swap::ArcSwap;

use crate::{Config, api::Api, origin::Origins};

/// Applies a new configuration to a running server. Cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    origins: Arc<ArcSwap<Origins>>,
    addr: SocketAddr,
    /// The API, when it is served.
    api: Option<Api>,
    /// The configuration in force, to tell what a new one changes.
    current: Arc<Mutex<Config>>,
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
    pub(crate) fn new(
        origins: Arc<ArcSwap<Origins>>,
        addr: SocketAddr,
        api: Option<Api>,
        config: Config,
    ) -> Self {
        Self {
            origins,
            addr,
            api,
            current: Arc::new(Mutex::new(config)),
        }
    }

    /// Applies what can change safely from `new`, and says what could not.
    pub fn apply(&self, new: Config) -> Reloaded {
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
        // Everything else is compared as the server would use it.
        let differs =
            |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
        let c = &*current;
        let fixed: [(&'static str, bool); 17] = [
            ("listen", c.listen != new.listen),
            ("db", c.db != new.db),
            (
                "store_backlog_limit",
                c.store_backlog_limit != new.store_backlog_limit,
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
            (
                "limits",
                differs(&c.limits, &new.limits) || differs(&c.admission, &new.admission),
            ),
            ("metrics_listen", c.metrics_listen != new.metrics_listen),
            ("redis_url/node_timeout", differs(&c.cluster, &new.cluster)),
            ("database_url", c.database_url != new.database_url),
            ("log_format", c.log_format != new.log_format),
            (
                "webhook_urls/webhook_secret/…",
                differs(&c.webhooks, &new.webhooks),
            ),
        ];
        reloaded.need_restart.extend(
            fixed
                .into_iter()
                .filter_map(|(name, changed)| changed.then_some(name)),
        );
        reloaded
    }
}
