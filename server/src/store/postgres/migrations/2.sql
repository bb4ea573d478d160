-- Version 2, as version 2 of the SQLite schema: a call's row holds its whole history (the
-- `call_events` view reads the steps from its times), notes have their own table, and the
-- random link tokens lose their UNIQUE indexes.

CREATE TABLE call_notes (
    call_id TEXT NOT NULL REFERENCES calls (id),
    at      BIGINT NOT NULL,
    detail  TEXT NOT NULL
);
INSERT INTO call_notes
    SELECT call_id, at, detail FROM call_events WHERE state = 'note' AND detail IS NOT NULL;
CREATE INDEX call_notes_by_call ON call_notes (call_id, at);
DROP TABLE call_events;

ALTER TABLE calls DROP CONSTRAINT calls_caller_link_key;
ALTER TABLE calls DROP CONSTRAINT calls_callee_link_key;

CREATE VIEW call_events (call_id, at, state, detail, step) AS
    SELECT id, placed_at, 'ringing', NULL, 0 FROM calls
    UNION ALL
    SELECT id, answered_at, 'answered', NULL, 1 FROM calls WHERE answered_at IS NOT NULL
    UNION ALL
    SELECT call_id, at, 'note', detail, 2 FROM call_notes
    UNION ALL
    SELECT id, ended_at, state, reason, 3 FROM calls WHERE ended_at IS NOT NULL;
