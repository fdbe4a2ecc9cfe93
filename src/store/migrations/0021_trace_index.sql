-- The trace index made compact (docs/performance.md, session 12). `traffic_traces` held the
-- source, the trace id and four labels of every traced record, twice (its key and its start
-- index): ~118 bytes a record and two B-tree inserts on `ingest`'s hot path. Now a record's
-- row is a source id, a 16-byte key, its minute and a label-set id, in one B-tree.
-- `key` = `evalwatch_trace_key(trace_id)`, a function the store registers on every
-- connection: a trace id of 32 lowercase hex digits (W3C, OpenTelemetry) as its 16 bytes, so
-- that ids that grow with time keep their order (inserts stay at the end of the B-tree);
-- any other id as the first 16 bytes of its SHA-256. `prune` finds old rows by `start` in
-- one pass over the source's part of the table.

-- Each source that has traced records, by a small id.
CREATE TABLE traffic_sources (
    id     INTEGER PRIMARY KEY,
    source TEXT    NOT NULL UNIQUE
);

-- Each distinct (source, model, feature, segment, region) a traced record was counted under.
CREATE TABLE traffic_label_sets (
    id      INTEGER PRIMARY KEY,
    source  TEXT    NOT NULL,
    model   TEXT    NOT NULL,
    feature TEXT    NOT NULL,
    segment TEXT    NOT NULL,
    region  TEXT    NOT NULL,
    UNIQUE (source, model, feature, segment, region)
);

-- Where each traced record was counted (its minute bucket: the minute and the label set):
-- the de-duplication key of a record known by its trace id, and the bucket a late vote
-- updates. Kept for the records' retention.
CREATE TABLE traffic_trace_keys (
    source INTEGER NOT NULL,   -- traffic_sources.id
    key    BLOB    NOT NULL,
    start  INTEGER NOT NULL,   -- the record's minute (unix seconds, UTC)
    labels INTEGER NOT NULL,   -- traffic_label_sets.id
    PRIMARY KEY (source, key)
) WITHOUT ROWID;

INSERT INTO traffic_sources (source)
    SELECT DISTINCT source FROM traffic_traces ORDER BY source;
INSERT INTO traffic_label_sets (source, model, feature, segment, region)
    SELECT DISTINCT source, model, feature, segment, region FROM traffic_traces
    ORDER BY source, model, feature, segment, region;
INSERT INTO traffic_trace_keys (source, key, start, labels)
    SELECT s.id, evalwatch_trace_key(t.trace_id), t.start, l.id
    FROM traffic_traces t JOIN traffic_sources s ON s.source = t.source
    JOIN traffic_label_sets l ON l.source = t.source AND l.model = t.model
        AND l.feature = t.feature AND l.segment = t.segment AND l.region = t.region;
DROP TABLE traffic_traces;
