-- The case filters a run was limited to (`run --case c1 --tag smoke` is stored as
-- `--case c1 --tag smoke`); NULL for a run of the whole suite, as every run stored before
-- this version is taken to be. A filtered run is a spot check: the queries that choose a
-- baseline (`previous`, trailing windows), the latest complete run (`missed_run`,
-- `alerts check`) and the trend points leave it out.
ALTER TABLE runs ADD COLUMN case_filter TEXT;
