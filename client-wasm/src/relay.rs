//! Messages between the tabs of one browser, carried over a BroadcastChannel as JSON text.
//!
//! Server frames, commands and snapshot events travel as the JSON text the wire uses, not as
//! nested values. Written with [`Writer`] and read through [`Json`], like the wire itself.

use crate::json::{self, Json, Writer};
use crate::token::{self, Claims};

/// A tab's random id, used to address replies and to break ties between candidates.
pub type TabId = u64;

/// Who the page says its user is (`sv_setuserinfo` / `sv_login`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub id: String,
    pub name: String,
    pub token: Option<String>,
}
impl Identity {
    fn claims(&self) -> Claims {
        self.token
            .as_deref()
            .map(|t| token::claims(t, json::parse))
            .unwrap_or_default()
    }

    /// The user this identity really is: a token's subject decides, not what the page says.
    pub fn user(&self) -> String {
        self.claims().sub.unwrap_or_else(|| self.id.clone())
    }

    /// When the token expires (milliseconds since the epoch), if it says.
    pub fn expires_ms(&self) -> Option<f64> {
        self.claims().exp_ms
    }

    /// A token of the same user that lives longer than this one's: worth logging in again with.
    pub fn renews(&self, older: &Self) -> bool {
        self.token.is_some()
            && self.token != older.token
            && self.user() == older.user()
            && self.expires_ms().unwrap_or(0.0) > older.expires_ms().unwrap_or(0.0)
    }
}

/// What every tab needs to know to lead: who to log in, and whether to log in at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Intent {
    pub identity: Option<Identity>,
    /// False after `sv_logoff` or after being logged out from another place.
    pub online: bool,
}

/// The server session the leader holds, so a successor can resume it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionRef {
    pub key: String,
    pub last_seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relay {
    // Leader to all tabs.
    /// A server event, to be delivered by every tab once.
    Frame {
        session: String,
        /// The `ServerFrame` as the server sent it.
        frame: String,
        /// The event answers a `call` command (an error then means "could not ring").
        re_call: bool,
    },
    /// The leader is alive; what a successor needs to carry on.
    Beat {
        tab: TabId,
        session: Option<SessionRef>,
        intent: Intent,
    },
    /// A status line that no server event carries (connection lost, reconnected).
    Status { text: String },
    /// The leader's picture of the session, for one tab that just opened.
    Snapshot {
        to: TabId,
        session: Option<SessionRef>,
        /// `Event`s as JSON text.
        events: Vec<String>,
    },
    /// The sender just became the leader: tabs tell it what they want.
    Leader { tab: TabId },
    /// The sender stops leading now (closing, frozen, replaced).
    Resign { tab: TabId },

    // Any tab to the leader.
    /// A tab opened, or answers `Leader`.
    Join {
        tab: TabId,
        /// The tab has no picture of the session yet.
        snapshot: bool,
        intent: Intent,
        watch: Vec<String>,
    },
    /// A command a follower's page issued.
    Command {
        tab: TabId,
        /// The sender's number for it, echoed in `Ack`.
        n: u32,
        /// The `Command` as JSON text.
        cmd: String,
        /// It is a `call` (its error means "could not ring").
        call: bool,
    },
    /// Leader to one tab: its command `n` was taken (and is sent or queued for the server).
    Ack { tab: TabId, n: u32 },
    /// `sv_login` / `sv_logoff` / `sv_setuserinfo` in a follower.
    Intent { intent: Intent, act: bool },
    /// The users a tab watches (replaces its earlier list).
    Watch { tab: TabId, users: Vec<String> },
    /// The tab is going away.
    Bye { tab: TabId },
    /// Is the leader alive? (A frozen leader cannot answer.)
    Ping { tab: TabId },
    /// Without Web Locks: the sender wants to lead.
    Claim { tab: TabId },
    /// Leader to all tabs: the token is about to expire (or was refused); a tab whose page
    /// gave a token provider answers with a fresh one (as an `Intent`).
    NeedToken,
}

