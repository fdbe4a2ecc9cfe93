//! The lexical hallucination check (`evalwatch::score::lexical`): quality and throughput.
//!
//! Run: `cargo bench --bench hallucination` (both parts), `-- eval` (quality only) or
//! `-- throughput` (speed only). For a quick quality run without a release build:
//! `cargo test --bench hallucination -- eval`.
//!
//! Quality: AUROC of the lexical score against human labels ("hallucinated" is the positive
//! class, the score ranks), next to the naive baseline (share of the output's non-stop words
//! missing from the support), on every development set under `tests/data/hallucination/`.
//! Sets in HaluEval's own JSON-lines format (`qa.jsonl`: knowledge, question, right_answer,
//! hallucinated_answer; `dialogue.jsonl`: knowledge, dialogue_history, right_response,
//! hallucinated_response), BEGIN-format `begin_*.tsv` files and FaithDial audit files
//! (`faithdial_*.csv`) and LFQA-Verification's `data/` copied as `lfqa/` (question answering
//! with supplied documents) are read from `--dir DIR` (alias `--halueval DIR`, or
//! `HALUEVAL_DIR`) when given; they are not in the repository (see `tests/data/hallucination/README.md`), and
//! the eval marks them `*`. A set that names its response generators (BEGIN's `model_name`)
//! is also reported per generator, without its `Generic` rows (indented rows). The last
//! column is the AUROC of the output's length in words alone: far from 0.5, length separates
//! the classes.
//! `-- dump SET` prints every example of one set with both scores and the flagged spans
//! (`-- dump-knowledge SET`: with the knowledge alone as support; `-- dump-echo SET`: the
//! knowledge as support and the prompt as an echo, the scorer's default).
//!
//! `-- fit` fits a logistic regression over features of the lexical result
//! (`support/fit.rs`) on the tuning sets (`TUNING`) and prints each tuning set's AUROC
//! scored by a model fitted without it (leave one set out) beside the shipped score;
//! `FIT_REPORT=1` adds the other (reported) sets, `FIT_LAMBDA` sets the L2 penalty,
//! `FIT_FEATURES=0,1,...` keeps only those features. The combiner is not shipped: it did
//! not beat the hand-set score (docs/scoring.md).
//!
//! Throughput: outputs of ~50-100 words checked against a support of ~200-400 words (expected,
//! two context items, a rendered prompt), single-threaded; once with `check` (the support
//! indexed for every output, as the scorer calls it) and once with a prepared `Support`.

use std::collections::HashSet;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use evalwatch::score::lexical::{self, Support};

#[path = "support/fit.rs"]
mod fit;

/// One labelled example: the output, its support texts, and whether humans judged it
/// hallucinated (not supported by the knowledge).
struct Example {
    output: String,
    support: Vec<String>,
    hallucinated: bool,
    /// BEGIN's `Generic` label (counted as hallucinated; the eval also reports the set
    /// without these examples).
    generic: bool,
    /// The system that wrote the response, where the set names it (BEGIN's `model_name`).
    generator: Option<String>,
}

