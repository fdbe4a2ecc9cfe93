//! A located YAML tree: every node keeps its 1-based line and column, so that every
//! diagnostic can point into the user's file. Built from `yaml-rust2`'s event parser, which is
//! the one YAML parser of the crate (one parser means the positions always describe the very
//! content that was validated).

use std::collections::HashMap;

use yaml_rust2::Yaml;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest nesting accepted; deeper documents are rejected rather than risking the stack.
const MAX_DEPTH: usize = 64;
/// Most nodes a document may expand to (aliases included): guards against alias bombs.
const MAX_NODES: usize = 2_000_000;
/// Most text aliases may copy: guards against alias bombs built from long strings.
const MAX_ALIAS_BYTES: usize = 64 << 20;

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub line: usize,
    pub col: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn new(line: usize, col: usize, kind: Kind) -> Self {
        Self { line, col, kind }
    }

    /// The entries of a mapping, or None.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    /// The key as text (scalars only; a collection key gives an empty string).
    pub fn key_text(&self) -> String {
        match &self.kind {
            Kind::Null => "null".to_owned(),
            Kind::Bool(b) => b.to_string(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            Kind::Str(s) => s.clone(),
            Kind::Seq(_) | Kind::Map(_) => String::new(),
        }
    }

    /// The value of `key` in a mapping, with its key node.
    pub fn get(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.key_text() == key)
            .map(|(k, v)| (k, v))
    }

    /// A short name of the node's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) | Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// Number of nodes in this tree.
    fn size(&self) -> usize {
        match &self.kind {
            Kind::Seq(s) => 1 + s.iter().map(Node::size).sum::<usize>(),
            Kind::Map(m) => 1 + m.iter().map(|(k, v)| k.size() + v.size()).sum::<usize>(),
            _ => 1,
        }
    }

    /// The bytes of text the node holds (its strings, nested ones included).
    fn text_bytes(&self) -> usize {
        match &self.kind {
            Kind::Str(s) => s.len(),
            Kind::Seq(s) => s.iter().map(Node::text_bytes).sum(),
            Kind::Map(m) => m.iter().map(|(k, v)| k.text_bytes() + v.text_bytes()).sum(),
            _ => 0,
        }
    }

    /// A tree from JSON, every node at the same position (JSONL and CSV cases).
    pub fn from_json(value: &serde_json::Value, line: usize, col: usize) -> Node {
        let kind = match value {
            serde_json::Value::Null => Kind::Null,
            serde_json::Value::Bool(b) => Kind::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Kind::Int(i),
                None => Kind::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Kind::Str(s.clone()),
            serde_json::Value::Array(a) => {
                Kind::Seq(a.iter().map(|v| Node::from_json(v, line, col)).collect())
            }
            serde_json::Value::Object(o) => Kind::Map(
                o.iter()
                    .map(|(k, v)| {
                        (
                            Node::new(line, col, Kind::Str(k.clone())),
                            Node::from_json(v, line, col),
                        )
                    })
                    .collect(),
            ),
        };
        Node::new(line, col, kind)
    }

    /// The node a serde path leads to, as deep as the path can be followed.
    pub fn locate(&self, path: &serde_path_to_error::Path) -> &Node {
        let mut node = self;
        for seg in path {
            let next = match (seg, &node.kind) {
                (serde_path_to_error::Segment::Seq { index }, Kind::Seq(items)) => {
                    items.get(*index)
                }
                (serde_path_to_error::Segment::Map { key }, Kind::Map(_)) => {
                    node.get(key).map(|(_, v)| v)
                }
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }
}

/// A located syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Check UTF-8, giving the position of the first invalid byte.
pub(crate) fn decode_utf8(bytes: &[u8]) -> Result<&str, SyntaxError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.split(|b| *b == b'\n').count();
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        let col = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        SyntaxError {
            line,
            col,
            message: "invalid UTF-8: the file must be UTF-8 text".to_owned(),
        }
    })
}

