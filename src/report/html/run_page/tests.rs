//! Run pages written directly are byte for byte what the one-template version wrote: the
//! reference is that template (`testdata/run_page_reference.html`) rendered through tera with
//! the view the old code built.

use super::result::push_result;
use super::*;
use crate::model::{AssertionOutcome, LabelPair, ResultRecord};
use crate::report::html::{Expected, MAX_TEXT, clip, engine_of};

// ---------------------------------------------------------------------------------------
// The reference: the old view of a result and of a page, rendered by the old template.

#[derive(Serialize)]
struct AssertionRow {
    kind: String,
    verdict: &'static str,
    class: &'static str,
    score: String,
    reason: String,
}

#[derive(Serialize)]
struct ResultView {
    status: &'static str,
    open: bool,
    case: String,
    provider: String,
    sample: u32,
    score: String,
    latency: String,
    flip: Option<String>,
    prompt: String,
    expected: Option<String>,
    expected_note: String,
    output: Option<String>,
    error: Option<String>,
    assertions: Vec<AssertionRow>,
    meta: String,
}

#[derive(Serialize)]
struct PageLink {
    n: usize,
    href: String,
    current: bool,
}

#[derive(Serialize)]
struct RunPage<'a> {
    #[serde(flatten)]
    head: &'a RunHead<'a>,
    page: usize,
    pages: Vec<PageLink>,
    results: Vec<ResultView>,
}

fn result_view(
    rec: &ResultRecord,
    suite: &str,
    expected: &Expected,
    flip: Option<String>,
) -> ResultView {
    let exp = expected.lookup(suite, &rec.job.case_id, &rec.case_hash);
    let mut meta = vec![format!("attempts {}", rec.attempts)];
    if let (Some(i), Some(o)) = (rec.tokens_in, rec.tokens_out) {
        meta.push(format!("tokens {i} in / {o} out"));
    }
    if let Some(c) = rec.cost_usd {
        meta.push(format!("cost {}", Unit::Usd.format(c)));
    }
    if let Some(f) = &rec.finish_reason {
        meta.push(format!("finish {f}"));
    }
    if !rec.tags.is_empty() {
        meta.push(format!("tags {}", rec.tags.join(", ")));
    }
    if let Some(l) = &rec.label {
        meta.push(format!(
            "label expected {} predicted {}",
            l.expected,
            l.predicted.as_deref().unwrap_or("none")
        ));
    }
    meta.push(format!(
        "case hash {}",
        rec.case_hash.chars().take(12).collect::<String>()
    ));
    ResultView {
        status: rec.status.as_str(),
        open: rec.status != CaseStatus::Passed,
        case: rec.job.case_id.clone(),
        provider: rec.job.provider_id.clone(),
        sample: rec.job.sample,
        score: Unit::Score.show(rec.score),
        latency: Unit::Ms.show(rec.latency_ms),
        flip,
        prompt: clip(&rec.prompt),
        expected: exp.as_ref().ok().map(|e| clip(e)),
        expected_note: exp.err().unwrap_or_default().to_owned(),
        output: rec.output.as_deref().map(clip),
        error: rec.error.as_deref().map(clip),
        assertions: rec
            .assertions
            .iter()
            .map(|a| AssertionRow {
                kind: a.type_name.clone(),
                verdict: if a.unscorable {
                    "unscorable"
                } else if a.pass {
                    "pass"
                } else {
                    "fail"
                },
                class: if a.unscorable {
                    "unscorable"
                } else if a.pass {
                    "passed"
                } else {
                    "failed"
                },
                score: format!("{:.3}", a.score),
                reason: clip(&a.reason),
            })
            .collect(),
        meta: meta.join(" · "),
    }
}

// ---------------------------------------------------------------------------------------
// Data with every branch of the template, and every character the escaping replaces.

const NASTY: &str = "<script>alert('x')</script> & \"quoted\" 'single' > end";

fn assertion(
    kind: &str,
    pass: bool,
    unscorable: bool,
    score: f64,
    reason: &str,
) -> AssertionOutcome {
    AssertionOutcome {
        type_name: kind.into(),
        pass,
        score,
        reason: reason.into(),
        details: serde_json::Value::Null,
        weight: 1.0,
        metric: None,
        unscorable,
    }
}

