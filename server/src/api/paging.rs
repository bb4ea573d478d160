//! Pages of list answers: how many items one holds, and the opaque cursor that says where the
//! next one starts (a call's `placed_at` and id: a keyset, so calls that come or go between two
//! pages never shift one into a duplicate or a gap).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use switchboard_proto::CallId;

use super::error::ApiError;
use crate::calls::{Call, Millis};

/// Items in a page when the request does not say.
pub const DEFAULT_LIMIT: usize = 50;
/// The most items one page may hold: each is a few hundred bytes, and the hub or the database
/// gathers them while it serves everyone else.
pub const MAX_LIMIT: usize = 200;
/// The longest call id accepted in input (the server's own are 16 characters).
const MAX_CALL_ID: usize = 64;

/// The page size a request asks for, checked.
pub fn limit(asked: Option<usize>) -> Result<usize, ApiError> {
    match asked.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(ApiError::Invalid(format!("limit must be 1 to {MAX_LIMIT}"))),
    }
}

/// Where a page starts: just past the call placed at `placed_at` with id `id`, in the order
/// the list is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub placed_at: Millis,
    pub id: CallId,
}

impl Cursor {
    /// The cursor of the page after the one that ends with `last`.
    pub fn after(last: &Call) -> Self {
        Self {
            placed_at: last.placed_at,
            id: last.id.clone(),
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.placed_at, self.id))
    }

    /// A cursor this server gave out; anything else is refused.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::Invalid("cursor is not one this server gave out".into());
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (at, id) = raw.split_once('.').ok_or_else(bad)?;
        let id = call_id(id).map_err(|_| bad())?;
        Ok(Self {
            placed_at: at.parse().map_err(|_| bad())?,
            id,
        })
    }
}

/// A call id from input: what the server makes (base64url), of a sane length.
pub fn call_id(text: &str) -> Result<CallId, ApiError> {
    let valid = (1..=MAX_CALL_ID).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(CallId(text.to_string()))
    } else {
        Err(ApiError::Invalid(
            "a call id is 1 to 64 characters of A-Z a-z 0-9 - _".into(),
        ))
    }
}

/// Splits one item more than the page holds off `items` (asked for to learn whether there is
/// another page), and says where that page starts.
pub fn split(mut items: Vec<Call>, limit: usize) -> (Vec<Call>, Option<String>) {
    if items.len() <= limit {
        return (items, None);
    }
    items.truncate(limit);
    let next = items.last().map(|last| Cursor::after(last).encode());
    (items, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_nothing_else_does() {
        let cursor = Cursor {
            placed_at: 1_700_000_000_123,
            id: CallId("Xb-_9aZ".into()),
        };
        assert_eq!(Cursor::parse(&cursor.encode()).unwrap(), cursor);
        let forged = |raw: &str| URL_SAFE_NO_PAD.encode(raw);
        for bad in [
            "".to_string(),
            "not base64!".into(),
            forged("12"),
            forged("x.abc"),
            forged("12.a b"),
            forged("12."),
            forged(&format!("12.{}", "a".repeat(65))),
        ] {
            assert!(Cursor::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(Some(MAX_LIMIT)).unwrap(), MAX_LIMIT);
        assert!(limit(Some(0)).is_err() && limit(Some(MAX_LIMIT + 1)).is_err());
    }
}
