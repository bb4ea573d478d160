-- Switchboard's records: the SQLite schema as it stands (version 2, SQLite's user_version).
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