/// Parse one YAML document. An empty document (or only comments) gives `Ok(None)`.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let mut err = located(e.marker(), e.info());
        // Point at the offending tab itself rather than where the scanner stopped.
        if e.info().contains("tab")
            && let Some(line) = text.lines().nth(err.line - 1)
            && let Some(pos) = line.chars().position(|c| c == '\t')
        {
            err.col = pos + 1;
        }
        return Err(err);
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root)
}

fn located(mark: &Marker, message: &str) -> SyntaxError {
    SyntaxError {
        line: mark.line().max(1),
        col: mark.col() + 1,
        message: format!("invalid YAML: {message}"),
    }
}

enum Frame {
    Seq {
        at: Marker,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        at: Marker,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    documents: usize,
    nodes: usize,
    /// Bytes of text copied by aliases so far.
    alias_bytes: usize,
    error: Option<SyntaxError>,
}

impl Builder {
    fn fail(&mut self, mark: Marker, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(SyntaxError {
                line: mark.line().max(1),
                col: mark.col() + 1,
                message: message.into(),
            });
        }
    }

    fn push(&mut self, node: Node, anchor: usize, mark: Marker) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    if let Some(dup) = entries
                        .iter()
                        .find(|(k, _)| k.key_text() == node.key_text())
                    {
                        let first = dup.0.line;
                        let text = node.key_text();
                        self.fail(
                            mark,
                            format!("duplicate key `{text}` (first at line {first})"),
                        );
                        return;
                    }
                    *key = Some(node);
                }
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

