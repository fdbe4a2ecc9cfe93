-- The settings of the suite each run ran with (providers by id and field, system, prompt,
-- defaults, repeat, gates, alert rules): one JSON object per run, mapping a dotted setting
-- name to {"shown": short text, "digest": short hash}, so that the trend page can name what
-- changed between two runs. Runs stored before this version have no row.
CREATE TABLE run_settings (
    run_ref  INTEGER PRIMARY KEY REFERENCES runs (id),
    settings TEXT NOT NULL
);
