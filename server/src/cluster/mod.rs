//! Several nodes acting as one server, on Redis: the user directory they share (who is online,
//! on which node), each node's heartbeat, and the presence changes every node hears once.

mod link;
mod scripts;

pub use link::{Cluster, ClusterEvent};
