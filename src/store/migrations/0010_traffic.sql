-- Production traffic (docs/traffic.md). The store grows with buckets and the sample, not
-- with raw traffic: every record is counted into a bucket; only sampled records (or, with
-- `store_text: all`, every record's text) are kept whole; a de-duplication key per record
-- is kept for the records' retention, so that reading a file twice counts nothing twice.

-- Aggregates per (source, resolution, start, model, feature, segment, region). Every column
-- adds up when buckets merge (latency: a DDSketch; users: a sorted set of 8-byte hashes).
CREATE TABLE traffic_buckets (
    source              TEXT    NOT NULL,
    resolution          TEXT    NOT NULL CHECK (resolution IN ('minute', 'hour', 'day')),
    start               INTEGER NOT NULL,   -- unix seconds, UTC
    model               TEXT    NOT NULL,
    feature             TEXT    NOT NULL,
    segment             TEXT    NOT NULL,
    region              TEXT    NOT NULL,
    requests            INTEGER NOT NULL,
    errors              INTEGER NOT NULL,
    errors_by_kind      TEXT    NOT NULL,   -- JSON object kind -> count
    latency             BLOB    NOT NULL,   -- DDSketch of successful requests' latency (ms)
    tokens_in           INTEGER NOT NULL,
    tokens_out          INTEGER NOT NULL,
    cost_usd            REAL    NOT NULL,
    costed              INTEGER NOT NULL,
    feedback_positive   INTEGER NOT NULL,
    feedback_negative   INTEGER NOT NULL,
    feedback_neutral    INTEGER NOT NULL,
    sampled             INTEGER NOT NULL,
    scored              INTEGER NOT NULL,   -- sampled records the monitor decided
    passed              INTEGER NOT NULL,
    hallucination_checked INTEGER NOT NULL,
    hallucinated        INTEGER NOT NULL,
    refusal_checked     INTEGER NOT NULL,
    refused             INTEGER NOT NULL,
    users               BLOB    NOT NULL,
    PRIMARY KEY (source, resolution, start, model, feature, segment, region)
) WITHOUT ROWID;

-- Sampled records, kept whole (text redacted; per `store_text`), with the monitor's verdict.
CREATE TABLE traffic_records (
    source        TEXT    NOT NULL,
    key           TEXT    NOT NULL,   -- trace id (with the span id for spans), else a hash
    time_ms       INTEGER NOT NULL,
    sampled       INTEGER NOT NULL,
    model         TEXT,
    feature       TEXT,
    segment       TEXT,
    region        TEXT,
    user_hash     TEXT,
    trace_id      TEXT,
    latency_ms    REAL,
    tokens_in     INTEGER,
    tokens_out    INTEGER,
    cost_usd      REAL,
    error         INTEGER NOT NULL,
    error_kind    TEXT,
    confidence    REAL,
    feedback      TEXT,                -- the raw value as logged
    feedback_vote TEXT,                -- positive | negative | neutral
    input         TEXT,
    output        TEXT,
    context       TEXT,                -- JSON list of passages
    status        TEXT,                -- the monitor's verdict: passed | failed | unscorable
    score         REAL,
    assertions    TEXT,                -- JSON list of assertion outcomes
    PRIMARY KEY (source, key)
);
CREATE INDEX traffic_records_time ON traffic_records (source, time_ms);
CREATE INDEX traffic_records_trace ON traffic_records (trace_id) WHERE trace_id IS NOT NULL;

-- One key per record read (16 bytes of SHA-256 of its de-duplication key), for retention.
CREATE TABLE traffic_keys (
    source  TEXT    NOT NULL,
    key     BLOB    NOT NULL,
    time    INTEGER NOT NULL,   -- the record's unix seconds
    PRIMARY KEY (source, key)
) WITHOUT ROWID;
CREATE INDEX traffic_keys_time ON traffic_keys (source, time);

-- How far each file of a source has been read, so that an ingest resumes where the last
-- one committed; `identity` (device:inode) tells a rotated file from a grown one.
CREATE TABLE traffic_offsets (
    source     TEXT    NOT NULL,
    file       TEXT    NOT NULL,
    identity   TEXT    NOT NULL,
    offset     INTEGER NOT NULL,
    line       INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source, file)
) WITHOUT ROWID;
