-- evalwatch history, schema version 2, PostgreSQL variant of 0002_indexes_views.sql (the
-- view `assertion_rows` reads JSON with PostgreSQL's functions; the rest is the same SQL).
-- Types are those of the translated tables (docs/store.md); a JSON true/false reads as 1/0,
-- as SQLite's json_extract gives it.

-- History of a suite, newest first; the previous complete run.
CREATE INDEX runs_by_suite ON runs (suite_ref, started_at);

-- Runs left `running` (crashed or interrupted): a partial index, tiny.
CREATE INDEX runs_running ON runs (status) WHERE status = 'running';

CREATE INDEX run_metrics_by_run ON run_metrics (run_ref, provider, tag);

-- Results with their names resolved.
CREATE VIEW result_rows AS
SELECT
    r.run_id      AS run_id,
    s.name        AS suite,
    x.id          AS result_id,
    x.seq         AS seq,
    c.case_id     AS case_id,
    c.hash        AS case_hash,
    x.provider    AS provider,
    x.sample      AS sample,
    x.status      AS status,
    x.score       AS score,
    x.latency_ms  AS latency_ms,
    x.tokens_in   AS tokens_in,
    x.tokens_out  AS tokens_out,
    x.cost_usd    AS cost_usd,
    x.attempts    AS attempts,
    x.error_kind  AS error_kind,
    x.error       AS error,
    x.output      AS output
FROM results x
JOIN runs r ON r.id = x.run_ref
JOIN suites s ON s.id = r.suite_ref
JOIN cases c ON c.id = x.case_ref;

-- Headline metrics of each run and provider, for trends.
CREATE VIEW run_headlines AS
SELECT
    r.run_id             AS run_id,
    s.name               AS suite,
    r.started_at         AS started_at,
    r.status             AS status,
    m.provider           AS provider,
    m.pass_rate          AS pass_rate,
    m.mean_score         AS mean_score,
    m.error_rate         AS error_rate,
    m.latency_p95_ms     AS latency_p95_ms,
    m.cost_usd           AS cost_usd,
    m.hallucination_rate AS hallucination_rate
FROM run_metrics m
JOIN runs r ON r.id = m.run_ref
JOIN suites s ON s.id = r.suite_ref
WHERE m.tag IS NULL;

-- One row per assertion of a result, from the JSON column of `results`.
CREATE VIEW assertion_rows AS
SELECT
    x.id                                                   AS result_id,
    x.run_ref                                              AS run_ref,
    a.ord - 1                                              AS idx,
    a.value ->> 'type'                                     AS type,
    CASE a.value ->> 'pass' WHEN 'true' THEN 1 WHEN 'false' THEN 0 END AS pass,
    (a.value ->> 'score')::DOUBLE PRECISION                AS score,
    coalesce(a.value ->> 'reason', '')                     AS reason,
    coalesce((a.value ->> 'weight')::DOUBLE PRECISION, 1.0) AS weight,
    a.value ->> 'metric'                                   AS metric,
    coalesce(CASE a.value ->> 'unscorable' WHEN 'true' THEN 1 WHEN 'false' THEN 0 END, 0)
                                                           AS unscorable,
    a.value ->> 'details'                                  AS details
FROM results x
CROSS JOIN LATERAL jsonb_array_elements(x.assertions::jsonb) WITH ORDINALITY AS a (value, ord)
WHERE x.assertions IS NOT NULL;
