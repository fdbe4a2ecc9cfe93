//! Cases: inline YAML cases and included case files (JSONL, CSV, YAML), defaults merged,
//! assertions resolved, template variables checked, duplicate ids caught, hashes computed.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Read as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::assertion::{self, Pending, scalar_text};
use super::decode::{Ctx, did_you_mean};
use super::hash;
use super::wire::{WireCase, WireInclude};
use super::yaml::{self, Kind, Node};
use crate::model::limits;
use crate::model::{Assertion, Case, Location, RepeatPolicy, Vars};

/// Deepest chain of YAML case files including each other.
const MAX_INCLUDE_DEPTH: usize = 8;

/// Defaults of a suite, validated.
#[derive(Default)]
pub(crate) struct Defaults {
    pub vars: Vars,
    pub asserts: Vec<Pending>,
    pub threshold: Option<f64>,
}

/// Where the built cases go.
pub(crate) enum Out<'a> {
    /// Kept in `CaseBuilder::cases` (the suite holds them all).
    Keep,
    /// Handed one by one to a callback as they are built, valid ones only (a case with a
    /// problem is reported and not handed on). With `check`, the builder keeps what the
    /// suite's hash and checks need (see [`Tally`]) and catches duplicate ids; without, it
    /// keeps nothing per case (a second pass over files another pass checks).
    Stream {
        sink: Box<dyn FnMut(Case) + 'a>,
        check: bool,
    },
    /// None: only the head is read (the loader stops before the cases).
    Head,
}

/// What a streaming builder keeps of the cases it handed on.
#[derive(Default)]
pub(crate) struct Tally {
    /// `(id, hash)` of every case as the JSON array the suite hash reads.
    pub pairs: Vec<u8>,
    /// Cases with their own `repeat_policy`.
    pub overrides: std::collections::BTreeMap<String, RepeatPolicy>,
    pub has_hallucination: bool,
    pub count: usize,
}

/// Where a case id was first defined: an index into `CaseBuilder::seen_files`, line, column.
#[derive(Clone, Copy)]
struct SeenAt {
    file: u32,
    line: u32,
    col: u32,
}

/// Builds the cases of one suite, from whatever file each comes from.
pub(crate) struct CaseBuilder<'a> {
    pub defaults: Defaults,
    /// Variables each template needs, with the template's name for messages.
    pub needs: Vec<(String, BTreeSet<String>)>,
    /// Where each case id was first defined (compact: a large suite holds one per case).
    seen: HashMap<Box<str>, SeenAt>,
    /// The files `seen` points into.
    seen_files: Vec<Arc<Path>>,
    /// The last resolution of each default assertion, with the `expected` it was resolved
    /// for: a case whose resolution is the same (always, for a default that does not read
    /// `expected`) shares it.
    shared: Vec<Option<Resolved>>,
    pub cases: Vec<Case>,
    /// Named metrics declared by assertions (`metric:`).
    pub named_metrics: BTreeSet<String>,
    /// Every tag of a valid case (what an alert rule's `tag:` may name).
    pub case_tags: BTreeSet<String>,
    pub out: Out<'a>,
    pub tally: Tally,
    /// Cases built so far (to stop at [`limits::MAX_CASES`]).
    emitted: usize,
    /// With a stream: the providers and project the judges of each case are checked
    /// against as it is built (with `Keep`, the suite loader checks them all at the end).
    pub judges: Option<(Vec<crate::model::ProviderSpec>, crate::model::ProjectConfig)>,
}

impl<'a> CaseBuilder<'a> {
    pub fn new(defaults: Defaults, needs: Vec<(String, BTreeSet<String>)>, out: Out<'a>) -> Self {
        let named_metrics = defaults
            .asserts
            .iter()
            .filter_map(|p| p.metric().map(str::to_owned))
            .collect();
        Self {
            shared: vec![None; defaults.asserts.len()],
            defaults,
            needs,
            seen: HashMap::new(),
            seen_files: Vec::new(),
            cases: Vec::new(),
            named_metrics,
            case_tags: BTreeSet::new(),
            out,
            tally: Tally::default(),
            emitted: 0,
            judges: None,
        }
    }

    /// Remember where case `id` is defined.
    fn remember(&mut self, id: &str, at: &Location) {
        let known = self
            .seen_files
            .iter()
            .rposition(|f| Arc::ptr_eq(f, &at.file) || *f == at.file);
        let file = known.unwrap_or_else(|| {
            self.seen_files.push(Arc::clone(&at.file));
            self.seen_files.len() - 1
        });
        let at = SeenAt {
            file: u32::try_from(file).unwrap_or(u32::MAX),
            line: u32::try_from(at.line).unwrap_or(u32::MAX),
            col: u32::try_from(at.col).unwrap_or(u32::MAX),
        };
        self.seen.insert(id.into(), at);
    }

