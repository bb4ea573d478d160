//! Renders the room page: the HTML file beside this one, filled with the joiner's names, role
//! and signalling URL. Names are data: escaped as HTML text, and as JSON that cannot end the
//! script block that holds it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use switchboard_proto::Role;

use crate::rooms::Joiner;
use crate::rooms::turn::{IcePolicy, IceServer};

const TEMPLATE: &str = include_str!("room.html");

/// What the page's script reads from its `room-config` block.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageConfig<'a> {
    name: &'a str,
    peer: &'a str,
    role: Role,
    /// The signalling socket's address relative to the page's own, so it stays right when
    /// a proxy serves Switchboard under a path prefix (`public_url` with a path).
    signal: String,
    ice_servers: &'a [IceServer],
    ice_transport_policy: IcePolicy,
}

pub fn render(joiner: &Joiner, ice_servers: &[IceServer], policy: IcePolicy) -> String {
    let peer = match joiner.role {
        Role::Caller => &joiner.room.callee,
        Role::Callee => &joiner.room.caller,
    };
    let config = PageConfig {
        name: &joiner.user().name,
        peer: &peer.name,
        role: joiner.role,
        signal: format!("./{}/signal", encode_path_segment(&joiner.token)),
        ice_servers,
        ice_transport_policy: policy,
    };
    // A fresh nonce per page: the page's Content-Security-Policy runs only its own script.
    let nonce = BASE64.encode(rand::random::<[u8; 16]>());
    fill(
        TEMPLATE,
        &[
            ("nonce", nonce),
            ("peer", escape_html(&peer.name)),
            ("config", script_safe_json(&config)),
        ],
    )
}

/// Replaces each `{{key}}` in one pass, so a value that itself contains `{{...}}` (a display
/// name can) is never expanded.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let value = after.find("}}").and_then(|end| {
            let key = &after[..end];
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (v, end))
        });
        match value {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape_html(text: &str) -> String {
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

/// JSON for a `<script type="application/json">` block: `<`, `>` and `&` only ever occur inside
/// JSON strings, where their `\u` escapes mean the same, and without them no `</script>` or
/// `<!--` can appear.
fn script_safe_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "{}".to_owned())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Percent-encodes all but RFC 3986 unreserved characters, for a token used as a path segment.
fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use switchboard_proto::{CallId, UserRef};

    use super::*;
    use crate::rooms::CallRoom;

    fn joiner(caller_name: &str, role: Role) -> Joiner {
        Joiner {
            room: CallRoom {
                id: CallId("c1".into()),
                caller: UserRef {
                    id: "ann".into(),
                    name: caller_name.into(),
                },
                callee: UserRef {
                    id: "bob".into(),
                    name: "Bob".into(),
                },
            },
            role,
            token: "tok_en-1".into(),
            ends_at: None,
        }
    }

    /// The JSON in the page's config block.
    fn config_of(page: &str) -> serde_json::Value {
        let start = page.find(r#"id="room-config">"#).unwrap() + r#"id="room-config">"#.len();
        let end = start + page[start..].find("</script>").unwrap();
        serde_json::from_str(&page[start..end]).unwrap()
    }

    #[test]
    fn the_page_carries_names_role_and_signalling_url() {
        let servers = [IceServer {
            urls: vec!["turn:turn.example.org:3478".into()],
            username: Some("1767225600:c1-callee".into()),
            credential: Some("cred".into()),
        }];
        let page = render(&joiner("Ann", Role::Callee), &servers, IcePolicy::Relay);
        assert_eq!(
            config_of(&page),
            serde_json::json!({
                "name": "Bob",
                "peer": "Ann",
                "role": "callee",
                "signal": "./tok_en-1/signal",
                "iceServers": [{
                    "urls": ["turn:turn.example.org:3478"],
                    "username": "1767225600:c1-callee",
                    "credential": "cred",
                }],
                "iceTransportPolicy": "relay",
            })
        );
        assert!(page.contains("<title>Call with Ann"));
        assert!(!page.contains("{{"));
    }

    #[test]
    fn names_stay_data() {
        let evil = r#"</script><script>alert(1)</script> "O'Neil" & {{nonce}}"#;
        let page = render(&joiner(evil, Role::Callee), &[], IcePolicy::All);
        assert!(!page.contains("alert(1)</script>"));
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &quot;O&#39;Neil&quot; &amp; {{nonce}}"));
        assert_eq!(config_of(&page)["peer"], evil);
    }

    #[test]
    fn each_page_gets_its_own_nonce() {
        let nonce = |page: &str| {
            let start = page.find("nonce=\"").unwrap() + 7;
            page[start..start + 24].to_owned()
        };
        let j = joiner("Ann", Role::Caller);
        assert_ne!(
            nonce(&render(&j, &[], IcePolicy::All)),
            nonce(&render(&j, &[], IcePolicy::All))
        );
    }

    /// Behind a proxy that serves Switchboard under a prefix, the socket must sit under the
    /// same prefix as the page.
    #[test]
    fn the_signalling_address_follows_the_page_under_a_prefix() {
        let page = render(&joiner("Ann", Role::Caller), &[], IcePolicy::All);
        let signal = config_of(&page)["signal"].as_str().unwrap().to_owned();
        for (page_url, socket) in [
            (
                "https://site.example/sb/join/tok_en-1",
                "https://site.example/sb/join/tok_en-1/signal",
            ),
            (
                "http://127.0.0.1:8080/join/tok_en-1",
                "http://127.0.0.1:8080/join/tok_en-1/signal",
            ),
        ] {
            let resolved = url::Url::parse(page_url).unwrap().join(&signal).unwrap();
            assert_eq!(resolved.as_str(), socket);
        }
    }

    #[test]
    fn tokens_are_encoded_as_a_path_segment() {
        assert_eq!(encode_path_segment("a/b?c#d é"), "a%2Fb%3Fc%23d%20%C3%A9");
        assert_eq!(encode_path_segment("AZaz09-._~"), "AZaz09-._~");
    }

    #[test]
    fn fill_leaves_unknown_placeholders() {
        assert_eq!(
            fill("a {{x}} {{y}} {{", &[("x", "{{y}}".into())]),
            "a {{y}} {{y}} {{"
        );
    }
}