fn record(i: usize) -> ResultRecord {
    let status = match i % 4 {
        0 => CaseStatus::Passed,
        1 => CaseStatus::Failed,
        2 => CaseStatus::Error,
        _ => CaseStatus::Unscorable,
    };
    let case_id = if i == 3 {
        NASTY.to_owned()
    } else {
        format!("case-{i}")
    };
    let provider = if i.is_multiple_of(5) { "p<&>" } else { "p" };
    let mut r = ResultRecord::new(
        crate::app::report::tests::job(i, &case_id, provider, (i % 3) as u32),
        status,
    );
    r.case_hash = format!("hash{i:02}-0123456789abcdef");
    r.prompt = match i % 5 {
        0 => NASTY.into(),
        1 => "é".repeat(MAX_TEXT + 7),
        2 => format!("a{}", "<".repeat(MAX_TEXT)),
        3 => String::new(),
        _ => "Answer briefly. What is the return window?".into(),
    };
    r.score = match i % 4 {
        0 => Some(1.0),
        1 => Some(0.25),
        2 => None,
        _ => Some(f64::NAN),
    };
    r.latency_ms = match i % 3 {
        0 => Some(123.4),
        1 => Some(15_000.0),
        _ => None,
    };
    r.output = match i % 6 {
        0 => Some(NASTY.into()),
        1 => Some(String::new()),
        2 => None,
        3 => Some("ü".repeat(MAX_TEXT + 1)),
        _ => Some("the answer is right".into()),
    };
    r.error = match i % 7 {
        0 => Some(format!("HTTP 500: {NASTY}")),
        1 => Some(String::new()),
        _ => None,
    };
    if i.is_multiple_of(2) {
        r.tokens_in = Some(10 + i as u64);
        r.tokens_out = Some(3);
    } else {
        r.tokens_in = Some(9);
    }
    r.cost_usd = i.is_multiple_of(3).then_some(0.000_21 * i as f64);
    r.finish_reason = (i % 4 == 1).then(|| "stop<'>".to_owned());
    r.tags = match i % 3 {
        0 => vec![],
        1 => vec!["billing".into()],
        _ => vec!["a&b".into(), "<c>".into()],
    };
    r.label = match i % 5 {
        0 => Some(LabelPair {
            expected: "refund".into(),
            predicted: Some("\"other\"".into()),
        }),
        1 => Some(LabelPair {
            expected: "refund".into(),
            predicted: None,
        }),
        _ => None,
    };
    r.attempts = 1 + (i % 3) as u32;
    r.assertions = match i % 4 {
        0 => vec![],
        1 => vec![assertion("icontains", false, false, 0.0, NASTY)],
        2 => vec![
            assertion("length", true, false, 1.0, "length 19 <= 500"),
            assertion(
                "llm-rubric",
                false,
                true,
                f64::NAN,
                &"ä".repeat(MAX_TEXT + 2),
            ),
        ],
        _ => vec![assertion("regex", true, false, 0.333_333, "")],
    };
    r
}

fn suite_cases() -> Vec<(String, String, Option<String>)> {
    (0..24)
        .map(|i| {
            let rec = record(i);
            // Some cases edited since (another hash), some without an expected answer, one
            // empty, one long, one missing from the suite altogether.
            let hash = if i % 6 == 5 {
                "edited".to_owned()
            } else {
                rec.case_hash.clone()
            };
            let expected = match i % 5 {
                0 => Some(NASTY.to_owned()),
                1 => None,
                2 => Some(String::new()),
                3 => Some("x".repeat(MAX_TEXT + 3)),
                _ => Some("right".to_owned()),
            };
            (rec.job.case_id, hash, expected)
        })
        .filter(|(id, _, _)| id != "case-8")
        .collect()
}

#[test]
fn escaping_is_teras() {
    for text in ["", "plain", NASTY, "é<ü>&'\"", "&amp;", "<<<", "x'"] {
        let mut mine = String::from("keep:");
        push_escaped(&mut mine, text);
        let mut theirs = Vec::new();
        tera::escape_html(text, &mut theirs).expect("escape");
        assert_eq!(
            mine,
            format!("keep:{}", String::from_utf8(theirs).expect("utf-8"))
        );
    }
}

