//! Which pages may open the server's WebSockets: its own origin, taken from `public_url` (or
//! the listen address), and the site origins the configuration allows.

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderValue, header};
use url::Url;

/// The origins a socket upgrade is judged against. Never the `Host` header: a proxy may rewrite
/// it, and a DNS-rebinding page chooses it.
#[derive(Clone, Debug)]
pub struct Origins {
    /// The server's own origins: the pages it serves (the demo, the built-in room) come from
    /// these.
    own: Vec<String>,
    /// Other sites' origins allowed to open `/ws` (their pages embed the client).
    sites: Vec<String>,
}

/// What a request's `Origin` header says.
#[derive(Debug, PartialEq, Eq)]
enum Claimed {
    /// No header: not a browser page (browsers always send one on an upgrade).
    Nothing,
    /// A serialised origin, normalised (lower case, default port dropped).
    Origin(String),
    /// `null`, several headers, or text that is not `scheme://host[:port]`.
    Unusable,
}

impl Origins {
    /// `listen` is the address actually bound: with no `public_url`, pages are loaded from it.
    pub fn new(public_url: Option<&Url>, listen: SocketAddr, sites: Vec<String>) -> Self {
        let own = match public_url {
            Some(url) => normalize(url).into_iter().collect(),
            None => {
                let port = listen.port();
                let mut own = vec![format!("http://{listen}")];
                // A loopback server is reached under any of the loopback names; an unspecified
                // address listens on loopback too. No other host name is ever its own, or a
                // DNS-rebinding page could pass for it.
                if listen.ip().is_loopback() || listen.ip().is_unspecified() {
                    own.extend(
                        ["127.0.0.1", "localhost", "[::1]"]
                            .map(|host| format!("http://{host}:{port}")),
                    );
                }
                own
            }
        };
        Self { own, sites }
    }

    /// For `/ws`: the server's own pages and the allowed sites.
    pub fn admits_site(&self, headers: &HeaderMap) -> bool {
        match claimed(headers) {
            Claimed::Nothing => true,
            Claimed::Origin(origin) => self.own.contains(&origin) || self.sites.contains(&origin),
            Claimed::Unusable => false,
        }
    }

    /// For the built-in room's signalling: only the room page this server serves.
    pub fn admits_own(&self, headers: &HeaderMap) -> bool {
        match claimed(headers) {
            Claimed::Nothing => true,
            Claimed::Origin(origin) => self.own.contains(&origin),
            Claimed::Unusable => false,
        }
    }
}

fn claimed(headers: &HeaderMap) -> Claimed {
    let mut values = headers.get_all(header::ORIGIN).iter();
    match (values.next(), values.next()) {
        (None, _) => Claimed::Nothing,
        (Some(value), None) => parse(value).map_or(Claimed::Unusable, Claimed::Origin),
        (Some(_), Some(_)) => Claimed::Unusable,
    }
}

/// An `Origin` header's value, if it is exactly an http(s) origin: no path, query, fragment or
/// credentials.
fn parse(value: &HeaderValue) -> Option<String> {
    let url = Url::parse(value.to_str().ok()?).ok()?;
    let bare = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    bare.then(|| normalize(&url)).flatten()
}

/// `https://Example.org:443/x` → `https://example.org`; None for other schemes.
pub fn normalize(url: &Url) -> Option<String> {
    matches!(url.scheme(), "http" | "https")
        .then(|| url.origin().ascii_serialization())
        .filter(|o| o != "null")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_bytes(value).unwrap());
        headers
    }

    fn local(listen: &str) -> Origins {
        Origins::new(
            None,
            listen.parse().unwrap(),
            vec!["https://forum.example.org".into()],
        )
    }

    #[test]
    fn a_loopback_server_admits_its_loopback_names_on_its_port_by_http_only() {
        let origins = local("127.0.0.1:8080");
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
            "HTTP://LocalHost:8080",
            "http://localhost:8080/",
        ] {
            assert!(origins.admits_own(&origin(ok.as_bytes())), "{ok}");
        }
        for refused in [
            "https://127.0.0.1:8080",
            "https://localhost:8080",
            "http://127.0.0.1:8081",
            "http://127.0.0.1",
            "http://evil.example:8080",
            "http://127.0.0.2:8080",
            "null",
            "",
            "127.0.0.1:8080",
            "http://localhost:8080/page",
            "http://user@localhost:8080",
            "file:///tmp/page.html",
        ] {
            assert!(
                !origins.admits_site(&origin(refused.as_bytes())),
                "{refused}"
            );
        }
        assert!(!origins.admits_site(&origin(b"http://\xffhost:8080")));
        assert!(origins.admits_site(&HeaderMap::new()), "not a browser");
    }

    #[test]
    fn a_public_url_is_the_only_own_origin() {
        let public: Url = "https://sb.example.org/switchboard/".parse().unwrap();
        let origins = Origins::new(
            Some(&public),
            "127.0.0.1:8080".parse().unwrap(),
            vec!["https://forum.example.org".into()],
        );
        for ok in ["https://sb.example.org", "https://SB.example.org:443"] {
            assert!(origins.admits_own(&origin(ok.as_bytes())), "{ok}");
        }
        for refused in [
            "http://sb.example.org",
            "https://sb.example.org:8443",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
        ] {
            assert!(
                !origins.admits_own(&origin(refused.as_bytes())),
                "{refused}"
            );
        }
        let forum = origin(b"https://forum.example.org");
        assert!(origins.admits_site(&forum));
        assert!(
            !origins.admits_own(&forum),
            "sites never signal in the room"
        );
    }

    #[test]
    fn a_named_listen_address_admits_only_itself() {
        let origins = local("192.0.2.7:8080");
        assert!(origins.admits_own(&origin(b"http://192.0.2.7:8080")));
        assert!(!origins.admits_own(&origin(b"http://localhost:8080")));
        let any = local("0.0.0.0:8080");
        assert!(any.admits_own(&origin(b"http://127.0.0.1:8080")));
        assert!(!any.admits_own(&origin(b"http://evil.example:8080")));
    }

    #[test]
    fn several_origin_headers_are_refused() {
        let mut headers = origin(b"http://127.0.0.1:8080");
        headers.append(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!local("127.0.0.1:8080").admits_site(&headers));
    }
}
