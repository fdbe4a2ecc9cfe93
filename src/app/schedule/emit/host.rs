//! The files for one host: a systemd service and timer (and the daemon as a service), a
//! crontab line. Both run this binary in the project folder.

use std::fmt::Write as _;

use super::{Emit, quote};

impl Emit {
    /// A oneshot service and its timer, and the daemon as a service (enable one of the two).
    pub(super) fn systemd(&self) -> Vec<(&'static str, String)> {
        let Self {
            every,
            calendar,
            exe,
            path_args,
            secrets,
            root: root_s,
            ..
        } = self;
        let env_lines = if secrets.is_empty() {
            "# EnvironmentFile=/etc/evalwatch.env\n".to_owned()
        } else {
            format!(
                "# Secrets ({}) as KEY=value lines, readable by root only:\nEnvironmentFile=/etc/evalwatch.env\n",
                secrets.join(", ")
            )
        };
        vec![
            (
                "evalwatch-schedule.service",
                format!(
                    "[Unit]\nDescription=evalwatch: run the eval suites that are due\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\nWorkingDirectory={root_s}\nExecStart={}\n{env_lines}# SIGTERM keeps a run's results and marks it incomplete\nTimeoutStopSec=60\n",
                    self.once_cmd(exe)
                ),
            ),
            (
                "evalwatch-schedule.timer",
                format!(
                    "[Unit]\nDescription=evalwatch: look for due suites ({every})\n\n[Timer]\nOnCalendar={calendar}\n# Run once at boot when a tick was missed while the machine was off\nPersistent=true\nUnit=evalwatch-schedule.service\n\n[Install]\nWantedBy=timers.target\n"
                ),
            ),
            (
                "evalwatch-daemon.service",
                format!(
                    "# Alternative to the timer: evalwatch's own long-running scheduler.\n# Enable this OR the timer, not both (both would be safe, a suite never overlaps itself).\n[Unit]\nDescription=evalwatch scheduler daemon\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=simple\nWorkingDirectory={root_s}\nExecStart={} schedule{}\n{env_lines}Restart=on-failure\nRestartSec=30\nKillSignal=SIGTERM\nTimeoutStopSec=60\n\n[Install]\nWantedBy=multi-user.target\n",
                    quote(exe),
                    path_args.iter().fold(String::new(), |mut acc, p| {
                        let _ = write!(acc, " {}", quote(p));
                        acc
                    })
                ),
            ),
        ]
    }

    /// A crontab line.
    pub(super) fn cron(&self) -> Vec<(&'static str, String)> {
        let Self {
            every,
            cron,
            exe,
            secrets,
            root: root_s,
            ..
        } = self;
        let envs = if secrets.is_empty() {
            String::new()
        } else {
            format!(
                "# The suites need {}: set them above this line (KEY=value) or source a file in the command.\n",
                secrets.join(", ")
            )
        };
        vec![(
            "evalwatch.crontab",
            format!(
                "# evalwatch: every {every}, run the suites that are due (each suite's own cron and timezone decide).\n# Install: (crontab -l 2>/dev/null; cat evalwatch.crontab) | crontab -\n{envs}{cron} cd {} && {} >> {} 2>&1\n",
                quote(root_s),
                self.once_cmd(exe),
                quote(&format!("{root_s}/evalwatch-schedule.log"))
            ),
        )]
    }
}
