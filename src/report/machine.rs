//! `--format json`: the spec's machine-output object, written as results stream by (never the
//! whole run in memory).

use std::io::{self, Write};

use serde_json::{Map, Value, json};

use super::RunView;
use crate::model::ResultRecord;

/// Streams one run object: header fields, then `cases` one at a time.
pub struct JsonRunWriter<W: Write> {
    w: W,
    first: bool,
}

fn to_io(e: serde_json::Error) -> io::Error {
    io::Error::other(e)
}

/// The metrics of one row as JSON, without the per-case verdicts (listed once, at the top).
fn metrics_json(m: &crate::model::Metrics) -> Value {
    let mut v = json!(m);
    if let Some(map) = v.as_object_mut() {
        map.remove("case_verdicts");
    }
    v
}

/// The header fields of the run object (everything but `cases`). With `repeat` > 1 it also
/// has `case_verdicts`: one verdict per case and provider.
pub fn header(view: &RunView<'_>, alerts: &[Value]) -> Map<String, Value> {
    let providers: Vec<Value> = view
        .overall()
        .map(|m| json!({ "provider": m.provider, "metrics": metrics_json(&m.metrics) }))
        .collect();
    let verdicts: Vec<Value> = view
        .overall()
        .flat_map(|m| m.metrics.case_verdicts.iter())
        .map(|v| json!(v))
        .collect();
    let tags: Vec<Value> = view
        .metrics
        .iter()
        .filter(|m| m.tag.is_some())
        .map(|m| json!({ "provider": m.provider, "tag": m.tag, "metrics": metrics_json(&m.metrics) }))
        .collect();
    let gates: Vec<Value> = view
        .gates
        .iter()
        .map(|g| json!({ "metric": g.metric, "provider": g.provider, "limit": g.limit, "value": g.value, "ok": g.ok }))
        .collect();
    let mut m = Map::new();
    m.insert("run_id".into(), json!(view.info.run_id));
    m.insert("suite".into(), json!(view.info.suite));
    m.insert("suite_hash".into(), json!(view.info.suite_hash));
    m.insert("started_at".into(), json!(view.info.started_at));
    m.insert("finished_at".into(), json!(view.info.finished_at));
    m.insert("status".into(), json!(view.info.status));
    m.insert("planned".into(), json!(view.info.planned));
    if let Some(filter) = &view.info.filter {
        m.insert("filter".into(), json!(filter));
    }
    m.insert("wall_secs".into(), json!(view.wall_secs));
    m.insert("providers".into(), Value::Array(providers));
    m.insert("tags".into(), Value::Array(tags));
    m.insert("gates".into(), Value::Array(gates));
    if let Some(policy) = view.overall().find_map(|m| m.metrics.repeat_policy) {
        m.insert("repeat_policy".into(), json!(policy));
    }
    if !verdicts.is_empty() {
        m.insert("case_verdicts".into(), Value::Array(verdicts));
    }
    m.insert("alerts".into(), Value::Array(alerts.to_vec()));
    m
}

/// One entry of `cases`.
pub fn case(rec: &ResultRecord) -> Value {
    let assertions: Vec<Value> = rec
        .assertions
        .iter()
        .map(|a| {
            json!({
                "type": a.type_name, "pass": a.pass, "score": a.score, "reason": a.reason,
                "details": a.details, "weight": a.weight, "metric": a.metric, "unscorable": a.unscorable,
            })
        })
        .collect();
    json!({
        "case_id": rec.job.case_id,
        "provider": rec.job.provider_id,
        "sample": rec.job.sample,
        "status": rec.status,
        "score": rec.score,
        "output": rec.output,
        "output_bytes": rec.output_bytes,
        "truncated": rec.truncated,
        "latency_ms": rec.latency_ms,
        "tokens_in": rec.tokens_in,
        "tokens_out": rec.tokens_out,
        "cost_usd": rec.cost_usd,
        "error": rec.error,
        "error_kind": rec.error_kind,
        "attempts": rec.attempts,
        "finish_reason": rec.finish_reason,
        "tags": rec.tags,
        "case_hash": rec.case_hash,
        "prompt": rec.prompt,
        "label": rec.label,
        "assertions": assertions,
    })
}