fn scalar(value: String, style: TScalarStyle, tag: Option<&Tag>) -> Kind {
    let plain = matches!(style, TScalarStyle::Plain);
    let tag_suffix = tag.map(|t| t.suffix.as_str());
    if tag_suffix == Some("str") || (!plain && tag.is_none()) {
        return Kind::Str(value);
    }
    match Yaml::from_str(&value) {
        Yaml::Null => Kind::Null,
        Yaml::Boolean(b) => Kind::Bool(b),
        Yaml::Integer(i) => Kind::Int(i),
        Yaml::Real(r) => match r.as_str() {
            ".inf" | "+.inf" | ".Inf" | ".INF" => Kind::Float(f64::INFINITY),
            "-.inf" | "-.Inf" | "-.INF" => Kind::Float(f64::NEG_INFINITY),
            _ => r.parse().map_or(Kind::Str(r), Kind::Float),
        },
        _ => Kind::Str(value),
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let (line, col) = (mark.line().max(1), mark.col() + 1);
        match ev {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(
                        mark,
                        "a file holds a single YAML document; remove the second `---`",
                    );
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                self.nodes += 1;
                let kind = scalar(value, style, tag.as_ref());
                self.push(Node::new(line, col, kind), anchor, mark);
            }
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    self.fail(mark, "unknown alias");
                    return;
                };
                self.nodes += node.size();
                if self.nodes > MAX_NODES {
                    self.fail(mark, "the document expands to too many nodes (alias bomb?)");
                    return;
                }
                // Few aliases of a long text expand as much as many of a short one.
                self.alias_bytes = self.alias_bytes.saturating_add(node.text_bytes());
                if self.alias_bytes > MAX_ALIAS_BYTES {
                    self.fail(
                        mark,
                        format!(
                            "aliases expand to more than {} MiB of text (alias bomb?)",
                            MAX_ALIAS_BYTES >> 20
                        ),
                    );
                    return;
                }
                self.push(Node::new(line, col, node.kind), 0, mark);
            }
            Event::SequenceStart(anchor, _) => {
                self.nodes += 1;
                self.stack.push(Frame::Seq {
                    at: mark,
                    anchor,
                    items: Vec::new(),
                });
                if self.stack.len() > MAX_DEPTH {
                    self.fail(mark, format!("nesting deeper than {MAX_DEPTH} levels"));
                }
            }
            Event::MappingStart(anchor, _) => {
                self.nodes += 1;
                self.stack.push(Frame::Map {
                    at: mark,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
                if self.stack.len() > MAX_DEPTH {
                    self.fail(mark, format!("nesting deeper than {MAX_DEPTH} levels"));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (at, anchor, kind) = match self.stack.pop() {
                    Some(Frame::Seq { at, anchor, items }) => (at, anchor, Kind::Seq(items)),
                    Some(Frame::Map {
                        at,
                        anchor,
                        entries,
                        ..
                    }) => (at, anchor, Kind::Map(entries)),
                    None => return,
                };
                // A block collection's start marker lies after its first entry; a node's
                // position is where it is first visible: the earlier of the two.
                let mut pos = (at.line().max(1), at.col() + 1);
                let first = match &kind {
                    Kind::Seq(items) => items.first(),
                    Kind::Map(entries) => entries.first().map(|(k, _)| k),
                    _ => None,
                };
                if let Some(f) = first
                    && (f.line, f.col) < pos
                {
                    pos = (f.line, f.col);
                }
                let node = Node::new(pos.0, pos.1, kind);
                self.push(node, anchor, at);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        if self.nodes > MAX_NODES {
            self.fail(mark, "the document has too many nodes");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Node {
        parse(text).expect("parses").expect("not empty")
    }

    #[test]
    fn positions_are_one_based() {
        let root = parse_ok("a: 1\nbb:\n  - x\n  - {k: v}\n");
        let (k, v) = root.get("a").expect("a");
        assert_eq!((k.line, k.col), (1, 1));
        assert_eq!((v.line, v.col), (1, 4));
        let (_, list) = root.get("bb").expect("bb");
        let items = list.as_seq().expect("seq");
        assert_eq!((items[0].line, items[0].col), (3, 5));
        assert_eq!(items[0].as_str(), Some("x"));
        let (_, inner) = items[1].get("k").expect("k");
        assert_eq!((inner.line, inner.col), (4, 9));
    }

    #[test]
    fn scalars_resolve_like_yaml_core_schema() {
        let root = parse_ok("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: hello\ng:\nh: !!str 2\n");
        let kind = |k: &str| root.get(k).expect(k).1.kind.clone();
        assert_eq!(kind("a"), Kind::Int(1));
        assert_eq!(kind("b"), Kind::Float(1.5));
        assert_eq!(kind("c"), Kind::Bool(true));
        assert_eq!(kind("d"), Kind::Null);
        assert_eq!(kind("e"), Kind::Str("1".into()));
        assert_eq!(kind("f"), Kind::Str("hello".into()));
        assert_eq!(kind("g"), Kind::Null);
        assert_eq!(kind("h"), Kind::Str("2".into()));
    }

    #[test]
    fn tab_indentation_is_a_located_error() {
        let err = parse("a:\n\tb: 1\n").expect_err("tabs");
        assert_eq!((err.line, err.col), (2, 1));
        assert!(err.message.contains("tab"), "{}", err.message);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse("a: 1\nb: 2\na: 3\n").expect_err("dup");
        assert_eq!((err.line, err.col), (3, 1));
        assert!(err.message.contains("duplicate key `a` (first at line 1)"));
    }

    #[test]
    fn empty_and_comment_only_documents_are_none() {
        assert_eq!(parse("").expect("ok"), None);
        assert_eq!(parse("# nothing\n\n").expect("ok"), None);
    }

    #[test]
    fn invalid_utf8_is_located() {
        let err = decode_utf8(b"a: 1\nbc: \xff\n").expect_err("bad");
        assert_eq!((err.line, err.col), (2, 5));
    }

    #[test]
    fn deep_nesting_and_alias_bombs_are_rejected() {
        use std::fmt::Write as _;
        let deep = "[".repeat(500);
        assert!(parse(&deep).is_err());
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            let _ = writeln!(
                bomb,
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]"
            );
        }
        assert!(parse(&bomb).is_err());
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let root = parse_ok("a: &x {k: 1}\nb: *x\n");
        assert_eq!(
            root.get("b").expect("b").1.get("k").expect("k").1.kind,
            Kind::Int(1)
        );
    }

    #[test]
    fn a_second_document_is_an_error() {
        let err = parse("a: 1\n---\nb: 2\n").expect_err("two docs");
        assert_eq!(err.line, 2);
    }
}
