//! Who a client is: a signed token from the site's backend, or (demo mode) whatever it says.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use switchboard_proto::{Auth, ErrorCode, UserRef, validate_name, validate_user_id};

use crate::config::IdentityMode;

/// Checks credentials. Cheap to clone; shared by all sessions.
#[derive(Clone)]
pub struct Identity {
    verifier: Option<(DecodingKey, Validation)>,
}

/// The claims a site's token must carry.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    name: String,
}

impl Identity {
    pub fn new(mode: &IdentityMode) -> Self {
        let verifier = match mode {
            IdentityMode::Demo => None,
            IdentityMode::Signed {
                secret,
                audience,
                issuer,
            } => {
                let mut validation = Validation::new(Algorithm::HS256);
                let mut required = vec!["exp", "sub"];
                validation.leeway = 5;
                validation.validate_nbf = true;
                // Without a configured audience, one the site puts in its tokens is ignored;
                // with one, a token minted for another service sharing the secret is refused.
                validation.validate_aud = audience.is_some();
                if let Some(audience) = audience {
                    validation.set_audience(&[audience]);
                    required.push("aud");
                }
                if let Some(issuer) = issuer {
                    validation.set_issuer(&[issuer]);
                    required.push("iss");
                }
                validation.set_required_spec_claims(&required);
                Some((DecodingKey::from_secret(secret), validation))
            }
        };
        Self { verifier }
    }

    pub fn is_demo(&self) -> bool {
        self.verifier.is_none()
    }

    /// The user the credentials prove, or why they prove nothing.
    pub fn verify(&self, auth: &Auth) -> Result<UserRef, ErrorCode> {
        let user = match (auth, &self.verifier) {
            (Auth::Demo { id, name }, None) => UserRef {
                id: id.clone(),
                name: name.clone(),
            },
            (Auth::Demo { .. }, Some(_)) => return Err(ErrorCode::SignedIdentityRequired),
            (Auth::Token(_), None) => return Err(ErrorCode::TokensNotConfigured),
            (Auth::Token(token), Some((key, validation))) => {
                let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
                    .map_err(|e| match e.kind() {
                        ErrorKind::ExpiredSignature => ErrorCode::TokenExpired,
                        _ => ErrorCode::BadToken,
                    })?
                    .claims;
                UserRef {
                    id: claims.sub,
                    name: claims.name,
                }
            }
        };
        if !validate_user_id(&user.id) {
            return Err(ErrorCode::InvalidUserId);
        }
        if !validate_name(&user.name) {
            return Err(ErrorCode::InvalidName);
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"a test secret of thirty-two bytes or more";

    fn signed() -> Identity {
        Identity::new(&IdentityMode::Signed {
            secret: SECRET.to_vec(),
            audience: None,
            issuer: None,
        })
    }

    fn signed_for(audience: &str, issuer: &str) -> Identity {
        Identity::new(&IdentityMode::Signed {
            secret: SECRET.to_vec(),
            audience: Some(audience.into()),
            issuer: Some(issuer.into()),
        })
    }

    fn token(alg: Algorithm, secret: &[u8], claims: serde_json::Value) -> Auth {
        Auth::Token(
            encode(
                &Header::new(alg),
                &claims,
                &EncodingKey::from_secret(secret),
            )
            .unwrap(),
        )
    }

    fn in_an_hour() -> u64 {
        jsonwebtoken::get_current_timestamp() + 3600
    }

    #[test]
    fn accepts_a_good_token() {
        let auth = token(
            Algorithm::HS256,
            SECRET,
            json!({"sub": "u-17", "name": "Ann <b>", "exp": in_an_hour()}),
        );
        assert_eq!(
            signed().verify(&auth),
            Ok(UserRef {
                id: "u-17".into(),
                name: "Ann <b>".into()
            })
        );
    }

    #[test]
    fn refuses_forged_expired_and_incomplete_tokens() {
        let claims = json!({"sub": "u-17", "name": "Ann", "exp": in_an_hour()});
        let forged = token(
            Algorithm::HS256,
            b"another secret entirely!",
            claims.clone(),
        );
        assert_eq!(signed().verify(&forged), Err(ErrorCode::BadToken));
        let wrong_alg = token(Algorithm::HS384, SECRET, claims);
        assert_eq!(signed().verify(&wrong_alg), Err(ErrorCode::BadToken));
        let expired = token(
            Algorithm::HS256,
            SECRET,
            json!({"sub": "u", "name": "A", "exp": 1_000_000}),
        );
        assert_eq!(signed().verify(&expired), Err(ErrorCode::TokenExpired));
        let no_exp = token(Algorithm::HS256, SECRET, json!({"sub": "u", "name": "A"}));
        assert_eq!(signed().verify(&no_exp), Err(ErrorCode::BadToken));
        let no_name = token(
            Algorithm::HS256,
            SECRET,
            json!({"sub": "u", "exp": in_an_hour()}),
        );
        assert_eq!(signed().verify(&no_name), Err(ErrorCode::BadToken));
        assert_eq!(
            signed().verify(&Auth::Token("not.a.jwt".into())),
            Err(ErrorCode::BadToken)
        );
    }

    #[test]
    fn checks_audience_and_issuer_when_configured() {
        let identity = signed_for("switchboard", "https://forum.example.org");
        let with = |extra: serde_json::Value| {
            let mut claims = json!({"sub": "u-17", "name": "Ann", "exp": in_an_hour()});
            if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
                claims.extend(extra.clone());
            }
            token(Algorithm::HS256, SECRET, claims)
        };
        let good = with(json!({"aud": "switchboard", "iss": "https://forum.example.org"}));
        assert!(identity.verify(&good).is_ok());
        for bad in [
            json!({"aud": "billing", "iss": "https://forum.example.org"}),
            json!({"aud": "switchboard", "iss": "https://evil.example"}),
            json!({"iss": "https://forum.example.org"}),
            json!({"aud": "switchboard"}),
        ] {
            assert_eq!(
                identity.verify(&with(bad.clone())),
                Err(ErrorCode::BadToken),
                "{bad}"
            );
        }
        // Unconfigured, both claims are the site's business.
        assert!(
            signed()
                .verify(&with(json!({"aud": "billing", "iss": "x"})))
                .is_ok()
        );
    }

    #[test]
    fn names_with_invisible_characters_are_refused() {
        let auth = token(
            Algorithm::HS256,
            SECRET,
            json!({"sub": "u-17", "name": "Ann\u{202E}nimda", "exp": in_an_hour()}),
        );
        assert_eq!(signed().verify(&auth), Err(ErrorCode::InvalidName));
    }

    #[test]
    fn demo_mode_checks_ids_and_names() {
        let demo = Identity::new(&IdentityMode::Demo);
        let auth = |id: &str, name: &str| Auth::Demo {
            id: id.into(),
            name: name.into(),
        };
        assert!(demo.verify(&auth("ann", "Ann")).is_ok());
        assert_eq!(
            demo.verify(&auth("a b", "Ann")),
            Err(ErrorCode::InvalidUserId)
        );
        assert_eq!(demo.verify(&auth("ann", "")), Err(ErrorCode::InvalidName));
        assert_eq!(
            signed().verify(&auth("ann", "Ann")),
            Err(ErrorCode::SignedIdentityRequired)
        );
        assert_eq!(
            demo.verify(&Auth::Token("x".into())),
            Err(ErrorCode::TokensNotConfigured)
        );
    }
}
