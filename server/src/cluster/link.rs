//! This node's link to the cluster's Redis: one task that runs the hub's directory changes in
//! order (and starts its call decisions beside them), keeps the node's heartbeat, ends nodes
//! whose heartbeat ran out, and turns what Redis publishes into events for the hub. When Redis cannot be reached the node says so
//! (`is_up`), and once it can again the hub syncs its sessions and rereads who is online, so
//! nothing depends on a message published while the link was down.

use std::{collections::HashMap, sync::Arc, time::Duration};

use redis::{
    AsyncCommands, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use serde::Deserialize;
use switchboard_proto::{CallId, ErrorCode, LogoutReason, UserRef};
use tokio::sync::{mpsc, oneshot};

use super::{
    connectivity::Connectivity,
    decisions::Decider,
    records,
    scripts::{self, CALLS_CHANNEL, PRESENCE_CHANNEL, ROOMS_CHANNEL},
    shared_call::{CallChange, Origin, SharedCall},
};
use crate::{
    calls::{Input, Millis},
    config::ClusterConfig,
    hub::SessionId,
    metrics::Metrics,
    rooms::RoomSignal,
    store::Store,
};

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
    /// A login of this node's is in Redis: every node sees the user online.
    Joined {
        session: SessionId,
        user: UserRef,
        re: Option<u32>,
    },
    /// Everybody online anywhere (id → name), read just after this node's sessions were synced.
    Online(HashMap<String, String>),
    /// These sessions of this node, which had that user, no longer do (Redis has taken them
    /// off already): a single-session user logged in elsewhere, or the site logged the user
    /// out everywhere.
    LoggedOut {
        user: String,
        sessions: Vec<SessionId>,
        reason: LogoutReason,
    },
    /// A user came online or went offline somewhere in the cluster.
    Presence {
        user: String,
        name: String,
        online: bool,
    },
    /// Every live call, read just after this node's sessions were synced.
    Calls(Vec<SharedCall>),
    /// A call changed, on this node or another.
    Call(CallChange),
    /// What became of a change this node asked for ([`Cluster::place`], [`Cluster::step`]);
    /// `op` is the number it was asked under (0: asked by the link itself). This node decided
    /// it, so this node records it.
    Decided {
        op: u64,
        result: Result<CallChange, ErrorCode>,
    },
}

/// A change of this node's sessions for Redis.
enum Op {
    Join {
        session: SessionId,
        user: UserRef,
        re: Option<u32>,
        /// Take the user's other sessions away.
        single: bool,
    },
    Leave {
        session: SessionId,
        user: String,
    },
    Sync {
        sessions: Vec<(SessionId, UserRef)>,
        calls: Vec<SharedCall>,
    },
    Place {
        op: u64,
        shared: Box<SharedCall>,
        from: Option<Origin>,
        known_here: bool,
    },
    /// Takes every session of a user off, on every node; answered with how many there were.
    Revoke {
        user: String,
        reply: oneshot::Sender<Result<u64, ErrorCode>>,
    },
    Step {
        op: u64,
        id: CallId,
        input: Input,
        from: Option<Origin>,
        now: Millis,
    },
    /// A message for the other nodes' room seats.
    Room(String),
    /// The node is stopping: no more heartbeats, so the others end it once its timeout
    /// passes (its clients reconnect to them meanwhile, without flapping).
    Stop,
}

/// How often the node looks for call records to write.
const RECORDS_EVERY: Duration = Duration::from_millis(50);

/// A handle to the link. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    ops: mpsc::UnboundedSender<Op>,
    reach: Connectivity,
    rooms: RoomSink,
    /// For reads that need no order with this node's changes (the site's backend asking who
    /// is online); Redis multiplexes it with the link's own connection.
    reader: ConnectionManager,
}

/// Where room messages from other nodes go (set once the built-in room exists).
type RoomSink = Arc<std::sync::Mutex<Option<mpsc::UnboundedSender<RoomSignal>>>>;

