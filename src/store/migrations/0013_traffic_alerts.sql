-- Traffic alert rules walk a source's closed windows in order: how far each rule has
-- judged them (the end of the last window judged, unix seconds), so that every window is
-- judged once, whether `ingest`, `collect` or `alerts check` gets there first. Alert state
-- itself is the `alerts` table (suite = `traffic:SOURCE`, provider = the split label).
CREATE TABLE traffic_alert_cursor (
    source          TEXT    NOT NULL,
    rule            TEXT    NOT NULL,
    evaluated_until INTEGER NOT NULL,
    PRIMARY KEY (source, rule)
) WITHOUT ROWID;
