-- The length in bytes of each answer as the provider gave it, and whether the stored output
-- is only its first `max_output_bytes` (a longer answer, cut and marked). NULL/0 for results
-- stored before this version (their lengths were not kept).
ALTER TABLE results ADD COLUMN output_bytes INTEGER;
ALTER TABLE results ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;
