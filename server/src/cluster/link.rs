//! This node's link to the cluster's Redis: one task that runs the hub's directory changes in
//! order, keeps the node's heartbeat, ends nodes whose heartbeat ran out, and turns what Redis
//! publishes into events for the hub. When Redis cannot be reached the node says so
//! (`is_up`), and once it can again the hub syncs its sessions and rereads who is online, so
//! nothing depends on a message published while the link was down.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use redis::{
    AsyncCommands, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use serde::Deserialize;
use switchboard_proto::UserRef;
use tokio::sync::mpsc;

use super::scripts::{self, PRESENCE_CHANNEL};
use crate::{config::ClusterConfig, hub::SessionId, metrics::Metrics};

/// Bytes of randomness in a node's id.
const NODE_ID_BYTES: usize = 9;

/// What the link tells the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// Redis is reachable (for the first time, again, or it forgot this node): the hub hands
    /// over its logged-in sessions with [`Cluster::sync`].
    Up,
    /// Redis cannot be reached: new calls wait until it can.
    Down,
    /// Everybody online anywhere (id → name), read just after this node's sessions were synced.
    Online(HashMap<String, String>),
    /// A user came online or went offline somewhere in the cluster.
    Presence {
        user: String,
        name: String,
        online: bool,
    },
}

/// A change of this node's sessions for Redis.
enum Op {
    Join { session: SessionId, user: UserRef },
    Leave { session: SessionId, user: String },
    Sync(Vec<(SessionId, UserRef)>),
}

/// A handle to the link. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    node: Arc<str>,
    ops: mpsc::UnboundedSender<Op>,
    up: Arc<AtomicBool>,
}

#[derive(Deserialize)]
struct Published {
    user: String,
    name: String,
    online: bool,
}

impl Cluster {
    /// Starts the link; it connects (and reconnects) by itself. Events for the hub arrive on
    /// the receiver, `Up` first once Redis answers.
    pub fn start(
        config: &ClusterConfig,
        metrics: Arc<Metrics>,
    ) -> redis::RedisResult<(Cluster, mpsc::UnboundedReceiver<ClusterEvent>)> {
        let mut info = config.redis_url.as_str().into_connection_info()?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        info = info.set_redis_settings(settings);
        let client = redis::Client::open(info)?;
        let (pushes_tx, pushes) = mpsc::unbounded_channel();
        let heartbeat = config.node_timeout / 4;
        let manager = ConnectionManager::new_lazy_with_config(
            client,
            ConnectionManagerConfig::new()
                .set_push_sender(pushes_tx)
                .set_automatic_resubscription()
                .set_connection_timeout(Some(heartbeat))
                .set_response_timeout(Some(heartbeat))
                .set_max_delay(heartbeat),
        )?;
        let node: Arc<str> = crate::hub::token(NODE_ID_BYTES).into();
        let (ops_tx, ops) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let up = Arc::new(AtomicBool::new(false));
        let link = Link {
            node: node.clone(),
            timeout: config.node_timeout,
            manager,
            events: events_tx,
            up: up.clone(),
            subscribed: false,
            metrics,
        };
        tracing::info!(node = %node, "this node joins the cluster");
        tokio::spawn(link.run(ops, pushes, heartbeat));
        Ok((
            Cluster {
                node,
                ops: ops_tx,
                up,
            },
            events,
        ))
    }

    /// This node's id in Redis.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether Redis answered the last time it was asked.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// A session of this node logged in as `user`.
    pub fn join(&self, session: SessionId, user: &UserRef) {
        let _ = self.ops.send(Op::Join {
            session,
            user: user.clone(),
        });
    }

    /// A session of this node no longer has `user` on it.
    pub fn leave(&self, session: SessionId, user: &str) {
        let _ = self.ops.send(Op::Leave {
            session,
            user: user.to_string(),
        });
    }

    /// Every logged-in session of this node, after [`ClusterEvent::Up`]: Redis is made to hold
    /// exactly these, and who is online is read back.
    pub fn sync(&self, sessions: Vec<(SessionId, UserRef)>) {
        let _ = self.ops.send(Op::Sync(sessions));
    }
}

struct Link {
    node: Arc<str>,
    timeout: Duration,
    manager: ConnectionManager,
    events: mpsc::UnboundedSender<ClusterEvent>,
    up: Arc<AtomicBool>,
    subscribed: bool,
    metrics: Arc<Metrics>,
}

