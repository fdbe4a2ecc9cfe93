-- Scheduler leases and fire records (filled by the scheduler work).
SELECT 1;
