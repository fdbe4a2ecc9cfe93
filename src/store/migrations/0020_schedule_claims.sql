-- Window claims: of the schedulers sharing a store (daemons and `schedule --once` on many
-- hosts), the one that inserts a window's row handles it (runs it, or records it missed or
-- skipped); the others leave it alone. `done` once its fire record is written; a claim of an
-- interrupted run is deleted (the window runs again). A claim not done whose holder died is
-- taken over once it expired and the suite has no live lease. Times as the store writes
-- them (RFC 3339, UTC, milliseconds).
CREATE TABLE schedule_claims (
    suite         TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    token         TEXT NOT NULL,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    claimed_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    done          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (suite, scheduled_for)
);
