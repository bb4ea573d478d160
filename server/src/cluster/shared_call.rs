//! A live call as the nodes of a cluster share it in Redis: the call, its links, which session
//! answered or rejected it, and a version that every change raises, so a change decided on a
//! stale copy is refused and tried again.

use serde::{Deserialize, Serialize};

use crate::{hub::SessionId, store::CallRecord};

/// A session somewhere in the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub node: String,
    pub session: SessionId,
    /// The command id the session's event answers, if it asked.
    pub re: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedCall {
    pub version: u64,
    pub record: CallRecord,
    /// The callee's session that answered or rejected it.
    pub handled_by: Option<Origin>,
}

/// What the nodes hear of each change: the call as it is now, and who caused it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallChange {
    pub shared: SharedCall,
    pub from: Option<Origin>,
    /// Whether the participants are told (every change but a note-less timer's is).
    pub notify: bool,
}