struct Set {
    name: String,
    kind: &'static str,
    examples: Vec<Example>,
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut halueval = std::env::var_os("HALUEVAL_DIR").map(PathBuf::from);
    let mut mode = String::from("all");
    let mut dump = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--halueval" | "--dir" => halueval = it.next().map(PathBuf::from),
            "eval" | "throughput" | "all" | "fit" => mode.clone_from(a),
            "dump" | "dump-knowledge" | "dump-echo" => {
                a.clone_into(&mut mode);
                dump = it.next().cloned();
            }
            other => {
                eprintln!("unknown argument `{other}`: use eval, throughput, dump SET, --dir DIR");
                std::process::exit(2);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hallucination");
    let mut sets = load_sets(&root);
    if let Some(dir) = &halueval {
        sets.extend(load_halueval(dir));
        sets.extend(load_begin_dir(dir));
        sets.extend(load_faithdial_dir(dir));
        sets.extend(load_lfqa_dir(dir));
    }
    match mode.as_str() {
        "dump" | "dump-knowledge" | "dump-echo" => {
            let name = dump.unwrap_or_default();
            let Some(set) = sets.iter().find(|s| s.name == name) else {
                let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
                eprintln!("no set `{name}`: have {}", names.join(", "));
                std::process::exit(2);
            };
            dump_set(set, &mode);
        }
        "eval" => eval(&sets),
        "fit" => fit_eval(&sets),
        "throughput" => throughput(&sets),
        _ => {
            eval(&sets);
            throughput(&sets);
        }
    }
}

fn eval(sets: &[Set]) {
    println!("quality: AUROC of the score against the human label (hallucinated = positive)");
    println!(
        "{:<30} {:<9} {:>4} {:>4} | {:>8} {:>8} {:>7} | {:>8} {:>8} {:>7}",
        "set", "kind", "n", "pos", "lexical", "naive", "delta", "lexical", "naive", "delta"
    );
    println!(
        "{:<50} | {:^25} | {:^25} | {:^8} | length",
        "", "support: knowledge + prompt", "support: knowledge only", "default"
    );
    for set in sets.iter().flat_map(with_generic_excluded) {
        let set = &set;
        let labels: Vec<bool> = set.examples.iter().map(|e| e.hallucinated).collect();
        let ours: Vec<f64> = set
            .examples
            .iter()
            .map(|e| lexical::check(&e.output, &refs(&e.support)).score)
            .collect();
        let base: Vec<f64> = set
            .examples
            .iter()
            .map(|e| naive(&e.output, &refs(&e.support)))
            .collect();
        let (a, b) = (auroc(&ours, &labels), auroc(&base, &labels));
        // The same with the knowledge alone as support (no prompt, no dialogue history).
        let ours_k: Vec<f64> = set
            .examples
            .iter()
            .map(|e| lexical::check(&e.output, &refs(&e.support[..1])).score)
            .collect();
        let base_k: Vec<f64> = set
            .examples
            .iter()
            .map(|e| naive(&e.output, &refs(&e.support[..1])))
            .collect();
        let (ak, bk) = (auroc(&ours_k, &labels), auroc(&base_k, &labels));
        // The scorer's default: the knowledge as support, the prompt as an echo.
        let ours_e: Vec<f64> = set.examples.iter().map(|e| by_default(e).score).collect();
        let ae = auroc(&ours_e, &labels);
        // Length alone (the output's word count): where it ranks far from 0.5, length
        // separates the classes and a length-matched comparison is needed.
        let length: Vec<f64> = set
            .examples
            .iter()
            .map(|e| e.output.split_whitespace().count() as f64)
            .collect();
        println!(
            "{:<30} {:<9} {:>4} {:>4} | {:>8.4} {:>8.4} {:>+7.4} | {:>8.4} {:>8.4} {:>+7.4} | {:>8.4} | {:>6.3}",
            set.name,
            set.kind,
            labels.len(),
            labels.iter().filter(|&&l| l).count(),
            a,
            b,
            a - b,
            ak,
            bk,
            ak - bk,
            ae,
            auroc(&length, &labels)
        );
    }
}

/// The set as it is and, when it has BEGIN `Generic` examples (counted as hallucinated), the
/// set without them.
fn with_generic_excluded(set: &Set) -> Vec<Set> {
    let copy = |examples: Vec<&Example>, name: String| Set {
        name,
        kind: set.kind,
        examples: examples
            .into_iter()
            .map(|e| Example {
                output: e.output.clone(),
                support: e.support.clone(),
                hallucinated: e.hallucinated,
                generic: e.generic,
                generator: e.generator.clone(),
            })
            .collect(),
    };
    let mut out = vec![copy(set.examples.iter().collect(), set.name.clone())];
    if set.examples.iter().any(|e| e.generic) {
        out.push(copy(
            set.examples.iter().filter(|e| !e.generic).collect(),
            format!("{}-nogeneric", set.name),
        ));
    }
    // Per response generator (without `Generic` rows), where the set names them.
    let mut generators: Vec<&str> = set
        .examples
        .iter()
        .filter_map(|e| e.generator.as_deref())
        .collect();
    generators.sort_unstable();
    generators.dedup();
    if generators.len() > 1 {
        for g in generators {
            out.push(copy(
                set.examples
                    .iter()
                    .filter(|e| !e.generic && e.generator.as_deref() == Some(g))
                    .collect(),
                format!("  {}/{g}", set.name),
            ));
        }
    }
    out
}

/// Every example with both scores and the flagged spans; `dump-knowledge`: the knowledge
/// alone as support; `dump-echo`: the knowledge as support, the prompt excusing echoes.
fn dump_set(set: &Set, mode: &str) {
    for (i, e) in set.examples.iter().enumerate() {
        let (support, echo) = match mode {
            "dump-knowledge" => (&e.support[..1], &e.support[..0]),
            "dump-echo" => (&e.support[..1], &e.support[1..]),
            _ => (&e.support[..], &e.support[..0]),
        };
        let r = lexical::check_echo(&e.output, &refs(support), &refs(echo));
        let spans: Vec<&str> = r.unsupported.iter().map(|s| s.text.as_str()).collect();
        println!(
            "{i:4} label={} lexical={:.3} naive={:.3} | {} | unsupported: {}",
            u8::from(e.hallucinated),
            r.score,
            naive(&e.output, &refs(support)),
            e.output.replace('\n', " "),
            spans.join(" / ")
        );
    }
}

/// The example checked as the scorer does by default: the knowledge (the first support text)
/// as support, the prompt (the rest) as an echo.
fn by_default(e: &Example) -> lexical::Lexical {
    lexical::check_echo(&e.output, &refs(&e.support[..1]), &refs(&e.support[1..]))
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Area under the ROC curve (Mann-Whitney U), ties counted one half.
fn auroc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0f64, 0usize);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]].total_cmp(&scores[idx[i]]).is_eq() {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] {
                rank_sum += avg_rank;
            }
        }
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// The naive baseline (the lead's stub): share of the output's non-stop words, lowercased,
/// missing from the support's words.
fn naive(output: &str, support: &[&str]) -> f64 {
    const STOP: &[&str] = &[
        "a", "an", "the", "and", "or", "but", "is", "are", "was", "were", "be", "to", "of", "in",
        "on", "at", "for", "with", "it", "this", "that", "i", "you", "we", "they", "he", "she",
    ];
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let known: HashSet<String> = support.iter().flat_map(|s| words(s)).collect();
    let (mut checked, mut missing) = (0usize, 0usize);
    for w in words(output) {
        if STOP.contains(&w.as_str()) {
            continue;
        }
        checked += 1;
        if !known.contains(&w) {
            missing += 1;
        }
    }
    if checked == 0 {
        0.0
    } else {
        missing as f64 / checked as f64
    }
}

