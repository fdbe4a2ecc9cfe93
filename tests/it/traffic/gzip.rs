//! Rotated logs compressed with gzip (`logrotate`'s `compress`): read decompressed, each
//! record counted once, a file that ends early or is broken said and never read twice.

use std::fmt::Write as _;
use std::io::Write as _;

use super::ingest::{dump, generated_log, ingest, json, listed, recent_start, source_config};
use crate::support::{Project, code, stderr, stdout};

/// `text` compressed as gzip does it.
fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).expect("compress");
    gz.finish().expect("compress")
}

/// A project whose store holds `log` ingested once, plain: what every compressed reading of
/// it must give.
fn plain_store(log: &str) -> String {
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    p.write("logs/a.jsonl", log);
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    dump(&p)
}

#[test]
fn a_gzip_compressed_log_is_read_as_the_plain_one_and_once() {
    let log = generated_log(recent_start(), 700);
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    let path = p.path().join("logs/a.jsonl.1.gz");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, gzip(&log)).unwrap();
    let out = ingest(&p, &["bot", "logs/a.jsonl.1.gz"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let first = json(&out);
    assert_eq!(
        (
            first["records"].as_u64(),
            first["new"].as_u64(),
            first["malformed"].as_u64()
        ),
        (Some(700), Some(700), Some(0)),
        "{first}"
    );
    assert_eq!(
        dump(&p),
        plain_store(&log),
        "the same store as the plain file's"
    );
    // Read to its end and unchanged: not read again.
    let again = json(&ingest(&p, &["bot", "logs/a.jsonl.1.gz"]));
    assert_eq!(
        (again["records"].as_u64(), again["new"].as_u64()),
        (Some(0), Some(0))
    );
    // A compressed file is complete: its last line counts without its newline.
    let tail =
        generated_log(recent_start() + 3000, 3).replace("\"trace\": \"t", "\"trace\": \"tail-");
    let path = p.path().join("logs/a.jsonl.2.gz");
    std::fs::write(&path, gzip(tail.trim_end())).unwrap();
    let tail = json(&ingest(&p, &["bot", "logs/a.jsonl.2.gz"]));
    assert_eq!(
        (
            tail["records"].as_u64(),
            tail["new"].as_u64(),
            listed_notes(&tail)
        ),
        (Some(3), Some(3), String::new()),
        "{tail}"
    );
    // The same bytes on standard input: decompressed too, every record known.
    let piped = stdin_ingest(&p, &gzip(&log));
    assert_eq!(code(&piped), 0, "{}", stderr(&piped));
    let piped = json(&piped);
    assert_eq!(
        (
            piped["records"].as_u64(),
            piped["seen_before"].as_u64(),
            piped["malformed"].as_u64()
        ),
        (Some(700), Some(700), Some(0)),
        "{piped}"
    );
    // `validate` looks into the compressed file for its fields, as `ingest` reads it: no
    // warning that a pointer matches nothing.
    p.write(
        "evalwatch.yaml",
        &source_config("10%").replace("logs/*.jsonl", "logs/*.gz"),
    );
    let checked = p.cmd().arg("validate").output().expect("validate");
    assert_eq!(
        code(&checked),
        0,
        "{}{}",
        stdout(&checked),
        stderr(&checked)
    );
    assert!(
        !stderr(&checked).contains("matches nothing"),
        "{}",
        stderr(&checked)
    );
}

#[test]
fn a_gzip_file_that_ends_early_keeps_what_came_before_and_is_read_on_once_complete() {
    let log = generated_log(recent_start(), 5000);
    let whole = gzip(&log);
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    let path = p.path().join("logs/b.jsonl.gz");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Half of the compressed bytes: a file still being compressed.
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
    let out = ingest(&p, &["bot", "logs/b.jsonl.gz"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let first = json(&out);
    let read = first["records"].as_u64().expect("records");
    assert!(read > 0 && read < 5000, "{first}");
    assert!(
        listed_notes(&first).contains("the compressed file ends early (still being compressed?)"),
        "{first}"
    );
    // Unchanged: said again, not read again.
    let again = json(&ingest(&p, &["bot", "logs/b.jsonl.gz"]));
    assert_eq!(again["records"].as_u64(), Some(0), "{again}");
    assert!(
        listed_notes(&again).contains("ended early when it was read, and has not changed since"),
        "{again}"
    );
    // Complete now (written in place, as a compressor finishing it): the rest, once.
    std::fs::write(&path, &whole).unwrap();
    let rest = json(&ingest(&p, &["bot", "logs/b.jsonl.gz"]));
    assert_eq!(
        (rest["records"].as_u64(), rest["new"].as_u64()),
        (Some(5000 - read), Some(5000 - read)),
        "{rest}"
    );
    assert_eq!(listed_notes(&rest), "", "{rest}");
    // The store of one clean ingest, but for the last bits of the sums of the minute the
    // file ended in the first time: summed in two parts (as for a plain file whose last line
    // came later), a float sum may round differently.
    assert_eq!(
        rounded(&dump(&p)),
        rounded(&plain_store(&log)),
        "the store of one clean ingest"
    );
}

/// A store's dump with its floats to 9 significant digits.
fn rounded(dump: &str) -> String {
    let real = regex::Regex::new(r"Real\(([^)]*)\)").expect("regex");
    real.replace_all(dump, |c: &regex::Captures<'_>| {
        let v: f64 = c[1].parse().expect("a float");
        format!("Real({v:.8e})")
    })
    .into_owned()
}

#[test]
fn a_broken_gzip_file_is_counted_located_and_not_read_again() {
    let log = generated_log(recent_start(), 300);
    let whole = gzip(&log);
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    let path = p.path().join("logs/c.jsonl.gz");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A gzip header, then bytes that are not deflate data.
    let mut broken = whole[..10].to_vec();
    broken.extend((0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&path, &broken).unwrap();
    let out = ingest(&p, &["bot", "logs/c.jsonl.gz"]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    let first = json(&out);
    assert_eq!(first["malformed"].as_u64(), Some(1), "{first}");
    let error = &first["errors"][0];
    assert_eq!(error["at"].as_str(), Some("logs/c.jsonl.gz:1"), "{first}");
    assert!(
        error["reason"]
            .as_str()
            .is_some_and(|r| r.contains("the gzip stream is broken")
                && r.contains("the rest of the file is not read")),
        "{first}"
    );
    // Unchanged: said, not counted again.
    let again = ingest(&p, &["bot", "logs/c.jsonl.gz"]);
    assert_eq!(code(&again), 0, "{}{}", stdout(&again), stderr(&again));
    let again = json(&again);
    assert_eq!(again["malformed"].as_u64(), Some(0), "{again}");
    assert!(
        listed_notes(&again).contains("the gzip stream was broken there when the file was read"),
        "{again}"
    );
}

#[test]
fn a_log_in_another_compression_is_one_located_record_that_says_how_to_read_it() {
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    let path = p.path().join("logs/d.jsonl.zst");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // zstd's magic number, then bytes that are not text.
    let mut zstd = vec![0x28, 0xb5, 0x2f, 0xfd];
    zstd.extend((0..3000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8));
    std::fs::write(&path, &zstd).unwrap();
    let out = ingest(&p, &["bot", "logs/d.jsonl.zst"]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    let read = json(&out);
    // One record that cannot be read, not one per line of binary.
    assert_eq!(read["malformed"].as_u64(), Some(1), "{read}");
    assert_eq!(
        read["errors"][0]["at"].as_str(),
        Some("logs/d.jsonl.zst:1"),
        "{read}"
    );
    assert!(
        read["errors"][0]["reason"].as_str().is_some_and(|r| r.contains(
            "zstd-compressed, which ingest does not read (plain and gzip only): give its text on standard input (`zstdcat logs/d.jsonl.zst | evalwatch ingest bot -`)"
        )),
        "{read}"
    );
    // The same bytes on standard input.
    let piped = json(&stdin_ingest(&p, &zstd));
    assert_eq!(piped["malformed"].as_u64(), Some(1), "{piped}");
    assert!(
        piped["errors"][0]["reason"].as_str().is_some_and(|r| r.contains(
            "standard input is zstd-compressed, which ingest does not read (plain and gzip only): pipe it through `zstdcat`"
        )),
        "{piped}"
    );
}

/// `ingest bot - --format json` fed `bytes` on standard input.
fn stdin_ingest(p: &Project, bytes: &[u8]) -> std::process::Output {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
        .current_dir(p.path())
        .env("EVALWATCH_TRAFFIC_SALT", super::ingest::SALT)
        .env_remove("EVALWATCH_DB")
        .env_remove("EVALWATCH_CONFIG")
        .args(["ingest", "bot", "-", "--format", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("feed");
    child.wait_with_output().expect("wait")
}

/// The `unfinished` notes of an `ingest --format json`.
fn listed_notes(out: &serde_json::Value) -> String {
    listed(out, "unfinished")
}

#[test]
fn a_gzip_csv_log_keeps_its_header_when_read_on_after_an_early_end() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: bot\n    format: csv\n    fields: {time: ts, model: model, latency_ms: ms, trace_id: id}\n",
    );
    let t = recent_start();
    let mut body = String::from("ts,model,ms,id\n");
    for i in 0..3000 {
        let _ = writeln!(body, "{},m1,{},r{i}", t + i / 2, 100 + i % 50);
    }
    let whole = gzip(&body);
    let path = p.path().join("logs/rows.csv.gz");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
    let first = json(&ingest(&p, &["bot", "logs/rows.csv.gz"]));
    let read = first["new"].as_u64().expect("new");
    assert!(read > 0 && read < 3000, "{first}");
    assert_eq!(first["malformed"].as_u64(), Some(0), "{first}");
    std::fs::write(&path, &whole).unwrap();
    let rest = json(&ingest(&p, &["bot", "logs/rows.csv.gz"]));
    // The header is not read as a record on the way back, and every row counts once.
    assert_eq!(
        (rest["new"].as_u64(), rest["malformed"].as_u64()),
        (Some(3000 - read), Some(0)),
        "{rest}"
    );
}
