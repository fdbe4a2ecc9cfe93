-- Change markers (`evalwatch mark`, and model versions evalwatch saw change): what changed
-- and when, shown on pages and in alerts. The same marker recorded twice is kept once.
CREATE TABLE marks (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('deploy', 'model', 'prompt', 'note')),
    text       TEXT NOT NULL,
    at         TEXT NOT NULL,
    feature    TEXT,
    source     TEXT,
    origin     TEXT NOT NULL CHECK (origin IN ('user', 'auto')),
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX marks_once ON marks (kind, text, at, IFNULL(feature, ''), IFNULL(source, ''));
CREATE INDEX marks_at ON marks (at);
