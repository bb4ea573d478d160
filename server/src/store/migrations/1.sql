-- Version 1 of the SQLite schema (SQLite's user_version), as first released; 2.sql brings it to
-- the layout in the top-level schema.sql. All times are milliseconds since the Unix epoch.

-- Everyone who has been online here: "unknown user" means absent from this table.
CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
) STRICT;

-- One row per call, updated as it moves; `state` is ringing, answered, rejected, cancelled,
-- missed, failed or ended. The link columns hold each participant's secret join token.
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
    caller_link   TEXT NOT NULL UNIQUE,
    callee_link   TEXT NOT NULL UNIQUE
) STRICT;

-- Calls still in progress, read back at start.
CREATE INDEX calls_live ON calls (state) WHERE state IN ('ringing', 'answered');
CREATE INDEX calls_by_caller ON calls (caller_id, placed_at);
CREATE INDEX calls_by_callee ON calls (callee_id, placed_at);

-- Every state change of every call, and notes such as a conferencing server's refusal.
CREATE TABLE call_events (
    call_id TEXT NOT NULL REFERENCES calls (id),
    at      INTEGER NOT NULL,
    state   TEXT NOT NULL,
    detail  TEXT
) STRICT;

CREATE INDEX call_events_by_call ON call_events (call_id, at);
