//! `schedule emit kubernetes|github-actions` for an SQLite and a PostgreSQL store, and the
//! released binary the workflow installs: `.github/workflows/release.yml`'s Package step and
//! the emitted install step, run against each other over loopback.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use yaml_rust2::{Yaml, YamlLoader};

use crate::support::{Project, code, serve_on_loopback, stderr, stdout};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const RELEASES: &str = "https://github.com/acme/evalwatch";

/// A project whose provider reads `OPENAI_API_KEY`, and whose `store:` is `store` if given.
fn project(store: Option<&str>) -> Project {
    let p = Project::new();
    let store = store.map_or(String::new(), |s| format!("store: {s}\n"));
    p.write(
        "evalwatch.yaml",
        &format!(
            "{store}providers:\n  - id: gpt\n    type: openai\n    model: gpt-4o-mini\n    api_key_env: OPENAI_API_KEY\n"
        ),
    );
    p.write(
        "suites/a.yaml",
        "suite: a\nschedule: \"0 6 * * *\"\nproviders:\n  - id: e\n    type: echo\nprompt: \"{{ q }}\"\ncases:\n  - {id: c1, vars: {q: hello}, expected: hello}\n",
    );
    p
}

/// Emit `target` (with `--release-url` for github-actions) and parse the one YAML document.
fn emit(p: &Project, target: &str, env: &[(&str, &str)]) -> (String, Yaml) {
    let mut cmd = p.cmd();
    cmd.args(["schedule", "emit", target]);
    if target == "github-actions" {
        cmd.args(["--release-url", RELEASES]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run evalwatch");
    assert_eq!(code(&out), 0, "{target}: {}", stderr(&out));
    let text = stdout(&out);
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(docs.len(), 1, "{text}");
    (text, docs.remove(0))
}

fn steps(workflow: &Yaml) -> &[Yaml] {
    workflow["jobs"]["evals"]["steps"]
        .as_vec()
        .expect("jobs.evals.steps")
}

fn uses(workflow: &Yaml) -> Vec<&str> {
    steps(workflow)
        .iter()
        .filter_map(|s| s["uses"].as_str())
        .collect()
}

/// The step whose name starts with `name`.
fn step<'a>(workflow: &'a Yaml, name: &str) -> &'a Yaml {
    steps(workflow)
        .iter()
        .find(|s| s["name"].as_str().is_some_and(|n| n.starts_with(name)))
        .unwrap_or_else(|| panic!("no step `{name}`"))
}

fn container(cronjob: &Yaml) -> &Yaml {
    &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
}

/// The container's `env` entry `name`.
fn env_entry<'a>(cronjob: &'a Yaml, name: &str) -> &'a Yaml {
    container(cronjob)["env"]
        .as_vec()
        .expect("env")
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no env {name}"))
}

