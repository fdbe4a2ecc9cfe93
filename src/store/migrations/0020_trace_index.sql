-- The trace index made compact (docs/performance.md, session 12). `traffic_traces` held the
-- source, the trace id and four labels of every traced record, twice (its key and its start
-- index): ~118 bytes a record and two B-tree inserts on `ingest`'s hot path. Now a record's
-- row is a 16-byte key, its minute and a label-set id, in one B-tree:
-- `key` = the first 16 bytes of SHA-256 of `source || char(10) || trace_id` (source ids
-- hold no newline), computed by the store (`evalwatch_trace_key`, registered on every
-- connection). `prune` finds old rows by `start` in one pass over the table.

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
    key    BLOB    NOT NULL PRIMARY KEY,
    start  INTEGER NOT NULL,   -- the record's minute (unix seconds, UTC)
    labels INTEGER NOT NULL    -- traffic_label_sets.id
) WITHOUT ROWID;

INSERT INTO traffic_label_sets (source, model, feature, segment, region)
    SELECT DISTINCT source, model, feature, segment, region FROM traffic_traces
    ORDER BY source, model, feature, segment, region;
INSERT INTO traffic_trace_keys (key, start, labels)
    SELECT evalwatch_trace_key(t.source, t.trace_id), t.start, l.id
    FROM traffic_traces t JOIN traffic_label_sets l ON l.source = t.source
        AND l.model = t.model AND l.feature = t.feature AND l.segment = t.segment
        AND l.region = t.region;
DROP TABLE traffic_traces;
