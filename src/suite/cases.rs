//! Cases: inline YAML cases and included case files (JSONL, CSV, YAML), defaults merged,
//! assertions resolved, template variables checked, duplicate ids caught, hashes computed.
//! Reading included case files (YAML, JSONL, CSV) is in `cases/files.rs`.

mod files;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::assertion::{self, Pending, scalar_text};
use super::decode::{Ctx, did_you_mean};
use super::hash;
use super::wire::WireCase;
use super::yaml::{Kind, Node};
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
    /// The YAML case files being included, outermost first (each canonical, with its
    /// `include:` as written): a file already on it is an include cycle.
    including: Vec<(std::path::PathBuf, String)>,
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
            including: Vec::new(),
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
