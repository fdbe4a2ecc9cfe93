-- evalwatch history, schema version 1: the tables.
--
-- Plain SQL on purpose, so that a PostgreSQL backend can mirror it: timestamps are RFC 3339
-- UTC text, JSON is text, statuses are short lowercase text. Tables use an integer surrogate
-- key (`id`) and refer to each other by it (`*_ref` columns), which keeps the result rows small;
-- natural keys (suite name, run id, case id + hash) are UNIQUE.
-- Migrations are append only: never edit this file once released, add 000N_*.sql instead.

CREATE TABLE suites (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL
);

-- One row per version of a case: editing a case changes its content hash and adds a row,
-- so that history shows when a case changed. A row never changes once written.
CREATE TABLE cases (
    id         INTEGER PRIMARY KEY,
    suite_ref  INTEGER NOT NULL REFERENCES suites (id),
    case_id    TEXT NOT NULL,
    hash       TEXT NOT NULL,
    tags       TEXT NOT NULL DEFAULT '[]',
    first_seen TEXT NOT NULL,
    UNIQUE (suite_ref, case_id, hash)
);

CREATE TABLE runs (
    id                INTEGER PRIMARY KEY,
    run_id            TEXT NOT NULL UNIQUE,
    suite_ref         INTEGER NOT NULL REFERENCES suites (id),
    suite_hash        TEXT NOT NULL,
    started_at        TEXT NOT NULL,
    finished_at       TEXT,
    status            TEXT NOT NULL
                      CHECK (status = 'running' OR status = 'complete' OR status = 'incomplete'
                             OR status = 'failed'),
    providers         TEXT NOT NULL DEFAULT '[]',
    planned           INTEGER NOT NULL,
    pid               INTEGER,
    host              TEXT,
    evalwatch_version TEXT NOT NULL
);

-- Rendered prompts, stored once however many results (samples, providers, runs) share them.
-- `hash` is the SHA-256 of the text.
CREATE TABLE prompts (
    id   INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    text TEXT NOT NULL
);

-- One row per job of a run. Short fixed columns first, long text last.
-- `id` is (run_ref << 32) | seq: a run's results are one contiguous key range in plan order,
-- and a plan position can be written once, with no second index to maintain on every insert.
-- `tags` is NULL when the result carries the tags of its case row (the usual case).
-- `assertions` holds the verdict of each assertion, in suite order, as one compact JSON array
-- (NULL when there are none): objects with `type`, `pass`, `score` and, when not the default,
-- `reason`, `weight` (1), `metric`, `unscorable` (false), `details`. One row per assertion
-- wrote more slowly (docs/performance.md). The view `assertion_rows` (version 2) shows them
-- as rows.
CREATE TABLE results (
    id              INTEGER PRIMARY KEY,
    run_ref         INTEGER NOT NULL REFERENCES runs (id),
    seq             INTEGER NOT NULL,
    case_ref        INTEGER NOT NULL REFERENCES cases (id),
    case_index      INTEGER NOT NULL,
    provider        TEXT NOT NULL,
    provider_index  INTEGER NOT NULL,
    sample          INTEGER NOT NULL,
    -- Comparisons, not IN (...): SQLite builds a temporary table for an IN list on every
    -- row checked, which cost a third of the write rate.
    status          TEXT NOT NULL
                    CHECK (status = 'passed' OR status = 'failed' OR status = 'error'
                           OR status = 'unscorable'),
    score           REAL,
    latency_ms      REAL,
    tokens_in       INTEGER,
    tokens_out      INTEGER,
    cost_usd        REAL,
    attempts        INTEGER NOT NULL,
    error_kind      TEXT,
    finish_reason   TEXT,
    prompt_ref      INTEGER REFERENCES prompts (id),
    label_expected  TEXT,
    label_predicted TEXT,
    tags            TEXT,
    assertions      TEXT,
    error           TEXT,
    output          TEXT
);

-- Metrics of a run per provider (`tag` NULL) and per provider and tag: the whole `Metrics`
-- as JSON, plus the headline numbers as columns for trend queries.
CREATE TABLE run_metrics (
    id                 INTEGER PRIMARY KEY,
    run_ref            INTEGER NOT NULL REFERENCES runs (id),
    provider           TEXT NOT NULL,
    tag                TEXT,
    pass_rate          REAL,
    mean_score         REAL,
    error_rate         REAL,
    latency_p95_ms     REAL,
    cost_usd           REAL,
    hallucination_rate REAL,
    metrics            TEXT NOT NULL
);

CREATE TABLE run_gates (
    run_ref  INTEGER NOT NULL REFERENCES runs (id),
    idx      INTEGER NOT NULL,
    metric   TEXT NOT NULL,
    provider TEXT NOT NULL,
    bound    TEXT NOT NULL,
    value    REAL,
    ok       INTEGER NOT NULL,
    PRIMARY KEY (run_ref, idx)
);
