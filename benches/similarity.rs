//! `similarity` metrics against human similarity judgements: Spearman correlation of every
//! algorithm's score with the STS benchmark's gold scores (0-5), per split.
//!
//! Run: `cargo bench --bench similarity` (or `cargo test --bench similarity` for a quick
//! unoptimised run) with `STSB_DIR` (or `--dir DIR`) naming a directory that holds
//! `stsb-en-train.csv`, `stsb-en-dev.csv` and `stsb-en-test.csv` in the format of
//! <https://github.com/PhilipMay/stsb-multi-mt> (`sentence1,sentence2,score`, CSV). The data
//! is not in the repository; docs/scoring.md says how to fetch it. `soft-tokens` was designed
//! on train and dev; test is the reported split.

use std::path::PathBuf;

use evalwatch::model::SimilarityAlgo;
use evalwatch::score::similarity::similarity_of;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut dir = std::env::var_os("STSB_DIR").map(PathBuf::from);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => dir = it.next().map(PathBuf::from),
            "eval" => {}
            other => {
                eprintln!("unknown argument `{other}`: use --dir DIR (or STSB_DIR)");
                std::process::exit(2);
            }
        }
    }
    let Some(dir) = dir else {
        eprintln!("similarity bench: set STSB_DIR or --dir DIR (see docs/scoring.md); skipping");
        return;
    };
    let splits: Vec<(&str, Vec<Pair>)> = ["train", "dev", "test"]
        .into_iter()
        .filter_map(|split| {
            let path = dir.join(format!("stsb-en-{split}.csv"));
            match load(&path) {
                Ok(rows) => Some((split, rows)),
                Err(e) => {
                    eprintln!("skipping {}: {e}", path.display());
                    None
                }
            }
        })
        .collect();
    print!("{:<16}", "algorithm");
    for (split, rows) in &splits {
        print!(" {:>14}", format!("{split} ({})", rows.len()));
    }
    println!();
    for name in SimilarityAlgo::ALL {
        let Some(algo) = SimilarityAlgo::parse(name) else {
            continue;
        };
        print!("{name:<16}");
        for (_, rows) in &splits {
            let ours: Vec<f64> = rows
                .iter()
                .map(|(a, b, _)| similarity_of(a, b, algo))
                .collect();
            let gold: Vec<f64> = rows.iter().map(|r| r.2).collect();
            print!(" {:>14.4}", spearman(&ours, &gold));
        }
        println!();
    }
}

/// Two sentences and their gold similarity (0-5).
type Pair = (String, String, f64);

fn load(path: &std::path::Path) -> Result<Vec<Pair>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    for (i, r) in reader.records().enumerate() {
        let r = r.map_err(|e| format!("row {}: {e}", i + 1))?;
        let score = r
            .get(2)
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("row {}: no score in the third column", i + 1))?;
        rows.push((
            r.get(0).unwrap_or_default().to_owned(),
            r.get(1).unwrap_or_default().to_owned(),
            score,
        ));
    }
    Ok(rows)
}

/// Average ranks (ties share their mean rank), 1-based.
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut r = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]].total_cmp(&xs[idx[i]]).is_eq() {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (Pearson on average ranks).
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}
