-- evalwatch history, schema version 2: indexes for the read side, and views for ad hoc SQL
-- (`sqlite3 evalwatch.db 'SELECT * FROM result_rows LIMIT 10'`).

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
    x.id                                          AS result_id,
    x.run_ref                                     AS run_ref,
    CAST(a.key AS INTEGER)                        AS idx,
    json_extract(a.value, '$.type')               AS type,
    json_extract(a.value, '$.pass')               AS pass,
    json_extract(a.value, '$.score')              AS score,
    coalesce(json_extract(a.value, '$.reason'), '') AS reason,
    coalesce(json_extract(a.value, '$.weight'), 1.0) AS weight,
    json_extract(a.value, '$.metric')             AS metric,
    coalesce(json_extract(a.value, '$.unscorable'), 0) AS unscorable,
    json_extract(a.value, '$.details')            AS details
FROM results x, json_each(x.assertions) a
WHERE x.assertions IS NOT NULL;
