//! Human review end to end: `review sample` writes a sheet, headless Chromium driven by
//! chromedriver grades every item by keyboard, a reload keeps the grades (local storage
//! on `file://`), the exported file is imported (twice: idempotent), tampered files are
//! rejected with nothing written, and `review show` / `review stats` see the grades.
//! `review serve` is tested over loopback HTTP.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::{Project, code, json_runs, replay_suite, signal, stderr, stdout};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A project with one run of 8 cases (c0, c3, c6 fail) and `review: {sample: 6, seed: 7}`.
pub(crate) fn graded_project() -> Project {
    graded_in(Project::new()).0
}

/// `graded_project`'s suite and run in `p` (whose store may be PostgreSQL); the run's id.
pub(crate) fn graded_in(p: Project) -> (Project, String) {
    let suite = replay_suite(&p, "rv", 8, 3);
    let mut yaml = std::fs::read_to_string(&suite).expect("read");
    yaml.push_str("review: {sample: 6, seed: 7}\n");
    std::fs::write(&suite, yaml).expect("write");
    let out = p.run(&["run", "--format", "json"]);
    assert_eq!(
        code(&out),
        0,
        "no gate: failed cases do not fail the run: {}",
        stderr(&out)
    );
    let run_id = json_runs(&out)[0]["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    (p, run_id)
}

/// `review sample`: the sheet id and the page.
pub(crate) fn sample(p: &Project, args: &[&str]) -> (String, PathBuf) {
    let mut all = vec!["review", "sample"];
    all.extend_from_slice(args);
    let out = p.run(&all);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("review sheet "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no sheet id in {text}"))
        .to_string();
    let page = p.path().join(format!("reports/review/{id}.html"));
    assert!(page.exists(), "{text}");
    (id, page)
}

/// The JSON a sheet carries.
pub(crate) fn sheet_json(page: &str) -> Value {
    let open = "id=\"evalwatch-sheet\">";
    let start = page.find(open).expect("sheet data") + open.len();
    let end = start + page[start..].find("</script>").expect("end of data");
    serde_json::from_str(&page[start..end]).expect("sheet json")
}

pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver on a free loopback port, once it says it is ready.
pub(crate) fn chromedriver() -> Driver {
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "the review browser test needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("started successfully") => break,
            Some(Ok(_)) => {}
            _ => panic!("chromedriver exited before it was ready"),
        }
    }
    // Keep draining its stdout so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Driver { child, port }
}

pub(crate) async fn browser(driver: &Driver, profile: &Path, downloads: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--no-first-run", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--no-pings",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
            },
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("webdriver session")
}

/// Press keys on the page (real key events to the focused element).
pub(crate) async fn keys(c: &Client, text: &str) {
    let mut seq = KeyActions::new("keyboard".into());
    for ch in text.chars() {
        seq = seq
            .then(KeyAction::Down { value: ch })
            .then(KeyAction::Up { value: ch });
    }
    c.perform_actions(seq).await.expect("keys");
}

pub(crate) async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .expect("element")
        .text()
        .await
        .expect("text")
}