    /// Where case `id` was first defined, if it was.
    fn first_defined(&self, id: &str) -> Option<Location> {
        let at = self.seen.get(id)?;
        Some(Location {
            file: Arc::clone(self.seen_files.get(at.file as usize)?),
            line: at.line as usize,
            col: at.col as usize,
        })
    }

    /// Whether ids are remembered to catch duplicates (not by an unchecked stream).
    fn tracks_ids(&self) -> bool {
        !matches!(self.out, Out::Stream { check: false, .. })
    }

    /// A case built without a problem: kept, or checked, tallied and handed on.
    fn emit(&mut self, ctx: &mut Ctx, case: Case) {
        self.emitted += 1;
        let max = limits::max_cases();
        if self.emitted > max {
            if self.emitted == max + 1 {
                ctx.push(
                    case.location.clone(),
                    format!(
                        "more than {max} cases in one suite (the limit; EVALWATCH_MAX_CASES sets another): split the suite"
                    ),
                );
            }
            return;
        }
        for tag in &case.tags {
            if !self.case_tags.contains(tag) {
                self.case_tags.insert(tag.clone());
            }
        }
        let Out::Stream { sink, check } = &mut self.out else {
            self.cases.push(case);
            return;
        };
        if !*check {
            sink(case);
            return;
        }
        let before = ctx.diags.len();
        if let Some((providers, project)) = &self.judges {
            assertion::check_judges(ctx, std::slice::from_ref(&case), providers, project);
        }
        if ctx.diags.len() != before {
            return;
        }
        let t = &mut self.tally;
        t.pairs.push(if t.count == 0 { b'[' } else { b',' });
        // Serialising plain strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut t.pairs, &(case.id.as_str(), case.hash.as_str()));
        t.count += 1;
        if let Some(p) = case.repeat_policy {
            t.overrides.insert(case.id.clone(), p);
        }
        t.has_hallucination |= assertion::checks_hallucination(&case);
        sink(case);
    }

    /// The `cases:` list of a YAML file (a suite or an included YAML case file).
    pub fn add_list(&mut self, ctx: &mut Ctx, list: &Node, depth: usize) {
        let Some(items) = list.as_seq() else {
            ctx.error(
                list,
                format!("`cases` must be a list, found {}", list.type_name()),
            );
            return;
        };
        let base_dir = parent(&ctx.file);
        for item in items {
            if item.get("include").is_some() {
                self.include(ctx, item, &base_dir, depth);
            } else {
                self.add(ctx, item, &base_dir);
            }
        }
    }

