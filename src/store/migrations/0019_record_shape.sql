-- What drift on traffic reads of each sampled record, kept even when its text is not
-- (`store_text: none`): the length in characters of its input and output (after redaction)
-- and the language of its input (`whatlang`; `unknown` when too short to tell). Computed at
-- ingest for sampled records only; NULL for records stored before this version and for
-- records kept only for their text.
ALTER TABLE traffic_records ADD COLUMN input_chars INTEGER;
ALTER TABLE traffic_records ADD COLUMN output_chars INTEGER;
ALTER TABLE traffic_records ADD COLUMN language TEXT;
