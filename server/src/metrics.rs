//! Prometheus metrics: one registry per server instance (no globals, so tests can run several).

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use switchboard_proto::{CallState, ErrorCode};

use crate::memory::Memory;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: String,
}

/// Every metric the server exports. Counters are atomics: update them from any task.
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// Sessions, including those waiting out their grace period without a connection.
    pub sessions: Gauge,
    pub users_online: Gauge,
    /// Calls by the state they reached: placed (ringing), answered, and each final state.
    pub calls: Family<OutcomeLabel, Counter>,
    pub messages_in: Counter,
    pub messages_out: Counter,
    /// Commands refused, by error code.
    pub refusals: Family<CodeLabel, Counter>,
    /// Connections cut off because they did not read their events.
    pub slow_clients: Counter,
    /// Failed database writes: `retried` attempts (the database was locked, full or failing)
    /// and `lost` writes, given up for good.
    pub store_errors: Family<OutcomeLabel, Counter>,
    /// Database writes queued and not yet committed.
    pub store_backlog: Gauge,
    /// Connections dropped by the server (stopped reading, silent, flooding), by reason.
    pub dropped: Family<ReasonLabel, Counter>,
    /// Connections refused before their upgrade, by reason.
    pub turned_away: Family<ReasonLabel, Counter>,
    /// The allocator's figures, read at each scrape.
    pub memory: Memory,
    /// 1 while this node reaches the cluster's Redis, 0 while it does not (absent for one
    /// node alone).
    pub redis_up: Gauge,
    /// Webhook attempts `delivered` and `failed`, and events `given_up` (absent without
    /// webhooks).
    pub webhooks: Family<OutcomeLabel, Counter>,
    /// Webhook events queued and not yet delivered or given up (absent without webhooks).
    pub webhook_outbox: Gauge,
    /// From a `call` command received to its events handed to both parties' connections.
    pub ring_seconds: Histogram,
    /// From an `answer` command received to its events handed to both parties' connections.
    pub answer_seconds: Histogram,
    /// Messages waiting for the hub, as it last saw its queue.
    pub hub_queue: Gauge,
    /// How long each database commit (a batch of writes) took.
    pub store_commit_seconds: Histogram,
}

/// Latency buckets from 50 µs to 2.5 s: a ring takes well under a millisecond when the server
/// keeps up, and seconds when it does not.
pub fn latency_histogram() -> Histogram {
    Histogram::new([
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1.0, 2.5,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let metrics = Self {
            connections: Gauge::default(),
            sessions: Gauge::default(),
            users_online: Gauge::default(),
            calls: Family::default(),
            messages_in: Counter::default(),
            messages_out: Counter::default(),
            refusals: Family::default(),
            slow_clients: Counter::default(),
            store_errors: Family::default(),
            store_backlog: Gauge::default(),
            dropped: Family::default(),
            turned_away: Family::default(),
            memory: Memory::default(),
            redis_up: Gauge::default(),
            ring_seconds: latency_histogram(),
            answer_seconds: latency_histogram(),
            hub_queue: Gauge::default(),
            store_commit_seconds: latency_histogram(),
            webhooks: Family::default(),
            webhook_outbox: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections",
            "Open WebSocket connections",
            metrics.connections.clone(),
        );
        registry.register(
            "sessions",
            "Sessions, including those in their grace period",
            metrics.sessions.clone(),
        );
        registry.register("users_online", "Users online", metrics.users_online.clone());
        registry.register(
            "calls",
            "Calls by the state they reached",
            metrics.calls.clone(),
        );
        registry.register(
            "messages_in",
            "Messages received from clients",
            metrics.messages_in.clone(),
        );
        registry.register(
            "messages_out",
            "Messages sent to clients",
            metrics.messages_out.clone(),
        );
        registry.register(
            "refusals",
            "Commands refused, by error code",
            metrics.refusals.clone(),
        );
        registry.register(
            "slow_clients",
            "Connections cut off for not reading their events",
            metrics.slow_clients.clone(),
        );
        registry.register(
            "store_errors",
            "Failed database writes: attempts retried, and writes lost",
            metrics.store_errors.clone(),
        );
        registry.register(
            "store_backlog",
            "Database writes queued and not yet committed",
            metrics.store_backlog.clone(),
        );
        registry.register(
            "dropped_connections",
            "Connections dropped by the server, by reason",
            metrics.dropped.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections refused before their upgrade, by reason",
            metrics.turned_away.clone(),
        );
        registry.register(
            "ring_seconds",
            "From a call command received to its events handed to both parties' connections",
            metrics.ring_seconds.clone(),
        );
        registry.register(
            "answer_seconds",
            "From an answer command received to its events handed to both parties' connections",
            metrics.answer_seconds.clone(),
        );
        registry.register(
            "hub_queue",
            "Messages waiting for the hub",
            metrics.hub_queue.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "How long each database commit took",
            metrics.store_commit_seconds.clone(),
        );
        registry.register(
            "memory_allocated_bytes",
            "Bytes in live allocations",
            metrics.memory.allocated.clone(),
        );
        registry.register(
            "memory_resident_bytes",
            "Bytes of RAM the allocator holds",
            metrics.memory.resident.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// The figures only a node of a cluster has.
    pub fn for_cluster(mut self) -> Self {
        self.registry.register(
            "redis_up",
            "1 while this node reaches the cluster's Redis",
            self.redis_up.clone(),
        );
        self
    }

    /// The figures only a server with webhooks has.
    pub fn for_webhooks(mut self) -> Self {
        self.registry.register(
            "webhooks",
            "Webhook attempts delivered and failed, and events given up",
            self.webhooks.clone(),
        );
        self.registry.register(
            "webhook_outbox",
            "Webhook events queued and not yet delivered or given up",
            self.webhook_outbox.clone(),
        );
        self
    }

    pub fn call_reached(&self, state: CallState) {
        let outcome = match state {
            CallState::Ringing => "placed",
            other => other.as_str(),
        };
        self.calls.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn refused(&self, code: ErrorCode) {
        let code = serde_json::to_value(code)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        self.refusals.get_or_create(&CodeLabel { code }).inc();
    }

    pub fn dropped(&self, reason: &'static str) {
        self.dropped.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn turned_away(&self, reason: &'static str) {
        self.turned_away
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.memory.refresh();
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            tracing::error!("encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prefixed_names() {
        let metrics = Metrics::default();
        metrics.connections.inc();
        metrics.call_reached(CallState::Ringing);
        metrics.call_reached(CallState::Missed);
        metrics.refused(ErrorCode::Busy);
        let text = metrics.render();
        assert!(text.contains("switchboard_connections 1"), "{text}");
        assert!(
            text.contains(r#"switchboard_calls_total{outcome="placed"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"switchboard_calls_total{outcome="missed"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"switchboard_refusals_total{code="busy"} 1"#),
            "{text}"
        );
    }
}
