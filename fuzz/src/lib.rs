//! What the fuzz targets share: the identity checkers they log in with, and the invariants
//! every answer from `Identity::verify` must keep.

use std::sync::LazyLock;

use switchboard::{config::IdentityMode, identity::Identity};
use switchboard_proto::{Auth, ErrorCode, UserRef, validate_name, validate_user_id};

/// The secret the signed-mode checker verifies with (and `jwt_claims` signs with).
pub const SECRET: &[u8] = b"the fuzzing secret, 32 bytes ok!";

/// How far `Identity` lets `exp` and `nbf` miss the clock, in seconds.
pub const LEEWAY: u64 = 5;

pub static DEMO: LazyLock<Identity> = LazyLock::new(|| Identity::new(&IdentityMode::Demo));

pub static SIGNED: LazyLock<Identity> = LazyLock::new(|| {
    Identity::new(&IdentityMode::Signed {
        secret: SECRET.to_vec(),
        audience: None,
        issuer: None,
    })
});

/// Verifies `auth` in both modes and checks each answer against what the mode promises.
/// Returns the signed-mode answer for callers that know more about the token.
pub fn verify_both(auth: &Auth) -> Result<UserRef, ErrorCode> {
    let demo = DEMO.verify(auth);
    let signed = SIGNED.verify(auth);
    match auth {
        Auth::Demo { id, name } => {
            let expected = if !validate_user_id(id) {
                Err(ErrorCode::InvalidUserId)
            } else if !validate_name(name) {
                Err(ErrorCode::InvalidName)
            } else {
                Ok(UserRef {
                    id: id.clone(),
                    name: name.clone(),
                })
            };
            assert_eq!(
                demo, expected,
                "demo mode must take a valid identity as given"
            );
            assert_eq!(signed, Err(ErrorCode::SignedIdentityRequired));
        }
        Auth::Token(_) => {
            assert_eq!(demo, Err(ErrorCode::TokensNotConfigured));
            match &signed {
                Ok(user) => assert_valid(user),
                Err(code) => assert!(
                    matches!(
                        code,
                        ErrorCode::BadToken
                            | ErrorCode::TokenExpired
                            | ErrorCode::InvalidUserId
                            | ErrorCode::InvalidName
                    ),
                    "unexpected refusal {code:?}"
                ),
            }
        }
    }
    signed
}

/// Whatever identity gets through must be one the protocol allows.
pub fn assert_valid(user: &UserRef) {
    assert!(validate_user_id(&user.id), "accepted user id {:?}", user.id);
    assert!(validate_name(&user.name), "accepted name {:?}", user.name);
}
