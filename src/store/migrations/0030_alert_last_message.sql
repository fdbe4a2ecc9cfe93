-- The message of the last run that saw an open alert still firing (NULL until one did), beside
-- its latest `value` and `baseline_value`: `show RUN --format json` gives each run's alerts as
-- `run --format json` gave them. `message` stays the one the alert opened with.
ALTER TABLE alerts ADD COLUMN last_message TEXT;
