//! The JSON OpenMeetings speaks: objects sent as JSON text inside form fields and query
//! parameters, and answers wrapped in a root key with null fields left out.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `RoomDTO`, as sent to find-or-create. Every boolean is spelled out: OpenMeetings' defaults
/// have changed between releases and a call room must never be public.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewRoom<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub capacity: u32,
    pub is_public: bool,
    pub appointment: bool,
    pub demo: bool,
    pub moderated: bool,
    pub wait_moderator: bool,
    pub allow_user_questions: bool,
    pub allow_recording: bool,
    pub audio_only: bool,
    pub external_id: &'a str,
    pub external_type: &'a str,
}

impl<'a> NewRoom<'a> {
    /// A closed room for one call: not public, no appointment, demo, moderation, waiting,
    /// questions, recording or audio-only mode.
    pub fn private_call(
        name: &'a str,
        kind: &'a str,
        capacity: u32,
        external_id: &'a str,
        external_type: &'a str,
    ) -> Self {
        Self {
            name,
            kind,
            capacity,
            is_public: false,
            appointment: false,
            demo: false,
            moderated: false,
            wait_moderator: false,
            allow_user_questions: false,
            allow_recording: false,
            audio_only: false,
            external_id,
            external_type,
        }
    }
}

/// `ExternalUserDTO`: who a hash logs in. OpenMeetings keys the account on
/// `externalId` + `externalType` and shows `firstname`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalUser<'a> {
    pub login: &'a str,
    pub firstname: &'a str,
    pub lastname: &'a str,
    pub email: &'a str,
    pub profile_picture_url: &'a str,
    pub external_id: &'a str,
    pub external_type: &'a str,
}

/// `RoomOptionsDTO`: what a hash lets its user do.
#[derive(Debug, Serialize)]
pub struct HashOptions {
    #[serde(rename = "roomId")]
    pub room_id: i64,
    pub moderator: bool,
    #[serde(rename = "showAudioVideoTest")]
    pub show_audio_video_test: bool,
    /// False keeps the link single-use; true would also make the API session permanent.
    #[serde(rename = "allowSameURLMultipleTimes")]
    pub allow_same_url_multiple_times: bool,
    #[serde(rename = "allowRecording")]
    pub allow_recording: bool,
}

/// `ServiceResult`: the answer to login, hash, close and delete.
#[derive(Debug, Deserialize)]
pub struct ServiceResult {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

impl ServiceResult {
    pub fn is_error(&self) -> bool {
        self.kind.as_deref() == Some("ERROR")
    }

    pub fn is_success(&self) -> bool {
        self.kind.as_deref() == Some("SUCCESS")
    }
}

/// The part of an answered `RoomDTO` Switchboard needs.
#[derive(Debug, Deserialize)]
pub struct RoomAnswer {
    #[serde(default)]
    pub id: Option<LongId>,
}

/// A Java `Long`: a JSON number, though some JSON providers quote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongId(pub i64);

impl<'de> Deserialize<'de> for LongId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(i64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(LongId(n)),
            Either::Text(s) => s
                .trim()
                .parse()
                .map(LongId)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses an answer wrapped as `{"<root>":{...}}`. Another single root key is accepted too
/// (its name has changed between releases), and so is an unwrapped object.
pub fn parse_wrapped<T: DeserializeOwned>(body: &[u8], root: &str) -> Result<T, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let inner = match value {
        Value::Object(mut map) => match map.remove(root) {
            Some(inner) => inner,
            None if map.len() == 1 && map.values().all(Value::is_object) => map
                .into_iter()
                .next()
                .map(|(_, v)| v)
                .unwrap_or(Value::Null),
            None => Value::Object(map),
        },
        other => return Err(format!("expected a JSON object, got {}", kind_of(&other))),
    };
    serde_json::from_value(inner).map_err(|e| format!("unexpected {root}: {e}"))
}

/// Serialises an object for a form field or query parameter.
pub fn json_text<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs of strings, numbers and booleans cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_service_results() {
        let ok: ServiceResult = parse_wrapped(
            br#"{"serviceResult":{"message":"9dbb6907","type":"SUCCESS"}}"#,
            "serviceResult",
        )
        .unwrap();
        assert!(ok.is_success());
        assert_eq!(ok.message.as_deref(), Some("9dbb6907"));

        let bad: ServiceResult = parse_wrapped(
            br#"{"serviceResult":{"message":"error.bad.credentials","type":"ERROR"}}"#,
            "serviceResult",
        )
        .unwrap();
        assert!(bad.is_error());
    }

    #[test]
    fn tolerates_missing_fields_other_roots_and_no_root() {
        let room: RoomAnswer =
            parse_wrapped(br#"{"roomDTO":{"id":12,"type":"CONFERENCE"}}"#, "roomDTO").unwrap();
        assert_eq!(room.id, Some(LongId(12)));
        let room: RoomAnswer = parse_wrapped(br#"{"room":{"id":"13"}}"#, "roomDTO").unwrap();
        assert_eq!(room.id, Some(LongId(13)));
        let room: RoomAnswer = parse_wrapped(br#"{"id":14,"name":"x"}"#, "roomDTO").unwrap();
        assert_eq!(room.id, Some(LongId(14)));
        let result: ServiceResult =
            parse_wrapped(br#"{"serviceResult":{}}"#, "serviceResult").unwrap();
        assert!(result.message.is_none() && !result.is_error());
    }

    #[test]
    fn rejects_what_is_not_an_answer() {
        assert!(parse_wrapped::<RoomAnswer>(b"<html>Error 500</html>", "roomDTO").is_err());
        assert!(parse_wrapped::<RoomAnswer>(b"[1]", "roomDTO").is_err());
        assert!(parse_wrapped::<RoomAnswer>(br#"{"roomDTO":{"id":true}}"#, "roomDTO").is_err());
    }

    #[test]
    fn sends_the_exact_keys() {
        let options = HashOptions {
            room_id: 12,
            moderator: true,
            show_audio_video_test: false,
            allow_same_url_multiple_times: false,
            allow_recording: false,
        };
        assert_eq!(
            json_text(&options),
            r#"{"roomId":12,"moderator":true,"showAudioVideoTest":false,"allowSameURLMultipleTimes":false,"allowRecording":false}"#
        );
        let user = ExternalUser {
            login: "u-17",
            firstname: "Ann",
            lastname: "",
            email: "",
            profile_picture_url: "",
            external_id: "u-17",
            external_type: "switchboard",
        };
        let text = json_text(&user);
        assert!(text.contains(r#""profilePictureUrl":"""#), "{text}");
        assert!(text.contains(r#""externalType":"switchboard""#), "{text}");
        let room = NewRoom::private_call("n", "CONFERENCE", 2, "42", "switchboard");
        let text = json_text(&room);
        assert!(text.contains(r#""isPublic":false"#), "{text}");
        assert!(text.contains(r#""waitModerator":false"#), "{text}");
        assert!(text.contains(r#""type":"CONFERENCE""#), "{text}");
    }
}
