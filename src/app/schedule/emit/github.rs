//! A scheduled GitHub Actions workflow. It installs the released binary of this version
//! (checked against its sha256) instead of compiling on every tick, and carries an SQLite
//! history in the Actions cache, or reaches a PostgreSQL store by a URL from a repository
//! secret.

use std::fmt::Write as _;

use super::release::{TARGETS, VERSION, artefact};
use super::{Emit, History, quote};

impl Emit {
    /// `.github/workflows/evalwatch.yml`.
    pub(super) fn github_actions(&self) -> anyhow::Result<Vec<(&'static str, String)>> {
        let Self {
            every,
            cron,
            secrets,
            history,
            ..
        } = self;
        let install = install_steps(self.releases("github-actions")?);
        let mut env = String::new();
        let (store_note, restore, save) = match history {
            History::File { rel, .. } => {
                let _ = writeln!(env, "          EVALWATCH_DB: {rel}");
                (
                    "# The history is carried from run to run in the Actions cache.\n".to_owned(),
                    format!(
                        "      - name: Restore the history\n        uses: actions/cache/restore@v4\n        with:\n          path: {rel}\n          key: evalwatch-db-${{{{ github.run_id }}}}\n          restore-keys: evalwatch-db-\n"
                    ),
                    format!(
                        "      - name: Save the history\n        if: always()\n        uses: actions/cache/save@v4\n        with:\n          path: {rel}\n          key: evalwatch-db-${{{{ github.run_id }}}}\n"
                    ),
                )
            }
            History::Postgres { url } => {
                env.push_str("          EVALWATCH_DB: ${{ secrets.EVALWATCH_DB }}\n");
                env.push_str("          PGPASSWORD: ${{ secrets.EVALWATCH_PGPASSWORD }}\n");
                (
                    format!(
                        "# The history lives in the PostgreSQL store, so no cache. Set two repository secrets:\n# EVALWATCH_DB, the store's URL without a password, and EVALWATCH_PGPASSWORD, its password\n# (leave it unset for a password-less server):\n#   gh secret set EVALWATCH_DB --body {}\n#   gh secret set EVALWATCH_PGPASSWORD\n# The runner must reach the server. Across a network, have the URL verify it:\n# ?sslmode=verify-full&sslrootcert=system for a certificate a public CA signed, else\n# sslrootcert=PATH to the CA file (TLS: evalwatch's docs/store.md).\n",
                        quote(url)
                    ),
                    String::new(),
                    String::new(),
                )
            }
        };
        for s in secrets {
            let _ = writeln!(env, "          {s}: ${{{{ secrets.{s} }}}}");
        }
        Ok(vec![(
            "evalwatch.yml",
            format!(
                "# evalwatch: every {every}, run the suites that are due. Save as .github/workflows/evalwatch.yml.\n# GitHub runs scheduled workflows in UTC and sometimes late: catch-up runs a late window once.\n{store_note}name: evalwatch\non:\n  schedule:\n    - cron: \"{cron}\"\n  workflow_dispatch: {{}}\nconcurrency:\n  group: evalwatch\n  cancel-in-progress: false\njobs:\n  evals:\n    runs-on: ubuntu-latest\n    timeout-minutes: 120\n    steps:\n      - uses: actions/checkout@v4\n{restore}{install}      - name: Run the suites that are due\n        run: {}\n        env:\n{env}{save}      - name: Keep the reports\n        if: always()\n        uses: actions/upload-artifact@v4\n        with:\n          name: evalwatch-reports\n          path: reports/\n          if-no-files-found: ignore\n",
                self.once_cmd("evalwatch")
            ),
        )])
    }
}

/// Download this version's release archive for the runner's machine from `releases`
/// (`https://github.com/OWNER/evalwatch`), check it against its `.sha256`, unpack it and put
/// it on PATH; the download is kept in the Actions cache, keyed by version.
fn install_steps(releases: &str) -> String {
    let arms = TARGETS
        .iter()
        .fold(String::new(), |mut acc, (machine, target)| {
            let _ = write!(acc, "\n            {machine}) target={target} ;;");
            acc
        });
    let name = artefact("$EVALWATCH_VERSION", "$target");
    let url = serde_json::Value::from(format!("{releases}/releases/download")).to_string();
    format!(
        "      - name: Keep the evalwatch binary between runs\n        uses: actions/cache@v4\n        with:\n          path: ~/.evalwatch\n          key: evalwatch-bin-{VERSION}-${{{{ runner.os }}}}-${{{{ runner.arch }}}}\n      - name: Install evalwatch {VERSION} (a release binary, checked against its sha256)\n        env:\n          EVALWATCH_VERSION: \"{VERSION}\"\n          EVALWATCH_RELEASES: {url}\n        run: |\n          set -euo pipefail\n          case \"$(uname -m)\" in{arms}\n            *) echo \"no evalwatch release for $(uname -m)\" >&2; exit 1 ;;\n          esac\n          name=\"{name}\"\n          dir=\"$HOME/.evalwatch/$EVALWATCH_VERSION\"\n          mkdir -p \"$dir\" && cd \"$dir\"\n          if [ ! -f \"$name.tar.gz\" ]; then\n            curl -fsSL --retry 3 -o \"$name.tar.gz.sha256\" \"$EVALWATCH_RELEASES/v$EVALWATCH_VERSION/$name.tar.gz.sha256\"\n            curl -fsSL --retry 3 -o \"$name.tar.gz\" \"$EVALWATCH_RELEASES/v$EVALWATCH_VERSION/$name.tar.gz\"\n          fi\n          sha256sum -c \"$name.tar.gz.sha256\" || {{ rm -f \"$name.tar.gz\" \"$name.tar.gz.sha256\"; exit 1; }}\n          tar -xzf \"$name.tar.gz\"\n          echo \"$dir/$name\" >> \"$GITHUB_PATH\"\n"
    )
}
