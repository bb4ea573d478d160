//! The ICE servers a built-in room page is given: STUN addresses, and TURN relays with
//! short-lived credentials minted per page (the "TURN REST API" that coturn's
//! `use-auth-secret` / `static-auth-secret` implements), so the relay's secret stays here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;

/// Which candidates the browsers may use, as `RTCConfiguration.iceTransportPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IcePolicy {
    /// Direct paths first, the relay when nothing else works.
    #[default]
    All,
    /// Media only through the relay, so neither participant learns the other's addresses.
    Relay,
}

impl std::str::FromStr for IcePolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Self::All),
            "relay" => Ok(Self::Relay),
            other => Err(format!("{other:?} is neither all nor relay")),
        }
    }
}

/// A TURN service that shares a secret with this server.
#[derive(Clone)]
pub struct TurnRelay {
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`: signs credentials, never leaves this server.
    pub secret: Vec<u8>,
    /// How long a page's credential stays valid after the page is served.
    pub ttl: Duration,
}

impl std::fmt::Debug for TurnRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnRelay")
            .field("urls", &self.urls)
            .field("secret", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Everything the built-in room tells browsers about ICE.
#[derive(Clone, Debug, Default)]
pub struct IceConfig {
    /// `stun:`/`stuns:` URLs: enough for browsers behind most home NATs.
    pub stun_urls: Vec<String>,
    /// The relay for the rest (symmetric NATs, UDP-blocking firewalls), when there is one.
    pub turn: Option<TurnRelay>,
    pub policy: IcePolicy,
}

/// One `RTCIceServer`, as the page hands it to `RTCPeerConnection`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl IceConfig {
    /// The servers for one page. `user` names the page's participant in the relay's logs
    /// (`<call id>-<role>`); the credential expires `ttl` after `now`.
    pub fn servers_for(&self, user: &str, now: SystemTime) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun_urls.is_empty() {
            servers.push(IceServer {
                urls: self.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        if let Some(turn) = &self.turn {
            let expires = (now + turn.ttl)
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let username = format!("{expires}:{user}");
            servers.push(IceServer {
                urls: turn.urls.clone(),
                credential: Some(credential(&turn.secret, &username)),
                username: Some(username),
            });
        }
        servers
    }
}

/// The TURN REST API password for `username`: base64 of HMAC-SHA1(secret, username). The
/// relay recomputes it from the username, whose leading timestamp it checks against its clock.
pub fn credential(secret: &[u8], username: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// Whether `url` is an ICE server URL a browser accepts, and if so whether it is a relay.
pub fn is_turn(url: &str) -> Option<bool> {
    let scheme = url.split_once(':')?.0;
    match scheme {
        "stun" | "stuns" => Some(false),
        "turn" | "turns" => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_matches_openssl() {
        // printf %s '1767225600:c1-caller' | openssl dgst -sha1 -hmac 'north-wind' -binary | base64
        assert_eq!(
            credential(b"north-wind", "1767225600:c1-caller"),
            "kxkyvKHi7DRBzFepTK9WuA+DR8w="
        );
    }

    #[test]
    fn each_page_gets_an_expiring_username_and_its_credential() {
        let config = IceConfig {
            stun_urls: vec!["stun:stun.example.org:3478".into()],
            turn: Some(TurnRelay {
                urls: vec![
                    "turn:turn.example.org:3478?transport=udp".into(),
                    "turns:turn.example.org:5349?transport=tcp".into(),
                ],
                secret: b"north-wind".to_vec(),
                ttl: Duration::from_secs(3600),
            }),
            policy: IcePolicy::Relay,
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_767_222_000);
        let servers = config.servers_for("c1-caller", now);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].urls, ["stun:stun.example.org:3478"]);
        assert_eq!(servers[0].username, None);
        let turn = &servers[1];
        assert_eq!(turn.username.as_deref(), Some("1767225600:c1-caller"));
        assert_eq!(
            turn.credential.as_deref(),
            Some("kxkyvKHi7DRBzFepTK9WuA+DR8w=")
        );
        let json = serde_json::to_string(&servers).unwrap();
        assert!(!json.contains("north-wind"));
        assert!(!format!("{config:?}").contains("north-wind"));
    }

    #[test]
    fn url_kinds() {
        assert_eq!(is_turn("stun:a.example:3478"), Some(false));
        assert_eq!(is_turn("turns:a.example:5349?transport=tcp"), Some(true));
        assert_eq!(is_turn("https://a.example"), None);
        assert_eq!(is_turn("a.example"), None);
        assert_eq!("relay".parse(), Ok(IcePolicy::Relay));
        assert!("none".parse::<IcePolicy>().is_err());
    }
}