fn load_sets(root: &Path) -> Vec<Set> {
    let mut sets = Vec::new();
    for (file, name) in [
        ("begin_wow_dev.tsv", "begin-wow-dev"),
        ("begin_wow_test.tsv", "begin-wow-test"),
    ] {
        let begin = root.join(file);
        match std::fs::read_to_string(&begin) {
            Ok(text) => sets.push(Set {
                name: name.to_owned(),
                kind: "dialogue",
                examples: parse_begin(&text),
            }),
            Err(e) => eprintln!("skipping {}: {e}", begin.display()),
        }
    }
    for (file, name) in [
        ("faithdial_wow_gold.csv", "faithdial-wow-gold"),
        ("faithdial_wow_ctrl.csv", "faithdial-wow-ctrl"),
        ("faithdial_wow_doha.csv", "faithdial-wow-doha"),
    ] {
        let path = root.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => sets.push(Set {
                name: name.to_owned(),
                kind: "dialogue",
                examples: parse_faithdial(&text),
            }),
            Err(e) => eprintln!("skipping {}: {e}", path.display()),
        }
    }
    for (file, name, kind) in [
        ("own_qa.jsonl", "own-qa", "qa"),
        ("own_dialogue.jsonl", "own-dialogue", "dialogue"),
    ] {
        let path = root.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => sets.push(Set {
                name: name.to_owned(),
                kind,
                examples: parse_own(&text, &path),
            }),
            Err(e) => eprintln!("skipping {}: {e}", path.display()),
        }
    }
    sets
}

/// BEGIN's TSV: model_name, data_source, knowledge, message, response, begin_label. Support =
/// knowledge and the previous turn (the prompt); positive = anything not "Fully attributable".
fn parse_begin(text: &str) -> Vec<Example> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (f.len() == 6).then(|| Example {
                output: f[4].to_owned(),
                support: vec![f[2].to_owned(), f[3].to_owned()],
                hallucinated: f[5] != "Fully attributable",
                generic: f[5] == "Generic",
                generator: Some(f[0].to_owned()),
            })
        })
        .collect()
}