/// No raw control byte reaches a page: each is shown as a visible symbol, in results written
/// directly and in what the templates write.
#[test]
fn control_bytes_are_shown_not_written_raw() {
    let text = "red \x1b[31mALERT\x07 nul\x00 del\x7f csi\u{9b} tab\tline\nend <b>";
    let mut mine = String::new();
    push_escaped(&mut mine, text);
    assert_eq!(
        mine,
        "red \u{241b}[31mALERT\u{2407} nul\u{2400} del\u{2421} csi\\u{9b} tab\tline\nend &lt;b&gt;"
    );
    let t = engine_of(&[("x.html", "{{ v }}")]).expect("engine");
    let ctx = tera::Context::from_serialize(&serde_json::json!({ "v": text })).expect("ctx");
    assert_eq!(t.render("x.html", &ctx).expect("render"), mine);
    for c in mine.chars() {
        assert!(
            !c.is_control() || matches!(c, '\t' | '\n'),
            "raw control {c:?} in {mine:?}"
        );
    }
}

/// A judge's contradictions and unsupported claims are marked apart; overlapping and
/// out-of-range spans never break the text; claims it could not place are listed.
#[test]
fn flagged_spans_are_marked_by_kind() {
    let output = "Refunds take 90 days <fast>, shipping is free.";
    let mut rec = record(1);
    rec.output = Some(output.into());
    let mut a = assertion("hallucination", false, false, 0.2, "judge found ...");
    a.details = serde_json::json!({
        "contradictions": [{"text": "90 days", "start": 13, "end": 20}],
        "unsupported": [
            {"text": "shipping is free", "start": 29, "end": 45},
            {"text": "is free", "start": 38, "end": 45},
            {"text": "beyond", "start": 40, "end": 400},
            {"text": "a claim elsewhere", "start": null, "end": null},
        ],
    });
    rec.assertions = vec![a];
    let mut out = String::new();
    push_result_tail(&mut out, &rec, &mut String::new());
    assert!(out.contains(
        "<pre>Refunds take <mark class=\"contradiction\" title=\"contradicted\">90 days</mark> &lt;fast&gt;, <mark class=\"unsupported\" title=\"unsupported\">shipping is free</mark>.</pre>"
    ), "{out}");
    assert!(
        out.contains("not found word for word in the output: <q>a claim elsewhere</q>"),
        "{out}"
    );
}

#[test]
fn status_lookup_by_position_or_by_key() {
    let rows: Vec<StatusRow> = vec![
        ("a".into(), "p".into(), 0, CaseStatus::Passed),
        ("b".into(), "p".into(), 0, CaseStatus::Failed),
        ("b".into(), "p".into(), 1, CaseStatus::Error),
    ];
    let idx = StatusIndex::new(&rows);
    assert_eq!(idx.get(1, "b", "p", 0), Some(CaseStatus::Failed));
    assert_eq!(idx.get(0, "b", "p", 1), Some(CaseStatus::Error), "by key");
    assert_eq!(
        idx.get(9, "a", "p", 0),
        Some(CaseStatus::Passed),
        "past the end"
    );
    assert_eq!(idx.get(0, "a", "q", 0), None);
    assert_eq!(idx.get(2, "c", "p", 0), None);
}

