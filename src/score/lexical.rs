//! Lexical hallucination check: no model, deterministic, fast.
//!
//! STUB from the lead (the naive baseline: share of the output's non-stop words missing from
//! the support). The lexical engineer replaces the body; the signatures below are the contract
//! the scorer codes against.

use serde::Serialize;

/// One flagged span of the output (byte offsets into the output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// The result of the lexical pass over one output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lexical {
    /// Share of the output's checkable content that the support does not contain, in [0,1]
    /// (0 = fully supported). 0 when nothing in the output is checkable.
    pub score: f64,
    /// Unsupported spans, in output order.
    pub unsupported: Vec<Span>,
    /// Checkable units found in the output.
    pub checked: usize,
}

/// Check `output` against the support texts (`expected`, `context`, the rendered prompt).
#[must_use]
pub fn check(output: &str, support: &[&str]) -> Lexical {
    const STOP: &[&str] = &[
        "a", "an", "the", "and", "or", "but", "is", "are", "was", "were", "be", "to", "of", "in",
        "on", "at", "for", "with", "it", "this", "that", "i", "you", "we", "they", "he", "she",
    ];
    let words = |s: &str| -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, c) in s.char_indices() {
            if c.is_alphanumeric() {
                start.get_or_insert(i);
            } else if let Some(b) = start.take() {
                out.push((b, i));
            }
        }
        if let Some(b) = start {
            out.push((b, s.len()));
        }
        out
    };
    let known: std::collections::HashSet<String> = support
        .iter()
        .flat_map(|s| words(s).into_iter().map(|(a, b)| s[a..b].to_lowercase()))
        .collect();
    let mut checked = 0;
    let mut unsupported = Vec::new();
    for (a, b) in words(output) {
        let w = output[a..b].to_lowercase();
        if STOP.contains(&w.as_str()) {
            continue;
        }
        checked += 1;
        if !known.contains(&w) {
            unsupported.push(Span {
                start: a,
                end: b,
                text: output[a..b].to_string(),
            });
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let score = if checked == 0 {
        0.0
    } else {
        unsupported.len() as f64 / checked as f64
    };
    Lexical {
        score,
        unsupported,
        checked,
    }
}