/// FaithDial's audits of WoW responses (CSV: knowledge, history, response, BEGIN label(s),
/// VRM labels). Support = knowledge and history. Hallucinated: any label `Hallucination` or
/// `Partial Hallucination` (the gold audit) or a `hallucination` among several (the model
/// audits: `entailment,hallucination`), and `Generic` (also reported without). Not:
/// `Entailment`, and `Uncooperative` (entailed, but not following the conversation).
fn parse_faithdial(text: &str) -> Vec<Example> {
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .filter_map(Result::ok)
        .filter(|r| r.len() == 5)
        .map(|r| {
            let label = r[3].to_ascii_lowercase();
            let generic = label == "generic";
            Example {
                output: r[2].to_owned(),
                support: vec![r[0].to_owned(), r[1].to_owned()],
                hallucinated: generic || label.contains("hallucination"),
                generic,
                generator: None,
            }
        })
        .collect()
}

/// Hand-written sets: one JSON object a line, {"knowledge", "prompt", "outputs": [[text,
/// label], ...]} with label 1 = hallucinated.
fn parse_own(text: &str, path: &Path) -> Vec<Example> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{}:{}: {e}", path.display(), n + 1);
                continue;
            }
        };
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let support = vec![s("knowledge"), s("prompt")];
        for o in v["outputs"].as_array().into_iter().flatten() {
            if let (Some(t), Some(l)) = (o[0].as_str(), o[1].as_u64()) {
                out.push(Example {
                    output: t.to_owned(),
                    support: support.clone(),
                    hallucinated: l == 1,
                    generic: false,
                    generator: None,
                });
            }
        }
    }
    out
}

/// HaluEval's own files, each item giving one right and one hallucinated example.
fn load_halueval(dir: &Path) -> Vec<Set> {
    let mut sets = Vec::new();
    for (file, name, kind, prompt, right, wrong) in [
        (
            "qa.jsonl",
            "halueval-qa",
            "qa",
            "question",
            "right_answer",
            "hallucinated_answer",
        ),
        (
            "dialogue.jsonl",
            "halueval-dialogue",
            "dialogue",
            "dialogue_history",
            "right_response",
            "hallucinated_response",
        ),
    ] {
        let path = dir.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipping {}: not readable", path.display());
            continue;
        };
        let mut examples = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            let support = vec![s("knowledge"), s(prompt)];
            for (k, hallucinated) in [(right, false), (wrong, true)] {
                examples.push(Example {
                    output: s(k),
                    support: support.clone(),
                    hallucinated,
                    generic: false,
                    generator: None,
                });
            }
        }
        sets.push(Set {
            name: name.to_owned(),
            kind,
            examples,
        });
    }
    sets
}

/// Sets in BEGIN's TSV format in a directory (`begin_*.tsv`, e.g. BEGIN's CMU-DoG and
/// TopicalChat parts, which are not in the repository), named after the file.
fn load_begin_dir(dir: &Path) -> Vec<Set> {
    files_in(dir, "begin_", "tsv")
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let stem = p.file_stem()?.to_str()?.replace('_', "-");
            Some(Set {
                name: format!("{stem}*"),
                kind: "dialogue",
                examples: parse_begin(&text),
            })
        })
        .collect()
}

/// FaithDial audit files in a directory (`faithdial_*.csv`, e.g. the audits of CMU-DoG and
/// of GPT-2 on Wizard of Wikipedia, which are not in the repository), named after the file.
fn load_faithdial_dir(dir: &Path) -> Vec<Set> {
    files_in(dir, "faithdial_", "csv")
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            Some(Set {
                name: format!("{}*", p.file_stem()?.to_str()?.replace('_', "-")),
                kind: "dialogue",
                examples: parse_faithdial(&text),
            })
        })
        .collect()
}