#[derive(Deserialize)]
struct Published {
    user: String,
    name: String,
    online: bool,
    /// Sessions (`<node>/<session>`) a single-session login, or the site, took away.
    #[serde(default)]
    kicked: Vec<String>,
    /// Why they were taken.
    #[serde(default = "logged_in_elsewhere")]
    reason: LogoutReason,
}

fn logged_in_elsewhere() -> LogoutReason {
    LogoutReason::Elsewhere
}

impl Cluster {
    /// Starts the link; it connects (and reconnects) by itself. Events for the hub arrive on
    /// the receiver, `Up` first once Redis answers.
    pub fn start(
        config: &ClusterConfig,
        metrics: Arc<Metrics>,
        store: Store,
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
        let reach = Connectivity::new(node.clone(), metrics, events_tx);
        let rooms = RoomSink::default();
        let link = Link {
            store,
            grouped: false,
            rooms: rooms.clone(),
            reach: reach.clone(),
            timeout: config.node_timeout,
            manager: manager.clone(),
            subscribed: false,
            record_presence: config.record_presence,
        };
        tracing::info!(node = %node, "this node joins the cluster");
        tokio::spawn(link.run(ops, pushes, heartbeat));
        Ok((
            Cluster {
                ops: ops_tx,
                reach,
                rooms,
                reader: manager,
            },
            events,
        ))
    }

    /// This node's id in Redis.
    pub fn node(&self) -> &str {
        self.reach.node()
    }

    /// Whether Redis answered the last time it was asked.
    pub fn is_up(&self) -> bool {
        self.reach.is_up()
    }

    /// A session of this node logged in as `user` (with command `re`); answered with
    /// [`ClusterEvent::Joined`] once every node can see it (at once while Redis is away: the
    /// sync that follows its return registers the session).
    /// `single`: the user may have one session only, so every other one, on any node, goes.
    pub fn join(&self, session: SessionId, user: &UserRef, re: Option<u32>, single: bool) {
        let _ = self.ops.send(Op::Join {
            session,
            user: user.clone(),
            re,
            single,
        });
    }

    /// A session of this node no longer has `user` on it.
    pub fn leave(&self, session: SessionId, user: &str) {
        let _ = self.ops.send(Op::Leave {
            session,
            user: user.to_string(),
        });
    }

    /// Every logged-in session of this node, and every live call it knows, after
    /// [`ClusterEvent::Up`]: Redis is made to hold exactly these sessions (and the calls, if it
    /// lost them), and who is online and the live calls are read back.
    pub fn sync(&self, sessions: Vec<(SessionId, UserRef)>, calls: Vec<SharedCall>) {
        let _ = self.ops.send(Op::Sync { sessions, calls });
    }

    /// Places a call if the callee is free, cluster-wide; answered with
    /// [`ClusterEvent::Decided`]. `known_here`: this node has seen the callee (else only
    /// Redis can tell an offline user from one never seen). `from`: the session that asked,
    /// if one did.
    pub fn place(&self, op: u64, shared: SharedCall, from: Option<Origin>, known_here: bool) {
        let _ = self.ops.send(Op::Place {
            op,
            shared: Box::new(shared),
            from,
            known_here,
        });
    }

    /// Logs every session of `user` out, on whichever node it is, as single-session logins do:
    /// Redis takes them off at once and their nodes tell them (`reason`: revoked). Answers how
    /// many sessions there were, or `unavailable` while Redis cannot be reached.
    pub fn revoke(&self, user: String, reply: oneshot::Sender<Result<u64, ErrorCode>>) {
        let _ = self.ops.send(Op::Revoke { user, reply });
    }

    /// A clone of the connection to Redis for reads, while it is up.
    pub(super) fn reader(&self) -> Option<ConnectionManager> {
        self.is_up().then(|| self.reader.clone())
    }

