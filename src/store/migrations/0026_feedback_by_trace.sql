-- A trace's latest feedback found by its trace, not by a walk through the source's feedback.
-- Every "latest vote of this trace" query (`ORDER BY time_ms DESC, id DESC LIMIT 1` under
-- `source = ? AND trace_id = ?`) was planned by SQLite on `traffic_feedback_time`, which gives
-- the order without a sort: it then read the source's feedback newest first until it met the
-- trace, so that importing N votes read ~N^2/2 rows (20,000 votes: 17 s, docs/performance.md
-- "Session 21"). This index gives both the trace and the order.
CREATE INDEX traffic_feedback_trace ON traffic_feedback (source, trace_id, time_ms, id);
