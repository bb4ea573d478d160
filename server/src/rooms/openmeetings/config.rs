//! How Switchboard talks to an OpenMeetings server: its address, API account and room settings.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// The kind of OpenMeetings room made for a call (`RoomDTO.type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RoomType {
    /// Everybody sees and hears everybody: the natural room for a two-party call.
    #[default]
    #[serde(alias = "conference")]
    Conference,
    #[serde(alias = "presentation")]
    Presentation,
    #[serde(alias = "interview")]
    Interview,
}

impl RoomType {
    /// The name OpenMeetings uses, in `RoomDTO.type` and in the find-or-create path.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomType::Conference => "CONFERENCE",
            RoomType::Presentation => "PRESENTATION",
            RoomType::Interview => "INTERVIEW",
        }
    }
}

impl FromStr for RoomType {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "CONFERENCE" => Ok(RoomType::Conference),
            "PRESENTATION" => Ok(RoomType::Presentation),
            "INTERVIEW" => Ok(RoomType::Interview),
            _ => Err(UnknownValue(s.to_owned())),
        }
    }
}

/// What becomes of a call's room once the call is over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterCall {
    /// Close it: anyone still inside, or following an old link, is sent to the room's redirect
    /// URL; the room stays in OpenMeetings' lists for its records.
    #[default]
    Close,
    /// Soft-delete it, so OpenMeetings' room lists do not fill up with one room per call.
    Delete,
    /// Leave it open (for example when the participants may return to it).
    Keep,
}

impl FromStr for AfterCall {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "close" => Ok(AfterCall::Close),
            "delete" => Ok(AfterCall::Delete),
            "keep" => Ok(AfterCall::Keep),
            _ => Err(UnknownValue(s.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownValue(String);

/// Everything the OpenMeetings provider needs. The password never leaves the server and never
/// appears in `Debug` output, so logging the config is safe.
#[derive(Clone)]
pub struct OpenMeetingsConfig {
    /// Where OpenMeetings lives, e.g. `https://om.example.org/openmeetings`: the API is under
    /// `<base_url>/services/` and the browser links are `<base_url>/hash?secure=...`.
    pub base_url: String,
    /// The API account: a plain user with the LOGIN and SOAP rights and a group.
    pub user: String,
    pub password: String,
    pub room_type: RoomType,
    /// Room capacity; two is enough for a call and keeps a leaked room from becoming a meeting.
    pub capacity: u32,
    /// OpenMeetings' language id for the UI (1 en, 2 de, 4 fr, ...); unset lets OpenMeetings
    /// pick from the browser.
    pub language: Option<u32>,
    /// Whether both participants enter as moderators (so either may share a screen or mute).
    pub moderators: bool,
    pub after_call: AfterCall,
    /// How long to wait for a TCP (and TLS) connection, so a dead host fails fast.
    pub connect_timeout: Duration,
    /// How long one request, and one whole `/join`, may take in total.
    pub timeout: Duration,
}

impl OpenMeetingsConfig {
    pub fn new(
        base_url: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            user: user.into(),
            password: password.into(),
            room_type: RoomType::default(),
            capacity: 2,
            language: None,
            moderators: true,
            after_call: AfterCall::default(),
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for OpenMeetingsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenMeetingsConfig")
            .field("base_url", &self.base_url)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("room_type", &self.room_type)
            .field("capacity", &self.capacity)
            .field("language", &self.language)
            .field("moderators", &self.moderators)
            .field("after_call", &self.after_call)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let config =
            OpenMeetingsConfig::new("https://om.example.org/openmeetings", "api", "s3cret");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("api"));
    }

    #[test]
    fn parses_settings_in_any_case() {
        assert_eq!(
            "interview".parse::<RoomType>().unwrap(),
            RoomType::Interview
        );
        assert_eq!("Delete".parse::<AfterCall>().unwrap(), AfterCall::Delete);
        assert!("burn".parse::<AfterCall>().is_err());
        let after: AfterCall = serde_json::from_str("\"keep\"").unwrap();
        assert_eq!(after, AfterCall::Keep);
        let kind: RoomType = serde_json::from_str("\"conference\"").unwrap();
        assert_eq!(kind, RoomType::Conference);
    }
}
