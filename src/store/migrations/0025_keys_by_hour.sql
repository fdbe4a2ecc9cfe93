-- The de-duplication keys ordered by time (issue #20, docs/performance.md "Session 21").
-- Both key tables were ordered by (source, key): with random keys (OpenTelemetry's W3C trace
-- ids; SHA-256 of a record without one) each insert landed on a random page of an index far
-- larger than SQLite's page cache, so `ingest` read and rewrote one page a record, ~80,000
-- records/s at 1 M records against ~270,000 when the ids grow with time. Ordered by
-- (source, hour, key), the inserts of traffic read in time order fall into the current
-- hour's part of each table, which stays in the cache.
--
-- `hour` is the start of the record's hour in unix seconds (UTC). A record is read before
-- when its key is in its own hour (a record's hash includes its time; a re-sent span keeps
-- its start), or, known by its trace id alone, also in the hour beside it at a minute less
-- than ten minutes away (`TrafficTx::index_trace`). Feedback, which knows a trace id but not
-- its hour, looks it up hour by hour over the hours the source's index holds, newest first
-- (`store::traffic::trace_rows`).

CREATE TABLE traffic_trace_keys_by_hour (
    source INTEGER NOT NULL,   -- traffic_sources.id
    hour   INTEGER NOT NULL,   -- the start of the record's hour (unix seconds, UTC)
    key    BLOB    NOT NULL,
    start  INTEGER NOT NULL,   -- the record's minute (unix seconds, UTC)
    labels INTEGER NOT NULL,   -- traffic_label_sets.id
    PRIMARY KEY (source, hour, key)
) WITHOUT ROWID;
INSERT INTO traffic_trace_keys_by_hour (source, hour, key, start, labels)
    SELECT source, start - ((start % 3600) + 3600) % 3600, key, start, labels
    FROM traffic_trace_keys;
DROP TABLE traffic_trace_keys;
ALTER TABLE traffic_trace_keys_by_hour RENAME TO traffic_trace_keys;

CREATE TABLE traffic_keys_by_hour (
    source  TEXT    NOT NULL,
    hour    INTEGER NOT NULL,   -- the start of the record's hour (unix seconds, UTC)
    key     BLOB    NOT NULL,
    time    INTEGER NOT NULL,   -- the record's unix seconds
    PRIMARY KEY (source, hour, key)
) WITHOUT ROWID;
INSERT INTO traffic_keys_by_hour (source, hour, key, time)
    SELECT source, time - ((time % 3600) + 3600) % 3600, key, time FROM traffic_keys;
DROP TABLE traffic_keys;
ALTER TABLE traffic_keys_by_hour RENAME TO traffic_keys;