/// The human attribution labels of *Understanding Retrieval Augmentation for Long-Form
/// Question Answering* (Chen et al., 2023; <https://github.com/timchen0618/LFQA-Verification>):
/// its `data/` directory copied as `DIR/lfqa/` (`annotations/annotations-*.json`,
/// `docs/docs-webgpt.json`, `docs/docs-human.json`). Each answer sentence is one example: the
/// evidence documents (titles and texts) are its support, the question its prompt (an echo by
/// default); three annotators label it `supported`, `partially` or `not_supported`, and it is
/// hallucinated when at least two did not say `supported`. The answers of the `*_whudoc` file
/// were written from the human-found documents (`docs-human.json`), every other file's are
/// checked against WebGPT's documents, as the paper did. Questions with an even id are the
/// tuning rows (`lfqa-NAME-tune`), odd ids the reported rows (`lfqa-NAME`, and
/// `lfqa-NAME-answers`: each answer as one output, hallucinated when any of its sentences is).
fn load_lfqa_dir(dir: &Path) -> Vec<Set> {
    let root = dir.join("lfqa");
    let read_json = |p: &Path| -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(p).ok()?;
        serde_json::from_str(&text)
            .map_err(|e| eprintln!("skipping {}: {e}", p.display()))
            .ok()
    };
    let docs = |name: &str| -> std::collections::HashMap<u64, String> {
        let path = root.join("docs").join(format!("docs-{name}.json"));
        let Some(v) = read_json(&path) else {
            return std::collections::HashMap::new();
        };
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|q| {
                let text: Vec<String> = q["docs"]
                    .as_array()?
                    .iter()
                    .map(|d| {
                        format!(
                            "{}\n{}",
                            d["title"].as_str().unwrap_or_default(),
                            d["text"].as_str().unwrap_or_default()
                        )
                    })
                    .collect();
                Some((q["question_id"].as_u64()?, text.join("\n")))
            })
            .collect()
    };
    let (webgpt, human) = (docs("webgpt"), docs("human"));
    let mut sets = Vec::new();
    for path in files_in(&root.join("annotations"), "annotations-", "json") {
        let Some(v) = read_json(&path) else { continue };
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let name = stem.trim_start_matches("annotations-").replace('_', "-");
        let docs = if name.ends_with("whudoc") {
            &human
        } else {
            &webgpt
        };
        let (mut tune, mut report, mut answers) = (Vec::new(), Vec::new(), Vec::new());
        for q in v.as_array().into_iter().flatten() {
            let (Some(id), Some(knowledge)) = (
                q["question_id"].as_u64(),
                q["question_id"].as_u64().and_then(|id| docs.get(&id)),
            ) else {
                continue;
            };
            let support = vec![
                knowledge.clone(),
                q["question"].as_str().unwrap_or_default().to_owned(),
            ];
            let (mut whole, mut any) = (Vec::new(), false);
            for a in q["annotations"].as_array().into_iter().flatten() {
                let Some(sentence) = a["answer"].as_str() else {
                    continue;
                };
                let sentence = sentence.trim_end_matches("</s>").to_owned();
                let not_supported = a["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|l| l.as_str() != Some("supported"))
                    .count();
                let hallucinated = not_supported >= 2;
                any |= hallucinated;
                whole.push(sentence.clone());
                let example = Example {
                    output: sentence,
                    support: support.clone(),
                    hallucinated,
                    generic: false,
                    generator: None,
                };
                if id % 2 == 0 { &mut tune } else { &mut report }.push(example);
            }
            if id % 2 == 1 && !whole.is_empty() {
                answers.push(Example {
                    output: whole.join(" "),
                    support,
                    hallucinated: any,
                    generic: false,
                    generator: None,
                });
            }
        }
        for (suffix, examples) in [("-tune", tune), ("", report), ("-answers", answers)] {
            sets.push(Set {
                name: format!("lfqa-{name}{suffix}*"),
                kind: "qa",
                examples,
            });
        }
    }
    sets
}

