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
    /// A name or a sentence: HTML-escaped for pages that asked for it.
    Text(&'a str),
    /// A room link: handed over as it is, since a page opens it rather than shows it.
    Link(&'a str),
}

/// `text` as HTML text: what a page that writes names with `innerHTML` needs to be safe.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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
                vec![Arg::Text(name), Arg::Link(link)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_but_not_links() {
        assert_eq!(
            escape_html(r#"<img src=x onerror="a('&')">"#),
            "&lt;img src=x onerror=&quot;a(&#39;&amp;&#39;)&quot;&gt;"
        );
        let cb = Callback::IncomingCall {
            name: "<b>".into(),
            link: "https://j/1?a=1&b=2".into(),
        };
        assert_eq!(
            cb.args(),
            [Arg::Text("<b>"), Arg::Link("https://j/1?a=1&b=2")]
        );
    }
}
