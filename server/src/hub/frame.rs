//! Server frames as they go on the wire: an event's JSON encoded once, then wrapped in its
//! sequence number (and the command id it answers) per session.

use std::fmt::Write;

use switchboard_proto::Event;

/// Room for most events (an answered call with both links is the longest) in one allocation.
const BODY_CAPACITY: usize = 384;
/// What the envelope adds to a body at most: `{"seq":…,"re":…,"ev":` and `}`, numbers at their
/// longest.
const ENVELOPE: usize = 56;

/// An event's JSON, encoded once however many sessions receive it.
pub fn body(event: &Event) -> String {
    let mut json = Vec::with_capacity(BODY_CAPACITY);
    let encoded = serde_json::to_writer(&mut json, event)
        .map_err(|e| e.to_string())
        .and_then(|()| String::from_utf8(json).map_err(|e| e.to_string()));
    encoded.unwrap_or_else(|error| {
        tracing::error!(%error, "encoding an event failed");
        r#"{"type":"error","code":"internal","message":"internal server error"}"#.into()
    })
}

/// A server frame around an encoded event, in one allocation.
pub fn encode(seq: u64, re: Option<u32>, body: &str) -> String {
    let mut frame = String::with_capacity(body.len() + ENVELOPE);
    // Writing to a String cannot fail.
    let _ = match re {
        Some(re) => write!(frame, r#"{{"seq":{seq},"re":{re},"ev":"#),
        None => write!(frame, r#"{{"seq":{seq},"ev":"#),
    };
    frame.push_str(body);
    frame.push('}');
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_wraps_the_body_as_json() {
        let body = r#"{"type":"logged_out","reason":"logout"}"#;
        let frame: serde_json::Value =
            serde_json::from_str(&encode(u64::MAX, Some(u32::MAX), body)).unwrap();
        assert_eq!(frame["seq"], u64::MAX);
        assert_eq!(frame["re"], u32::MAX);
        assert_eq!(frame["ev"]["type"], "logged_out");
        let frame: serde_json::Value = serde_json::from_str(&encode(7, None, body)).unwrap();
        assert_eq!(frame["seq"], 7);
        assert!(frame.get("re").is_none());
    }
}