    fn include(&mut self, ctx: &mut Ctx, item: &Node, base_dir: &Path, depth: usize) {
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
                format!(
                    "includes nested deeper than {MAX_INCLUDE_DEPTH} levels (an include cycle?)"
                ),
            ),
            "yaml" | "yml" => self.add_yaml_file(&mut inner, &path, depth + 1),
            _ => ctx.error(
                at,
                format!(
                    "cannot include `{}`: case files are .jsonl, .csv or .yaml",
                    wire.include
                ),
            ),
        }
        ctx.diags.append(&mut inner.diags);
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

    /// One case, from any file.
    pub fn add(&mut self, ctx: &mut Ctx, node: &Node, base_dir: &Path) {
        let before = ctx.diags.len();
        let id_text = node
            .get("id")
            .and_then(|(_, v)| v.as_str())
            .map(str::to_owned);
        let what = id_text
            .as_ref()
            .map_or_else(|| "a case".to_owned(), |id| format!("case `{id}`"));
        let location = ctx.loc(node);
        let Some(wire) = ctx.decode::<WireCase>(node, &what) else {
            return;
        };
        let id = match &wire.id {
            Some(id) if !id.trim().is_empty() => id.clone(),
            Some(_) => {
                ctx.error(
                    node.get("id").map_or(node, |(_, v)| v),
                    "case id must not be empty",
                );
                return;
            }
            None => {
                ctx.error(
                    node,
                    "case has no `id`; every case needs a stable `id` (history follows it)",
                );
                return;
            }
        };
        if let Some(first) = self.first_defined(&id) {
            let where_ = if first.file == location.file {
                format!("line {}", first.line)
            } else {
                first.to_string()
            };
            ctx.error(
                node,
                format!("duplicate case id `{id}`; first defined at {where_}"),
            );
        } else if self.tracks_ids() {
            self.remember(&id, &location);
        }
        let expected = match &wire.expected {
            None | Some(Value::Null) => None,
            Some(v) => {
                let text = scalar_text(v);
                if text.is_none() {
                    ctx.error(field(node, "expected"), "`expected` must be a string");
                }
                text
            }
        };
        let context = match &wire.context {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let texts: Vec<String> = items.iter().filter_map(scalar_text).collect();
                if texts.len() != items.len() {
                    ctx.error(
                        field(node, "context"),
                        "every item of `context` must be a string (a passage of grounding text)",
                    );
                }
                texts
            }
            Some(v) => scalar_text(v).map_or_else(
                || {
                    ctx.error(
                        field(node, "context"),
                        "`context` must be a string or a list of strings",
                    );
                    Vec::new()
                },
                |s| vec![s],
            ),
        };
        if let Some(t) = wire.threshold
            && !(0.0..=1.0).contains(&t)
        {
            ctx.error(
                field(node, "threshold"),
                format!("threshold must be between 0 and 1, got {t}"),
            );
        }
        let own: Vec<Pending> = match node.get("assert").map(|(_, v)| v) {
            None => Vec::new(),
            Some(list) if list.is_null() => Vec::new(),
            Some(list) => {
                if let Some(items) = list.as_seq() {
                    items
                        .iter()
                        .filter_map(|a| assertion::decode(ctx, a, &what, base_dir))
                        .collect()
                } else {
                    ctx.error(
                        list,
                        format!("`assert` must be a list, found {}", list.type_name()),
                    );
                    Vec::new()
                }
            }
        };
        let vars = self
            .defaults
            .vars
            .merged(wire.vars.map(Vars::from).unwrap_or_default());
        let skipped = skipped_defaults(ctx, node, &self.defaults.asserts);
        let mut asserts: Vec<Arc<Assertion>> = Vec::new();
        for (i, (p, last)) in self
            .defaults
            .asserts
            .iter()
            .zip(&mut self.shared)
            .enumerate()
        {
            if skipped.contains(&i) {
                continue;
            }
            match resolve_shared(p, last, expected.as_deref()) {
                Ok(a) => asserts.push(a),
                Err(msg) => ctx.error(
                    node,
                    format!(
                        "{what}: {msg} (assertion `{}` from `defaults`)",
                        p.type_name
                    ),
                ),
            }
        }
        for p in &own {
            self.named_metrics.extend(p.metric().map(str::to_owned));
            match p.resolve(expected.as_deref()) {
                Ok(a) => asserts.push(Arc::new(a)),
                Err(msg) => ctx.push(p.location.clone(), format!("{what}: {msg}")),
            }
        }
        if asserts.is_empty() && ctx.diags.len() == before {
            match &expected {
                Some(e) => asserts.push(Arc::new(assertion::default_rule(e, location.clone()))),
                None => ctx.error(
                    node,
                    format!("{what} has no `expected` and no `assert`; give it an `expected` answer or assertions"),
                ),
            }
        }
        for (template, needed) in &self.needs {
            for var in needed {
                if !vars.contains_key(var) {
                    ctx.error(
                        node,
                        format!("{what} does not define `{var}`, used by {template}"),
                    );
                }
            }
        }
        let threshold = wire.threshold.or(self.defaults.threshold);
        let repeat_policy = node
            .get("repeat_policy")
            .and_then(|(_, v)| decode_repeat_policy(ctx, v));
        // Cases live for the whole run: no spare capacity (a `Vec` of assertions otherwise
        // reserves room for four).
        asserts.shrink_to_fit();
        let mut case = Case {
            id,
            tags: wire.tags.unwrap_or_default(),
            vars,
            expected,
            context,
            asserts,
            threshold,
            repeat_policy,
            hash: String::new(),
            location,
        };
        case.hash = hash::case_hash(&case);
        if ctx.diags.len() == before {
            self.emit(ctx, case);
        } else if matches!(self.out, Out::Keep) && self.cases.len() < limits::max_cases() {
            // The suite is rejected anyway; kept so that later checks see the case.
            self.cases.push(case);
        }
    }
}

