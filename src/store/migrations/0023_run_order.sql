-- Runs in time order without parsing text: `started_ms` is `started_at` as milliseconds since
-- 1970 (UTC), written with the run (`Store::begin_run`); NULL where `started_at` is not a time
-- (as `julianday` gives NULL). Every query that orders runs by start, or compares a run's
-- start with a time, reads this column. On PostgreSQL `julianday` is a PL/pgSQL function,
-- compiled anew in each server process and ~1 µs a call: ordering a suite's trend (one call
-- a metric row) took most of a report's server time there (docs/store.md).
ALTER TABLE runs ADD COLUMN started_ms INTEGER;
UPDATE runs SET started_ms = CAST(round((julianday(started_at) - 2440587.5) * 86400000.0) AS INTEGER);
CREATE INDEX runs_by_suite_start ON runs (suite_ref, started_ms, id);
