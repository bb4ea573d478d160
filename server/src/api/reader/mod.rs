//! Reading the call records for the API, from the database the store writes: a read-only SQLite
//! connection on a thread of its own, or a PostgreSQL connection of its own. Neither is the
//! writer's, and the async runtime never waits on either.

mod postgres;
mod sqlite;

use std::path::Path;

use switchboard_proto::{CallId, CallState, UserRef};

use crate::calls::{Call, Millis};

/// Which recorded calls to read: those `user` took part in (or everybody's), placed from
/// `since` (inclusive) to `until` (exclusive), newest first, starting just before `before`,
/// at most `limit`.
#[derive(Clone, Debug)]
pub struct HistoryQuery {
    pub user: Option<String>,
    pub since: Millis,
    pub until: Millis,
    pub before: Option<(Millis, CallId)>,
    pub limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the history reader has too many queries waiting")]
    Busy,
    #[error("the history reader has stopped")]
    Gone,
    #[error("reading the call history from SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("reading the call history from PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL cannot be reached: {0}")]
    Unreachable(&'static str),
    #[error("starting the history reader: {0}")]
    Thread(std::io::Error),
    #[error("bad record in the database: {0}")]
    Corrupt(String),
}

impl ReadError {
    /// Whether trying again later may work: the reader is busy or the database away, rather
    /// than a query or a record being wrong.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Busy | Self::Unreachable(_) => true,
            // No SQLSTATE: the connection itself failed.
            Self::Postgres(e) => e.code().is_none(),
            _ => false,
        }
    }
}

/// Where the records are read from. Cheap to clone.
#[derive(Clone)]
pub enum Reader {
    Sqlite(sqlite::Reader),
    Postgres(postgres::Reader),
}

impl Reader {
    /// Opens the SQLite file read-only (the store has created it already) and starts its
    /// reader thread.
    pub fn sqlite(path: &Path) -> Result<Self, ReadError> {
        Ok(Self::Sqlite(sqlite::Reader::open(path)?))
    }

    /// A reader that connects to PostgreSQL when first asked, and again after a lost
    /// connection.
    pub fn postgres(url: &str) -> Self {
        Self::Postgres(postgres::Reader::new(url))
    }

    /// A page of recorded calls.
    pub async fn page(&self, query: HistoryQuery) -> Result<Vec<Call>, ReadError> {
        match self {
            Self::Sqlite(reader) => reader.page(query).await,
            Self::Postgres(reader) => reader.page(query).await,
        }
    }

    /// One recorded call.
    pub async fn call(&self, id: CallId) -> Result<Option<Call>, ReadError> {
        match self {
            Self::Sqlite(reader) => reader.call(id).await,
            Self::Postgres(reader) => reader.call(id).await,
        }
    }
}

/// The columns every query reads, in the order [`Columns::call`] takes them. The link tokens
/// are never read: they are the participants' secrets.
const COLUMNS: &str = "id, caller_id, caller_name, callee_id, callee_name, state, placed_at, \
                       ring_deadline, answered_at, ended_at, reason";

/// One row's columns, as either database returns them.
struct Columns {
    id: String,
    caller: UserRef,
    callee: UserRef,
    state: String,
    placed_at: i64,
    ring_deadline: i64,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
    reason: Option<String>,
}

impl Columns {
    fn call(self) -> Result<Call, ReadError> {
        let state = CallState::parse(&self.state)
            .ok_or_else(|| ReadError::Corrupt(format!("call state {:?}", self.state)))?;
        let time = |ms: i64| u64::try_from(ms).unwrap_or(0);
        Ok(Call {
            id: CallId(self.id),
            caller: self.caller,
            callee: self.callee,
            state,
            placed_at: time(self.placed_at),
            ring_deadline: time(self.ring_deadline),
            answered_at: self.answered_at.map(time),
            ended_at: self.ended_at.map(time),
            reason: self.reason,
        })
    }
}

/// A time as the databases store it (a signed 64-bit integer).
fn stored(ms: Millis) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

impl HistoryQuery {
    /// The keyset the page starts below: past every call when there is no cursor.
    fn start(&self) -> (i64, &str) {
        match &self.before {
            Some((at, id)) => (stored(*at), id.0.as_str()),
            None => (i64::MAX, ""),
        }
    }
}
