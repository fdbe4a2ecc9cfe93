-- Review sheets of production traffic (`review sample --from traffic:ID`, docs/review.md).
--
-- An item is a suite result or a sampled traffic record. `result_id` stays the item's id
-- (what a sheet's grades name): a `results.id` for a suite item; for a traffic item an id
-- derived from its record's (source, key) in [2^62, 2^63), a range no `results.id` reaches
-- (that would take 2^30 runs), with the record named in `traffic_source` / `traffic_key`.
-- The foreign keys to `results` go: a traffic item has no result, and `prune` may remove a
-- reviewed record (the item keeps what the sheet showed). The code checks that a suite
-- item's result exists when the sheet is made, as the foreign key did; discarding a run
-- already refuses one whose results are in a sheet.
--
-- SQLite cannot drop a foreign key in place: both tables are rebuilt with their rows.

CREATE TABLE review_items_v2 (
    sheet_ref      INTEGER NOT NULL REFERENCES review_sheets (id),
    idx            INTEGER NOT NULL,
    result_id      INTEGER NOT NULL,
    stratum        TEXT NOT NULL,
    item           TEXT NOT NULL,
    traffic_source TEXT,
    traffic_key    TEXT,
    CHECK ((traffic_source IS NULL) = (traffic_key IS NULL)),
    PRIMARY KEY (sheet_ref, idx),
    UNIQUE (sheet_ref, result_id)
);
INSERT INTO review_items_v2 (sheet_ref, idx, result_id, stratum, item)
    SELECT sheet_ref, idx, result_id, stratum, item FROM review_items;
DROP TABLE review_items;
ALTER TABLE review_items_v2 RENAME TO review_items;
CREATE INDEX review_items_by_result ON review_items (result_id);
CREATE INDEX review_items_by_record ON review_items (traffic_source, traffic_key)
    WHERE traffic_source IS NOT NULL;

CREATE TABLE review_grades_v2 (
    id            INTEGER PRIMARY KEY,
    sheet_ref     INTEGER NOT NULL REFERENCES review_sheets (id),
    result_id     INTEGER NOT NULL,
    reviewer      TEXT NOT NULL,
    verdict       TEXT NOT NULL CHECK (verdict = 'pass' OR verdict = 'fail'),
    quality       INTEGER CHECK (quality IS NULL OR (quality >= 1 AND quality <= 5)),
    hallucination INTEGER CHECK (hallucination IS NULL OR hallucination = 0 OR hallucination = 1),
    note          TEXT NOT NULL DEFAULT '',
    graded_at     TEXT NOT NULL,
    imported_at   TEXT NOT NULL
);
INSERT INTO review_grades_v2 (id, sheet_ref, result_id, reviewer, verdict, quality,
        hallucination, note, graded_at, imported_at)
    SELECT id, sheet_ref, result_id, reviewer, verdict, quality, hallucination, note,
        graded_at, imported_at FROM review_grades;
DROP TABLE review_grades;
ALTER TABLE review_grades_v2 RENAME TO review_grades;
CREATE INDEX review_grades_by_result ON review_grades (result_id, reviewer, graded_at);
