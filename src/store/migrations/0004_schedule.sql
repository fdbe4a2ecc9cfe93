-- The scheduler: leases (a suite never overlaps itself on one store) and fire records (what
-- happened to each scheduled window: ran, missed, skipped, busy, failed, interrupted).

-- One row per suite while a process runs it. `token` identifies the taker; `pid` and
-- `host` tell whether it is still alive; `expires_at` is pushed forward by its heartbeat.
CREATE TABLE schedule_leases (
    suite        TEXT PRIMARY KEY,
    token        TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,
    acquired_at  TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);

CREATE TABLE schedule_fires (
    id            INTEGER PRIMARY KEY,
    suite         TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    fired_at      TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    run_id        TEXT,
    detail        TEXT
);

CREATE INDEX schedule_fires_by_suite ON schedule_fires (suite, scheduled_for);
