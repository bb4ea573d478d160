//! What the client reads from a site's identity token (a JWT): whose it is (`sub`), so tabs of
//! different users never share a connection, and when it expires (`exp`), so it is renewed in
//! time. The signature is the server's business; this only reads the payload.

use crate::json::Json;

/// Renew this long before expiry at most...
const RENEW_LEAD_MS: f64 = 30_000.0;
/// ...and at most this share of the token's remaining life before it (short-lived tokens).
const RENEW_SHARE: f64 = 0.25;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims {
    pub sub: Option<String>,
    /// Expiry in milliseconds since the epoch.
    pub exp_ms: Option<f64>,
}

/// The payload's claims, read with `parse` (the browser's `JSON.parse` in the client).
pub fn claims<V: Json>(token: &str, parse: impl Fn(&str) -> Option<V>) -> Claims {
    let Some(payload) = token.split('.').nth(1).and_then(base64url) else {
        return Claims::default();
    };
    let Some(v) = String::from_utf8(payload).ok().and_then(|t| parse(&t)) else {
        return Claims::default();
    };
    Claims {
        sub: v.text("sub"),
        exp_ms: v.number("exp").map(|s| s * 1000.0),
    }
}

/// When to ask for a fresh token: shortly before `exp`, never in the past.
pub fn renew_at(exp_ms: f64, now_ms: f64) -> f64 {
    let left = exp_ms - now_ms;
    (exp_ms - RENEW_LEAD_MS.min(left * RENEW_SHARE)).max(now_ms)
}

/// Decodes unpadded base64url (RFC 4648 §5), as JWTs use it.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Option<serde_json::Value> {
        serde_json::from_str(t).ok()
    }

    #[test]
    fn reads_sub_and_exp() {
        // {"sub":"ann","name":"Ann","exp":1700000000} signed with anything.
        let token =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4iLCJuYW1lIjoiQW5uIiwiZXhwIjoxNzAwMDAwMDAwfQ.sig";
        let c = claims(token, parse);
        assert_eq!(c.sub.as_deref(), Some("ann"));
        assert_eq!(c.exp_ms, Some(1_700_000_000_000.0));
        assert_eq!(claims("not a token", parse), Claims::default());
        assert_eq!(claims("a.!!!.c", parse), Claims::default());
    }

    #[test]
    fn base64url_variants() {
        assert_eq!(base64url("TWFu").unwrap(), b"Man");
        assert_eq!(base64url("TWE").unwrap(), b"Ma");
        assert_eq!(base64url("TQ==").unwrap(), b"M");
        assert_eq!(base64url("-_8").unwrap(), [0xfb, 0xff]);
    }

    #[test]
    fn renews_before_expiry() {
        let now = 1_000_000.0;
        // An hour-long token: 30 s before it ends.
        assert_eq!(renew_at(now + 3_600_000.0, now), now + 3_570_000.0);
        // A 10 s token: a quarter of its life before it ends.
        assert_eq!(renew_at(now + 10_000.0, now), now + 7_500.0);
        // Already expired: now.
        assert_eq!(renew_at(now - 5.0, now), now);
    }
}
