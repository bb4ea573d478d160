//! Several nodes acting as one server, on Redis: the user directory they share (who is online,
//! on which node), the live calls, each node's heartbeat, and the changes every node hears
//! once.

mod connectivity;
mod decisions;
mod directory_reads;
mod link;
mod records;
mod scripts;
mod shared_call;

pub use link::{Cluster, ClusterEvent};
pub use shared_call::{CallChange, Origin, SharedCall};
