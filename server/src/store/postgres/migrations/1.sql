-- Version 1 of Switchboard's records in PostgreSQL: the same tables as version 1 of the SQLite
-- schema, in PostgreSQL's types. All times are milliseconds since the Unix epoch.

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);

CREATE TABLE calls (
    id            TEXT PRIMARY KEY,
    caller_id     TEXT NOT NULL,
    caller_name   TEXT NOT NULL,
    callee_id     TEXT NOT NULL,
    callee_name   TEXT NOT NULL,
    state         TEXT NOT NULL,
    placed_at     BIGINT NOT NULL,
    ring_deadline BIGINT NOT NULL,
    answered_at   BIGINT,
    ended_at      BIGINT,
    reason        TEXT,
    caller_link   TEXT NOT NULL UNIQUE,
    callee_link   TEXT NOT NULL UNIQUE
);

CREATE INDEX calls_live ON calls (state) WHERE state IN ('ringing', 'answered');
CREATE INDEX calls_by_caller ON calls (caller_id, placed_at);
CREATE INDEX calls_by_callee ON calls (callee_id, placed_at);

CREATE TABLE call_events (
    call_id TEXT NOT NULL REFERENCES calls (id),
    at      BIGINT NOT NULL,
    state   TEXT NOT NULL,
    detail  TEXT
);

CREATE INDEX call_events_by_call ON call_events (call_id, at);
