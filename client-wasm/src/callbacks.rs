//! The page callbacks (`my_on*`) the client can fire, as plain data.

/// One call of a page function: which one, and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Callback {
    StatusChange(bool),
    MakeCall(bool),
    IncomingCall {
        name: String,
        link: String,
    },
    CallAnswered {
        name: String,
        link: String,
    },
    CallRejected {
        name: String,
    },
    StatusMessage(String),
    MasterStatus(bool),
    ClearIncoming,
    ClearAnswered,
    ClearRejected,
    /// Optional addition: a watched user's presence.
    Presence {
        id: String,
        name: String,
        online: bool,
    },
    /// Optional addition: an incoming call rang out unanswered.
    CallMissed {
        name: String,
    },
    /// Optional addition: an answered call is over.
    CallEnded {
        name: String,
        reason: String,
    },
}

/// One argument of a page callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg<'a> {
    Bool(bool),
    Text(&'a str),
}

impl Callback {
    pub fn status(text: impl Into<String>) -> Self {
        Self::StatusMessage(text.into())
    }

    /// The global function the page defines for this callback.
    pub fn name(&self) -> &'static str {
        match self {
            Self::StatusChange(_) => "my_onstatuschange",
            Self::MakeCall(_) => "my_onmakecall",
            Self::IncomingCall { .. } => "my_onincomingcall",
            Self::CallAnswered { .. } => "my_oncallanswered",
            Self::CallRejected { .. } => "my_oncallrejected",
            Self::StatusMessage(_) => "my_onstatusmessage",
            Self::MasterStatus(_) => "my_masterstatuschanged",
            Self::ClearIncoming => "my_clearincoming",
            Self::ClearAnswered => "my_clearanswered",
            Self::ClearRejected => "my_clearrejected",
            Self::Presence { .. } => "my_onpresence",
            Self::CallMissed { .. } => "my_oncallmissed",
            Self::CallEnded { .. } => "my_oncallended",
        }
    }

    /// The arguments in the 2010 order.
    pub fn args(&self) -> Vec<Arg<'_>> {
        match self {
            Self::StatusChange(b) | Self::MakeCall(b) | Self::MasterStatus(b) => {
                vec![Arg::Bool(*b)]
            }
            Self::IncomingCall { name, link } | Self::CallAnswered { name, link } => {
                vec![Arg::Text(name), Arg::Text(link)]
            }
            Self::CallRejected { name } | Self::CallMissed { name } => vec![Arg::Text(name)],
            Self::StatusMessage(text) => vec![Arg::Text(text)],
            Self::ClearIncoming | Self::ClearAnswered | Self::ClearRejected => vec![],
            Self::Presence { id, name, online } => {
                vec![Arg::Text(id), Arg::Text(name), Arg::Bool(*online)]
            }
            Self::CallEnded { name, reason } => vec![Arg::Text(name), Arg::Text(reason)],
        }
    }
}
