-- Alert state and the delivery queue (filled by the alerts work).
SELECT 1;
