//! Messages between the tabs of one browser, carried over a BroadcastChannel as JSON text.
//!
//! Server frames, commands and snapshot events travel as the JSON text the wire uses, not as
//! nested values: the client then holds one decoder per wire type, which keeps the bundle small.

use serde::{Deserialize, Serialize};

use crate::json;
use crate::token::{self, Claims};

/// A tab's random id, used to address replies and to break ties between candidates.
pub type TabId = u64;

/// Who the page says its user is (`sv_setuserinfo` / `sv_login`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub identity: Option<Identity>,
    /// False after `sv_logoff` or after being logged out from another place.
    pub online: bool,
}

/// The server session the leader holds, so a successor can resume it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    pub key: String,
    pub last_seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relay {
    // Leader to all tabs.
    /// A server event, to be delivered by every tab once.
    Frame {
        session: String,
        /// The `ServerFrame` as the server sent it.
        frame: String,
        /// The event answers a `call` command (an error then means "could not ring").
        #[serde(default)]
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

/// A message with the user it belongs to: a tab acts only on its own user's messages.
#[derive(Serialize, Deserialize)]
struct Envelope {
    user: String,
    msg: Relay,
}

impl Relay {
    pub fn to_text(&self, user: &str) -> String {
        let env = Envelope {
            user: user.to_owned(),
            msg: self.clone(),
        };
        serde_json::to_string(&env).unwrap_or_default()
    }

    /// The message, if it belongs to `user`.
    pub fn from_text(text: &str, user: &str) -> Option<Self> {
        let env: Envelope = serde_json::from_str(text).ok()?;
        (env.user == user).then_some(env.msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let msg = Relay::Frame {
            session: "s".into(),
            frame: r#"{"seq":3,"ev":{"type":"logged_out","reason":"requested"}}"#.into(),
            re_call: true,
        };
        assert_eq!(
            Relay::from_text(&msg.to_text("ann"), "ann"),
            Some(msg.clone())
        );
        assert_eq!(
            Relay::from_text(&msg.to_text("ben"), "ann"),
            None,
            "another user's"
        );
        let beat = Relay::Beat {
            tab: 1 << 52,
            session: None,
            intent: Intent::default(),
        };
        assert_eq!(Relay::from_text(&beat.to_text("ann"), "ann"), Some(beat));
        assert_eq!(Relay::from_text("{\"nope\":1}", "ann"), None);
    }
}
