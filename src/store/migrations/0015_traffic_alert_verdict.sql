-- What each traffic alert rule made of the last window it judged (`quiet`, `fires`,
-- `not judged: 15m window holds 1 request, needs 20 (min_requests)`, `no data`), so that
-- the traffic page and `alerts list` show a rule that is not judging instead of a silent gap.
ALTER TABLE traffic_alert_cursor ADD COLUMN last_verdict TEXT;
