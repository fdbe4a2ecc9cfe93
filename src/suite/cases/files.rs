//! Included case files: `include:` entries resolved against the including file, YAML case
//! files (nested up to [`MAX_INCLUDE_DEPTH`]), JSONL (plain lines decoded straight from their
//! text, the rest through the located path) and CSV.

use std::io::{BufRead, Read as _};
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::{CaseBuilder, MAX_INCLUDE_DEPTH, parent, resolve_shared};
use crate::model::limits;
use crate::model::{Assertion, Case, Location, Vars};
use crate::suite::assertion::{self, scalar_text};
use crate::suite::decode::Ctx;
use crate::suite::hash;
use crate::suite::wire::WireInclude;
use crate::suite::yaml::{self, Node};

impl CaseBuilder<'_> {
    pub(super) fn include(&mut self, ctx: &mut Ctx, item: &Node, base_dir: &Path, depth: usize) {
        let Some(wire) = ctx.decode::<WireInclude>(item, "an include") else {
            return;
        };
        let at = item.get("include").map_or(item, |(_, v)| v);
        let path = base_dir.join(&wire.include);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let max = if ext == "yaml" || ext == "yml" {
            limits::MAX_YAML_FILE_BYTES
        } else {
            limits::MAX_CASE_FILE_BYTES
        };
        // Checked before anything opens it: a FIFO or a device would block or never end.
        if let Err(e) = limits::open_regular(&path, max) {
            let looked = match e {
                limits::FileProblem::NotFound => format!(" (looked for {})", path.display()),
                _ => String::new(),
            };
            ctx.error(at, format!("included file `{}` {e}{looked}", wire.include));
            return;
        }
        let mut inner = Ctx::new(&path, ext == "yaml" || ext == "yml");
        match ext.as_str() {
            "jsonl" | "ndjson" => self.add_jsonl(&mut inner, &path),
            "csv" => self.add_csv(&mut inner, &path),
            "yaml" | "yml" if depth >= MAX_INCLUDE_DEPTH => ctx.error(
                at,
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH} levels"),
            ),
            "yaml" | "yml" => {
                let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                if let Some(first) = self.including.iter().position(|(p, _)| *p == canonical) {
                    let chain: Vec<&str> = self.including[first..]
                        .iter()
                        .map(|(_, written)| written.as_str())
                        .chain([wire.include.as_str()])
                        .collect();
                    ctx.error(
                        at,
                        format!(
                            "include cycle: {}; a case file cannot include itself, directly or through others",
                            chain.join(" -> ")
                        ),
                    );
                } else {
                    self.including.push((canonical, wire.include.clone()));
                    self.add_yaml_file(&mut inner, &path, depth + 1);
                    self.including.pop();
                }
            }
            _ => ctx.error(
                at,
                format!(
                    "cannot include `{}`: case files are .jsonl, .csv or .yaml",
                    wire.include
                ),
            ),
        }
        // The included file's own problems first, then those of the files it includes (each
        // block ordered so already): files are reported in the order they are included.
        let (mut own, mut nested): (Vec<_>, Vec<_>) = inner
            .diags
            .drain(..)
            .partition(|d| *d.location.file == *path);
        ctx.diags.append(&mut own);
        ctx.diags.append(&mut nested);
    }

    fn add_yaml_file(&mut self, ctx: &mut Ctx, path: &Path, depth: usize) {
        let at_start = ctx.at(1, 1);
        let bytes = match limits::read_regular(path, limits::MAX_YAML_FILE_BYTES) {
            Ok(b) => b,
            Err(e) => {
                return ctx.push(
                    Location {
                        line: 0,
                        col: 0,
                        ..at_start
                    },
                    format!("cannot read file: {e}"),
                );
            }
        };
        let parsed = yaml::decode_utf8(&bytes).and_then(yaml::parse);
        match parsed {
            Err(e) => ctx.push(ctx.at(e.line, e.col), e.message),
            Ok(None) => ctx.push(
                at_start,
                "file is empty; a YAML case file holds a list of cases",
            ),
            Ok(Some(root)) => self.add_list(ctx, &root, depth),
        }
    }

    fn add_jsonl(&mut self, ctx: &mut Ctx, path: &Path) {
        let file = match limits::open_regular(path, limits::MAX_CASE_FILE_BYTES) {
            Ok(f) => f,
            Err(e) => return ctx.push(ctx.at(0, 0), format!("the file {e}")),
        };
        let base_dir = parent(path);
        let mut reader =
            std::io::BufReader::with_capacity(1 << 16, file.take(limits::MAX_CASE_FILE_BYTES));
        let mut buf = Vec::new();
        let mut line_no = 0;
        loop {
            buf.clear();
            let line_max = limits::MAX_LINE_BYTES as u64 + 1;
            match (&mut reader).take(line_max).read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    return ctx.push(ctx.at(line_no + 1, 1), format!("cannot read file: {e}"));
                }
            }
            line_no += 1;
            if buf.len() > limits::MAX_LINE_BYTES {
                return ctx.push(
                    ctx.at(line_no, 1),
                    format!(
                        "line longer than {}: one case per line, each under the limit",
                        limits::fmt_bytes(limits::MAX_LINE_BYTES as u64)
                    ),
                );
            }
            let text = match yaml::decode_utf8(&buf) {
                Ok(t) => t,
                Err(e) => {
                    ctx.push(ctx.at(line_no, e.col), e.message);
                    continue;
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            if self.add_plain_jsonl(ctx, text, line_no) {
                continue;
            }
            match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Object(_)) => {
                    let node = Node::from_json(&v, line_no, 1);
                    self.add(ctx, &node, &base_dir);
                }
                Ok(_) => ctx.push(
                    ctx.at(line_no, 1),
                    "each line must be a JSON object (one case)",
                ),
                Err(e) => ctx.push(
                    ctx.at(line_no, e.column().max(1)),
                    format!("invalid JSON: {e}"),
                ),
            }
        }
    }

    fn add_csv(&mut self, ctx: &mut Ctx, path: &Path) {
        let base_dir = parent(path);
        let mut reader = match limits::open_regular(path, limits::MAX_CASE_FILE_BYTES) {
            Ok(f) => csv::ReaderBuilder::new()
                .flexible(false)
                .from_reader(f.take(limits::MAX_CASE_FILE_BYTES)),
            Err(e) => return ctx.push(ctx.at(0, 0), format!("the file {e}")),
        };
        let headers = match reader.headers() {
            Ok(h) => h.iter().map(|h| h.trim().to_owned()).collect::<Vec<_>>(),
            Err(e) => return ctx.push(ctx.at(1, 1), format!("invalid CSV header: {e}")),
        };
        if !headers.iter().any(|h| h == "id") {
            return ctx.push(ctx.at(1, 1), "CSV case file needs an `id` column");
        }
        for record in reader.records() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line() as usize);
                    ctx.push(ctx.at(line, 1), format!("invalid CSV record: {e}"));
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line() as usize);
            let mut case = serde_json::Map::new();
            let mut vars = serde_json::Map::new();
            for (name, cell) in headers.iter().zip(record.iter()) {
                match name.as_str() {
                    "id" => {
                        case.insert("id".into(), Value::from(cell.trim()));
                    }
                    "expected" | "context" if cell.is_empty() => {}
                    "expected" | "context" => {
                        case.insert(name.clone(), Value::from(cell));
                    }
                    "tags" => {
                        let tags: Vec<Value> = cell
                            .split(';')
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(Value::from)
                            .collect();
                        case.insert("tags".into(), Value::Array(tags));
                    }
                    _ => {
                        vars.insert(name.clone(), Value::from(cell));
                    }
                }
            }
            if let Some(Value::String(id)) = case.get("id")
                && id.is_empty()
            {
                case.remove("id");
            }
            case.insert("vars".into(), Value::Object(vars));
            let node = Node::from_json(&Value::Object(case), line, 1);
            self.add(ctx, &node, &base_dir);
        }
    }

    /// One JSONL line holding a plain, valid case (no `assert`, no `repeat_policy`), decoded
    /// straight from its text: the common shape of a large generated case file. Returns
    /// false, having changed nothing, for anything else (an unusual field, a type to check,
    /// any error), which then takes the located path of [`CaseBuilder::add`] and its
    /// diagnostics. The case built is the one `add` would build.
    fn add_plain_jsonl(&mut self, ctx: &mut Ctx, text: &str, line_no: usize) -> bool {
        let Ok(wire) = serde_json::from_str::<PlainCase>(text) else {
            return false;
        };
        if wire.id.trim().is_empty() || self.seen.contains_key(wire.id.as_str()) {
            return false;
        }
        // The general path reads numbers through YAML nodes (i64 or f64): an integer above
        // i64::MAX would come out as a float there, and hash differently.
        let plain = |v: &Value| plain_numbers(v);
        if !wire
            .vars
            .as_ref()
            .is_none_or(|vars| vars.iter().all(|(_, v)| plain(v)))
            || !wire.expected.as_ref().is_none_or(plain)
            || !wire.context.as_ref().is_none_or(plain)
        {
            return false;
        }
        let expected = match &wire.expected {
            None | Some(Value::Null) => None,
            Some(v) => match scalar_text(v) {
                Some(t) => Some(t),
                None => return false,
            },
        };
        let context = match &wire.context {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let texts: Vec<String> = items.iter().filter_map(scalar_text).collect();
                if texts.len() != items.len() {
                    return false;
                }
                texts
            }
            Some(v) => match scalar_text(v) {
                Some(t) => vec![t],
                None => return false,
            },
        };
        if wire.threshold.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            return false;
        }
        let vars = self.defaults.vars.merged(wire.vars.unwrap_or_default());
        if self
            .needs
            .iter()
            .any(|(_, needed)| needed.iter().any(|v| !vars.contains_key(v)))
        {
            return false;
        }
        let mut asserts: Vec<Arc<Assertion>> = Vec::with_capacity(self.defaults.asserts.len());
        for (p, last) in self.defaults.asserts.iter().zip(&mut self.shared) {
            match resolve_shared(p, last, expected.as_deref()) {
                Ok(a) => asserts.push(a),
                Err(_) => return false,
            }
        }
        let location = ctx.at(line_no, 1);
        if asserts.is_empty() {
            match &expected {
                Some(e) => asserts.push(Arc::new(assertion::default_rule(e, location.clone()))),
                None => return false,
            }
        }
        if self.tracks_ids() {
            self.remember(&wire.id, &location);
        }
        let mut case = Case {
            id: wire.id,
            tags: wire.tags.unwrap_or_default(),
            vars,
            expected,
            context,
            asserts,
            threshold: wire.threshold.or(self.defaults.threshold),
            repeat_policy: None,
            hash: String::new(),
            location,
        };
        case.hash = hash::case_hash(&case);
        self.emit(ctx, case);
        true
    }
}

/// The fields of a plain JSONL case (see `CaseBuilder::add_plain_jsonl`); any other field,
/// `assert` and `repeat_policy` included, sends the line to the general path.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainCase {
    id: String,
    #[allow(dead_code)]
    description: Option<String>,
    tags: Option<Vec<String>>,
    vars: Option<Vars>,
    expected: Option<Value>,
    context: Option<Value>,
    threshold: Option<f64>,
}

/// No integer in `v` is above `i64::MAX`.
fn plain_numbers(v: &Value) -> bool {
    match v {
        Value::Number(n) => !(n.is_u64() && n.as_i64().is_none()),
        Value::Array(items) => items.iter().all(plain_numbers),
        Value::Object(map) => map.values().all(plain_numbers),
        _ => true,
    }
}
