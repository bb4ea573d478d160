//! Well-formed tokens with arbitrary claims, so the claim checks are reached: the first byte
//! picks a header and signing (some honest, some forged), the rest is the payload's JSON text.
//! Forged tokens must never get through; an accepted one must say exactly what its claims say.
#![no_main]

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, crypto::sign, get_current_timestamp};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use switchboard_fuzz::{LEEWAY, SECRET, verify_both};
use switchboard_proto::{Auth, ErrorCode};

/// How a token is put together; only the first three are genuine.
#[derive(Clone, Copy, Debug)]
enum Make {
    Hs256Jwt,
    Hs256Bare,
    Hs256ExtraFields,
    Hs384,
    AlgNone,
    OtherSecret,
    BadSignature,
    NoSignature,
}

const MAKES: [Make; 8] = [
    Make::Hs256Jwt,
    Make::Hs256Bare,
    Make::Hs256ExtraFields,
    Make::Hs384,
    Make::AlgNone,
    Make::OtherSecret,
    Make::BadSignature,
    Make::NoSignature,
];

/// The claims this target checks, read from the payload's bytes the way the server reads them:
/// every other claim is skipped unread, so it may hold invalid UTF-8 or a lone surrogate escape
/// (which a full `serde_json::Value` would refuse).
#[derive(Deserialize)]
struct Checked {
    sub: String,
    name: String,
    exp: f64,
    nbf: Option<f64>,
}

fn token(make: Make, payload: &[u8]) -> String {
    let header = match make {
        Make::Hs256Jwt | Make::OtherSecret | Make::BadSignature | Make::NoSignature => {
            r#"{"alg":"HS256","typ":"JWT"}"#
        }
        Make::Hs256Bare => r#"{"alg":"HS256"}"#,
        Make::Hs256ExtraFields => r#"{"typ":"JWT","alg":"HS256","kid":"k1","cty":"x"}"#,
        Make::Hs384 => r#"{"alg":"HS384","typ":"JWT"}"#,
        Make::AlgNone => r#"{"alg":"none","typ":"JWT"}"#,
    };
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let hmac = |secret: &[u8], alg| {
        sign(message.as_bytes(), &EncodingKey::from_secret(secret), alg).expect("HMAC signs")
    };
    let signature = match make {
        Make::Hs256Jwt | Make::Hs256Bare | Make::Hs256ExtraFields => hmac(SECRET, Algorithm::HS256),
        Make::Hs384 => hmac(SECRET, Algorithm::HS384),
        Make::AlgNone | Make::NoSignature => String::new(),
        Make::OtherSecret => hmac(b"some other secret of 32 bytes!!!", Algorithm::HS256),
        Make::BadSignature => {
            let good = hmac(SECRET, Algorithm::HS256);
            // Another valid base64url signature of the same length.
            let flipped = if good.starts_with('A') { 'B' } else { 'A' };
            format!("{flipped}{}", &good[1..])
        }
    };
    format!("{message}.{signature}")
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let make = MAKES[usize::from(pick) % MAKES.len()];
    let result = verify_both(&Auth::Token(token(make, payload)));
    match make {
        Make::Hs256Jwt | Make::Hs256Bare | Make::Hs256ExtraFields => {
            let Ok(user) = result else { return };
            let claims: Checked =
                serde_json::from_slice(payload).expect("accepted claims hold what is checked");
            assert_eq!(claims.sub, user.id);
            assert_eq!(claims.name, user.name);
            let now = get_current_timestamp() as f64;
            let leeway = LEEWAY as f64;
            assert!(claims.exp + leeway >= now, "accepted an expired token");
            if let Some(nbf) = claims.nbf {
                assert!(nbf <= now + leeway, "accepted a token before its nbf");
            }
        }
        _ => assert_eq!(
            result,
            Err(ErrorCode::BadToken),
            "a forged token ({make:?})"
        ),
    }
});
