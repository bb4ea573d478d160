-- Version 3, as version 3 of the SQLite schema: the webhook outbox, and what the site's backend
-- was last told of each user's presence.

CREATE TABLE webhook_outbox (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      TEXT NOT NULL,
    url           TEXT NOT NULL,
    subject       TEXT NOT NULL,
    step          BIGINT NOT NULL,
    body          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    due_at        BIGINT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    UNIQUE (event_id, url)
);

CREATE INDEX webhook_outbox_due ON webhook_outbox (url, due_at);
CREATE INDEX webhook_outbox_order ON webhook_outbox (url, subject, step, seq);

CREATE TABLE webhook_presence (
    user_id TEXT PRIMARY KEY,
    online  BOOLEAN NOT NULL,
    at      BIGINT NOT NULL
);
