//! Queuing events in the outbox: run by the store's writer inside the transaction (or
//! savepoint) of the write that causes them, so an event is queued exactly when its change is
//! committed. SQLite and PostgreSQL take the same statements, with their own placeholders.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;

use rusqlite::{Connection, OptionalExtension, params};
use switchboard_proto::{CallState, UserRef};
use tokio::sync::watch;
use tokio_postgres::GenericClient;

use super::event::{self, Event};
use crate::{calls::Millis, store::Write};

/// What the database held before a write, as far as its events depend on it.
pub enum Before {
    /// The write causes no events, or needs nothing read first.
    Nothing,
    /// The call's state before the write (`None`: no row).
    Call(Option<CallState>),
}

/// The writer's side of the webhooks: the URLs every event is queued for, and a signal to the
/// senders once queued rows are committed.
pub struct Recorder {
    /// Replaced when the configuration is reloaded.
    urls: Arc<ArcSwap<Vec<String>>>,
    /// Set when rows were queued in the transaction under way.
    queued: AtomicBool,
    committed: watch::Sender<()>,
}

impl Recorder {
    pub fn new(urls: Arc<ArcSwap<Vec<String>>>, committed: watch::Sender<()>) -> Self {
        Self {
            urls,
            queued: AtomicBool::new(false),
            committed,
        }
    }

    /// The writer committed a transaction: the senders look for new rows if it had any.
    pub fn committed(&self) {
        if self.queued.swap(false, Ordering::Relaxed) {
            self.committed.send_replace(());
        }
    }

    fn events(&self, write: &Write, before: Before) -> Option<Vec<Event>> {
        match (write, before) {
            (Write::Insert(record), _) => Some(event::call_events(None, &record.call)),
            (Write::Update(call), Before::Call(state)) => Some(event::call_events(state, call)),
            (Write::Upsert(record), Before::Call(state)) => {
                Some(event::call_events(state, &record.call))
            }
            _ => None,
        }
    }

    /// Reads what the write's events depend on; call before applying the write.
    pub fn before(&self, conn: &Connection, write: &Write) -> rusqlite::Result<Before> {
        let Some(id) = changed_call(write) else {
            return Ok(Before::Nothing);
        };
        let state: Option<String> = conn
            .prepare_cached("SELECT state FROM calls WHERE id = ?1")?
            .query_row([id], |row| row.get(0))
            .optional()?;
        Ok(Before::Call(state.as_deref().and_then(CallState::parse)))
    }

    /// Queues the write's events, after applying it in the same transaction.
    pub fn after(&self, conn: &Connection, write: &Write, before: Before) -> rusqlite::Result<()> {
        let events = match write {
            Write::Presence { user, online, at } => presence(conn, user, *online, *at)?,
            _ => self.events(write, before).unwrap_or_default(),
        };
        let now = now_ms();
        let urls = self.urls.load();
        for event in &events {
            for url in urls.iter() {
                conn.prepare_cached(
                    "INSERT INTO webhook_outbox (event_id, url, subject, step, body, created_at,
                         due_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (event_id, url) DO NOTHING",
                )?
                .execute(params![
                    event.id,
                    url,
                    event.subject,
                    event.step,
                    event.body,
                    now
                ])?;
            }
        }
        self.mark(&events);
        Ok(())
    }

    /// [`Recorder::before`] on PostgreSQL.
    pub async fn before_pg(
        &self,
        db: &impl GenericClient,
        write: &Write,
    ) -> Result<Before, tokio_postgres::Error> {
        let Some(id) = changed_call(write) else {
            return Ok(Before::Nothing);
        };
        let row = db
            .query_opt("SELECT state FROM calls WHERE id = $1", &[&id])
            .await?;
        let state = row.and_then(|row| CallState::parse(row.get::<_, &str>(0)));
        Ok(Before::Call(state))
    }

