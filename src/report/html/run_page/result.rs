//! One result as the `<details>` block of a run page: its prompt, expected answer, context,
//! output (flagged claims marked) and what was checked.

use std::fmt::Write as _;

use super::escape::{push_clipped, push_escaped};
use crate::model::{CaseStatus, ResultRecord};
use crate::report::html::chart::Unit;
use crate::report::html::{Expected, MAX_TEXT};

/// Append one result as the `<details>` block of a run page.
pub(super) fn push_result(
    out: &mut String,
    rec: &ResultRecord,
    suite: &str,
    expected: &Expected,
    flip: Option<(CaseStatus, CaseStatus)>,
    scratch: &mut String,
) {
    push_result_head(out, rec, flip);
    push_expected(
        out,
        expected.lookup(suite, &rec.job.case_id, &rec.case_hash),
    );
    push_context(
        out,
        expected.context(suite, &rec.job.case_id, &rec.case_hash),
    );
    push_result_tail(out, rec, scratch);
}

/// A result's block up to its expected answer.
pub(in crate::report::html) fn push_result_head(
    out: &mut String,
    rec: &ResultRecord,
    flip: Option<(CaseStatus, CaseStatus)>,
) {
    let status = rec.status.as_str();
    out.push_str("<details class=\"result\"");
    if rec.status != CaseStatus::Passed {
        out.push_str(" open");
    }
    out.push_str("><summary><span class=\"badge ");
    push_escaped(out, status);
    out.push_str("\">");
    push_escaped(out, status);
    out.push_str("</span> <code>");
    push_escaped(out, &rec.job.case_id);
    out.push_str("</code> · ");
    push_escaped(out, &rec.job.provider_id);
    if rec.job.sample > 0 {
        let _ = write!(out, " · sample {}", rec.job.sample);
    }
    out.push_str(" · score ");
    push_escaped(out, &Unit::Score.show(rec.score));
    out.push_str(" · ");
    push_escaped(out, &Unit::Ms.show(rec.latency_ms));
    if let Some((from, to)) = flip {
        out.push_str(" · <b class=\"flip\">flip: ");
        push_escaped(out, from.as_str());
        out.push_str(" -&gt; ");
        push_escaped(out, to.as_str());
        out.push_str("</b>");
    }
    out.push_str("</summary>\n<div class=\"body\"><h4>Prompt</h4><pre>");
    push_clipped(out, &rec.prompt);
    out.push_str("</pre><h4>Expected</h4>");
}

/// A result's expected answer, or why there is none.
pub(in crate::report::html) fn push_expected(out: &mut String, exp: Result<&str, &'static str>) {
    match exp {
        Ok(e) if !e.is_empty() => {
            out.push_str("<pre>");
            push_clipped(out, e);
            out.push_str("</pre>");
        }
        Ok(_) => out.push_str("<p class=\"muted\"></p>"),
        Err(note) => {
            out.push_str("<p class=\"muted\">");
            push_escaped(out, note);
            out.push_str("</p>");
        }
    }
}

/// The grounding passages of a result's case (`context:`), when it has any.
pub(in crate::report::html) fn push_context(out: &mut String, context: &[String]) {
    if context.is_empty() {
        return;
    }
    out.push_str("<h4>Context</h4>");
    for passage in context {
        out.push_str("<pre class=\"context\">");
        push_clipped(out, passage);
        out.push_str("</pre>");
    }
}

/// What the hallucination check flagged in an output: spans (byte offsets into it, in
/// order, not overlapping) to mark, and flagged claims it could not place.
#[derive(Default)]
struct Flagged {
    /// (start, end, contradiction)
    spans: Vec<(usize, usize, bool)>,
    unplaced: Vec<(String, bool)>,
}

impl Flagged {
    /// From the `unsupported` and `contradictions` details of the result's assertions (the
    /// lexical pass and the judge both give `{text, start, end}`).
    fn of(rec: &ResultRecord, output: &str) -> Self {
        let mut out = Self::default();
        for a in &rec.assertions {
            for (key, contradiction) in [("contradictions", true), ("unsupported", false)] {
                let Some(list) = a.details.get(key).and_then(serde_json::Value::as_array) else {
                    continue;
                };
                for item in list {
                    let at = |k: &str| {
                        item.get(k)
                            .and_then(serde_json::Value::as_u64)
                            .and_then(|v| usize::try_from(v).ok())
                    };
                    match (at("start"), at("end")) {
                        (Some(start), Some(end))
                            if start < end
                                && end <= output.len()
                                && output.is_char_boundary(start)
                                && output.is_char_boundary(end) =>
                        {
                            out.spans.push((start, end, contradiction));
                        }
                        _ => {
                            let text = item
                                .get("text")
                                .and_then(serde_json::Value::as_str)
                                .or_else(|| item.as_str());
                            if let Some(t) = text
                                && !out.unplaced.iter().any(|(u, _)| u == t)
                            {
                                out.unplaced.push((t.to_owned(), contradiction));
                            }
                        }
                    }
                }
            }
        }
        // Contradictions first at a start, then the longest; overlaps keep the first.
        out.spans
            .sort_by_key(|&(start, end, c)| (start, !c, std::cmp::Reverse(end)));
        let mut kept: Vec<(usize, usize, bool)> = Vec::with_capacity(out.spans.len());
        for span in out.spans.drain(..) {
            if kept.last().is_none_or(|last| span.0 >= last.1) {
                kept.push(span);
            }
        }
        out.spans = kept;
        out
    }

