-- Version 3: webhooks. Each event for the site's backend is queued in `webhook_outbox`, in the
-- same transaction as the change it reports, once per configured URL, and deleted once that
-- URL acknowledged it (or given up after `webhook_retry_for`). `webhook_presence` is what the
-- backend was last told of each user, so a change recorded twice is told once.

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

CREATE INDEX webhook_outbox_due ON webhook_outbox (url, due_at);
CREATE INDEX webhook_outbox_order ON webhook_outbox (url, subject, step, seq);

CREATE TABLE webhook_presence (
    user_id TEXT PRIMARY KEY,
    online  INTEGER NOT NULL,
    at      INTEGER NOT NULL
) STRICT;