impl Relay {
    /// The message as JSON text, with the user it belongs to.
    pub fn to_text(&self, user: &str) -> String {
        let w = Writer::object().text("user", user);
        let typed = |t: &str| w.text("type", t);
        match self {
            Self::Frame {
                session,
                frame,
                re_call,
            } => typed("frame")
                .text("session", session)
                .text("frame", frame)
                .flag("re_call", *re_call),
            Self::Beat {
                tab,
                session,
                intent,
            } => with_session(typed("beat").number("tab", *tab), session.as_ref())
                .raw("intent", &intent_json(intent)),
            Self::Status { text } => typed("status").text("text", text),
            Self::Snapshot {
                to,
                session,
                events,
            } => with_session(typed("snapshot").number("to", *to), session.as_ref())
                .texts("events", events),
            Self::Leader { tab } => typed("leader").number("tab", *tab),
            Self::Resign { tab } => typed("resign").number("tab", *tab),
            Self::Join {
                tab,
                snapshot,
                intent,
                watch,
            } => typed("join")
                .number("tab", *tab)
                .flag("snapshot", *snapshot)
                .raw("intent", &intent_json(intent))
                .texts("watch", watch),
            Self::Command { tab, n, cmd, call } => typed("command")
                .number("tab", *tab)
                .number("n", u64::from(*n))
                .text("cmd", cmd)
                .flag("call", *call),
            Self::Ack { tab, n } => typed("ack").number("tab", *tab).number("n", u64::from(*n)),
            Self::Intent { intent, act } => typed("intent")
                .raw("intent", &intent_json(intent))
                .flag("act", *act),
            Self::Watch { tab, users } => typed("watch").number("tab", *tab).texts("users", users),
            Self::Bye { tab } => typed("bye").number("tab", *tab),
            Self::Ping { tab } => typed("ping").number("tab", *tab),
            Self::Claim { tab } => typed("claim").number("tab", *tab),
            Self::NeedToken => typed("need_token"),
        }
        .finish()
    }

    /// The message, if it is one and belongs to `user`.
    pub fn from_text(text: &str, user: &str) -> Option<Self> {
        Self::read(&json::parse(text)?, user)
    }

    /// Reads a parsed message (anything else on the channel is ignored).
    pub fn read<V: Json>(v: &V, user: &str) -> Option<Self> {
        if v.text("user")? != user {
            return None;
        }
        let tab = || v.whole("tab");
        let n = || v.whole("n").and_then(|n| u32::try_from(n).ok());
        Some(match v.text("type")?.as_str() {
            "frame" => Self::Frame {
                session: v.text("session")?,
                frame: v.text("frame")?,
                re_call: v.flag("re_call"),
            },
            "beat" => Self::Beat {
                tab: tab()?,
                session: read_session(v),
                intent: read_intent(&v.get("intent")?)?,
            },
            "status" => Self::Status {
                text: v.text("text")?,
            },
            "snapshot" => Self::Snapshot {
                to: v.whole("to")?,
                session: read_session(v),
                events: texts(v, "events")?,
            },
            "leader" => Self::Leader { tab: tab()? },
            "resign" => Self::Resign { tab: tab()? },
            "join" => Self::Join {
                tab: tab()?,
                snapshot: v.flag("snapshot"),
                intent: read_intent(&v.get("intent")?)?,
                watch: texts(v, "watch")?,
            },
            "command" => Self::Command {
                tab: tab()?,
                n: n()?,
                cmd: v.text("cmd")?,
                call: v.flag("call"),
            },
            "ack" => Self::Ack {
                tab: tab()?,
                n: n()?,
            },
            "intent" => Self::Intent {
                intent: read_intent(&v.get("intent")?)?,
                act: v.flag("act"),
            },
            "watch" => Self::Watch {
                tab: tab()?,
                users: texts(v, "users")?,
            },
            "bye" => Self::Bye { tab: tab()? },
            "ping" => Self::Ping { tab: tab()? },
            "claim" => Self::Claim { tab: tab()? },
            "need_token" => Self::NeedToken,
            _ => return None,
        })
    }
}

