-- See 0027_runs_without_a_time_first.sql. The index of 0023 in the order the queries ask
-- for: a start that is not a time (NULL) first, so that ascending and descending scans of it
-- give `NULLS FIRST` and `DESC NULLS LAST` without a sort.
DROP INDEX runs_by_suite_start;
CREATE INDEX runs_by_suite_start ON runs (suite_ref, started_ms NULLS FIRST, id);