#[test]
fn pages_are_what_the_template_wrote() {
    let cases = suite_cases();
    let mut expected = Expected::default();
    for (id, hash, exp) in &cases {
        expected.add("s<&>", id, hash, exp.as_deref());
    }
    let before_rows: Vec<StatusRow> = (0..24)
        .rev() // another order: lookups by key
        .map(|i| {
            let r = record(i);
            let st = if i % 3 == 0 {
                CaseStatus::Failed
            } else {
                CaseStatus::Passed
            };
            (r.job.case_id, r.job.provider_id, r.job.sample, st)
        })
        .collect();
    let before = StatusIndex::new(&before_rows);
    let records: Vec<ResultRecord> = (0..24).map(record).collect();

    let t = engine_of(&[super::super::RUN_TEMPLATE]).expect("templates");
    let mut reference = tera::Tera::new();
    reference.autoescape_on([".html"]);
    reference
        .add_raw_templates([(
            "run.html",
            include_str!("../testdata/run_page_reference.html"),
        )])
        .expect("reference template");

    for (status, finished, baseline) in [
        (
            RunStatus::Complete,
            Some("2024-05-01T06:02:00Z"),
            Some("base<1>"),
        ),
        (RunStatus::Failed, None, None),
    ] {
        let info = RunInfo {
            run_id: "run-1".into(),
            suite: "s<&>".into(),
            suite_hash: "h".into(),
            started_at: "2024-05-01T06:00:00Z".into(),
            finished_at: finished.map(str::to_owned),
            status,
            providers: vec!["p".into(), "p<&>".into()],
            planned: 24,
            filter: None,
        };
        let dir = std::path::PathBuf::from("unused");
        let pages = Pages {
            info: &info,
            runs_dir: &dir,
            labels: vec!["release=v<2>".into()],
            metrics: vec![MetricRow {
                provider: "p<&>".into(),
                cases: 24,
                pass_rate: "25.0%".into(),
                mean_score: "0.500".into(),
                errors: 6,
                halluc: "n/a".into(),
                p50: "12 ms".into(),
                p95: "15.0 s".into(),
                p99: "15.0 s".into(),
                tokens: "1 / 2".into(),
                cost: "$0.00021".into(),
            }],
            gates: vec![GateRow {
                metric: "pass_rate".into(),
                provider: "p".into(),
                limit: ">= 0.9".into(),
                value: "0.2500".into(),
                ok: false,
            }],
            alerts: vec![AlertView {
                id: 7,
                state: "opened",
                severity: "critical".into(),
                rule: "drop<&>".into(),
                metric: "pass_rate".into(),
                provider: "p".into(),
                message: NASTY.into(),
            }],
            baseline: baseline.map(str::to_owned),
            baseline_href: baseline.map(|b| run_file(b, 1)),
        };
        let before = baseline.map(|_| &before);
        let mut flips = Flips::default();
        let mut rows = String::new();
        let mut scratch = String::new();
        let mut views = Vec::new();
        for (at, rec) in records.iter().enumerate() {
            let (case, provider, sample) = (&rec.job.case_id, &rec.job.provider_id, rec.job.sample);
            let flip = flip_of(before, at, case, provider, sample, rec.status);
            if let Some(f) = flip {
                flips.add(case, provider, sample, f);
            }
            push_result(&mut rows, rec, &info.suite, &expected, flip, &mut scratch);
            let flip_text = flip.map(|(a, b)| format!("{} -> {}", a.as_str(), b.as_str()));
            views.push(result_view(rec, &info.suite, &expected, flip_text));
        }
        assert_eq!(flips.total > 0, baseline.is_some(), "flips exercised");
        let heads = pages.heads(&t, records.len(), &flips).expect("heads");
        let (status_class, status_word) = match info.status {
            RunStatus::Complete => ("ok", "complete"),
            other => ("bad", other.as_str()),
        };
        let head_view = RunHead {
            css: CSS,
            run_id: &info.run_id,
            suite: &info.suite,
            suite_href: suite_href(&info.suite),
            started: show_time(&info.started_at),
            finished: info.finished_at.as_deref().map(show_time),
            status: status_word,
            status_class,
            total: records.len(),
            metrics: &pages.metrics,
            gates: &pages.gates,
            alerts: &pages.alerts,
            labels: &pages.labels,
            baseline: pages.baseline.as_deref(),
            baseline_href: pages.baseline_href.clone(),
            flips: &flips.shown,
            flips_more: flips.total - flips.shown.len(),
        };
        // One page of everything, and page 2 of 3.
        for (page, page_count) in [(1, 1), (2, 3)] {
            let mut mine = String::new();
            page_html(
                &mut mine,
                heads.of(page),
                &info.run_id,
                page,
                page_count,
                &|h: &mut String| h.push_str(&rows),
            );
            let theirs = render(
                &reference,
                "run.html",
                &RunPage {
                    head: &head_view,
                    page,
                    pages: (1..=page_count)
                        .map(|n| PageLink {
                            n,
                            href: run_file(&info.run_id, n),
                            current: n == page,
                        })
                        .collect(),
                    results: records
                        .iter()
                        .zip(&views)
                        .map(|(rec, v)| {
                            let flip = v.flip.clone();
                            result_view(rec, &info.suite, &expected, flip)
                        })
                        .collect(),
                },
            )
            .expect("reference render");
            if mine != theirs {
                let at = mine
                    .bytes()
                    .zip(theirs.bytes())
                    .position(|(a, b)| a != b)
                    .unwrap_or(mine.len().min(theirs.len()));
                let show = |s: &str| {
                    let mut lo = at.saturating_sub(120).min(s.len());
                    while !s.is_char_boundary(lo) {
                        lo -= 1;
                    }
                    let mut hi = (at + 120).min(s.len());
                    while !s.is_char_boundary(hi) {
                        hi -= 1;
                    }
                    s[lo..hi].to_owned()
                };
                panic!(
                    "page {page} of {page_count} differs at byte {at} (lengths {} and {}):\nmine:   {:?}\ntheirs: {:?}",
                    mine.len(),
                    theirs.len(),
                    show(&mine),
                    show(&theirs)
                );
            }
        }
    }
}
