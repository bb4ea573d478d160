//! Identifiers and the bounds on user ids and display names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest user id accepted, in bytes.
pub const MAX_USER_ID_LEN: usize = 128;
/// Longest display name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A call's id: random, so ids never repeat across servers or a wiped database.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub String);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user id is the site's key for a user: 1 to 128 bytes of ASCII letters, digits and
/// `._-@:+`, so it is safe in logs, URLs and room names.
pub fn validate_user_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_USER_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@:+".contains(&b))
}

/// A display name is any printable text of 1 to 100 characters; it is always treated as data.
pub fn validate_name(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&chars)
        && !name.trim().is_empty()
        && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids() {
        assert!(validate_user_id("u-17@example.org"));
        assert!(!validate_user_id(""));
        assert!(!validate_user_id("a b"));
        assert!(!validate_user_id("<script>"));
        assert!(!validate_user_id(&"x".repeat(MAX_USER_ID_LEN + 1)));
    }

    #[test]
    fn names() {
        assert!(validate_name("Ann <img src=x onerror=alert(1)> \"O'Neil\""));
        assert!(validate_name("Zoë 山田"));
        assert!(!validate_name(""));
        assert!(!validate_name("   "));
        assert!(!validate_name("a\nb"));
        assert!(!validate_name(&"é".repeat(MAX_NAME_CHARS + 1)));
    }
}
