//! The built-in 1:1 video room, used when no conferencing server is configured: Switchboard
//! serves the room page itself and relays the WebRTC signalling between the call's two pages;
//! the media flows directly between the browsers.

mod bridge;
/// Public so the signalling parser can be fuzzed on its own.
pub mod message;
mod page;
mod seats;
mod signal;

use std::time::SystemTime;

use async_trait::async_trait;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use futures_util::StreamExt;

use super::turn::IceConfig;
use super::{CallRoom, JoinTarget, Joiner, RoomError, RoomProvider};
use crate::socket::{Socket, Timing};
use bridge::Bridge;
pub use bridge::RoomSignal;
use message::MAX_MESSAGE_BYTES;
use seats::Seats;

/// The built-in room provider. Cheap to clone: clones share one set of seats.
#[derive(Clone)]
pub struct BuiltinRoom {
    seats: Seats,
    /// The STUN and TURN servers handed to the pages; none means host candidates only, which
    /// connects browsers on one network (or one machine) but not across most NATs.
    ice: IceConfig,
}

/// How one page's signalling ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalOutcome {
    /// The page went away (closed, reloaded, lost its connection, or the call ended).
    Left,
    /// The participant pressed hang-up: the server should end the call.
    HungUp,
}

impl BuiltinRoom {
    pub fn new(ice: IceConfig) -> Self {
        Self {
            seats: Seats::default(),
            ice,
        }
    }

    /// The built-in room on a node of a cluster: a call's two pages may be connected to
    /// different nodes, and their signalling goes through Redis.
    pub fn clustered(ice: IceConfig, cluster: crate::cluster::Cluster) -> Self {
        Self {
            seats: Seats::bridged(Bridge { cluster }),
            ice,
        }
    }

    /// What another node said about one of its pages.
    pub fn heard_from_elsewhere(&self, signal: RoomSignal) {
        self.seats.heard_from_elsewhere(signal);
    }

    /// Runs the signalling of one participant's room page until it leaves.
    ///
    /// A participant has one live page: a newer page of the same participant (a reload, or the
    /// link opened in another window) replaces the older one, which is told so and closed.
    pub async fn signal(&self, joiner: Joiner, socket: WebSocket, timing: Timing) -> SignalOutcome {
        let (sink, stream) = socket.split();
        let (call, role) = (&joiner.room.id, joiner.role);
        tracing::debug!(%call, ?role, "room page connected");
        let socket = Socket::new(sink, stream, timing);
        let outcome = signal::run(&self.seats, call, role, socket).await;
        tracing::debug!(%call, ?role, ?outcome, "room page gone");
        outcome
    }

    /// Socket limits for the signalling route: messages of at most [`MAX_MESSAGE_BYTES`] and
    /// small buffers, since a room page sends a few KiB per negotiation and little else.
    pub fn limit_upgrade<F>(upgrade: WebSocketUpgrade<F>) -> WebSocketUpgrade<F> {
        upgrade
            .max_message_size(MAX_MESSAGE_BYTES)
            .max_frame_size(MAX_MESSAGE_BYTES)
            .read_buffer_size(4 * 1024)
            .write_buffer_size(4 * 1024)
            .max_write_buffer_size(4 * MAX_MESSAGE_BYTES)
    }
}

#[async_trait]
impl RoomProvider for BuiltinRoom {
    fn name(&self) -> &'static str {
        "builtin"
    }

    async fn join(&self, joiner: &Joiner) -> Result<JoinTarget, RoomError> {
        // The seats' logs name the call and the participant's role, never the person.
        let turn_user = format!("{}-{}", joiner.room.id, role_name(joiner.role));
        let servers = self.ice.servers_for(&turn_user, SystemTime::now());
        Ok(JoinTarget::Page(page::render(
            joiner,
            &servers,
            self.ice.policy,
        )))
    }

    async fn call_over(&self, room: &CallRoom) {
        self.seats.end(&room.id, tokio::time::Instant::now());
    }
}

fn role_name(role: switchboard_proto::Role) -> &'static str {
    match role {
        switchboard_proto::Role::Caller => "caller",
        switchboard_proto::Role::Callee => "callee",
    }
}

#[cfg(test)]
mod tests {
    use switchboard_proto::{CallId, Role, UserRef};

    use super::*;

    fn room() -> CallRoom {
        CallRoom {
            id: CallId("c1".into()),
            caller: UserRef {
                id: "ann".into(),
                name: "Ann".into(),
            },
            callee: UserRef {
                id: "bob".into(),
                name: "Bob".into(),
            },
        }
    }

    #[tokio::test]
    async fn join_serves_the_page_and_call_over_closes_the_room() {
        let provider = BuiltinRoom::new(IceConfig::default());
        let joiner = Joiner {
            room: room(),
            role: Role::Caller,
            token: "t1".into(),
            ends_at: None,
        };
        let Ok(JoinTarget::Page(html)) = provider.join(&joiner).await else {
            panic!("the built-in room serves a page");
        };
        assert!(html.contains(r#""signal":"./t1/signal""#));

        let mut seat = provider.seats.join(&room().id, Role::Callee).unwrap();
        provider.call_over(&room()).await;
        let mut heard = Vec::new();
        while let Ok(out) = seat.rx.try_recv() {
            heard.push(out);
        }
        assert!(heard.contains(&seats::ToPage::Text(
            r#"{"type":"ended","reason":"ended"}"#.into()
        )));
        assert!(provider.seats.join(&room().id, Role::Caller).is_none());
    }
}
