//! Where the server is: the page gives an http(s) or ws(s) base URL; the socket is `<base>/ws`.

/// The WebSocket URL for a server base URL, or `None` when the text is not one.
pub fn socket_url(base: &str) -> Option<String> {
    let base = base.trim();
    let (scheme, rest) = base.split_once("://")?;
    let ws = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        _ => return None,
    };
    // Drop any query or fragment: they belong to a page, not to the server's base.
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return None;
    }
    if rest.ends_with("/ws") && scheme.to_ascii_lowercase().starts_with("ws") {
        // Already a socket URL (ws://host/ws).
        return Some([ws, "://", rest].concat());
    }
    Some([ws, "://", rest, "/ws"].concat())
}

/// The name under which the tabs of one origin and one user elect a leader for one server:
/// each user of a shared browser has a connection of their own.
pub fn channel_name(socket_url: &str, user: &str) -> String {
    ["switchboard:", socket_url, " ", user].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_bases_to_sockets() {
        let s = |u| socket_url(u).unwrap();
        assert_eq!(s("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
        assert_eq!(s("https://sb.example.org/"), "wss://sb.example.org/ws");
        assert_eq!(s("https://example.org/sb/?x=1"), "wss://example.org/sb/ws");
        assert_eq!(s("ws://h:1"), "ws://h:1/ws");
        assert_eq!(s("wss://h/ws"), "wss://h/ws");
        assert_eq!(s("HTTP://h"), "ws://h/ws");
        assert_eq!(socket_url("ftp://h"), None);
        assert_eq!(socket_url("h:8080"), None);
        assert_eq!(socket_url("http://"), None);
    }
}
