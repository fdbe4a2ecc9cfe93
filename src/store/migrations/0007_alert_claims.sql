-- Delivery claims: a sender marks a pending delivery as its own (claimed_by, until
-- claimed_until) in the store before sending it, so that two processes flushing the queue
-- at once (two `alerts check`, a daemon and a `run`) never send a notice twice. A claim
-- whose sender died expires at claimed_until and the delivery is retried.
-- failed_rounds and next_attempt_at: the backoff between delivery rounds.
ALTER TABLE alert_deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE alert_deliveries ADD COLUMN claimed_until TEXT;
ALTER TABLE alert_deliveries ADD COLUMN failed_rounds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alert_deliveries ADD COLUMN next_attempt_at TEXT;

-- The cases the latest alert evaluation of a suite counted as known-flaky (and so could not
-- trigger a pass-rate alert alone), for the trend page's list of flaky cases.
CREATE TABLE alert_known_flaky (
    suite    TEXT NOT NULL,
    provider TEXT NOT NULL,
    case_id  TEXT NOT NULL,
    run_id   TEXT NOT NULL,
    PRIMARY KEY (suite, provider, case_id)
);
