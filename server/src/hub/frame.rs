//! Server frames as they go on the wire: an event's JSON encoded once, then wrapped in its
//! sequence number (and the command id it answers) per session.

use switchboard_proto::Event;

/// An event's JSON, encoded once however many sessions receive it.
pub fn body(event: &Event) -> String {
    serde_json::to_string(event).unwrap_or_else(|e| {
        tracing::error!(error = %e, "encoding an event failed");
        r#"{"type":"error","code":"internal","message":"internal server error"}"#.into()
    })
}

/// A server frame around an encoded event.
pub fn encode(seq: u64, re: Option<u32>, body: &str) -> String {
    match re {
        Some(re) => format!(r#"{{"seq":{seq},"re":{re},"ev":{body}}}"#),
        None => format!(r#"{{"seq":{seq},"ev":{body}}}"#),
    }
}
