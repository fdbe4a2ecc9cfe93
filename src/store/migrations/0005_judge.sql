-- Judges: the cache of judge answers, and which judge and rubric scored each run.

-- One judge answer (or, for `semantic`, one embedding cosine as JSON) per key, the hex
-- SHA-256 of the judge (`provider/model`), the rubric hash and the inputs the judge saw.
-- Rescoring or rerunning an unchanged case finds its answer here and calls no judge.
-- Only answers that parsed are kept: an unreadable answer is asked again next time.
CREATE TABLE judge_cache (
    key         TEXT PRIMARY KEY,
    judge       TEXT NOT NULL,
    rubric_hash TEXT NOT NULL,
    answer      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- Which judge (provider and model) and rubric (version and hash) scored each assertion type
-- of a run: a trend breaks visibly where one of them changed.
CREATE TABLE run_judges (
    run_ref        INTEGER NOT NULL REFERENCES runs (id),
    assertion      TEXT NOT NULL,
    provider       TEXT NOT NULL,
    model          TEXT NOT NULL,
    rubric_version TEXT NOT NULL,
    rubric_hash    TEXT NOT NULL,
    PRIMARY KEY (run_ref, assertion, provider, model, rubric_hash)
);
