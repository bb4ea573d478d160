//! What the seats of one node tell the seats of the others, when a cluster's nodes share the
//! built-in room: the two pages of a call may be connected to different nodes.

use serde::{Deserialize, Serialize};
use switchboard_proto::{CallId, Role};

use crate::cluster::Cluster;

/// One message between nodes about one call's room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSignal {
    pub call: CallId,
    /// The node that sent it.
    pub node: String,
    pub what: RoomEvent,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomEvent {
    /// A page of `role` took its seat on the sending node (any other page of the role is
    /// replaced by it).
    Joined { role: Role },
    /// In answer to `Joined`: the sending node holds the page of `role`.
    Present { role: Role },
    /// The page of `role` left the sending node.
    Left { role: Role },
    /// A signalling message for the page of `to`.
    Text { to: Role, text: String },
    /// The participant of `by` hung up from their page.
    HungUp { by: Role },
}

/// The seats' way out to the other nodes.
#[derive(Clone)]
pub struct Bridge {
    pub cluster: Cluster,
}

impl Bridge {
    pub fn node(&self) -> &str {
        self.cluster.node()
    }

    pub fn send(&self, call: &CallId, what: RoomEvent) {
        let signal = RoomSignal {
            call: call.clone(),
            node: self.node().to_string(),
            what,
        };
        if let Ok(json) = serde_json::to_string(&signal) {
            self.cluster.publish_room(json);
        }
    }
}
