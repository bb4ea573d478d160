//! Identifiers and the bounds on user ids and display names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest user id accepted, in bytes.
pub const MAX_USER_ID_LEN: usize = 128;
/// Longest display name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A call's id: the time it was placed, then random bytes, so ids never repeat across servers
/// or a wiped database.
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
/// Control, format and line or paragraph separator characters are refused: invisible ones let
/// a name pass for another, and bidi overrides turn the text around it backwards.
pub fn validate_name(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&chars)
        && !name.trim().is_empty()
        && !name.chars().any(|c| c.is_control() || is_invisible(c))
}

/// Unicode's format characters (general category Cf) and line and paragraph separators (Zl,
/// Zp), as of Unicode 16, plus the unassigned U+2065 inside the invisible-operator block. A
/// table of ranges rather than a Unicode crate: this crate is also built into the browser
/// client, and a full category table would weigh more than the rest of it. A unit test checks
/// the table against a complete one.
const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{2028}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

fn is_invisible(c: char) -> bool {
    INVISIBLE
        .binary_search_by(|&(low, high)| {
            if high < c {
                std::cmp::Ordering::Less
            } else if low > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
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

    #[test]
    fn names_with_format_or_separator_characters_are_refused() {
        for bad in [
            "Ann\u{202E}gnp.exe",
            "Ann\u{200B}",
            "Ann\u{200F}",
            "A\u{2066}nn",
            "Ann\u{FEFF}",
            "Ann\u{2028}Lee",
            "Ann\u{2029}Lee",
            "Ann\u{00AD}",
            "Ann\u{E0041}",
        ] {
            assert!(!validate_name(bad), "{bad:?}");
        }
        assert!(
            validate_name("Ann\u{00A0}Lee"),
            "a no-break space is a space"
        );
    }

    #[test]
    fn the_invisible_table_is_exactly_cf_zl_and_zp() {
        use unicode_general_category::{GeneralCategory as G, get_general_category};
        assert!(INVISIBLE.windows(2).all(|w| w[0].1 < w[1].0), "sorted");
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let expected = matches!(
                get_general_category(c),
                G::Format | G::LineSeparator | G::ParagraphSeparator
            ) || c == '\u{2065}';
            assert_eq!(is_invisible(c), expected, "U+{:04X}", c as u32);
        }
    }
}