/// Files in `dir` named `PREFIX*.EXT`, sorted.
fn files_in(dir: &Path, prefix: &str, ext: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
                && p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))
        })
        .collect();
    paths.sort();
    paths
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Realistic cases built from the development sets' text: a support of ~200-400 words
/// (expected answer, two context passages, a rendered prompt) and an output of ~50-100 words
/// that reuses most of its sentences from the support and invents the rest.
fn workload(sets: &[Set], cases: usize) -> Vec<(String, [String; 4])> {
    let sentences: Vec<&str> = sets
        .iter()
        .flat_map(|s| s.examples.iter())
        .flat_map(|e| e.support.iter().chain(std::iter::once(&e.output)))
        .flat_map(|t| t.split(". "))
        .filter(|s| s.split_whitespace().count() >= 5)
        .collect();
    let mut fallback = vec![
        "The 2013 Liqui Moly Bathurst 12 Hour was an endurance race for a variety of GT and touring car classes",
    ];
    let sentences = if sentences.is_empty() {
        std::mem::take(&mut fallback)
    } else {
        sentences
    };
    let pick = |seed: u64| sentences[(splitmix(seed) % sentences.len() as u64) as usize];
    let words = |s: &str| s.split_whitespace().count();
    let fill = |seed: u64, min_words: usize| {
        let mut text = String::new();
        let mut k = 0;
        while words(&text) < min_words {
            text.push_str(pick(seed.wrapping_mul(1000).wrapping_add(k)));
            text.push_str(". ");
            k += 1;
        }
        text
    };
    (0..cases as u64)
        .map(|i| {
            let expected = fill(i * 7 + 1, 15);
            let ctx1 = fill(i * 7 + 2, 110);
            let ctx2 = fill(i * 7 + 3, 110);
            let prompt = format!(
                "Answer the question using only the context.\nContext:\n{ctx1}\n{ctx2}\nQuestion: {}",
                pick(i * 7 + 4)
            );
            // Mostly sentences from the support, one invented sentence.
            let mut output = String::new();
            for s in ctx1.split(". ").take(3) {
                output.push_str(s);
                output.push_str(". ");
            }
            output.push_str(&fill(i * 7 + 5, 20));
            let support = [expected, ctx1, ctx2, prompt];
            (output, support)
        })
        .collect()
}