/// Reload the page until `css` reads `want`, at most 20 times a quarter of a second apart;
/// the text of the last try. Chromium hands a page's local-storage writes to its browser
/// process on their own: a reload the moment after the last write can read the storage
/// before that write arrives (the likely cause of two failures under load, where a reload
/// showed none of the grades), and a later one finds it. A write that never arrives still
/// fails the test.
pub(crate) async fn reload_until(c: &Client, css: &str, want: &str) -> String {
    let mut seen = String::new();
    for _ in 0..20 {
        c.refresh().await.expect("reload");
        seen = text_of(c, css).await;
        if seen == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    seen
}

/// The one finished download in `dir`, waiting until Chromium has written it; the path of a
/// copy of it (see below).
pub(crate) fn downloaded(dir: &Path) -> PathBuf {
    for _ in 0..600 {
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        let done: Vec<&PathBuf> = files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
            .collect();
        let partial = files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "crdownload"));
        // Chromium renames its partial file into place: under load a listing can still
        // name a file that is gone a moment later, so the file must also read as JSON.
        // Chromium may also still count a download whose file is whole as in progress, and
        // delete it when the browser is closed: the grades are kept in a copy beside the
        // folder, which is what the test reads.
        if let [one] = done.as_slice()
            && !partial
            && let Ok(text) = std::fs::read_to_string(one)
            && serde_json::from_str::<Value>(&text).is_ok()
        {
            let name = one.file_name().expect("a file name").to_string_lossy();
            let kept = dir.parent().unwrap_or(dir).join(format!("kept-{name}"));
            std::fs::write(&kept, text).expect("keep the grades file");
            return kept;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("Chromium wrote no grades file to {}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheet_is_graded_by_keyboard_in_chromium_and_imported() {
    let p = graded_project();
    let (sheet_id, page) = sample(&p, &[]);
    let html = std::fs::read_to_string(&page).expect("page");
    let data = sheet_json(&html);
    let items = data["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 6, "the suite's review: sample sets n");
    assert_eq!(data["sheet_id"], sheet_id.as_str());
    // The same seed over the same results picks the same ones (closing the first sheet
    // frees its results).
    let ids: Vec<&str> = items
        .iter()
        .filter_map(|i| i["result_id"].as_str())
        .collect();
    for i in &items {
        for key in [
            "result_id",
            "case_id",
            "provider",
            "run_id",
            "stratum",
            "prompt",
            "output",
        ] {
            assert!(i.get(key).is_some(), "{key} missing from {i}");
        }
        assert_eq!(i["expected"], "right");
    }
    let fails = items.iter().filter(|i| i["stratum"] == "fail").count();
    assert_eq!(
        fails, 3,
        "every failure, and passes for the rest: {items:?}"
    );

    let tmp = tempfile::tempdir().expect("tmp");
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("mkdir");
    let driver = chromedriver();
    let c = browser(&driver, &tmp.path().join("profile"), &downloads).await;
    let url = format!("file://{}", page.display());
    c.goto(&url).await.expect("open sheet");
    assert_eq!(text_of(&c, "#progress").await, "0 / 6 graded");
    let reviewer = c.find(Locator::Css("#reviewer")).await.expect("reviewer");
    reviewer.send_keys("Ann Lee").await.expect("type name");
    keys(&c, "\u{e00c}").await; // Escape leaves the field; keys grade again
    // Blind mode hides the automatic verdict until the item is graded.
    assert!(
        text_of(&c, "#auto")
            .await
            .contains("Hidden until you grade")
    );
    // ... and the stratum, which would tell it ("fail", "flip").
    assert_eq!(text_of(&c, "#stratum").await, "sampled");
    // Grade every item: pass the even ones, fail the odd ones, quality 1-5, the first
    // flagged as a hallucination, the second with a note.
    for (i, item) in items.iter().enumerate() {
        let shown = c
            .find(Locator::Css("#item"))
            .await
            .expect("item")
            .attr("data-result-id")
            .await
            .expect("attr");
        assert_eq!(
            shown.as_deref(),
            item["result_id"].as_str(),
            "item {i} is on screen"
        );
        let verdict = if i % 2 == 0 { "p" } else { "f" };
        keys(&c, verdict).await;
        keys(&c, &((i % 5) + 1).to_string()).await;
        if i == 0 {
            keys(&c, "h").await;
            let auto = text_of(&c, "#auto").await;
            assert!(
                !auto.contains("Hidden"),
                "graded: the verdict shows: {auto}"
            );
        }
        if i == 1 {
            keys(&c, "n").await;
            keys(&c, "too vague <b>").await;
            keys(&c, "\u{e00c}").await;
        }
        keys(&c, "j").await;
    }
    assert_eq!(text_of(&c, "#progress").await, "6 / 6 graded");

    // A reload keeps every grade and the reviewer (local storage of the file:// page).
    assert_eq!(
        reload_until(&c, "#progress", "6 / 6 graded").await,
        "6 / 6 graded"
    );
    let name = c
        .find(Locator::Css("#reviewer"))
        .await
        .expect("reviewer")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(name.as_deref(), Some("Ann Lee"));
    keys(&c, "k").await;
    keys(&c, "e").await;
    let file = downloaded(&downloads);
    c.close().await.expect("close browser");
    drop(driver);

    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("grades file")).expect("json");
    assert_eq!(exported["sheet_id"], sheet_id.as_str());
    assert_eq!(exported["reviewer"], "Ann Lee");
    let grades = exported["grades"].as_array().expect("grades");
    assert_eq!(grades.len(), 6);
    assert_eq!(grades[0]["hallucination"], true);
    assert_eq!(grades[1]["note"], "too vague <b>");
    assert_eq!(grades[1]["verdict"], "fail");
    assert_eq!(grades[4]["quality"], 5);

    let file_arg = file.display().to_string();
    let first = p.run(&["review", "import", &file_arg]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert!(
        stdout(&first).contains("6 new, 0 unchanged"),
        "{}",
        stdout(&first)
    );
    assert!(
        stdout(&first).contains("the sheet is closed"),
        "{}",
        stdout(&first)
    );
    let again = p.run(&["review", "import", &file_arg]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(
        stdout(&again).contains("0 new, 6 unchanged"),
        "idempotent: {}",
        stdout(&again)
    );

    // The grades are in history.
    let shown = p.run(&["review", "show", &sheet_id, "--format", "json"]);
    assert_eq!(code(&shown), 0, "{}", stderr(&shown));
    let v: Value = serde_json::from_slice(&shown.stdout).expect("json");
    let stored = v["grades"].as_array().expect("grades");
    assert_eq!(stored.len(), 6);
    for g in stored {
        let i = ids
            .iter()
            .position(|id| g["result_id"] == *id)
            .expect("a sheet item");
        assert_eq!(g["verdict"], if i % 2 == 0 { "pass" } else { "fail" });
        assert_eq!(g["quality"], (i % 5) + 1);
        assert_eq!(g["reviewer"], "Ann Lee");
    }
    let stats = p.run(&["review", "stats", "--format", "json"]);
    let s: Value = serde_json::from_slice(&stats.stdout).expect("stats json");
    assert_eq!(s["grades"], 6);
    assert_eq!(s["agreement"][0]["scope"], "result");
    assert_eq!(s["agreement"][0]["n"], 6);
    let mean = (1..=5).chain([1]).map(f64::from).sum::<f64>() / 6.0;
    let hs = s["human_score"][0]["human_score"]
        .as_f64()
        .expect("human score");
    assert!((hs - mean).abs() < 1e-9, "{s}");
    let text = stdout(&p.run(&["review", "stats"]));
    assert!(text.contains("kappa") && text.contains("Ann Lee"), "{text}");
    // `show` of the graded run carries the human score too.
    let run_id = items[0]["run_id"].as_str().expect("run id");
    let shown = p.run(&["show", run_id, "--format", "json"]);
    assert_eq!(code(&shown), 0, "{}", stderr(&shown));
    let head: Value = serde_json::from_slice(
        shown
            .stdout
            .split(|&b| b == b'\n')
            .next()
            .unwrap_or_default(),
    )
    .or_else(|_| serde_json::from_slice(&shown.stdout))
    .expect("show json");
    let graded: u64 = head["human_scores"]
        .as_array()
        .expect("human_scores")
        .iter()
        .filter_map(|h| h["grades"].as_u64())
        .sum();
    assert!(graded > 0, "{head}");
    let text = stdout(&p.run(&["show", run_id]));
    assert!(text.contains("human review on"), "{text}");
}

/// A grades file for `items` of a sheet, all passed.
pub(crate) fn grades_file(sheet: &Value, items: &[&Value], at: &str, verdict: &str) -> Value {
    json!({
        "sheet_id": sheet["sheet_id"], "reviewer": "Bo", "exported_at": at,
        "sheet_mac": sheet["mac"],
        "grades": items.iter().map(|i| json!({"result_id": i["result_id"], "verdict": verdict,
            "quality": 3, "hallucination": null, "note": ""})).collect::<Vec<_>>(),
    })
}

#[test]
fn tampered_and_unknown_ids_are_rejected_with_nothing_written() {
    let p = graded_project();
    let (a, page_a) = sample(&p, &["--n", "2", "--seed", "1"]);
    let (b, page_b) = sample(&p, &["--n", "2", "--seed", "1"]);
    let sa = sheet_json(&std::fs::read_to_string(page_a).expect("a"));
    let sb = sheet_json(&std::fs::read_to_string(page_b).expect("b"));
    let ia: Vec<&Value> = sa["items"].as_array().expect("items").iter().collect();
    let ib: Vec<&Value> = sb["items"].as_array().expect("items").iter().collect();
    // Never in two open sheets.
    for x in &ia {
        assert!(ib.iter().all(|y| y["result_id"] != x["result_id"]));
    }
    let write = |name: &str, v: &Value| {
        p.write(name, &serde_json::to_string(v).expect("json"))
            .display()
            .to_string()
    };
    let count = |sheet: &str| -> usize {
        let out = p.run(&["review", "show", sheet, "--format", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        v["grades"].as_array().map_or(0, Vec::len)
    };
    // A grade for a result of sheet b, smuggled into a file of sheet a.
    let mut mixed = grades_file(&sa, &ia, "2026-01-01T00:00:00Z", "pass");
    mixed["grades"]
        .as_array_mut()
        .expect("grades")
        .push(json!({"result_id": ib[0]["result_id"], "verdict": "fail"}));
    let out = p.run(&["review", "import", &write("mixed.json", &mixed)]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("not items of this sheet"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&a),
        "names the sheet: {}",
        stderr(&out)
    );
    // A made-up id.
    let mut made_up = grades_file(&sa, &ia, "2026-01-01T00:00:00Z", "pass");
    made_up["grades"][0]["result_id"] = json!("999999999999");
    assert_eq!(
        code(&p.run(&["review", "import", &write("m.json", &made_up)])),
        2
    );
    // A file of sheet a whose MAC is sheet b's: edited.
    let mut forged = grades_file(&sa, &ia, "2026-01-01T00:00:00Z", "pass");
    forged["sheet_mac"] = sb["mac"].clone();
    let out = p.run(&["review", "import", &write("f.json", &forged)]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("sheet_mac"), "{}", stderr(&out));
    // A sheet that does not exist.
    let mut unknown = grades_file(&sa, &ia, "2026-01-01T00:00:00Z", "pass");
    unknown["sheet_id"] = json!("no-such-sheet");
    let out = p.run(&["review", "import", &write("u.json", &unknown)]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no review sheet no-such-sheet"),
        "{}",
        stderr(&out)
    );
    assert_eq!((count(&a), count(&b)), (0, 0), "nothing half-written");

    // A good file, then a newer one that changes its mind: the older grade is kept.
    let good = grades_file(&sa, &ia, "2026-01-01T00:00:00Z", "pass");
    assert_eq!(
        code(&p.run(&["review", "import", &write("g1.json", &good)])),
        0
    );
    let newer = grades_file(&sa, &ia[..1], "2026-01-02T00:00:00Z", "fail");
    let out = p.run(&["review", "import", &write("g2.json", &newer)]);
    assert!(stdout(&out).contains("1 superseding"), "{}", stdout(&out));
    let shown: Value =
        serde_json::from_slice(&p.run(&["review", "show", &a, "--format", "json"]).stdout)
            .expect("json");
    let first = shown["grades"]
        .as_array()
        .expect("grades")
        .iter()
        .find(|g| g["result_id"] == ia[0]["result_id"])
        .expect("graded")
        .clone();
    assert_eq!(first["verdict"], "fail");
    assert_eq!(first["superseded"], 1);
}

#[test]
fn the_same_seed_samples_the_same_results() {
    let p = graded_project();
    let pick = |args: &[&str]| -> Vec<String> {
        let (id, page) = sample(&p, args);
        let v = sheet_json(&std::fs::read_to_string(page).expect("page"));
        assert_eq!(code(&p.run(&["review", "close", &id])), 0);
        let mut ids: Vec<String> = v["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["result_id"].as_str().map(String::from))
            .collect();
        ids.sort();
        ids
    };
    let a = pick(&["--n", "4", "--seed", "11"]);
    assert_eq!(a, pick(&["--n", "4", "--seed", "11"]));
    let others: Vec<Vec<String>> = (12..20)
        .map(|s| pick(&["--n", "4", "--seed", &s.to_string()]))
        .collect();
    assert!(
        others.iter().any(|o| *o != a),
        "another seed, another sample"
    );
    let none = p.run(&["review", "sample", "--run", "nope"]);
    assert_eq!(code(&none), 2);
}

/// One HTTP/1.1 request to 127.0.0.1; (status, body).
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (status, body)
}

#[test]
fn serve_needs_the_token_and_stores_grades_like_import() {
    let p = graded_project();
    let (id, _page) = sample(&p, &["--n", "3"]);
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
        .current_dir(p.path())
        .env_remove("EVALWATCH_DB")
        .env_remove("EVALWATCH_CONFIG")
        .args(["review", "serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("read");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no url in {first}"))
        .to_string();
    let rest = url.trim_start_matches("http://127.0.0.1:");
    let port: u16 = rest
        .split('/')
        .next()
        .and_then(|x| x.parse().ok())
        .expect("port");
    let token = rest.split("token=").nth(1).expect("token").to_string();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];

    assert_eq!(http(port, "GET", "/", &[], "").0, 401);
    assert_eq!(http(port, "GET", "/?token=wrong", &[], "").0, 403);
    assert_eq!(
        http(port, "GET", "/", &[("Authorization", "Bearer nope")], "").0,
        403
    );
    let (st, index) = http(port, "GET", &format!("/?token={token}"), &[], "");
    assert_eq!(st, 200);
    assert!(index.contains(&id), "{index}");
    assert_eq!(http(port, "GET", &format!("/sheets/{id}"), &[], "").0, 401);
    let (st, page) = http(port, "GET", &format!("/sheets/{id}"), &auth, "");
    assert_eq!(st, 200);
    let sheet = sheet_json(&page);
    assert_eq!(sheet["submit"]["url"], "/api/grades");
    assert!(page.contains("connect-src 'self'"));
    let items: Vec<&Value> = sheet["items"].as_array().expect("items").iter().collect();
    assert_eq!(http(port, "GET", "/sheets/nope", &auth, "").0, 404);

    let good = grades_file(&sheet, &items, "2026-01-01T00:00:00Z", "pass").to_string();
    assert_eq!(http(port, "POST", "/api/grades", &[], &good).0, 401);
    assert_eq!(http(port, "POST", "/api/grades?token=x", &[], &good).0, 403);
    let mut bad = grades_file(&sheet, &items, "2026-01-01T00:00:00Z", "pass");
    bad["grades"][0]["result_id"] = json!("12345");
    let (st, msg) = http(port, "POST", "/api/grades", &auth, &bad.to_string());
    assert_eq!(st, 422, "{msg}");
    assert_eq!(http(port, "POST", "/api/grades", &auth, "{nope").0, 400);
    let mut bare = grades_file(&sheet, &items, "2026-01-01T00:00:00Z", "pass");
    bare.as_object_mut().expect("object").remove("sheet_mac");
    let (st, msg) = http(port, "POST", "/api/grades", &auth, &bare.to_string());
    assert_eq!(st, 400, "grades without the sheet's MAC are refused: {msg}");
    assert!(msg.contains("sheet_mac"), "{msg}");
    let (st, msg) = http(port, "POST", "/api/grades", &auth, &good);
    assert_eq!(st, 200, "{msg}");
    assert!(msg.contains("3 new"), "{msg}");
    let (st, msg) = http(port, "POST", "/api/grades", &auth, &good);
    assert_eq!(st, 200);
    assert!(msg.contains("0 new, 3 unchanged"), "{msg}");
    // A reviewer whose clock runs a day ahead still saves: the server's time is kept, where
    // `review import` refuses such a file.
    let ahead = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let early = grades_file(&sheet, &items, &ahead, "pass").to_string();
    let (st, msg) = http(port, "POST", "/api/grades", &auth, &early);
    assert_eq!(st, 200, "{msg}");
    // Every item graded: the sheet closed and left the index; its page still opens (a
    // team's other reviewers may still be grading it), with the stored grades.
    let (st, index) = http(port, "GET", &format!("/?token={token}"), &[], "");
    assert_eq!(st, 200);
    assert!(!index.contains(&id), "{index}");
    let (st, page) = http(port, "GET", &format!("/sheets/{id}"), &auth, "");
    assert_eq!(st, 200);
    let served = sheet_json(&page);
    assert_eq!(served["closed"], true);
    assert_eq!(served["grades"].as_array().map(Vec::len), Some(3));
    assert_eq!(served["grades"][0]["reviewer"], "Bo");

    signal(child.id(), "-TERM");
    let status = child.wait().expect("wait");
    assert!(status.success(), "serve exits 0 on SIGTERM");
    let shown = p.run(&["review", "show", &id, "--format", "json"]);
    let v: Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(v["grades"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["status"], "closed");
    // The suite page shows the agreement and the human score.
    assert_eq!(code(&p.run(&["report"])), 0);
    let page = std::fs::read_to_string(p.path().join("reports/rv.html")).expect("suite page");
    assert!(
        page.contains("Human review") && page.contains("kappa"),
        "{page}"
    );
    assert!(
        page.contains("<td>3.00</td>"),
        "human score of quality 3 everywhere: {page}"
    );
}

#[test]
fn a_low_human_score_opens_an_alert() {
    let p = Project::new();
    let suite = replay_suite(&p, "hs", 4, 0);
    let mut yaml = std::fs::read_to_string(&suite).expect("read");
    yaml.push_str("alerts:\n  - {metric: human_score, min: 3.5, severity: warning}\n");
    std::fs::write(&suite, yaml).expect("write");
    assert_eq!(code(&p.run(&["run"])), 0);
    let check = p.run(&["alerts", "check"]);
    assert_eq!(code(&check), 0, "{}", stderr(&check));
    assert!(
        !stdout(&check).contains("human_score"),
        "no grades, no alert: {}",
        stdout(&check)
    );
    let (_id, page) = sample(&p, &["--n", "4"]);
    let sheet = sheet_json(&std::fs::read_to_string(page).expect("page"));
    let items: Vec<&Value> = sheet["items"].as_array().expect("items").iter().collect();
    let mut file = grades_file(&sheet, &items, "2026-01-01T00:00:00Z", "pass");
    for g in file["grades"].as_array_mut().expect("grades") {
        g["quality"] = json!(2);
    }
    let path = p.write("g.json", &file.to_string());
    assert_eq!(
        code(&p.run(&["review", "import", &path.display().to_string()])),
        0
    );
    // Another run with no grades yet: the rule still judges the graded one.
    assert_eq!(code(&p.run(&["run"])), 0);
    let check = p.run(&["alerts", "check"]);
    assert_eq!(
        code(&check),
        0,
        "a warning is below --fail-on: {}",
        stderr(&check)
    );
    let text = stdout(&check);
    assert!(
        text.contains("open [warning]") && text.contains("human_score"),
        "{text}"
    );
}

#[test]
fn a_sheet_whose_page_cannot_be_written_is_not_recorded() {
    let p = graded_project();
    // `reports/review` is a file: the page cannot be written (even by root).
    p.write("reports/review", "in the way");
    let out = p.run(&["review", "sample", "--n", "6", "--seed", "7"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("reports/review"), "{}", stderr(&out));
    let list = p.run(&["review", "list", "--all", "--format", "json"]);
    let v: Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(
        v.as_array().map(Vec::len),
        Some(0),
        "no sheet recorded: {v}"
    );
    // Once the folder can be written, the same results are sampled again.
    std::fs::remove_file(p.path().join("reports/review")).expect("rm");
    let (_, page) = sample(&p, &["--n", "6", "--seed", "7"]);
    let sheet = sheet_json(&std::fs::read_to_string(page).expect("page"));
    assert_eq!(sheet["items"].as_array().map(Vec::len), Some(6));
}

#[test]
fn review_show_html_renders_a_sheet_again_and_sheet_ids_take_a_prefix() {
    let p = graded_project();
    let (a, page_a) = sample(&p, &["--n", "2", "--seed", "1"]);
    let before = std::fs::read_to_string(&page_a).expect("page");
    std::fs::remove_file(&page_a).expect("rm");
    let prefix = &a[..a.len() - 3];
    let out = p.run(&["review", "show", prefix, "--html"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("{a}.html")),
        "{}",
        stdout(&out)
    );
    let after = std::fs::read_to_string(&page_a).expect("page written again");
    assert_eq!(sheet_json(&after), sheet_json(&before));
    // A second sheet sharing a prefix: the prefix is ambiguous, a usage error.
    let (b, _) = sample(&p, &["--n", "2", "--seed", "1"]);
    let shared: String = a
        .chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect();
    for args in [
        vec!["review", "show", shared.as_str()],
        vec!["review", "close", shared.as_str()],
    ] {
        let out = p.run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("ambiguous"), "{}", stderr(&out));
    }
    let out = p.run(&["review", "close", &b[..b.len() - 2]]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains(&b), "{}", stdout(&out));
    assert_eq!(code(&p.run(&["review", "show", "nope"])), 2);
}

#[test]
fn grades_without_the_sheet_mac_are_refused() {
    let p = graded_project();
    let (a, page) = sample(&p, &["--n", "2", "--seed", "1"]);
    let sheet = sheet_json(&std::fs::read_to_string(page).expect("page"));
    let items: Vec<&Value> = sheet["items"].as_array().expect("items").iter().collect();
    let mut bare = grades_file(&sheet, &items, "2026-01-01T00:00:00Z", "pass");
    bare.as_object_mut().expect("object").remove("sheet_mac");
    let path = p.write("bare.json", &bare.to_string());
    let out = p.run(&["review", "import", &path.display().to_string()]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("sheet_mac"), "{}", stderr(&out));
    let shown = p.run(&["review", "show", &a, "--format", "json"]);
    let v: Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(
        v["grades"].as_array().map(Vec::len),
        Some(0),
        "nothing stored"
    );
}

/// Audit D2: a grade exported before the reviewer's current grade is kept as an older grade
/// and said so (not "superseding"); an export time more than 5 minutes ahead of the clock is
/// refused, and nothing of that file is stored.
#[test]
fn an_older_export_is_said_to_stay_behind_and_a_future_one_is_refused() {
    let p = graded_project();
    let (sheet, page) = sample(&p, &["--n", "1", "--seed", "1"]);
    let s = sheet_json(&std::fs::read_to_string(page).expect("page"));
    let items: Vec<&Value> = s["items"].as_array().expect("items").iter().collect();
    let import = |name: &str, at: &str, verdict: &str| {
        let file = p.write(
            name,
            &serde_json::to_string(&grades_file(&s, &items, at, verdict)).expect("json"),
        );
        p.run(&["review", "import", &file.display().to_string()])
    };
    let current = || -> (String, i64) {
        let out = p.run(&["review", "show", &sheet, "--format", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        let g = &v["grades"][0];
        (
            g["verdict"].as_str().unwrap_or_default().to_owned(),
            g["superseded"].as_i64().unwrap_or(-1),
        )
    };
    assert_eq!(code(&import("g1.json", "2026-12-07T20:40:00Z", "pass")), 0);
    let out = import("g2.json", "2026-12-07T21:00:00Z", "fail");
    assert!(
        stdout(&out).contains("1 new, 0 unchanged, 1 superseding an earlier grade"),
        "{}",
        stdout(&out)
    );
    // Exported between the two: stored in the history, the 21:00 grade stays current.
    let out = import("g3.json", "2026-12-07T20:50:00Z", "pass");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("1 new, 0 unchanged, 0 superseding an earlier grade; 1 kept as an older grade, not current"),
        "{text}"
    );
    assert_eq!(current(), ("fail".to_owned(), 2));
    // An export dated years ahead is refused (exit 2) and stores nothing.
    let out = import("g4.json", "2099-01-01T00:00:00Z", "pass");
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("`exported_at` 2099-01-01T00:00:00.000Z is in the future"),
        "{}",
        stderr(&out)
    );
    assert_eq!(current(), ("fail".to_owned(), 2));
}
