//! The history from PostgreSQL: a connection of the API's own (never the writer's), opened when
//! first needed and again after it is lost, in read-only transactions with a statement timeout.

use std::{sync::Arc, time::Duration};

use switchboard_proto::{CallId, UserRef};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Row, types::ToSql};

use super::{COLUMNS, Columns, HistoryQuery, ReadError, stored};
use crate::calls::Call;

/// The longest a connection attempt, or a query, may take before the request fails: a
/// PostgreSQL that stopped answering must not hold the backend's requests open.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Reader {
    url: Arc<str>,
    /// The connection, once made; replaced when it is found closed.
    client: Arc<Mutex<Option<Arc<Client>>>>,
}

impl Reader {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.into(),
            client: Arc::default(),
        }
    }

    /// The open connection, or a new one. Requests share it (PostgreSQL pipelines them).
    async fn client(&self) -> Result<Arc<Client>, ReadError> {
        let mut held = self.client.lock().await;
        if let Some(client) = held.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let connecting = tokio_postgres::connect(&self.url, NoTls);
        let (client, connection) = tokio::time::timeout(TIMEOUT, connecting)
            .await
            .map_err(|_| ReadError::Unreachable("connecting timed out"))??;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "the history's PostgreSQL connection ended");
            }
        });
        // A slow query must not hold the backend (or the database) for long, and this
        // connection never writes.
        client
            .batch_execute("SET statement_timeout = '5s'; SET default_transaction_read_only = on")
            .await?;
        let client = Arc::new(client);
        *held = Some(client.clone());
        Ok(client)
    }

    pub async fn page(&self, query: HistoryQuery) -> Result<Vec<Call>, ReadError> {
        const RANGE: &str = "placed_at >= $2 AND placed_at < $3 AND (placed_at, id) < ($4, $5) \
                             ORDER BY placed_at DESC, id DESC LIMIT $6";
        let sql = match query.user {
            Some(_) => format!(
                "(SELECT {COLUMNS} FROM calls WHERE caller_id = $1 AND {RANGE})
                 UNION ALL
                 (SELECT {COLUMNS} FROM calls
                  WHERE callee_id = $1 AND caller_id <> $1 AND {RANGE})
                 ORDER BY placed_at DESC, id DESC LIMIT $6"
            ),
            None => format!("SELECT {COLUMNS} FROM calls WHERE $1::TEXT IS NULL AND {RANGE}"),
        };
        let (at, id) = query.start();
        let client = self.client().await?;
        let params: [&(dyn ToSql + Sync); 6] = [
            &query.user,
            &stored(query.since),
            &stored(query.until),
            &at,
            &id,
            &(query.limit as i64),
        ];
        let rows = in_time(client.query(&sql, &params)).await?;
        rows.iter().map(|row| columns(row)?.call()).collect()
    }

    pub async fn call(&self, id: CallId) -> Result<Option<Call>, ReadError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM calls WHERE id = $1");
        let row = in_time(client.query_opt(&sql, &[&id.0])).await?;
        row.map(|row| columns(&row)?.call()).transpose()
    }
}

/// A query's answer within [`TIMEOUT`].
async fn in_time<T>(
    query: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, ReadError> {
    match tokio::time::timeout(TIMEOUT, query).await {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(ReadError::Unreachable("no answer in time")),
    }
}

fn columns(row: &Row) -> Result<Columns, ReadError> {
    Ok(Columns {
        id: row.try_get(0)?,
        caller: UserRef {
            id: row.try_get(1)?,
            name: row.try_get(2)?,
        },
        callee: UserRef {
            id: row.try_get(3)?,
            name: row.try_get(4)?,
        },
        state: row.try_get(5)?,
        placed_at: row.try_get(6)?,
        ring_deadline: row.try_get(7)?,
        answered_at: row.try_get(8)?,
        ended_at: row.try_get(9)?,
        reason: row.try_get(10)?,
    })
}
