//! A Kubernetes `CronJob`: the history on a volume (SQLite) or in the PostgreSQL store whose
//! URL and password come from a Secret.

use std::fmt::Write as _;

use super::release::{TARGETS, VERSION, artefact};
use super::{Emit, History, quote};

/// The Secret holding the providers' keys, and a PostgreSQL store's URL and password.
const SECRET: &str = "evalwatch-secrets";

impl Emit {
    /// A `CronJob` running `schedule --once` on the tick.
    pub(super) fn kubernetes(&self) -> Vec<(&'static str, String)> {
        let Self {
            every,
            cron,
            path_args,
            secrets,
            history,
            ..
        } = self;
        let mut env = String::new();
        let (store_note, volumes) = match history {
            History::File { db, .. } => {
                let _ = write!(
                    env,
                    "                - name: EVALWATCH_DB\n                  value: /data/{}\n",
                    db.file_name().map_or_else(
                        || "evalwatch.db".into(),
                        |n| n.to_string_lossy().into_owned()
                    )
                );
                (
                    "# The history lives on a volume so that runs build on it.\n".to_owned(),
                    "              volumeMounts:\n                - name: history\n                  mountPath: /data\n          volumes:\n            - name: history\n              persistentVolumeClaim:\n                claimName: evalwatch-history\n",
                )
            }
            History::Postgres { url } => {
                secret_ref(&mut env, "EVALWATCH_DB", false);
                secret_ref(&mut env, "PGPASSWORD", true);
                let keys = secrets.iter().fold(String::new(), |mut acc, s| {
                    let _ = write!(acc, " \\\n#     --from-literal={s}=\"${s}\"");
                    acc
                });
                (
                    format!(
                        "# The history lives in the PostgreSQL store, so no volume. Its URL (EVALWATCH_DB, without\n# a password) and password (PGPASSWORD; leave it out for a password-less server) come from\n# the Secret {SECRET}, with the providers' keys:\n#   kubectl create secret generic {SECRET} \\\n#     --from-literal=EVALWATCH_DB={} \\\n#     --from-literal=PGPASSWORD=\"$PGPASSWORD\"{keys}\n# Several CronJobs (other clusters, other hosts) can share the store once the scheduler's\n# leases use the PostgreSQL store (see evalwatch's docs/store.md); until then keep to one.\n",
                        quote(url)
                    ),
                    "",
                )
            }
        };
        for s in secrets {
            secret_ref(&mut env, s, false);
        }
        let args: Vec<String> = ["schedule", "--once"]
            .iter()
            .map(|a| format!("\"{a}\""))
            .chain(
                path_args
                    .iter()
                    .map(|p| serde_json::Value::from(p.as_str()).to_string()),
            )
            .collect();
        let amd64 = artefact(VERSION, TARGETS[0].1);
        let arm64 = artefact(VERSION, TARGETS[1].1);
        let from = self.releases.as_deref().map_or_else(
            || format!("evalwatch's release v{VERSION}"),
            |r| format!("{r}/releases/tag/v{VERSION}"),
        );
        vec![(
            "evalwatch-cronjob.yaml",
            format!(
                "# evalwatch: every {every}, run the suites that are due.\n# The image holds evalwatch and the project (evalwatch.yaml, suites/). Build it with the\n# released binary from {from}:\n# {amd64}.tar.gz (on arm64 nodes\n# {arm64}.tar.gz), unpacked beside a Dockerfile such as:\n#   FROM debian:bookworm-slim\n#   RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*\n#   COPY {amd64}/evalwatch /usr/local/bin/evalwatch\n#   COPY evalwatch.yaml /project/\n#   COPY suites /project/suites\n{store_note}apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: evalwatch-schedule\nspec:\n  schedule: \"{cron}\"\n  concurrencyPolicy: Forbid\n  startingDeadlineSeconds: 300\n  successfulJobsHistoryLimit: 3\n  failedJobsHistoryLimit: 3\n  jobTemplate:\n    spec:\n      backoffLimit: 0\n      template:\n        spec:\n          restartPolicy: Never\n          terminationGracePeriodSeconds: 60\n          containers:\n            - name: evalwatch\n              image: registry.example.com/evalwatch-project:latest\n              workingDir: /project\n              command: [\"evalwatch\"]\n              args: [{}]\n              env:\n{env}{volumes}",
                args.join(", ")
            ),
        )]
    }
}

/// An `env:` entry read from the Secret.
fn secret_ref(env: &mut String, name: &str, optional: bool) {
    let optional = if optional { ", optional: true" } else { "" };
    let _ = write!(
        env,
        "                - name: {name}\n                  valueFrom:\n                    secretKeyRef: {{name: {SECRET}, key: {name}{optional}}}\n"
    );
}
