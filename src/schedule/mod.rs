//! Scheduling: cron parsing and next-fire computation (pure), and the daemon loop.
