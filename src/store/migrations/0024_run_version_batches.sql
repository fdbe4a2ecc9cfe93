-- The model versions a run's providers reported, counted by the run's writer in the
-- transaction of each batch of results, keyed by the batch's first result (`results.id`):
-- a run killed mid-way keeps the counts of the results it stored, and a batch written again
-- after its commit's answer was lost adds nothing. `run_versions` keeps the counts of runs
-- stored before this version (added when a run ended); a run's versions are the sum of both.
CREATE TABLE run_version_batches (
    run_ref     INTEGER NOT NULL REFERENCES runs (id),
    batch       INTEGER NOT NULL,
    provider    TEXT NOT NULL,
    model       TEXT NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT '',
    answers     INTEGER NOT NULL,
    PRIMARY KEY (run_ref, batch, provider, model, fingerprint)
) WITHOUT ROWID;
