//! The signalling messages a room page and the server exchange over `/join/<token>/signal`.
//!
//! Every message is one JSON text frame with a `type`. Pages send [`PageMessage`]s; the server
//! forwards the WebRTC ones (offer, answer, candidate, mute) to the other page unchanged in
//! meaning and answers with [`RelayMessage`]s of its own.

use serde::{Deserialize, Serialize};
use switchboard_proto::Role;

/// Longest signalling message accepted, in bytes. A Chromium or Firefox offer for one audio and
/// one video track is 4–7 KiB of SDP (more with extra codecs, FEC or simulcast), and JSON adds a
/// little for escaped line ends; 16 KiB holds that with room to spare while keeping what one
/// page can make the server buffer small (16 KiB × the queue bound below).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// What a room page sends.
///
/// `n` names one negotiation: the caller draws a fresh number for every offer, the callee
/// echoes it, and both drop answers and candidates of a negotiation that is no longer current
/// (a reload or a reconnect starts a new one while old messages may still be in flight).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PageMessage {
    /// SDP offer; only the caller makes offers.
    Offer { n: u32, sdp: String },
    /// SDP answer; only the callee answers.
    Answer { n: u32, sdp: String },
    /// One trickled ICE candidate.
    Candidate { n: u32, candidate: IceCandidate },
    /// Whether the sender's microphone and camera are on, so the peer can say so.
    Mute { audio: bool, video: bool },
    /// The participant pressed hang-up: the call ends for both.
    Hangup,
}

/// `RTCIceCandidateInit`, as `RTCIceCandidate.toJSON()` gives it. Fields it does not know are
/// dropped, so only these reach the other page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(
        default,
        rename = "sdpMLineIndex",
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

impl PageMessage {
    /// Parses one text frame, checking what serde cannot: who may send what.
    pub fn parse(text: &str, sender: Role) -> Result<Self, String> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "message too large ({} bytes, at most {MAX_MESSAGE_BYTES})",
                text.len()
            ));
        }
        let message: Self =
            serde_json::from_str(text).map_err(|e| format!("message not understood: {e}"))?;
        match (&message, sender) {
            (Self::Offer { .. }, Role::Callee) => Err("only the caller makes offers".into()),
            (Self::Answer { .. }, Role::Caller) => Err("only the callee answers".into()),
            (Self::Offer { sdp, .. } | Self::Answer { sdp, .. }, _) if sdp.trim().is_empty() => {
                Err("empty session description".into())
            }
            _ => Ok(message),
        }
    }

    /// The JSON the other page receives.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

/// Why a page's room is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The other participant pressed hang-up in the room.
    PeerHungUp,
    /// The call ended elsewhere (hung up from the site, timed out, or the server ended it).
    Ended,
}

/// What the server itself tells a page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RelayMessage {
    /// First message on every socket. The caller offers as soon as the peer is present.
    Welcome { role: Role, peer_present: bool },
    /// The other participant's page connected (first time, after a reload, or from another
    /// window): negotiate afresh.
    PeerJoined,
    /// The other participant's page went away without hanging up.
    PeerLeft,
    /// The call is over; the socket closes next.
    Ended { reason: EndReason },
    /// A newer page of the same participant took over; this one should stop.
    Replaced,
    /// The last message was refused; nothing else changed.
    Error { message: String },
}

impl RelayMessage {
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // These types hold only strings, numbers and booleans, which always serialize.
    serde_json::to_string(value).unwrap_or_else(|_| r#"{"type":"error"}"#.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_pages_send() {
        let offer = PageMessage::parse(r#"{"type":"offer","n":7,"sdp":"v=0\r\n"}"#, Role::Caller);
        assert_eq!(
            offer,
            Ok(PageMessage::Offer {
                n: 7,
                sdp: "v=0\r\n".into()
            })
        );
        let candidate = PageMessage::parse(
            r#"{"type":"candidate","n":7,"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"ab"}}"#,
            Role::Callee,
        )
        .unwrap();
        assert_eq!(
            candidate.to_json(),
            r#"{"type":"candidate","n":7,"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"ab"}}"#
        );
        assert_eq!(
            PageMessage::parse(r#"{"type":"hangup"}"#, Role::Callee),
            Ok(PageMessage::Hangup)
        );
    }

    #[test]
    fn refuses_what_it_must() {
        for (text, role) in [
            ("not json", Role::Caller),
            (r#"{"type":"explode"}"#, Role::Caller),
            (r#"{"type":"offer","n":1}"#, Role::Caller),
            (r#"{"type":"offer","n":-1,"sdp":"v=0"}"#, Role::Caller),
            (r#"{"type":"offer","n":1,"sdp":"  "}"#, Role::Caller),
            (r#"{"type":"offer","n":1,"sdp":"v=0"}"#, Role::Callee),
            (r#"{"type":"answer","n":1,"sdp":"v=0"}"#, Role::Caller),
        ] {
            assert!(PageMessage::parse(text, role).is_err(), "{text}");
        }
        let huge = format!(
            r#"{{"type":"offer","n":1,"sdp":"{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert!(
            PageMessage::parse(&huge, Role::Caller)
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn relay_messages_as_pages_read_them() {
        assert_eq!(
            RelayMessage::Welcome {
                role: Role::Callee,
                peer_present: true
            }
            .to_json(),
            r#"{"type":"welcome","role":"callee","peer_present":true}"#
        );
        assert_eq!(
            RelayMessage::Ended {
                reason: EndReason::PeerHungUp
            }
            .to_json(),
            r#"{"type":"ended","reason":"peer_hung_up"}"#
        );
        assert_eq!(RelayMessage::PeerLeft.to_json(), r#"{"type":"peer_left"}"#);
    }
}