    /// [`Recorder::after`] on PostgreSQL.
    pub async fn after_pg(
        &self,
        db: &impl GenericClient,
        write: &Write,
        before: Before,
    ) -> Result<(), tokio_postgres::Error> {
        let events = match write {
            Write::Presence { user, online, at } => presence_pg(db, user, *online, *at).await?,
            _ => self.events(write, before).unwrap_or_default(),
        };
        let now = now_ms();
        let urls = self.urls.load_full();
        for event in &events {
            for url in urls.iter() {
                db.execute(
                    "INSERT INTO webhook_outbox (event_id, url, subject, step, body, created_at,
                         due_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (event_id, url) DO NOTHING",
                    &[
                        &event.id,
                        url,
                        &event.subject,
                        &event.step,
                        &event.body,
                        &now,
                    ],
                )
                .await?;
            }
        }
        self.mark(&events);
        Ok(())
    }

    fn mark(&self, events: &[Event]) {
        if !events.is_empty() {
            self.queued.store(true, Ordering::Relaxed);
        }
    }
}

/// The call whose state a write may change.
fn changed_call(write: &Write) -> Option<&str> {
    match write {
        Write::Update(call) => Some(&call.id.0),
        Write::Upsert(record) => Some(&record.call.id.0),
        _ => None,
    }
}

/// Comes online, if the backend was last told the user is offline (or nothing) as of an
/// earlier time. Returns whether that changed what it was told.
const ONLINE: &str = "INSERT INTO webhook_presence (user_id, online, at) VALUES (?1, TRUE, ?2)
     ON CONFLICT (user_id) DO UPDATE SET online = TRUE, at = excluded.at
     WHERE NOT webhook_presence.online AND webhook_presence.at <= excluded.at
     RETURNING 1";
/// Goes offline, if the backend was last told the user is online as of an earlier time.
const OFFLINE: &str = "UPDATE webhook_presence SET online = FALSE, at = ?2
     WHERE user_id = ?1 AND online AND at <= ?2 RETURNING 1";
/// Otherwise the user was already so: only the time it is known for moves on, so a change
/// recorded late (the stream entry of a node that died, written after later ones) is stale.
const SAME: &str = "INSERT INTO webhook_presence (user_id, online, at) VALUES (?1, ?3, ?2)
     ON CONFLICT (user_id) DO UPDATE SET at = excluded.at
     WHERE webhook_presence.at < excluded.at";

/// The presence event a change causes, if it changes what the backend was told.
fn presence(
    conn: &Connection,
    user: &UserRef,
    online: bool,
    at: Millis,
) -> rusqlite::Result<Vec<Event>> {
    let at_ms = i64::try_from(at).unwrap_or(i64::MAX);
    let sql = if online { ONLINE } else { OFFLINE };
    let changed = conn
        .prepare_cached(sql)?
        .query_row(params![user.id, at_ms], |_| Ok(()))
        .optional()?
        .is_some();
    if changed {
        return Ok(vec![event::presence_event(user, online, at)]);
    }
    conn.prepare_cached(SAME)?
        .execute(params![user.id, at_ms, online])?;
    Ok(Vec::new())
}

async fn presence_pg(
    db: &impl GenericClient,
    user: &UserRef,
    online: bool,
    at: Millis,
) -> Result<Vec<Event>, tokio_postgres::Error> {
    let at_ms = i64::try_from(at).unwrap_or(i64::MAX);
    let sql = if online { ONLINE } else { OFFLINE };
    let changed = db
        .query_opt(&postgres_placeholders(sql), &[&user.id, &at_ms])
        .await?
        .is_some();
    if changed {
        return Ok(vec![event::presence_event(user, online, at)]);
    }
    db.execute(&postgres_placeholders(SAME), &[&user.id, &at_ms, &online])
        .await?;
    Ok(Vec::new())
}

