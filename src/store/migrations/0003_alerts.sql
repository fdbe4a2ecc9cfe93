-- evalwatch history, schema version 3: alert state, notices and their delivery queue, pins.

-- One row per alert episode: opened when a rule starts firing for a (suite, rule, provider,
-- tag), closed (`resolved_at`) when it stops. At most one open episode per key.
CREATE TABLE alerts (
    id             INTEGER PRIMARY KEY,
    suite          TEXT NOT NULL,
    rule           TEXT NOT NULL,
    metric         TEXT NOT NULL,
    provider       TEXT NOT NULL,
    tag            TEXT NOT NULL DEFAULT '',
    severity       TEXT NOT NULL,
    opened_at      TEXT NOT NULL,
    opened_run     TEXT,
    last_seen_at   TEXT NOT NULL,
    last_run       TEXT,
    value          REAL,
    baseline_value REAL,
    message        TEXT NOT NULL,
    resolved_at    TEXT,
    resolved_run   TEXT
);
CREATE UNIQUE INDEX alerts_open ON alerts (suite, rule, provider, tag) WHERE resolved_at IS NULL;
CREATE INDEX alerts_recent ON alerts (opened_at);

-- Notices: an alert opening (`alert`) or closing (`resolved`), with the JSON payload sent to
-- sinks. Never contains a secret.
CREATE TABLE alert_notices (
    id        INTEGER PRIMARY KEY,
    alert_ref INTEGER NOT NULL REFERENCES alerts (id),
    kind      TEXT NOT NULL CHECK (kind = 'alert' OR kind = 'resolved'),
    created_at TEXT NOT NULL,
    payload   TEXT NOT NULL
);

-- One row per notice and sink: pending until delivered. A sink that is down leaves its rows
-- pending; they are retried on the next `run` or `alerts check`.
CREATE TABLE alert_deliveries (
    id           INTEGER PRIMARY KEY,
    notice_ref   INTEGER NOT NULL REFERENCES alert_notices (id),
    sink         TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    last_attempt TEXT,
    delivered_at TEXT,
    UNIQUE (notice_ref, sink)
);
CREATE INDEX alert_deliveries_pending ON alert_deliveries (id) WHERE delivered_at IS NULL;

-- `evalwatch baseline pin RUN_ID`: the pinned baseline of a suite.
CREATE TABLE baseline_pins (
    suite     TEXT PRIMARY KEY,
    run_id    TEXT NOT NULL,
    pinned_at TEXT NOT NULL
);
