-- evalwatch history: human review sheets, their items and the grades imported from them.

-- One row per sheet written by `review sample`. `secret` keys the HMAC (`mac`) over the
-- sheet id and its item list, which the sheet carries and its grades file echoes: a grades
-- file whose items were edited does not verify. `status` is `open` until every item has a
-- grade (or `review close`); a result is in at most one open sheet.
CREATE TABLE review_sheets (
    id         INTEGER PRIMARY KEY,
    sheet_id   TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status = 'open' OR status = 'closed'),
    secret     TEXT NOT NULL,
    mac        TEXT NOT NULL,
    params     TEXT NOT NULL DEFAULT '{}'
);

-- The items of a sheet in sheet order: a result and why it was sampled, with the item as
-- shown (prompt, expected, context, output, automatic verdict) as JSON, so that a sheet can
-- be served again as it was written.
CREATE TABLE review_items (
    sheet_ref INTEGER NOT NULL REFERENCES review_sheets (id),
    idx       INTEGER NOT NULL,
    result_id INTEGER NOT NULL REFERENCES results (id),
    stratum   TEXT NOT NULL,
    item      TEXT NOT NULL,
    PRIMARY KEY (sheet_ref, idx),
    UNIQUE (sheet_ref, result_id)
);
CREATE INDEX review_items_by_result ON review_items (result_id);

-- Every grade ever imported; a newer grade of the same (result, reviewer) supersedes an
-- older one without deleting it. `graded_at` is the export time of the grades file.
-- Importing the same grade again (same sheet, result, reviewer, time and content) is a no-op.
CREATE TABLE review_grades (
    id            INTEGER PRIMARY KEY,
    sheet_ref     INTEGER NOT NULL REFERENCES review_sheets (id),
    result_id     INTEGER NOT NULL REFERENCES results (id),
    reviewer      TEXT NOT NULL,
    verdict       TEXT NOT NULL CHECK (verdict = 'pass' OR verdict = 'fail'),
    quality       INTEGER CHECK (quality IS NULL OR (quality >= 1 AND quality <= 5)),
    hallucination INTEGER CHECK (hallucination IS NULL OR hallucination = 0 OR hallucination = 1),
    note          TEXT NOT NULL DEFAULT '',
    graded_at     TEXT NOT NULL,
    imported_at   TEXT NOT NULL
);
CREATE INDEX review_grades_by_result ON review_grades (result_id, reviewer, graded_at);