    /// The legend under a marked output, and the flagged claims not found in it.
    fn push_note(&self, out: &mut String) {
        if self.spans.is_empty() && self.unplaced.is_empty() {
            return;
        }
        out.push_str("<p class=\"muted small\">");
        if !self.spans.is_empty() {
            out.push_str("Flagged by the hallucination check: <mark class=\"unsupported\">unsupported</mark> (not in the expected answer, context or prompt), <mark class=\"contradiction\">contradicted</mark> (the support says otherwise).");
        }
        for (text, contradiction) in &self.unplaced {
            out.push_str(if *contradiction {
                " Contradicted claim, not found word for word in the output: "
            } else {
                " Unsupported claim, not found word for word in the output: "
            });
            out.push_str("<q>");
            push_clipped(out, text);
            out.push_str("</q>");
        }
        out.push_str("</p>");
    }
}

/// `text` escaped and cut as [`push_clipped`] cuts it, with `spans` (sorted, apart, on
/// character boundaries) wrapped in `<mark>`.
fn push_marked(out: &mut String, text: &str, spans: &[(usize, usize, bool)]) {
    let cut = text.char_indices().nth(MAX_TEXT).map(|(at, _)| at);
    let shown = &text[..cut.unwrap_or(text.len())];
    let mut at = 0;
    for &(start, end, contradiction) in spans {
        if start >= shown.len() {
            break;
        }
        let end = end.min(shown.len());
        push_escaped(out, &shown[at..start]);
        out.push_str(if contradiction {
            "<mark class=\"contradiction\" title=\"contradicted\">"
        } else {
            "<mark class=\"unsupported\" title=\"unsupported\">"
        });
        push_escaped(out, &shown[start..end]);
        out.push_str("</mark>");
        at = end;
    }
    push_escaped(out, &shown[at..]);
    if let Some(c) = cut {
        let _ = write!(
            out,
            "\n… [{} more characters not shown]",
            text[c..].chars().count()
        );
    }
}

/// "truncated: N bytes, showing the first M" for an output cut at `max_output_bytes` (M: the
/// bytes kept, before the truncation mark; N: the answer's length, or the bytes read of an
/// `exec` command stopped at its cap).
#[must_use]
pub fn truncation_note(rec: &ResultRecord) -> Option<String> {
    if !rec.truncated {
        return None;
    }
    let output = rec.output.as_deref().unwrap_or_default();
    let kept = output
        .rfind("\n[evalwatch: output truncated")
        .unwrap_or(output.len());
    Some(match rec.output_bytes {
        Some(n) => format!("truncated: {n} bytes, showing the first {kept}"),
        None => format!("truncated: showing the first {kept} bytes"),
    })
}

/// A result's block after its expected answer.
pub(in crate::report::html) fn push_result_tail(
    out: &mut String,
    rec: &ResultRecord,
    scratch: &mut String,
) {
    out.push_str("\n<h4>Output</h4>");
    if let Some(note) = truncation_note(rec) {
        let _ = write!(out, "<p class=\"muted truncated\">{note}</p>");
    }
    match rec.output.as_deref() {
        Some(o) if !o.is_empty() => {
            let flagged = Flagged::of(rec, o);
            out.push_str("<pre>");
            if flagged.spans.is_empty() {
                push_clipped(out, o);
            } else {
                push_marked(out, o, &flagged.spans);
            }
            out.push_str("</pre>");
            flagged.push_note(out);
        }
        _ => out.push_str("<p class=\"muted\">no output</p>"),
    }
    if let Some(e) = rec.error.as_deref().filter(|e| !e.is_empty()) {
        out.push_str("<h4>Error</h4><pre>");
        push_clipped(out, e);
        out.push_str("</pre>");
    }
    out.push('\n');
    if !rec.assertions.is_empty() {
        out.push_str("<table><thead><tr><th>Assertion</th><th>Verdict</th><th>Score</th><th>Reason</th></tr></thead><tbody>");
        for a in &rec.assertions {
            let (verdict, class) = if a.unscorable {
                ("unscorable", "unscorable")
            } else if a.pass {
                ("pass", "passed")
            } else {
                ("fail", "failed")
            };
            out.push_str("<tr><td>");
            push_escaped(out, &a.type_name);
            out.push_str("</td><td><span class=\"badge ");
            out.push_str(class);
            out.push_str("\">");
            out.push_str(verdict);
            out.push_str("</span></td><td>");
            scratch.clear();
            let _ = write!(scratch, "{:.3}", a.score);
            push_escaped(out, scratch);
            out.push_str("</td><td>");
            push_clipped(out, &a.reason);
            out.push_str("</td></tr>");
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("\n<p class=\"muted small\">");
    meta(scratch, rec);
    push_escaped(out, scratch);
    out.push_str("</p></div></details>\n");
}

/// The line under a result: attempts, tokens, cost, finish reason, tags, label, case hash.
fn meta(out: &mut String, rec: &ResultRecord) {
    out.clear();
    let _ = write!(out, "attempts {}", rec.attempts);
    if let (Some(i), Some(o)) = (rec.tokens_in, rec.tokens_out) {
        let _ = write!(out, " · tokens {i} in / {o} out");
    }
    if let Some(c) = rec.cost_usd {
        let _ = write!(out, " · cost {}", Unit::Usd.format(c));
    }
    if let Some(f) = &rec.finish_reason {
        let _ = write!(out, " · finish {f}");
    }
    if !rec.tags.is_empty() {
        let _ = write!(out, " · tags {}", rec.tags.join(", "));
    }
    if let Some(l) = &rec.label {
        let _ = write!(
            out,
            " · label expected {} predicted {}",
            l.expected,
            l.predicted.as_deref().unwrap_or("none")
        );
    }
    out.push_str(" · case hash ");
    out.extend(rec.case_hash.chars().take(12));
}