#[test]
fn an_sqlite_store_rides_in_the_actions_cache_and_on_a_volume() {
    let p = project(None);
    let (text, wf) = emit(&p, "github-actions", &[]);
    let used = uses(&wf);
    assert!(used.contains(&"actions/cache/restore@v4"), "{text}");
    assert!(used.contains(&"actions/cache/save@v4"), "{text}");
    assert_eq!(
        step(&wf, "Restore the history")["with"]["path"].as_str(),
        Some("evalwatch.db")
    );
    let run = step(&wf, "Run the suites");
    assert_eq!(run["env"]["EVALWATCH_DB"].as_str(), Some("evalwatch.db"));
    assert_eq!(
        run["env"]["OPENAI_API_KEY"].as_str(),
        Some("${{ secrets.OPENAI_API_KEY }}")
    );
    assert!(run["env"]["PGPASSWORD"].is_badvalue(), "{text}");
    // The released binary, not a compile on every tick.
    assert!(!text.contains("cargo install"), "{text}");
    let install = step(&wf, "Install evalwatch");
    assert_eq!(install["env"]["EVALWATCH_VERSION"].as_str(), Some(VERSION));
    assert_eq!(
        install["env"]["EVALWATCH_RELEASES"].as_str(),
        Some(&*format!("{RELEASES}/releases/download"))
    );

    let (text, job) = emit(&p, "kubernetes", &[]);
    assert_eq!(
        env_entry(&job, "EVALWATCH_DB")["value"].as_str(),
        Some("/data/evalwatch.db")
    );
    assert_eq!(
        job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"][0]
            ["persistentVolumeClaim"]["claimName"]
            .as_str(),
        Some("evalwatch-history"),
        "{text}"
    );
    assert_eq!(job["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
    assert!(
        text.contains(&format!(
            "evalwatch-{VERSION}-x86_64-unknown-linux-gnu.tar.gz"
        )),
        "the image comment names the released binary:\n{text}"
    );
}

/// The secret-backed env entry `name` reads key `name` of the Secret.
fn assert_from_secret(job: &Yaml, name: &str) {
    let r = &env_entry(job, name)["valueFrom"]["secretKeyRef"];
    assert_eq!(r["name"].as_str(), Some("evalwatch-secrets"), "{name}");
    assert_eq!(r["key"].as_str(), Some(name));
}

#[test]
fn every_variable_the_runs_need_comes_from_a_secret_sinks_and_expanded_ones_too() {
    let p = project(None);
    p.write(
        "evalwatch.yaml",
        "providers:\n  - id: gpt\n    type: openai\n    model: gpt-4o-mini\n    api_key_env: OPENAI_API_KEY\nsinks:\n  - {id: hook, type: webhook, url_env: HOOK_URL, secret_env: HOOK_SECRET, headers: {X-Team: \"${TEAM_TOKEN}\"}}\n",
    );
    p.write(
        "suites/b.yaml",
        "suite: b\nschedule: \"0 7 * * *\"\nproviders:\n  - id: e\n    type: echo\nprompt: \"{{ q }} ${SUITE_TOKEN} ${OPTIONAL_VAR:-x}\"\ncases:\n  - {id: c1, vars: {q: hello}, expected: hello}\n",
    );
    let env = [
        ("HOOK_URL", "http://127.0.0.1:9/h"),
        ("HOOK_SECRET", "s"),
        ("TEAM_TOKEN", "t"),
        ("SUITE_TOKEN", "u"),
    ];
    let needed = [
        "HOOK_SECRET",
        "HOOK_URL",
        "OPENAI_API_KEY",
        "SUITE_TOKEN",
        "TEAM_TOKEN",
    ];
    let (text, wf) = emit(&p, "github-actions", &env);
    let run = &step(&wf, "Run the suites")["env"];
    for name in needed {
        assert_eq!(
            run[name].as_str(),
            Some(&*format!("${{{{ secrets.{name} }}}}")),
            "{text}"
        );
    }
    // A variable with a default runs without its secret.
    assert!(run["OPTIONAL_VAR"].is_badvalue(), "{text}");
    let (text, job) = emit(&p, "kubernetes", &env);
    for name in needed {
        assert_from_secret(&job, name);
    }
    assert!(!text.contains("OPTIONAL_VAR"), "{text}");
}

#[test]
fn a_postgres_store_comes_from_secrets_with_no_cache_and_no_volume() {
    let url = "postgres://evals@db.internal:5432/evals";
    let from_config = project(Some(url));
    let from_env = project(None);
    // The command's password must not reach the files, whatever it is.
    let pw = ("PGPASSWORD", "s3cret-Pw-9");
    for (p, env) in [
        (&from_config, vec![pw]),
        (&from_env, vec![pw, ("EVALWATCH_DB", url)]),
    ] {
        let (text, wf) = emit(p, "github-actions", &env);
        assert!(!text.contains(pw.1), "{text}");
        let used = uses(&wf);
        assert!(
            !used.iter().any(|u| u.starts_with("actions/cache/")),
            "no history cache: {used:?}"
        );
        assert!(!text.contains("evalwatch.db"), "{text}");
        let run = step(&wf, "Run the suites");
        assert_eq!(
            run["env"]["EVALWATCH_DB"].as_str(),
            Some("${{ secrets.EVALWATCH_DB }}")
        );
        assert_eq!(
            run["env"]["PGPASSWORD"].as_str(),
            Some("${{ secrets.EVALWATCH_PGPASSWORD }}")
        );
        assert!(
            text.contains("gh secret set EVALWATCH_PGPASSWORD"),
            "{text}"
        );
        // A runner across a network is told how to have the URL verify the server.
        assert!(
            text.contains("?sslmode=verify-full&sslrootcert=system"),
            "{text}"
        );
        // Still the released binary.
        assert!(step(&wf, "Install evalwatch")["run"].as_str().is_some());

        let (text, job) = emit(p, "kubernetes", &env);
        assert!(!text.contains(pw.1), "{text}");
        let spec = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert!(spec["volumes"].is_badvalue(), "no volume:\n{text}");
        assert!(container(&job)["volumeMounts"].is_badvalue(), "{text}");
        assert_from_secret(&job, "EVALWATCH_DB");
        assert_from_secret(&job, "PGPASSWORD");
        assert_from_secret(&job, "OPENAI_API_KEY");
        assert_eq!(job["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
        assert!(
            text.contains(&format!(
                "#   kubectl create secret generic evalwatch-secrets \\\n#     --from-literal=EVALWATCH_DB={url} \\"
            )),
            "{text}"
        );
    }
}

#[test]
fn a_postgres_url_with_its_password_is_refused() {
    for url in [
        "postgres://evals:s3cret-Pw-9@db.internal/evals",
        "postgresql://evals@db.internal/evals?password=s3cret-Pw-9",
    ] {
        let p = project(Some(url));
        for target in ["github-actions", "kubernetes"] {
            let out = p.run(&[
                "schedule",
                "emit",
                target,
                "--release-url",
                RELEASES,
                "--out",
                "deploy",
            ]);
            assert_eq!(code(&out), 2, "{target} {url}: {}", stdout(&out));
            let err = stderr(&out);
            assert!(
                err.contains("carries its password") && err.contains("PGPASSWORD"),
                "{err}"
            );
            assert!(err.contains("(`store:` of evalwatch.yaml)"), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
            assert!(!p.path().join("deploy").exists(), "nothing written");
        }
    }
    // A URL that is not one is located as the store's problem.
    let p = project(Some("postgres://db.internal/evals"));
    let out = p.run(&["schedule", "emit", "kubernetes"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("names no user"), "{}", stderr(&out));
    let out = project(None)
        .cmd()
        .args(["schedule", "emit", "kubernetes"])
        .env("EVALWATCH_DB", "postgres://evals:s3cret@db/evals")
        .output()
        .expect("run");
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("(--db / EVALWATCH_DB)"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
}

#[test]
fn the_release_url_is_checked_and_needed_by_github_actions() {
    let p = project(None);
    if env!("CARGO_PKG_REPOSITORY").is_empty() {
        let out = p.run(&["schedule", "emit", "github-actions"]);
        assert_eq!(code(&out), 2);
        assert!(stderr(&out).contains("--release-url"), "{}", stderr(&out));
        // The kubernetes file does without: its comment names the release by version.
        let out = p.run(&["schedule", "emit", "kubernetes"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(stdout(&out).contains(&format!("evalwatch's release v{VERSION}")));
    }
    for bad in ["http://github.com/acme/evalwatch", "https://github.com/a b"] {
        let out = p.run(&["schedule", "emit", "github-actions", "--release-url", bad]);
        assert_eq!(code(&out), 2, "{bad}");
        assert!(
            stderr(&out).contains("read --release-url"),
            "{}",
            stderr(&out)
        );
    }
    let out = p.run(&["schedule", "emit", "cron", "--release-url", RELEASES]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("systemd and cron"),
        "{}",
        stderr(&out)
    );
    let out = p.run(&["schedule", "emit", "kubernetes", "--release-url", RELEASES]);
    assert!(
        stdout(&out).contains(&format!("{RELEASES}/releases/tag/v{VERSION}")),
        "{}",
        stdout(&out)
    );
}

fn bash(script: &str, dir: &Path, env: &[(&str, String)]) -> std::process::Output {
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-c", script]).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("bash")
}

fn release_workflow() -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows/release.yml");
    let text = std::fs::read_to_string(&path).expect("read release.yml");
    YamlLoader::load_from_str(&text)
        .expect("release.yml parses")
        .remove(0)
}

fn release_step<'a>(release: &'a Yaml, name: &str) -> &'a str {
    release["jobs"]["build"]["steps"]
        .as_vec()
        .expect("build steps")
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .and_then(|s| s["run"].as_str())
        .unwrap_or_else(|| panic!("release.yml has no `{name}` step"))
}

/// Serve the files of `dir` as `/acme/evalwatch/releases/download/TAG/FILE`, counting hits.
fn serve_releases(dir: &Path) -> (String, Arc<AtomicUsize>) {
    use axum::extract::Path as UrlPath;
    use axum::http::StatusCode;
    let hits = Arc::new(AtomicUsize::new(0));
    let (dir, counter) = (dir.to_owned(), hits.clone());
    let app = axum::Router::new().route(
        "/acme/evalwatch/releases/download/{tag}/{file}",
        axum::routing::get(move |UrlPath((tag, file)): UrlPath<(String, String)>| {
            counter.fetch_add(1, Ordering::SeqCst);
            let path = dir.join(tag).join(file);
            async move { std::fs::read(path).map_err(|_| StatusCode::NOT_FOUND) }
        }),
    );
    (
        format!("http://{}/acme/evalwatch", serve_on_loopback(app)),
        hits,
    )
}

#[test]
fn the_release_workflow_builds_what_the_emitted_workflow_installs() {
    let release = release_workflow();
    assert_eq!(release["on"]["push"]["tags"][0].as_str(), Some("v*"));
    let targets: Vec<&str> = release["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_vec()
        .expect("matrix")
        .iter()
        .filter_map(|t| t["target"].as_str())
        .collect();
    assert_eq!(
        targets,
        ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
    );
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    assert!(targets.contains(&host.as_str()), "no release for {host}");

    // The tag must be Cargo.toml's version.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let check = release_step(&release, "Check the tag against Cargo.toml");
    let tag = format!("v{VERSION}");
    let ok = bash(check, root, &[("GITHUB_REF_NAME", tag.clone())]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let other = bash(check, root, &[("GITHUB_REF_NAME", "v99.0.0".into())]);
    assert!(!other.status.success());
    assert!(
        stderr(&other).contains("does not match"),
        "{}",
        stderr(&other)
    );

    // Package a stand-in binary as the release job does.
    let work = tempfile::tempdir().expect("tempdir");
    let built = work.path().join(format!("target/{host}/release"));
    std::fs::create_dir_all(&built).expect("mkdir");
    std::fs::write(
        built.join("evalwatch"),
        "#!/bin/sh\necho \"released evalwatch $*\"\n",
    )
    .expect("write");
    bash(
        "chmod +x target/*/release/evalwatch && touch README.md CHANGELOG.md",
        work.path(),
        &[],
    );
    let package = release_step(&release, "Package");
    let out = bash(
        package,
        work.path(),
        &[("GITHUB_REF_NAME", tag.clone()), ("TARGET", host.clone())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let served = work.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    std::fs::rename(work.path().join("dist"), served.join(&tag)).expect("rename");
    let (releases, hits) = serve_releases(&served);

    // The emitted workflow's install step fetches, checks and unpacks it.
    let p = project(None);
    let out = p.run(&[
        "schedule",
        "emit",
        "github-actions",
        "--release-url",
        &releases,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let wf = YamlLoader::load_from_str(&stdout(&out))
        .expect("yaml")
        .remove(0);
    let install = step(&wf, "Install evalwatch");
    let script = install["run"].as_str().expect("run");
    let home = tempfile::tempdir().expect("tempdir");
    let gh_path = home.path().join("github_path");
    let mut env: Vec<(&str, String)> = vec![
        ("HOME", home.path().display().to_string()),
        ("GITHUB_PATH", gh_path.display().to_string()),
    ];
    for (k, v) in install["env"].as_hash().expect("env") {
        env.push((k.as_str().expect("key"), v.as_str().expect("value").into()));
    }
    let installed = bash(script, home.path(), &env);
    assert!(installed.status.success(), "{}", stderr(&installed));
    assert_eq!(hits.load(Ordering::SeqCst), 2, "the archive and its sha256");
    let on_path = std::fs::read_to_string(&gh_path).expect("GITHUB_PATH");
    let dir = Path::new(on_path.trim());
    let ran = std::process::Command::new(dir.join("evalwatch"))
        .arg("--version")
        .output()
        .expect("run the installed binary");
    assert_eq!(stdout(&ran), "released evalwatch --version\n");

    // The next tick finds the download in the cached folder and checks it again.
    let again = bash(script, home.path(), &env);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(hits.load(Ordering::SeqCst), 2, "no second download");
    let archive = home.path().join(format!(
        ".evalwatch/{VERSION}/evalwatch-{VERSION}-{host}.tar.gz"
    ));
    std::fs::write(&archive, b"not the release").expect("tamper");
    let bad = bash(script, home.path(), &env);
    assert!(
        !bad.status.success(),
        "a corrupt archive must fail the step"
    );
    assert!(stdout(&bad).contains("FAILED"), "{}", stdout(&bad));
    assert!(!archive.exists(), "the corrupt download is dropped");
}
