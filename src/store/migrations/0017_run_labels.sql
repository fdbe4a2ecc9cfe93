-- The labels a run was given (`run --label key=value`: a release, a branch, a prompt
-- variant), shown on pages and in `runs`/`show`, and a filter of `runs --label`.
CREATE TABLE run_labels (
    run_ref INTEGER NOT NULL REFERENCES runs (id),
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (run_ref, key)
) WITHOUT ROWID;
CREATE INDEX run_labels_key ON run_labels (key, value);
