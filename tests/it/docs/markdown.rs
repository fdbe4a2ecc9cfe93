//! Fenced code blocks of the markdown docs, with their `<!-- doctest: ... -->` annotations.

use std::path::Path;

/// One fenced code block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The markdown file, relative to the repository root (`docs/alerts.md`).
    pub file: String,
    /// 1-based line of the block's first content line (the line after the opening fence).
    pub line: usize,
    /// The info string of the fence (`yaml`, `sh`, `` for none).
    pub lang: String,
    /// The block's text, without the fences, each line ending in `\n`.
    pub text: String,
    /// The annotation right before the fence, if any.
    pub directive: Option<Directive>,
}

impl Block {
    /// `docs/x.md:12` for a line of the block (0 = its first content line).
    pub fn at(&self, offset: usize) -> String {
        format!("{}:{}", self.file, self.line + offset)
    }
}

/// An explicit annotation, written as an HTML comment on the last non-blank line before a
/// fence: `<!-- doctest: KIND REST -->`. They are meant to be rare, each with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `skip REASON`: the block is not checked (the reason is required).
    Skip(String),
    /// `fragment-of KIND`: force the YAML kind (`suite`, `config`, `case-file`, `assertions`,
    /// `case`, `providers`) where the automatic decision would be wrong.
    FragmentOf(String),
    /// `output JSON-STRING`: the output of the block's `# output:` examples, where the doc
    /// describes it in words (a fenced block cannot be written inside a comment).
    Output(String),
    /// `output-of PROJECT COMMAND`: the block shows what `COMMAND` prints in a project
    /// (`examples`: a copy of the shipped examples; `init`: a project made by `evalwatch init`).
    OutputOf { project: String, command: String },
}

/// Parse a `doctest:` annotation; `Err` says what is wrong with it.
fn parse_directive(body: &str) -> Result<Directive, String> {
    let body = body.trim();
    let (kind, rest) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
    let rest = rest.trim();
    match kind {
        "skip" if !rest.is_empty() => Ok(Directive::Skip(rest.to_owned())),
        "skip" => Err("`doctest: skip` needs a reason".into()),
        "fragment-of" => match rest {
            "suite" | "config" | "case-file" | "assertions" | "case" | "providers" => {
                Ok(Directive::FragmentOf(rest.to_owned()))
            }
            other => Err(format!("unknown fragment kind `{other}`")),
        },
        "output" => serde_json::from_str::<String>(rest)
            .map(Directive::Output)
            .map_err(|e| format!("`doctest: output` takes a JSON string: {e}")),
        "output-of" => {
            let (project, command) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if !matches!(project, "examples" | "init") || !command.trim().starts_with("evalwatch ")
            {
                return Err("`doctest: output-of` takes `examples|init evalwatch ...`".into());
            }
            Ok(Directive::OutputOf {
                project: project.to_owned(),
                command: command.trim().to_owned(),
            })
        }
        other => Err(format!("unknown doctest annotation `{other}`")),
    }
}

/// Every fenced block of `text`; `Err` lists malformed annotations and unclosed fences, located.
pub fn blocks(file: &str, text: &str) -> Result<Vec<Block>, Vec<String>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let indent = lines[i].len() - trimmed.len();
        let open = i;
        let mut body = String::new();
        let mut j = i + 1;
        while j < lines.len() && !lines[j].trim_start().starts_with("```") {
            body.push_str(lines[j].get(indent..).unwrap_or(lines[j].trim_start()));
            body.push('\n');
            j += 1;
        }
        if j == lines.len() {
            problems.push(format!("{file}:{}: unclosed code fence", open + 1));
        }
        let directive = lines[..open]
            .iter()
            .rposition(|l| !l.trim().is_empty())
            .map(|k| (k, lines[k].trim()))
            .and_then(|(k, l)| {
                let inner = l.strip_prefix("<!--")?.strip_suffix("-->")?.trim();
                let body = inner.strip_prefix("doctest:")?;
                match parse_directive(body) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        problems.push(format!("{file}:{}: {e}", k + 1));
                        None
                    }
                }
            });
        out.push(Block {
            file: file.to_owned(),
            line: open + 2,
            lang: info.trim().to_owned(),
            text: body,
            directive,
        });
        i = j + 1;
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// README.md and every docs/*.md, sorted, as (path relative to the root, text).
pub fn doc_files(root: &Path) -> Vec<(String, String)> {
    let mut files = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            Path::new(n)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("md"))
        })
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(root.join(&f)).expect("read doc");
            (f, text)
        })
        .collect()
}

/// Every block of README.md and docs/*.md; panics listing malformed annotations.
pub fn all_blocks(root: &Path) -> Vec<Block> {
    let mut all = Vec::new();
    let mut problems = Vec::new();
    for (file, text) in doc_files(root) {
        match blocks(&file, &text) {
            Ok(b) => all.extend(b),
            Err(p) => problems.extend(p),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    all
}

/// Repository paths named in code spans (`src/score/misc.rs`, `benches/store.rs`, ...) and
/// benches named by `cargo bench --bench NAME`, with where: (`file:line`, the path relative to
/// the repository root).
pub fn named_paths(file: &str, text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", i + 1);
        for span in line.split('`').skip(1).step_by(2) {
            let is_path = ["src/", "benches/", "tests/", "docs/", "suites/", ".ci/"]
                .iter()
                .any(|p| span.starts_with(p))
                && span
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'));
            if is_path {
                out.push((at.clone(), span.trim_end_matches('.').to_owned()));
            }
        }
        let mut words = line.split_whitespace().peekable();
        while let Some(w) = words.next() {
            if w == "--bench"
                && let Some(name) = words.peek()
            {
                let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_');
                out.push((at.clone(), format!("benches/{name}.rs")));
            }
        }
    }
    out
}

/// Inline YAML in code spans that a reader may paste into a suite: an alert rule
/// (`{metric: ...}`) or a `gates:` mapping, as blocks of a suite fragment.
pub fn inline_yaml(file: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for span in line.split('`').skip(1).step_by(2) {
            let yaml = if span.starts_with("{metric:") {
                format!("alerts:\n  - {span}\n")
            } else if span.starts_with("gates: {") {
                format!("{span}\n")
            } else {
                continue;
            };
            out.push(Block {
                file: file.to_owned(),
                line: i + 1,
                lang: "inline yaml".to_owned(),
                text: yaml,
                directive: None,
            });
        }
    }
    out
}

/// GitHub's anchor of a heading: lowercase; letters, digits, `-` and `_` kept, spaces to `-`,
/// everything else dropped.
pub fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a markdown text's headings (outside code blocks); a repeated heading gets
/// `-1`, `-2`... as on GitHub.
pub fn anchors(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block || !line.starts_with('#') {
            continue;
        }
        let base = slug(line.trim_start_matches('#'));
        let n = out
            .iter()
            .filter(|a| {
                **a == base
                    || a.strip_prefix(&format!("{base}-"))
                        .is_some_and(|r| r.parse::<u32>().is_ok())
            })
            .count();
        out.push(if n == 0 { base } else { format!("{base}-{n}") });
    }
    out
}

/// Relative links of a markdown text (outside code blocks), with where: (`file:line`, target).
pub fn links(file: &str, text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        let mut rest = line;
        while let Some(k) = rest.find("](") {
            rest = &rest[k + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push((format!("{file}:{}", i + 1), target.to_owned()));
            }
            rest = &rest[end..];
        }
    }
    out
}
