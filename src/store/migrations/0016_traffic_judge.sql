-- Judge monitors on traffic (docs/traffic.md): a sampled record whose monitor needs a judge
-- is stored `unscorable` with its judged assertions marked pending, and judged after its
-- batch commits. This index finds the records still waiting without reading the sample.
CREATE INDEX traffic_records_unscorable ON traffic_records (source, time_ms)
    WHERE status = 'unscorable';