impl<W: Write> JsonRunWriter<W> {
    /// Write the header fields and open `cases`. `extra` fields are added to the object.
    pub fn begin(mut w: W, head: &Map<String, Value>) -> io::Result<Self> {
        let text = serde_json::to_string(head).map_err(to_io)?;
        // Reopen the serialised map to append "cases".
        let body = text.strip_suffix('}').unwrap_or(&text);
        w.write_all(body.as_bytes())?;
        w.write_all(if head.is_empty() {
            b"\"cases\":["
        } else {
            b",\"cases\":["
        })?;
        Ok(Self { w, first: true })
    }

    pub fn case(&mut self, rec: &ResultRecord) -> io::Result<()> {
        if !self.first {
            self.w.write_all(b",")?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.w, &case(rec)).map_err(to_io)
    }

    /// Close the object; returns the writer.
    pub fn end(mut self) -> io::Result<W> {
        self.w.write_all(b"]}\n")?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        CaseStatus, Job, ProviderMetrics, RepeatPolicy, ResultRecord, RunInfo, RunStatus,
    };

    fn rec(case: &str, sample: u32, status: CaseStatus) -> ResultRecord {
        ResultRecord {
            case_hash: "h".into(),
            tags: vec!["t".into()],
            ..ResultRecord::new(Job::of(case, "p", sample), status)
        }
    }

    fn head(records: &[ResultRecord]) -> Value {
        let mut acc = crate::metrics::RunAccumulator::with_policies(RepeatPolicy::Majority, []);
        for r in records {
            acc.add(r);
        }
        let metrics: Vec<ProviderMetrics> = acc.finish(None);
        let info = RunInfo {
            run_id: "r1".into(),
            suite: "s".into(),
            suite_hash: "h".into(),
            started_at: "2025-01-01T00:00:00Z".into(),
            finished_at: None,
            status: RunStatus::Complete,
            providers: vec!["p".into()],
            planned: 0,
            filter: None,
        };
        let view = RunView {
            info: &info,
            metrics: &metrics,
            gates: &[],
            wall_secs: None,
        };
        Value::Object(header(&view, &[]))
    }

    #[test]
    fn case_verdicts_are_listed_once_at_the_top_when_repeated() {
        use CaseStatus::{Failed as F, Passed as P};
        let h = head(&[
            rec("a", 0, P),
            rec("a", 1, F),
            rec("a", 2, P),
            rec("b", 0, F),
            rec("b", 1, F),
        ]);
        assert_eq!(h["repeat_policy"], json!("majority"));
        assert_eq!(
            h["case_verdicts"],
            json!([
                {"case_id": "a", "provider": "p", "samples": 3, "passed": 2, "failed": 1,
                 "errors": 0, "unscorable": 0, "agreement": 2.0 / 3.0, "policy": "majority",
                 "verdict": "passed", "flaky": true},
                {"case_id": "b", "provider": "p", "samples": 2, "passed": 0, "failed": 2,
                 "errors": 0, "unscorable": 0, "agreement": 1.0, "policy": "majority",
                 "verdict": "failed", "flaky": false},
            ])
        );
        let metrics = &h["providers"][0]["metrics"];
        assert_eq!(metrics["case_pass_rate"], json!(0.5));
        assert_eq!(metrics["flaky_cases"], json!(["a"]));
        assert!(metrics.get("case_verdicts").is_none());
        assert!(h["tags"][0]["metrics"].get("case_verdicts").is_none());
    }

    #[test]
    fn no_case_verdicts_without_repeats() {
        let h = head(&[
            rec("a", 0, CaseStatus::Passed),
            rec("b", 0, CaseStatus::Failed),
        ]);
        assert!(h.get("case_verdicts").is_none());
        assert!(h.get("repeat_policy").is_none());
        assert_eq!(h["providers"][0]["metrics"]["case_pass_rate"], json!(0.5));
        assert_eq!(h["providers"][0]["metrics"]["agreement"], Value::Null);
    }
}