    /// Stops the link: the node is shutting down.
    pub fn stop(&self) {
        let _ = self.ops.send(Op::Stop);
    }

    /// Tells the other nodes' built-in room seats something (dropped while Redis is down: the
    /// pages reconnect and negotiate afresh).
    pub fn publish_room(&self, json: String) {
        let _ = self.ops.send(Op::Room(json));
    }

    /// Where the other nodes' room messages go, once the built-in room exists.
    pub fn hear_rooms(&self, sink: mpsc::UnboundedSender<RoomSignal>) {
        if let Ok(mut rooms) = self.rooms.lock() {
            *rooms = Some(sink);
        }
    }

    /// Feeds an input to a call, decided on its current version; answered with
    /// [`ClusterEvent::Decided`].
    pub fn step(&self, op: u64, id: CallId, input: Input, from: Option<Origin>, now: Millis) {
        let _ = self.ops.send(Op::Step {
            op,
            id,
            input,
            from,
            now,
        });
    }
}

struct Link {
    /// Where this node writes the call records it takes from Redis.
    store: Store,
    /// Whether the records' consumer group is known to exist.
    grouped: bool,
    rooms: RoomSink,
    reach: Connectivity,
    timeout: Duration,
    manager: ConnectionManager,
    subscribed: bool,
    /// Webhooks are on: the presence scripts record their changes in the records stream.
    record_presence: bool,
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
        let mut records = tokio::time::interval(RECORDS_EVERY);
        records.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                op = ops.recv() => match op {
                    Some(Op::Stop) | None => {
                        if let Ok(mut rooms) = self.rooms.lock() {
                            rooms.take();
                        }
                        return;
                    }
                    Some(op) => self.apply(op).await,
                },
                Some(push) = pushes.recv() => self.pushed(push),
                _ = heartbeat.tick() => self.beat().await,
                _ = records.tick() => self.take_records().await,
            }
        }
    }

    /// Starts deciding a change to a call, beside the others.
    fn decide(&self, op: Op) {
        let decider = Decider {
            manager: self.manager.clone(),
            reach: self.reach.clone(),
        };
        match op {
            Op::Place {
                op,
                shared,
                from,
                known_here,
            } => {
                tokio::spawn(decider.place_for(op, *shared, from, known_here));
            }
            Op::Step {
                op,
                id,
                input,
                from,
                now,
            } => {
                tokio::spawn(decider.step_for(op, id, input, from, now));
            }
            _ => {}
        }
    }

    /// Runs one change of this node's sessions in order; while Redis is down they are dropped,
    /// since the sync that follows its return replaces them all.
    async fn apply(&mut self, op: Op) {
        let up = self.reach.is_up();
        let node = self.reach.node().to_string();
        let node = node.as_str();
        let result = match &op {
            Op::Join {
                session, user, re, ..
            } if !up => {
                self.reach.tell(ClusterEvent::Joined {
                    session: *session,
                    user: user.clone(),
                    re: *re,
                });
                return;
            }
            Op::Leave { .. } | Op::Room(_) if !up => return,
            // Answered below, where the reply can be moved out.
            Op::Revoke { .. } => return self.revoke(op).await,
            Op::Room(json) => self
                .manager
                .publish::<_, _, i64>(ROOMS_CHANNEL, json)
                .await
                .map(|_| 1),
            Op::Place { .. } | Op::Step { .. } => {
                self.decide(op);
                return;
            }
            Op::Join {
                session,
                user,
                re,
                single,
            } => {
                let mut join = scripts::JOIN.prepare_invoke();
                records::record_presence(&mut join, self.record_presence);
                let joined = join
                    .arg(node)
                    .arg(session)
                    .arg(&user.id)
                    .arg(&user.name)
                    .arg(if *single { "1" } else { "0" })
                    .invoke_async::<i64>(&mut self.manager)
                    .await;
                self.reach.tell(ClusterEvent::Joined {
                    session: *session,
                    user: user.clone(),
                    re: *re,
                });
                joined
            }
            Op::Leave { session, user } => {
                let mut leave = scripts::LEAVE.prepare_invoke();
                records::record_presence(&mut leave, self.record_presence);
                leave
                    .arg(node)
                    .arg(session)
                    .arg(user)
                    .invoke_async::<i64>(&mut self.manager)
                    .await
            }
            Op::Sync { sessions, calls } => self.sync(sessions, calls).await,
            Op::Stop => return,
        };
        if let Err(e) = result {
            self.reach.went_down(&e);
        }
    }

    /// Runs a [`Op::Revoke`] in order with this node's other changes, and answers it.
    async fn revoke(&mut self, op: Op) {
        let Op::Revoke { user, reply } = op else {
            return;
        };
        if !self.reach.is_up() {
            let _ = reply.send(Err(ErrorCode::Unavailable));
            return;
        }
        let revoked = scripts::REVOKE
            .arg(&user)
            .invoke_async::<u64>(&mut self.manager)
            .await;
        let _ = reply.send(revoked.as_ref().copied().map_err(|e| {
            self.reach.went_down(e);
            ErrorCode::Unavailable
        }));
    }

    async fn sync(
        &mut self,
        sessions: &[(SessionId, UserRef)],
        calls: &[SharedCall],
    ) -> redis::RedisResult<i64> {
        if !calls.is_empty() {
            let mut restore = scripts::RESTORE_CALLS.prepare_invoke();
            for shared in calls {
                let call = &shared.record.call;
                restore
                    .arg(&call.id.0)
                    .arg(to_json(shared))
                    .arg(&call.caller.id)
                    .arg(&call.callee.id);
            }
            restore.invoke_async::<i64>(&mut self.manager).await?;
        }
        let mut invocation = scripts::SYNC.prepare_invoke();
        records::record_presence(&mut invocation, self.record_presence);
        invocation
            .arg(self.reach.node())
            .arg(self.timeout.as_millis() as u64);
        for (session, user) in sessions {
            invocation.arg(session).arg(&user.id).arg(&user.name);
        }
        invocation.invoke_async::<i64>(&mut self.manager).await?;
        let online: HashMap<String, String> = self.manager.hgetall("sb:online").await?;
        tracing::info!(
            node = %self.reach.node(),
            sessions = sessions.len(),
            online = online.len(),
            "synced this node's sessions with the cluster"
        );
        self.reach.tell(ClusterEvent::Online(online));
        let ids: Vec<String> = self.manager.smembers("sb:calls").await?;
        let keys: Vec<String> = ids.iter().map(|id| format!("sb:call:{id}")).collect();
        let raw: Vec<Option<String>> = if keys.is_empty() {
            Vec::new()
        } else {
            self.manager.mget(&keys).await?
        };
        let live = raw
            .into_iter()
            .flatten()
            .filter_map(|raw| serde_json::from_str(&raw).ok())
            .collect();
        self.reach.tell(ClusterEvent::Calls(live));
        Ok(1)
    }

    /// Renews the heartbeat (ending dead nodes on the way); the first success after a failure,
    /// or finding this node forgotten, starts a sync.
    async fn beat(&mut self) {
        if !self.subscribed {
            match self
                .manager
                .subscribe(&[PRESENCE_CHANNEL, CALLS_CHANNEL, ROOMS_CHANNEL])
                .await
            {
                Ok(()) => self.subscribed = true,
                Err(e) => return self.reach.went_down(&e),
            }
        }
        let mut heartbeat = scripts::HEARTBEAT.prepare_invoke();
        records::record_presence(&mut heartbeat, self.record_presence);
        let known = heartbeat
            .arg(self.reach.node())
            .arg(self.timeout.as_millis() as u64)
            .invoke_async::<i64>(&mut self.manager)
            .await;
        match known {
            Ok(known) => {
                let was_up = self.reach.went_up();
                if !was_up || known == 0 {
                    if was_up {
                        tracing::warn!(node = %self.reach.node(), "the cluster had given this node up; syncing again");
                    } else {
                        tracing::info!(node = %self.reach.node(), "Redis reached");
                    }
                    self.reach.tell(ClusterEvent::Up);
                }
                self.claim_records().await;
            }
            Err(e) => self.reach.went_down(&e),
        }
    }

    /// Takes the call records nobody has taken yet and writes them.
    async fn take_records(&mut self) {
        if !self.reach.is_up() {
            return;
        }
        if !self.grouped {
            match records::ensure_group(&mut self.manager).await {
                Ok(()) => self.grouped = true,
                Err(e) => return self.reach.went_down(&e),
            }
        }
        match records::take_new(&mut self.manager, self.reach.node()).await {
            Ok(entries) => records::write(entries, &self.store, &self.manager),
            Err(e) => {
                // A Redis that restarted empty has no group: make it again.
                self.grouped = false;
                tracing::debug!(error = %e, "reading call records failed");
            }
        }
    }

    /// Takes over the records a dead (or stuck) node took and never wrote.
    async fn claim_records(&mut self) {
        if !self.grouped {
            return;
        }
        match records::claim_stale(&mut self.manager, self.reach.node(), self.timeout).await {
            Ok(entries) => {
                if !entries.is_empty() {
                    tracing::info!(
                        entries = entries.len(),
                        "writing call records another node took and never wrote"
                    );
                }
                records::write(entries, &self.store, &self.manager);
            }
            Err(e) => tracing::debug!(error = %e, "claiming call records failed"),
        }
    }

    fn pushed(&mut self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {
                if let [Value::BulkString(channel), Value::BulkString(payload)] = &push.data[..]
                    && channel == ROOMS_CHANNEL.as_bytes()
                {
                    self.room_signal(payload);
                } else if let Some(event) = published(&push.data, self.reach.node()) {
                    self.reach.tell(event);
                }
            }
            PushKind::Disconnection => {
                self.reach.went_down(&redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "the connection to Redis dropped",
                )));
            }
            _ => {}
        }
    }

    fn room_signal(&self, payload: &[u8]) {
        let Ok(signal) = serde_json::from_slice::<RoomSignal>(payload) else {
            tracing::warn!("an unreadable room message from Redis");
            return;
        };
        if let Ok(rooms) = self.rooms.lock()
            && let Some(sink) = rooms.as_ref()
        {
            let _ = sink.send(signal);
        }
    }
}

/// A published message: `[channel, payload]`; `node` is this node's name.
fn published(data: &[Value], node: &str) -> Option<ClusterEvent> {
    let [Value::BulkString(channel), Value::BulkString(payload)] = data else {
        return None;
    };
    let event = if channel == CALLS_CHANNEL.as_bytes() {
        serde_json::from_slice::<CallChange>(payload).map(ClusterEvent::Call)
    } else {
        serde_json::from_slice::<Published>(payload).map(|p| presence(p, node))
    };
    event
        .inspect_err(|e| tracing::warn!(error = %e, "an unreadable message from Redis"))
        .ok()
}

/// A presence message as the hub takes it: a change, or sessions of this node taken away.
fn presence(p: Published, node: &str) -> ClusterEvent {
    if p.kicked.is_empty() {
        return ClusterEvent::Presence {
            user: p.user,
            name: p.name,
            online: p.online,
        };
    }
    let sessions = p
        .kicked
        .iter()
        .filter_map(|member| {
            let (of, session) = member.rsplit_once('/')?;
            (of == node).then(|| session.parse().ok()).flatten()
        })
        .collect();
    ClusterEvent::LoggedOut {
        user: p.user,
        sessions,
        reason: p.reason,
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
