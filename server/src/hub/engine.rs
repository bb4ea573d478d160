//! The hub's event loop: messages in, timers firing, writes out to the store. It holds the
//! three parts (this node's sessions, the user directory, the live calls) and the services they
//! use; what a request does is in `requests`, `presence` and `call_flow`.

use std::{collections::HashMap, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;

use super::{
    Clock, HubConfig, Msg, SessionId,
    call_book::CallBook,
    cluster_calls::Pending,
    directory::Directory,
    node_sessions::{SessionRules, Sessions},
};
use crate::{
    cluster::{Cluster, ClusterEvent},
    metrics::Metrics,
    rooms::RoomProvider,
    store::{Loaded, Store, Write},
};

/// How often the hub lets go of what it no longer needs: rate limiter entries, and kept events
/// past the replay window.
const HOUSEKEEPING: Duration = Duration::from_secs(10);

pub(super) struct Engine {
    pub config: HubConfig,
    pub clock: Clock,
    pub sessions: Sessions,
    pub directory: Directory,
    pub calls: CallBook,
    /// Calls per minute per user.
    pub limiter: Option<DefaultKeyedRateLimiter<String>>,
    /// Logins per minute per session, so no client can mint users without end.
    pub login_limiter: Option<DefaultKeyedRateLimiter<SessionId>>,
    /// Writes for the store, sent after each message is handled.
    pub writes: Vec<Write>,
    pub store: Store,
    pub rooms: Arc<dyn RoomProvider>,
    pub metrics: Arc<Metrics>,
    /// Set on a node of a cluster.
    pub cluster: Option<Cluster>,
    /// Changes this node asked the cluster to decide, by number.
    pub pending: HashMap<u64, Pending>,
    pub next_op: u64,
    /// After a restart with webhooks on: the users the site's backend was last told are
    /// online, and when those who have not come back are told offline.
    pub announced: Option<(tokio::time::Instant, Vec<String>)>,
}

/// What a node of a cluster hears from its link to Redis; never anything on one node alone.
async fn next_cluster_event(
    events: &mut Option<mpsc::UnboundedReceiver<ClusterEvent>>,
) -> Option<ClusterEvent> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// A per-key rate of `per_minute`; none for 0.
fn keyed_rate<K: std::hash::Hash + Eq + Clone>(
    per_minute: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

/// Completes at `when`; never without one.
async fn at(when: Option<tokio::time::Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}

impl Engine {
    pub fn new(
        config: HubConfig,
        loaded: Loaded,
        store: Store,
        rooms: Arc<dyn RoomProvider>,
        metrics: Arc<Metrics>,
        clock: Clock,
        cluster: Option<Cluster>,
    ) -> Self {
        let limiter = keyed_rate(config.limits.calls_per_minute);
        let login_limiter = keyed_rate(config.limits.logins_per_minute);
        let rules = SessionRules {
            grace: config.presence_grace,
            replay_events: config.limits.replay_events,
            replay_for: config.replay_for,
            ring_timeout: config.ring_timeout,
        };
        let announced = (config.record_presence
            && cluster.is_none()
            && !loaded.announced.is_empty())
        .then(|| {
            let window = config.presence_grace.max(super::presence::RECONNECT_WINDOW);
            (tokio::time::Instant::now() + window, loaded.announced)
        });
        let mut engine = Self {
            sessions: Sessions::new(rules, clock, metrics.clone()),
            directory: match cluster {
                Some(_) => Directory::clustered(loaded.users),
                None => Directory::new(loaded.users),
            },
            calls: match cluster {
                Some(_) => CallBook::clustered(config.max_call_duration),
                None => CallBook::new(config.max_call_duration),
            },
            config,
            clock,
            limiter,
            login_limiter,
            writes: Vec::new(),
            store,
            rooms,
            metrics,
            cluster,
            pending: HashMap::new(),
            next_op: 0,
            announced,
        };
        // A cluster's live calls are in Redis, not in this node's database.
        if engine.cluster.is_none() {
            for record in loaded.live_calls {
                engine.restore(record);
            }
        }
        engine
    }

    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Msg>,
        mut cluster_events: Option<mpsc::UnboundedReceiver<ClusterEvent>>,
    ) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Shutdown(done)) => {
                        if let Some(cluster) = &self.cluster {
                            cluster.stop();
                        }
                        self.close_all();
                        self.commit();
                        // The writer drains the queue once the hub lets go of the store, giving
                        // up on what it still cannot commit after a short while.
                        self.store.close();
                        let _ = done.send(());
                        return;
                    }
                    Some(msg) => {
                        self.handle(msg);
                        self.forget_beyond_cap();
                        self.metrics.hub_queue.set(rx.len() as i64);
                    }
                    None => return,
                },
                session = self.sessions.next_expired() => self.expire_session(session),
                Some(event) = next_cluster_event(&mut cluster_events) => self.cluster_event(event),
                () = at(self.announced.as_ref().map(|(when, _)| *when)) => self.absent_after_restart(),
                (call, input) = self.calls.next_due() => {
                    let _ = self.transition(&call, input, None);
                }
                _ = housekeeping.tick() => {
                    self.sessions.forget_old_events();
                    self.calls.forget_ended(self.clock.now());
                    if let Some(limiter) = &self.limiter {
                        limiter.retain_recent();
                    }
                    if let Some(limiter) = &self.login_limiter {
                        limiter.retain_recent();
                    }
                }
            }
            self.commit();
        }
    }

    fn commit(&mut self) {
        for write in self.writes.drain(..) {
            self.store.write(write);
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Attach {
                resume,
                outbox,
                reply,
            } => {
                let attached = self.sessions.attach(resume, outbox);
                let _ = reply.send(attached);
            }
            Msg::Request {
                at,
                re,
                request,
                received,
            } => self.request(at, re, request, received),
            Msg::Detach(at) => self.sessions.detach(at),
            Msg::Link {
                token,
                action,
                reply,
            } => {
                let at_once = match self.cluster {
                    Some(_) => self.link_shared(token, action, reply),
                    None => Some((token, action, reply)),
                };
                if let Some((token, action, reply)) = at_once {
                    let _ = reply.send(self.link(&token, action));
                }
            }
            Msg::Backend(ask) => self.backend(ask),
            Msg::Limits(limits) => self.set_limits(limits),
            // `run` handles shutdown before dispatching here.
            Msg::Shutdown(_) => {}
        }
    }

    fn set_limits(&mut self, limits: crate::config::Limits) {
        let old = &self.config.limits;
        if old.calls_per_minute != limits.calls_per_minute {
            self.limiter = keyed_rate(limits.calls_per_minute);
        }
        if old.logins_per_minute != limits.logins_per_minute {
            self.login_limiter = keyed_rate(limits.logins_per_minute);
        }
        self.config.limits = limits;
    }

    /// Keeps the users held in memory within `max_known_users`: past it, offline users not in a
    /// live call are forgotten. The database keeps them; until they log in again, calls to them
    /// are refused as unknown.
    fn forget_beyond_cap(&mut self) {
        let calls = &self.calls;
        let forgotten = self
            .directory
            .forget_beyond(self.config.limits.max_known_users, |user| {
                calls.involves(user)
            });
        if forgotten > 0 {
            tracing::info!(
                forgotten,
                kept = self.directory.known_count(),
                "max_known_users reached: offline users forgotten from memory"
            );
        }
    }
}