impl Link {
    async fn run(
        mut self,
        mut ops: mpsc::UnboundedReceiver<Op>,
        mut pushes: mpsc::UnboundedReceiver<PushInfo>,
        every: Duration,
    ) {
        let mut heartbeat = tokio::time::interval(every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                op = ops.recv() => match op {
                    Some(op) => self.apply(op).await,
                    // The hub is gone: the server is stopping.
                    None => return,
                },
                Some(push) = pushes.recv() => self.pushed(push),
                _ = heartbeat.tick() => self.beat().await,
            }
        }
    }

    /// Runs one change; while Redis is down changes are dropped, since the sync that follows
    /// its return replaces them all.
    async fn apply(&mut self, op: Op) {
        if !self.up.load(Ordering::Relaxed) && !matches!(op, Op::Sync(_)) {
            return;
        }
        let node = &*self.node;
        let result = match &op {
            Op::Join { session, user } => {
                scripts::JOIN
                    .arg(node)
                    .arg(session)
                    .arg(&user.id)
                    .arg(&user.name)
                    .invoke_async::<i64>(&mut self.manager)
                    .await
            }
            Op::Leave { session, user } => {
                scripts::LEAVE
                    .arg(node)
                    .arg(session)
                    .arg(user)
                    .invoke_async::<i64>(&mut self.manager)
                    .await
            }
            Op::Sync(sessions) => self.sync(sessions).await,
        };
        if let Err(e) = result {
            self.went_down(&e);
        }
    }

    async fn sync(&mut self, sessions: &[(SessionId, UserRef)]) -> redis::RedisResult<i64> {
        let mut invocation = scripts::SYNC.prepare_invoke();
        invocation
            .arg(&*self.node)
            .arg(self.timeout.as_millis() as u64);
        for (session, user) in sessions {
            invocation.arg(session).arg(&user.id).arg(&user.name);
        }
        invocation.invoke_async::<i64>(&mut self.manager).await?;
        let online: HashMap<String, String> = self.manager.hgetall("sb:online").await?;
        tracing::info!(
            node = %self.node,
            sessions = sessions.len(),
            online = online.len(),
            "synced this node's sessions with the cluster"
        );
        let _ = self.events.send(ClusterEvent::Online(online));
        Ok(1)
    }

    /// Renews the heartbeat (ending dead nodes on the way); the first success after a failure,
    /// or finding this node forgotten, starts a sync.
    async fn beat(&mut self) {
        if !self.subscribed {
            match self.manager.subscribe(PRESENCE_CHANNEL).await {
                Ok(()) => self.subscribed = true,
                Err(e) => return self.went_down(&e),
            }
        }
        let known = scripts::HEARTBEAT
            .arg(&*self.node)
            .arg(self.timeout.as_millis() as u64)
            .invoke_async::<i64>(&mut self.manager)
            .await;
        match known {
            Ok(known) => {
                let was_up = self.up.swap(true, Ordering::Relaxed);
                self.metrics.redis_up.set(1);
                if !was_up || known == 0 {
                    if was_up {
                        tracing::warn!(node = %self.node, "the cluster had given this node up; syncing again");
                    } else {
                        tracing::info!(node = %self.node, "Redis reached");
                    }
                    let _ = self.events.send(ClusterEvent::Up);
                }
            }
            Err(e) => self.went_down(&e),
        }
    }

    fn pushed(&mut self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {
                if let Some(event) = presence(&push.data) {
                    let _ = self.events.send(event);
                }
            }
            PushKind::Disconnection => {
                self.went_down(&redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "the connection to Redis dropped",
                )));
            }
            _ => {}
        }
    }

    fn went_down(&mut self, error: &redis::RedisError) {
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::error!(node = %self.node, error = %error, "Redis cannot be reached: new calls are refused until it can");
            self.metrics.redis_up.set(0);
            let _ = self.events.send(ClusterEvent::Down);
        }
    }
}

/// A presence message: `[channel, payload]`.
fn presence(data: &[Value]) -> Option<ClusterEvent> {
    let [_channel, Value::BulkString(payload)] = data else {
        return None;
    };
    match serde_json::from_slice::<Published>(payload) {
        Ok(p) => Some(ClusterEvent::Presence {
            user: p.user,
            name: p.name,
            online: p.online,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "an unreadable presence message from Redis");
            None
        }
    }
}