/// `?1` → `$1`: the statements above are written once for both databases.
fn postgres_placeholders(sql: &str) -> String {
    sql.replace('?', "$")
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchboard_proto::CallId;

    use super::*;
    use crate::{
        calls::{Input, Reachability, place, step},
        store::CallRecord,
    };

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../../schema.sql"))
            .unwrap();
        conn
    }

    fn recorder(urls: &[&str]) -> (Recorder, watch::Receiver<()>) {
        let (tx, rx) = watch::channel(());
        (
            Recorder::new(
                Arc::new(ArcSwap::from_pointee(
                    urls.iter().map(|u| u.to_string()).collect(),
                )),
                tx,
            ),
            rx,
        )
    }

    /// Applies the write as the store's writer does, with its events.
    fn write(conn: &Connection, recorder: &Recorder, write: &Write) {
        let before = recorder.before(conn, write).unwrap();
        crate::store::apply_for_tests(conn, write).unwrap();
        recorder.after(conn, write, before).unwrap();
    }

    fn queued(conn: &Connection) -> Vec<(String, String)> {
        conn.prepare("SELECT event_id, url FROM webhook_outbox ORDER BY seq")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn ann() -> UserRef {
        UserRef {
            id: "ann".into(),
            name: "Ann".into(),
        }
    }

    fn presence(online: bool, at: Millis) -> Write {
        Write::Presence {
            user: ann(),
            online,
            at,
        }
    }

    #[test]
    fn a_call_is_queued_once_per_url_however_often_it_is_recorded() {
        let conn = db();
        let (recorder, mut committed) = recorder(&["https://a.example/h", "https://b.example/h"]);
        let call = place(
            CallId("c1".into()),
            UserRef {
                id: "ann".into(),
                name: "Ann".into(),
            },
            UserRef {
                id: "bob".into(),
                name: "Bob".into(),
            },
            Reachability::Free,
            1_000,
            Duration::from_secs(45),
        )
        .unwrap()
        .0;
        let (answered, _) = step(&call, Input::Answer { by: "bob".into() }, 1_200).unwrap();
        let record = |call: &crate::calls::Call| {
            Write::Upsert(Box::new(CallRecord {
                call: call.clone(),
                caller_link: "l1".into(),
                callee_link: "l2".into(),
            }))
        };
        write(&conn, &recorder, &record(&call));
        write(&conn, &recorder, &record(&answered));
        // A cluster's node that took over another's records writes them again, late.
        write(&conn, &recorder, &record(&call));
        write(&conn, &recorder, &record(&answered));
        let a = |id: &str| (id.to_string(), "https://a.example/h".to_string());
        let b = |id: &str| (id.to_string(), "https://b.example/h".to_string());
        assert_eq!(
            queued(&conn),
            [
                a("c1.ringing"),
                b("c1.ringing"),
                a("c1.answered"),
                b("c1.answered")
            ]
        );
        assert!(!committed.has_changed().unwrap());
        recorder.committed();
        assert!(committed.has_changed().unwrap());
        committed.mark_unchanged();
        recorder.committed();
        assert!(!committed.has_changed().unwrap(), "nothing new was queued");
    }

    #[test]
    fn presence_is_told_when_it_changes_and_never_late() {
        let conn = db();
        let (recorder, _committed) = recorder(&["https://a.example/h"]);
        // Offline before ever being told online: nothing to tell.
        write(&conn, &recorder, &presence(false, 500));
        write(&conn, &recorder, &presence(true, 1_000));
        write(&conn, &recorder, &presence(true, 1_000));
        write(&conn, &recorder, &presence(true, 1_500));
        write(&conn, &recorder, &presence(false, 3_000));
        // The online at 2,000 recorded after the offline at 3,000: stale.
        write(&conn, &recorder, &presence(true, 2_000));
        write(&conn, &recorder, &presence(false, 3_000));
        write(&conn, &recorder, &presence(true, 4_000));
        let ids: Vec<String> = queued(&conn).into_iter().map(|(id, _)| id).collect();
        assert_eq!(
            ids,
            ["ann.online.1000", "ann.offline.3000", "ann.online.4000"]
        );
    }
}
