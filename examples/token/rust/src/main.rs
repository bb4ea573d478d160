//! Signs the identity token a page hands to Switchboard (`sv_setuserinfo(id, name, token)`)
//! and prints it: `switchboard-token USER_ID NAME`, the secret in `SWITCHBOARD_JWT_SECRET`,
//! and `SWITCHBOARD_JWT_AUDIENCE` / `SWITCHBOARD_JWT_ISSUER` when the server checks them.

use std::env;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header, encode};
use serde::Serialize;

/// How long a token is good for; the page's token provider fetches a fresh one before then.
const LIFETIME: Duration = Duration::from_secs(5 * 60);

/// What Switchboard reads: `sub` is the user id, `name` the display name.
#[derive(Serialize)]
struct Claims {
    sub: String,
    name: String,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = env::var("SWITCHBOARD_JWT_SECRET").map_err(|_| "set SWITCHBOARD_JWT_SECRET")?;
    let mut args = env::args().skip(1);
    let (Some(user_id), Some(name)) = (args.next(), args.next()) else {
        return Err("usage: switchboard-token USER_ID NAME".into());
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let claims = Claims {
        sub: user_id,
        name,
        exp: (now + LIFETIME).as_secs(),
        aud: env::var("SWITCHBOARD_JWT_AUDIENCE").ok(),
        iss: env::var("SWITCHBOARD_JWT_ISSUER").ok(),
    };
    // Header::default() is HS256, the one algorithm Switchboard accepts.
    let key = EncodingKey::from_secret(secret.as_bytes());
    println!("{}", encode(&Header::default(), &claims, &key)?);
    Ok(())
}