/// A `repeat_policy:` value (of the suite or of a case): `all`, `majority`, `any`, or a
/// minimum pass rate in (0, 1]. Null means "not set".
pub(crate) fn decode_repeat_policy(ctx: &mut Ctx, node: &Node) -> Option<RepeatPolicy> {
    const EXPECTED: &str =
        "`repeat_policy` is `all`, `majority`, `any` or a minimum pass rate in (0, 1] such as 0.8";
    #[allow(clippy::cast_precision_loss)]
    let rate = match &node.kind {
        Kind::Null => return None,
        Kind::Int(i) => *i as f64,
        Kind::Float(f) => *f,
        Kind::Str(s) => {
            if let Some(p) = RepeatPolicy::parse(s) {
                return Some(p);
            }
            let text = s.trim();
            if let Some(pct) = text.strip_suffix('%')
                && let Ok(v) = pct.trim().parse::<f64>()
            {
                ctx.error(
                    node,
                    format!("{EXPECTED}; write `{text}` as a rate: {}", v / 100.0),
                );
            } else if let Ok(v) = text.parse::<f64>() {
                ctx.error(
                    node,
                    format!("{EXPECTED}; the rate must be above 0 and at most 1, got {v}"),
                );
            } else {
                let hint = did_you_mean(text, RepeatPolicy::NAMES);
                ctx.error(node, format!("{EXPECTED}, got `{text}`{hint}"));
            }
            return None;
        }
        _ => {
            ctx.error(node, format!("{EXPECTED}, found {}", node.type_name()));
            return None;
        }
    };
    let policy = RepeatPolicy::min_rate(rate);
    if policy.is_none() {
        ctx.error(
            node,
            format!("{EXPECTED}; the rate must be above 0 and at most 1, got {rate}"),
        );
    }
    policy
}

fn field<'a>(node: &'a Node, key: &str) -> &'a Node {
    node.get(key).map_or(node, |(_, v)| v)
}

pub(crate) fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A default assertion resolved for an `expected` value.
type Resolved = (Option<String>, Arc<Assertion>);

/// Default `p` resolved for `expected`, sharing `last` (the previous resolution) when it
/// was for the same `expected` or comes out the same.
fn resolve_shared(
    p: &Pending,
    last: &mut Option<Resolved>,
    expected: Option<&str>,
) -> Result<Arc<Assertion>, String> {
    if let Some((for_expected, a)) = last
        && for_expected.as_deref() == expected
    {
        return Ok(Arc::clone(a));
    }
    let a = p.resolve(expected)?;
    let shared = match last {
        Some((_, prev)) if **prev == a => Arc::clone(prev),
        _ => Arc::new(a),
    };
    *last = Some((expected.map(str::to_owned), Arc::clone(&shared)));
    Ok(shared)
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

/// The indexes of the `defaults.assert` entries a case switches off with
/// `skip_default_assert: true` (all of them) or a list of their types as written
/// (`[not-is-refusal]`); a type the defaults do not have is an error, with did-you-mean.
fn skipped_defaults(ctx: &mut Ctx, node: &Node, defaults: &[Pending]) -> BTreeSet<usize> {
    let Some((_, v)) = node.get("skip_default_assert") else {
        return BTreeSet::new();
    };
    let types: Vec<&str> = defaults.iter().map(|p| p.type_name.as_str()).collect();
    let none = "the suite's `defaults` has no `assert` entries to skip";
    match &v.kind {
        Kind::Bool(false) | Kind::Null => BTreeSet::new(),
        Kind::Bool(true) => {
            if defaults.is_empty() {
                ctx.error(v, none);
            }
            (0..defaults.len()).collect()
        }
        Kind::Seq(items) => {
            let mut out = BTreeSet::new();
            for item in items {
                let Some(name) = item.as_str() else {
                    ctx.error(
                        item,
                        format!(
                            "`skip_default_assert` lists assertion types (like `not-is-refusal`), found {}",
                            item.type_name()
                        ),
                    );
                    continue;
                };
                let found: Vec<usize> = types
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| **t == name)
                    .map(|(i, _)| i)
                    .collect();
                if found.is_empty() {
                    if defaults.is_empty() {
                        ctx.error(item, none);
                    } else {
                        let hint = did_you_mean(name, types.iter().copied());
                        let mut listed: Vec<&str> = types.clone();
                        listed.dedup();
                        ctx.error(
                            item,
                            format!(
                                "`{name}` is not an assertion of `defaults.assert`{hint} (it has: {})",
                                listed.join(", ")
                            ),
                        );
                    }
                }
                out.extend(found);
            }
            out
        }
        _ => {
            ctx.error(
                v,
                format!(
                    "`skip_default_assert` is `true` (skip every default assertion) or a list of their types, like `[not-is-refusal]`; found {}",
                    v.type_name()
                ),
            );
            BTreeSet::new()
        }
    }
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
