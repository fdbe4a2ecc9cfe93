-- See 0023_run_order.sql. PostgreSQL's own time parsing here: `julianday` is defined after
-- the migrations (a fresh store has none yet). Text that is not a time is left NULL, as
-- `julianday` leaves it, one run at a time (a failed cast would fail the whole statement). A
-- fraction of a millisecond is cut off (`floor`), as SQLite's `julianday` cuts it.
ALTER TABLE runs ADD COLUMN started_ms BIGINT;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT id, started_at FROM runs LOOP
        BEGIN
            UPDATE runs
               SET started_ms = floor(extract(epoch FROM r.started_at::timestamptz) * 1000)
             WHERE id = r.id;
        EXCEPTION WHEN others THEN
            NULL;
        END;
    END LOOP;
END
$$;
CREATE INDEX runs_by_suite_start ON runs (suite_ref, started_ms, id);
