-- Users' feedback given after the fact (`feedback import`, docs/feedback.md), linked to
-- traffic records by trace id, counted in the buckets of its record's minute (and hour and
-- day) even when the record was not sampled.

-- Where each traced record was counted: the minute bucket a late vote updates. Kept for the
-- records' retention, like the de-duplication keys.
CREATE TABLE traffic_traces (
    source   TEXT    NOT NULL,
    trace_id TEXT    NOT NULL,
    start    INTEGER NOT NULL,   -- the record's minute (unix seconds, UTC)
    model    TEXT    NOT NULL,
    feature  TEXT    NOT NULL,
    segment  TEXT    NOT NULL,
    region   TEXT    NOT NULL,
    PRIMARY KEY (source, trace_id)
) WITHOUT ROWID;
CREATE INDEX traffic_traces_start ON traffic_traces (source, start);

-- Every piece of feedback imported, as given: a changed vote adds a row (history); the same
-- feedback twice is one row.
CREATE TABLE traffic_feedback (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    trace_id    TEXT    NOT NULL,
    time_ms     INTEGER NOT NULL,
    raw         TEXT    NOT NULL,   -- the value as the user's tool wrote it
    vote        TEXT    NOT NULL CHECK (vote IN ('positive', 'negative', 'neutral')),
    comment     TEXT,               -- redacted like records' text
    feature     TEXT,
    user_hash   TEXT,
    imported_at INTEGER NOT NULL,
    UNIQUE (source, trace_id, time_ms, raw)
);
CREATE INDEX traffic_feedback_time ON traffic_feedback (source, time_ms);

-- The vote each record counts with in its buckets (the latest by time, inline or imported).
CREATE TABLE traffic_votes (
    source   TEXT    NOT NULL,
    trace_id TEXT    NOT NULL,
    time_ms  INTEGER NOT NULL,
    vote     TEXT    NOT NULL CHECK (vote IN ('positive', 'negative', 'neutral')),
    PRIMARY KEY (source, trace_id)
) WITHOUT ROWID;

-- Feedback whose record has not been ingested yet: matched when it arrives.
CREATE TABLE traffic_feedback_waiting (
    source   TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    PRIMARY KEY (source, trace_id)
) WITHOUT ROWID;
