-- Where each trace's vote is counted: the minute bucket (its minute and label set) that
-- holds it. A trace id in records of several hours puts a vote in the record nearest the
-- vote's time, so a later vote may go to another record's bucket than the vote it replaces:
-- the earlier one is taken out of the bucket it was counted in, read here (audit D1: it was
-- taken out of the new vote's bucket, leaving two votes counted and one stored). NULL for
-- votes counted before this migration: their bucket is found again by their time.
ALTER TABLE traffic_votes ADD COLUMN start INTEGER;    -- the record's minute (unix seconds, UTC)
ALTER TABLE traffic_votes ADD COLUMN labels INTEGER;   -- traffic_label_sets.id
