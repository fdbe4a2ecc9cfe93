-- Nothing to do on SQLite: see 0022_results_refs.pg.sql. The run's writer already writes
-- results without checking their references (its connection has `foreign_keys` off,
-- docs/performance.md); every other connection checks them.
SELECT 1;