fn with_session(w: Writer, session: Option<&SessionRef>) -> Writer {
    match session {
        Some(s) => w.raw(
            "session",
            &Writer::object()
                .text("key", &s.key)
                .number("last_seq", s.last_seq)
                .finish(),
        ),
        None => w,
    }
}

fn read_session<V: Json>(v: &V) -> Option<SessionRef> {
    let s = v.get("session")?;
    Some(SessionRef {
        key: s.text("key")?,
        last_seq: s.whole("last_seq")?,
    })
}

fn intent_json(intent: &Intent) -> String {
    let w = Writer::object().flag("online", intent.online);
    match &intent.identity {
        Some(i) => w.raw(
            "identity",
            &Writer::object()
                .text("id", &i.id)
                .text("name", &i.name)
                .opt_text("token", i.token.as_deref())
                .finish(),
        ),
        None => w,
    }
    .finish()
}

fn read_intent<V: Json>(v: &V) -> Option<Intent> {
    let identity = match v.get("identity") {
        Some(i) => Some(Identity {
            id: i.text("id")?,
            name: i.text("name")?,
            token: i.text("token"),
        }),
        None => None,
    };
    Some(Intent {
        identity,
        online: v.flag("online"),
    })
}

fn texts<V: Json>(v: &V, key: &str) -> Option<Vec<String>> {
    v.get(key)?.items()?.iter().map(Json::as_text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, user: &str) -> Option<Relay> {
        Relay::read(&serde_json::from_str::<serde_json::Value>(text).ok()?, user)
    }

    #[test]
    fn every_message_round_trips_for_its_user_only() {
        let intent = Intent {
            identity: Some(Identity {
                id: "ann".into(),
                name: "Ann \"A\"".into(),
                token: Some("a.b.c".into()),
            }),
            online: true,
        };
        let session = Some(SessionRef {
            key: "k".into(),
            last_seq: 41,
        });
        let all = [
            Relay::Frame {
                session: "s".into(),
                frame: r#"{"seq":3,"ev":{"type":"logged_out","reason":"requested"}}"#.into(),
                re_call: true,
            },
            Relay::Beat {
                tab: (1 << 53) - 1,
                session: session.clone(),
                intent: intent.clone(),
            },
            Relay::Beat {
                tab: 1,
                session: None,
                intent: Intent::default(),
            },
            Relay::Status {
                text: "lost".into(),
            },
            Relay::Snapshot {
                to: 2,
                session,
                events: vec!["{}".into()],
            },
            Relay::Leader { tab: 3 },
            Relay::Resign { tab: 3 },
            Relay::Join {
                tab: 4,
                snapshot: true,
                intent: intent.clone(),
                watch: vec!["bob".into()],
            },
            Relay::Command {
                tab: 5,
                n: 6,
                cmd: r#"{"type":"logout"}"#.into(),
                call: false,
            },
            Relay::Ack { tab: 5, n: 6 },
            Relay::Intent { intent, act: true },
            Relay::Watch {
                tab: 7,
                users: vec![],
            },
            Relay::Bye { tab: 8 },
            Relay::Ping { tab: 9 },
            Relay::Claim { tab: 10 },
            Relay::NeedToken,
        ];
        for msg in all {
            let text = msg.to_text("ann");
            assert_eq!(read(&text, "ann"), Some(msg.clone()), "{text}");
            assert_eq!(read(&text, "ben"), None, "another user's: {text}");
        }
        assert_eq!(read("{\"nope\":1}", "ann"), None);
        assert_eq!(read(r#"{"user":"ann","type":"ack","tab":1}"#, "ann"), None);
    }
}
