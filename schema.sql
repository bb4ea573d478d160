-- Switchboard's records: the SQLite schema as it stands (version 3, SQLite's user_version).
-- The server builds it by running server/src/store/migrations/ in order, which also brings an
-- older database up to date; a test checks that the two agree. All times are milliseconds
-- since the Unix epoch.

-- Everyone who has been online here: "unknown user" means absent from this table.
CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
) STRICT;

-- One row per call, updated in place as it moves; `state` is ringing, answered, rejected,
-- cancelled, missed, failed or ended, and `reason` says why a call ended. The link columns
-- hold each participant's secret join token.
CREATE TABLE calls (
    id            TEXT PRIMARY KEY,
    caller_id     TEXT NOT NULL,
    caller_name   TEXT NOT NULL,
    callee_id     TEXT NOT NULL,
    callee_name   TEXT NOT NULL,
    state         TEXT NOT NULL,
    placed_at     INTEGER NOT NULL,
    ring_deadline INTEGER NOT NULL,
    answered_at   INTEGER,
    ended_at      INTEGER,
    reason        TEXT,
    caller_link   TEXT NOT NULL,
    callee_link   TEXT NOT NULL
) STRICT;

-- Calls still in progress, read back at start.
CREATE INDEX calls_live ON calls (state) WHERE state IN ('ringing', 'answered');
-- A user's calls, for history.
CREATE INDEX calls_by_caller ON calls (caller_id, placed_at);
CREATE INDEX calls_by_callee ON calls (callee_id, placed_at);

-- What happened to a call without changing its state, such as a conferencing server's refusal.
CREATE TABLE call_notes (
    call_id TEXT NOT NULL REFERENCES calls (id),
    at      INTEGER NOT NULL,
    detail  TEXT NOT NULL
) STRICT;

CREATE INDEX call_notes_by_call ON call_notes (call_id, at);

-- Every step of every call, in order by (at, step): read from the calls' own times and the
-- notes, so it costs no write.
CREATE VIEW call_events (call_id, at, state, detail, step) AS
    SELECT id, placed_at, 'ringing', NULL, 0 FROM calls
    UNION ALL
    SELECT id, answered_at, 'answered', NULL, 1 FROM calls WHERE answered_at IS NOT NULL
    UNION ALL
    SELECT call_id, at, 'note', detail, 2 FROM call_notes
    UNION ALL
    SELECT id, ended_at, state, reason, 3 FROM calls WHERE ended_at IS NOT NULL;

-- Events for the site's backend (webhooks), queued in the same transaction as the change they
-- report: one row per event and configured URL, deleted once that URL acknowledged it or it was
-- given up. `subject` (`call:<id>` or `user:<id>`) and `step` order a subject's events; `seq`
-- orders the rest. A sender holds the rows it is sending until `claimed_until`; a failed one
-- waits until `due_at`.
CREATE TABLE webhook_outbox (
    seq           INTEGER PRIMARY KEY,
    event_id      TEXT NOT NULL,
    url           TEXT NOT NULL,
    subject       TEXT NOT NULL,
    step          INTEGER NOT NULL,
    body          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claimed_until INTEGER NOT NULL DEFAULT 0,
    UNIQUE (event_id, url)
) STRICT;

-- The rows each URL's sender may take next, oldest first; and a subject's rows in order.
CREATE INDEX webhook_outbox_due ON webhook_outbox (url, due_at);
CREATE INDEX webhook_outbox_order ON webhook_outbox (url, subject, step, seq);

-- What the site's backend was last told of each user (online or not, as of `at`), so a
-- presence change recorded twice, or late, is told once.
CREATE TABLE webhook_presence (
    user_id TEXT PRIMARY KEY,
    online  INTEGER NOT NULL,
    at      INTEGER NOT NULL
) STRICT;
