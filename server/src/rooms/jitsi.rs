//! Entry tokens for a Jitsi Meet deployment with token authentication: one HS256 JWT per
//! participant and click, with the claims Jitsi's prosody token plugin checks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

/// The shared secret and names a Jitsi deployment's token plugin is configured with.
#[derive(Clone)]
pub struct JitsiTokens {
    /// Jitsi's `app_secret`; signs tokens, never leaves this server.
    pub secret: Vec<u8>,
    /// Jitsi's `app_id`: the `iss` it accepts.
    pub app_id: String,
    /// The `sub` claim: the Jitsi domain (or tenant) the rooms live on.
    pub sub: String,
    /// How long after the call is answered it may last: bounds a token whose call's end is not
    /// known yet.
    pub call_lifetime: Duration,
}

impl std::fmt::Debug for JitsiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitsiTokens")
            .field("secret", &"<redacted>")
            .field("app_id", &self.app_id)
            .field("sub", &self.sub)
            .field("call_lifetime", &self.call_lifetime)
            .finish()
    }
}

/// One participant's token for one room.
pub struct Entrant<'a> {
    pub room: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    /// When the call will be ended at the latest: the token expires then.
    pub call_ends_at: Option<SystemTime>,
}

#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub sub: String,
    pub room: String,
    pub iat: u64,
    pub exp: u64,
    /// Both people in a 1:1 call run it together, so both may moderate.
    pub moderator: bool,
    pub context: Context,
}

#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Context {
    pub user: ContextUser,
}

#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ContextUser {
    pub id: String,
    pub name: String,
    /// Where Jitsi's `token_affiliation` module and 8x8's service read the role.
    pub moderator: bool,
}

impl JitsiTokens {
    /// A token for `who`, valid from `now` until the call's latest end (or `call_lifetime`
    /// from now, when that end is not known).
    pub fn token(&self, who: &Entrant<'_>, now: SystemTime) -> Result<String, String> {
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let iat = secs(now);
        let exp = secs(who.call_ends_at.unwrap_or(now + self.call_lifetime));
        let claims = Claims {
            aud: "jitsi".into(),
            iss: self.app_id.clone(),
            sub: self.sub.clone(),
            room: who.room.into(),
            iat,
            exp,
            moderator: true,
            context: Context {
                user: ContextUser {
                    id: who.user_id.into(),
                    name: who.name.into(),
                    moderator: true,
                },
            },
        };
        jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .map_err(|e| format!("signing the Jitsi token: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation, decode};

    use super::*;

    #[test]
    fn tokens_carry_jitsis_claims_and_verify_with_the_secret() {
        let tokens = JitsiTokens {
            secret: b"jitsi-app-secret".to_vec(),
            app_id: "switchboard".into(),
            sub: "meet.example.org".into(),
            call_lifetime: Duration::from_secs(4 * 3600),
        };
        let now = SystemTime::now();
        let ends = now + Duration::from_secs(3 * 3600 + 17);
        let ann = Entrant {
            room: "switchboard-c1",
            user_id: "ann",
            name: "Ann <O'Neil>",
            call_ends_at: Some(ends),
        };
        let token = tokens.token(&ann, now).unwrap();

        let mut validation = Validation::default();
        validation.set_audience(&["jitsi"]);
        validation.set_issuer(&["switchboard"]);
        let claims = decode::<Claims>(
            &token,
            &DecodingKey::from_secret(b"jitsi-app-secret"),
            &validation,
        )
        .unwrap()
        .claims;
        let iat = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let exp = ends.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(
            claims,
            Claims {
                aud: "jitsi".into(),
                iss: "switchboard".into(),
                sub: "meet.example.org".into(),
                room: "switchboard-c1".into(),
                iat,
                exp,
                moderator: true,
                context: Context {
                    user: ContextUser {
                        id: "ann".into(),
                        name: "Ann <O'Neil>".into(),
                        moderator: true,
                    }
                },
            }
        );
        assert!(
            decode::<Claims>(
                &token,
                &DecodingKey::from_secret(b"another-secret"),
                &validation
            )
            .is_err()
        );

        // A call not answered yet has no end: the token lasts what a call may.
        let unknown = Entrant {
            call_ends_at: None,
            ..ann
        };
        let claims = decode::<Claims>(
            &tokens.token(&unknown, now).unwrap(),
            &DecodingKey::from_secret(b"jitsi-app-secret"),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims.exp, iat + 4 * 3600);
    }
}
