//! The signature on each webhook request: `t=<unix seconds>,v1=<lowercase hex
//! HMAC-SHA256(secret, "<t>.<raw body>")>`, Stripe's convention, so a backend checks it with a
//! few lines in any language and refuses an old request replayed.

use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "switchboard-signature";
/// The header carrying the event's id, the same as the body's `id`.
pub const EVENT_ID_HEADER: &str = "switchboard-event-id";

/// The signature header's value for `body` sent at `t` (Unix seconds). Signed at each attempt,
/// so `t` says when the request left, not when the event happened.
pub fn signature(secret: &[u8], t: u64, body: &[u8]) -> String {
    // HMAC takes a key of any length (a long one is hashed first): this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut header = format!("t={t},v1=");
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(header, "{byte:02x}");
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a webhook secret of at least 32 bytes";

    #[test]
    fn matches_an_hmac_computed_elsewhere() {
        // Python: hmac.new(SECRET, b'1767225600.{"id":"c1.ringing"}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature(SECRET, 1_767_225_600, br#"{"id":"c1.ringing"}"#),
            "t=1767225600,v1=39c119d14195aec845086b687bd9a55d1c0ee105a68632e7303f2ffb19216ad4"
        );
    }

    #[test]
    fn covers_the_time_the_body_and_the_secret() {
        let body = br#"{"id":"c1.ringing"}"#;
        let signed = signature(SECRET, 1_767_225_600, body);
        let v1 = |header: &str| header.split_once(",v1=").unwrap().1.to_string();
        assert_ne!(v1(&signed), v1(&signature(SECRET, 1_767_225_601, body)));
        assert_ne!(
            v1(&signed),
            v1(&signature(
                SECRET,
                1_767_225_600,
                br#"{"id":"c1.answered"}"#
            ))
        );
        assert_ne!(
            v1(&signed),
            v1(&signature(
                b"another secret of at least 32 bytes",
                1_767_225_600,
                body
            ))
        );
        assert_eq!(v1(&signed).len(), 64);
        assert!(
            v1(&signed)
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
