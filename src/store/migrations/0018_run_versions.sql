-- The model versions each provider reported during a run (`model`, OpenAI's
-- `system_fingerprint`), with how many answers carried each: what `show` lists and what a
-- change of version is told from (an automatic `model` marker).
CREATE TABLE run_versions (
    run_ref     INTEGER NOT NULL REFERENCES runs (id),
    provider    TEXT NOT NULL,
    model       TEXT NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT '',
    answers     INTEGER NOT NULL,
    PRIMARY KEY (run_ref, provider, model, fingerprint)
) WITHOUT ROWID;
