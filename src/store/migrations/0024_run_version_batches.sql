-- The model versions a run's providers reported, counted by the run's writer in the
-- transaction of each batch of results, keyed by the batch's first result (`results.id`):
-- a run killed mid-way keeps the counts of the results it stored, and a batch written again
-- after its commit's answer was lost adds nothing. Until this version the counts were added
-- when a run ended (`run_versions`, dropped here); those rows move over under batch 0 (no
-- result has that id: a run's results start at its key times 2^32).
CREATE TABLE run_version_batches (
    run_ref     INTEGER NOT NULL REFERENCES runs (id),
    batch       INTEGER NOT NULL,
    provider    TEXT NOT NULL,
    model       TEXT NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT '',
    answers     INTEGER NOT NULL,
    PRIMARY KEY (run_ref, batch, provider, model, fingerprint)
) WITHOUT ROWID;
INSERT INTO run_version_batches (run_ref, batch, provider, model, fingerprint, answers)
    SELECT run_ref, 0, provider, model, fingerprint, answers FROM run_versions;
DROP TABLE run_versions;
