//! Alerts: baselines, rules, statistics, sinks. Pure where it can be; sinks do I/O.
