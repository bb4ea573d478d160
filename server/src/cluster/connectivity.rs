//! Whether this node reaches Redis, shared by the link and the decisions it runs beside it:
//! the first failure says so once (log, `switchboard_redis_up`, an event for the hub), and the
//! link's next heartbeat that succeeds says it is back.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tokio::sync::mpsc;

use super::ClusterEvent;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Connectivity {
    node: Arc<str>,
    up: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    events: mpsc::UnboundedSender<ClusterEvent>,
}

impl Connectivity {
    pub fn new(
        node: Arc<str>,
        metrics: Arc<Metrics>,
        events: mpsc::UnboundedSender<ClusterEvent>,
    ) -> Self {
        Self {
            node,
            up: Arc::new(AtomicBool::new(false)),
            metrics,
            events,
        }
    }

    /// This node's id in Redis.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether Redis answered the last time it was asked.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Redis answered; returns whether it was thought up already.
    pub fn went_up(&self) -> bool {
        self.metrics.redis_up.set(1);
        self.up.swap(true, Ordering::Relaxed)
    }

    /// Redis failed: new calls are refused until the link reaches it again.
    pub fn went_down(&self, error: &redis::RedisError) {
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::error!(node = %self.node, %error, "Redis cannot be reached: new calls are refused until it can");
            self.metrics.redis_up.set(0);
            self.tell(ClusterEvent::Down);
        }
    }

    /// Something for the hub.
    pub fn tell(&self, event: ClusterEvent) {
        let _ = self.events.send(event);
    }
}