fn throughput(sets: &[Set]) {
    const CASES: usize = 2_000;
    const ROUNDS: usize = 25;
    let cases = workload(sets, CASES);
    let (out_words, sup_words) = cases.iter().fold((0usize, 0usize), |(o, s), (out, sup)| {
        (
            o + out.split_whitespace().count(),
            s + sup[..3]
                .iter()
                .map(|t| t.split_whitespace().count())
                .sum::<usize>(),
        )
    });
    println!(
        "throughput: {CASES} cases x {ROUNDS} rounds, output {} words, support (expected + context) {} words, prompt repeats the context",
        out_words / CASES,
        sup_words / CASES
    );
    // Warm up.
    for (out, sup) in cases.iter().take(200) {
        black_box(lexical::check(out, &refs(sup)));
    }
    // How the scorer calls it by default: expected + context as support, the prompt (which
    // repeats the context) as an echo.
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for (out, sup) in &cases {
            black_box(lexical::check_echo(
                black_box(out),
                &refs(&sup[..3]),
                &refs(&sup[3..]),
            ));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let n = (CASES * ROUNDS) as f64;
    println!(
        "  check_echo (the scorer's default):   {:>10.0} outputs/s ({:.1} us each)",
        n / secs,
        secs / n * 1e6
    );
    let started = Instant::now();
    let mut flagged = 0usize;
    for _ in 0..ROUNDS {
        for (out, sup) in &cases {
            let r = lexical::check(black_box(out), &refs(sup));
            flagged += r.unsupported.len();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  check (support indexed per output): {:>10.0} outputs/s ({:.1} us each, {} spans)",
        n / secs,
        secs / n * 1e6,
        flagged / ROUNDS
    );
    // The same outputs against expected + context + a prompt that does not repeat the
    // context: every support word is indexed (nothing is skipped as contained).
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for (out, sup) in &cases {
            let question = sup[3].rsplit("Question: ").next().unwrap_or_default();
            let support = [sup[0].as_str(), sup[1].as_str(), sup[2].as_str(), question];
            black_box(lexical::check(black_box(out), &support));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  check, prompt without the context:   {:>10.0} outputs/s ({:.1} us each)",
        n / secs,
        secs / n * 1e6
    );
    let prepared: Vec<Support> = cases
        .iter()
        .map(|(_, sup)| Support::new(&refs(sup)))
        .collect();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for ((out, _), support) in cases.iter().zip(&prepared) {
            black_box(lexical::check_with(support, black_box(out)));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  check_with (prepared support):       {:>10.0} outputs/s ({:.1} us each)",
        n / secs,
        secs / n * 1e6
    );
}

/// Sets the combiner may be fitted on (looked at while the check was developed, or the
/// tuning rows of the last round); every other set is only reported.
const TUNING: &[&str] = &[
    "begin-wow-dev",
    "begin-wow-test",
    "faithdial-wow-gold",
    "faithdial-wow-ctrl",
    "own-qa",
    "own-dialogue",
    "begin-cmu-dev*",
    "faithdial-cmu*",
    "faithdial-gpt2-wow*",
];

/// Features of every example with the scorer's default support (knowledge, prompt as echo).
fn set_features(set: &Set) -> Vec<([f64; fit::N], bool, f64)> {
    // FIT_FEATURES=0,1,8: use only these features (the others are set to 0).
    let keep: Option<Vec<usize>> = std::env::var("FIT_FEATURES")
        .ok()
        .map(|v| v.split(',').filter_map(|f| f.trim().parse().ok()).collect());
    let pos = set
        .examples
        .iter()
        .filter(|e| e.hallucinated)
        .count()
        .max(1) as f64;
    let neg = set
        .examples
        .iter()
        .filter(|e| !e.hallucinated)
        .count()
        .max(1) as f64;
    set.examples
        .iter()
        .map(|e| {
            let r = by_default(e);
            // Each set weighs the same, and so does each class within it (AUROC is balanced).
            let w = if e.hallucinated { 0.5 / pos } else { 0.5 / neg };
            let mut x = fit::features(&r, &e.output);
            if let Some(keep) = &keep {
                for (f, v) in x.iter_mut().enumerate() {
                    if !keep.contains(&f) {
                        *v = 0.0;
                    }
                }
            }
            (x, e.hallucinated, w)
        })
        .collect()
}

fn fit_eval(sets: &[Set]) {
    let lambda: f64 = std::env::var("FIT_LAMBDA")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.001);
    let feats: Vec<Vec<([f64; fit::N], bool, f64)>> = sets.iter().map(set_features).collect();
    let tuning: Vec<usize> = (0..sets.len())
        .filter(|&i| TUNING.contains(&sets[i].name.as_str()))
        .collect();
    let all: Vec<_> = tuning
        .iter()
        .flat_map(|&i| feats[i].iter().copied())
        .collect();
    let model = fit::fit(&all, lambda, 3000);
    println!(
        "fitted on {} rows of {} tuning sets, lambda {lambda}",
        all.len(),
        tuning.len()
    );
    for i in 0..fit::N {
        println!(
            "  {:<28} mean {:>8.4} sd {:>8.4} w {:>+8.4}",
            fit::NAMES[i],
            model.mean[i],
            model.sd[i],
            model.w[i]
        );
    }
    println!("  bias {:+.4}", model.bias);
    // Each feature alone: its AUROC on every tuning set.
    for f in 0..fit::N {
        let per: Vec<String> = tuning
            .iter()
            .map(|&i| {
                let labels: Vec<bool> = feats[i].iter().map(|r| r.1).collect();
                let xs: Vec<f64> = feats[i].iter().map(|r| r.0[f]).collect();
                format!("{:.3}", auroc(&xs, &labels))
            })
            .collect();
        println!("  alone {:<28} {}", fit::NAMES[f], per.join(" "));
    }
    println!(
        "{:<30} {:>6} {:>4} | {:>8} {:>8} {:>8}",
        "set", "role", "n", "shipped", "fitted", "delta"
    );
    let report = std::env::var_os("FIT_REPORT").is_some();
    let mut tuning_delta = 0.0;
    for (i, set) in sets.iter().enumerate() {
        let is_tuning = tuning.contains(&i);
        if !is_tuning && !report {
            continue;
        }
        // A tuning set is scored by a model fitted without it (leave one set out).
        let held;
        let m = if is_tuning {
            let rest: Vec<_> = tuning
                .iter()
                .filter(|&&j| j != i)
                .flat_map(|&j| feats[j].iter().copied())
                .collect();
            held = fit::fit(&rest, lambda, 3000);
            &held
        } else {
            &model
        };
        let labels: Vec<bool> = feats[i].iter().map(|r| r.1).collect();
        let shipped: Vec<f64> = set.examples.iter().map(|e| by_default(e).score).collect();
        let fitted: Vec<f64> = feats[i].iter().map(|r| m.score(&r.0)).collect();
        let (a, b) = (auroc(&shipped, &labels), auroc(&fitted, &labels));
        if is_tuning {
            tuning_delta += (b - a) / tuning.len() as f64;
        }
        println!(
            "{:<30} {:>6} {:>4} | {:>8.4} {:>8.4} {:>+8.4}",
            set.name,
            if is_tuning { "tune" } else { "REPORT" },
            labels.len(),
            a,
            b,
            b - a
        );
    }
    println!("mean delta over the tuning sets (each scored without itself): {tuning_delta:+.4}");
}
