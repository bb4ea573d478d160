//! Signed identities, as a site's backend would mint them: HS256 with `sub`, `name`, `exp`.

use jsonwebtoken::{EncodingKey, Header, encode};
use serde::Serialize;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    name: &'a str,
    exp: u64,
}

/// A token valid for a day.
pub fn sign(secret: &str, id: &str, name: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        sub: id,
        name,
        exp: now + 86_400,
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}
