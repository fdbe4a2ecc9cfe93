//! Reads only what a field map points at. A log record of ~500 bytes holds a few dozen keys,
//! of which a source reads a dozen; building the whole `serde_json::Value` tree for each line
//! was most of `ingest`'s time. [`Paths`] holds the source's pointers as a tree of tokens,
//! made once, and [`Paths::parse`] keeps the value of each pointer in a slot of its own:
//! every other key is skipped by the parser without being allocated, and no object on the
//! way to a value is built. Reading a pointer gives the same answer as on the whole record.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::mapping::{Lookup, array_index, unescape};
use super::text::{self, Read, TextKind};

/// The pointers a source reads, as a tree of unescaped tokens, each pointer with its slot.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    root: Node,
    /// Pointer (as written) -> its slot.
    slots: HashMap<String, usize, foldhash::fast::RandomState>,
    /// Each pointer as given to [`Self::new`]: where its text was (address, length) and its
    /// slot. The mapping asks with those same strings, a dozen times a record: found by
    /// address (and checked against the slot's pointer), not hashed.
    given: Vec<(usize, usize, usize)>,
    /// By slot, its pointer.
    names: Vec<String>,
    /// By slot: the kind of text a pointer read only as a text field holds, which
    /// [`Self::parse_light`] checks without building ([`Self::light`]).
    kinds: Vec<Option<TextKind>>,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// A pointer ends here: the value is kept whole, in this slot.
    slot: Option<usize>,
    /// Keys read below this one (few: a linear search beats hashing).
    children: Vec<(String, Node)>,
    /// Every pointer that ends below this node: its slot and its tokens from here. Filled from
    /// a value taken whole (this node's own, or a list, which pointers rarely go through).
    below: Vec<(usize, Vec<String>)>,
}

impl Paths {
    /// The tree of `pointers` (RFC 6901, already checked: `""` or starting with `/`).
    pub fn new<'p>(pointers: impl IntoIterator<Item = &'p str>) -> Self {
        let mut root = Node::default();
        let mut slots = HashMap::default();
        let mut given = Vec::new();
        let mut names = Vec::new();
        for p in pointers {
            let next = slots.len();
            let slot = *slots.entry(p.to_owned()).or_insert(next);
            if slot == next {
                names.push(p.to_owned());
            }
            given.push((p.as_ptr() as usize, p.len(), slot));
            let tokens: Vec<String> = if p.is_empty() {
                Vec::new()
            } else {
                p.trim_start_matches('/')
                    .split('/')
                    .map(|t| unescape(t).into_owned())
                    .collect()
            };
            let mut node = &mut root;
            for (depth, token) in tokens.iter().enumerate() {
                node.below.push((slot, tokens[depth..].to_vec()));
                let i = if let Some(i) = node.children.iter().position(|(k, _)| k == token) {
                    i
                } else {
                    node.children.push((token.clone(), Node::default()));
                    node.children.len() - 1
                };
                node = &mut node.children[i].1;
            }
            node.slot = Some(slot);
        }
        let kinds = vec![None; slots.len()];
        Self {
            root,
            slots,
            given,
            names,
            kinds,
        }
    }

    /// Marks `pointer` (one of the tree's) as read only as text of `kind`: [`Self::parse_light`]
    /// then checks its value without building it.
    pub fn light(&mut self, pointer: &str, kind: TextKind) {
        if let Some(&slot) = self.slots.get(pointer) {
            self.kinds[slot] = Some(kind);
        }
    }

    /// One JSON text, with only the values of the tree's pointers built. Errors are the
    /// parser's, as for a whole parse (syntax, trailing characters), since every byte is still
    /// read.
    pub fn parse(&self, text: &str) -> serde_json::Result<Parsed<'_>> {
        self.parse_as(text, false)
    }

    /// [`Self::parse`], but the values of the pointers marked [`Self::light`] are only
    /// checked: they read as absent, and [`Parsed::texts`] says whether one was there (the
    /// whole parse then gives them) or was not text (the whole parse says why).
    pub fn parse_light(&self, text: &str) -> serde_json::Result<Parsed<'_>> {
        self.parse_as(text, true)
    }

    fn parse_as(&self, text: &str, light: bool) -> serde_json::Result<Parsed<'_>> {
        let mut state = State {
            values: vec![None; self.slots.len()],
            kinds: if light { &self.kinds } else { &[] },
            texts: Texts::None,
        };
        let mut de = serde_json::Deserializer::from_str(text);
        Seed {
            node: &self.root,
            state: &mut state,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok(Parsed {
            paths: self,
            values: state.values,
            texts: state.texts,
        })
    }
}

/// A record as [`Paths::parse`] read it: the value of each of the source's pointers.
#[derive(Debug)]
pub struct Parsed<'p> {
    paths: &'p Paths,
    values: Vec<Option<Value>>,
    texts: Texts,
}

/// What [`Paths::parse_light`] found under the pointers it only checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Texts {
    /// Nothing, or `null`s (or a whole parse: every value is built).
    None,
    /// Text, not built.
    Unread,
    /// A value that is not text: the whole parse says where and why.
    Wrong,
}

impl Parsed<'_> {
    /// What was found under the pointers only checked.
    pub fn texts(&self) -> Texts {
        self.texts
    }
}

impl Lookup for Parsed<'_> {
    /// The value at one of the source's pointers (`None` for a pointer the paths do not hold).
    fn pointer(&self, pointer: &str) -> Option<&Value> {
        let paths = self.paths;
        let at = (pointer.as_ptr() as usize, pointer.len());
        let slot = match paths.given.iter().find(|g| (g.0, g.1) == at) {
            Some(&(_, _, slot)) if paths.names[slot] == pointer => slot,
            _ => *paths.slots.get(pointer)?,
        };
        self.values[slot].as_ref()
    }

    /// A JSON line has no columns.
    fn column(&self, _: &str) -> Option<&Value> {
        None
    }
}

/// The value under `tokens` of `v`, as RFC 6901 reads it.
fn walk<'v>(v: &'v Value, tokens: &[String]) -> Option<&'v Value> {
    tokens.iter().try_fold(v, |at, token| match at {
        Value::Object(map) => map.get(token),
        Value::Array(items) => items.get(array_index(token)?),
        _ => None,
    })
}

/// What a parse fills.
struct State<'k> {
    values: Vec<Option<Value>>,
    /// By slot, the text only checked (empty: a whole parse).
    kinds: &'k [Option<TextKind>],
    texts: Texts,
}

/// Reads a node's value into the slots.
struct Seed<'n, 's, 'k> {
    node: &'n Node,
    state: &'s mut State<'k>,
}

impl Seed<'_, '_, '_> {
    /// Fills the slots of the pointers below the node from its value taken whole.
    fn fill_below(&mut self, v: &Value) {
        for (slot, tokens) in &self.node.below {
            self.state.values[*slot] = walk(v, tokens).cloned();
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(mut self, d: D) -> Result<(), D::Error> {
        // A key seen twice: the last one read is the value, as in a whole parse.
        for (slot, _) in &self.node.below {
            self.state.values[*slot] = None;
        }
        // Only checked: a pointer marked light (in a light parse) with no pointer below it.
        let checked = self
            .node
            .slot
            .filter(|_| self.node.below.is_empty())
            .and_then(|slot| Some((slot, self.state.kinds.get(slot).copied()??)));
        if let Some((slot, kind)) = checked {
            let found = match text::read(kind, d, false)? {
                Read::Null => Texts::None,
                Read::Wrong(_) => Texts::Wrong,
                Read::Text(_) | Read::Passages(_) => Texts::Unread,
            };
            self.state.values[slot] = None;
            self.state.texts = self.state.texts.max(found);
            return Ok(());
        }
        match self.node.slot {
            Some(slot) => {
                let v: Value = serde::Deserialize::deserialize(d)?;
                self.fill_below(&v);
                self.state.values[slot] = Some(v);
                Ok(())
            }
            None => d.deserialize_any(self),
        }
    }
}

/// A key of an object: its child in the tree when the tree reads it.
struct Key<'n>(&'n Node);

impl<'de, 'n> DeserializeSeed<'de> for Key<'n> {
    type Value = Option<&'n Node>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'n> Visitor<'_> for Key<'n> {
    type Value = Option<&'n Node>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .children
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, n)| n))
    }
}

/// A node no pointer ends at: an object is read key by key, a list whole (pointers through a
/// list, `/messages/0/content`, are rare), anything else holds none of the pointers below.
impl<'de> Visitor<'de> for Seed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(Key(self.node))? {
            match key {
                Some(child) => map.next_value_seed(Seed {
                    node: child,
                    state: &mut *self.state,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        self.fill_below(&Value::Array(items));
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"ts": 1765000000, "model": "gpt-4o", "skip": {"deep": [1, {"a": 2}]},
        "request": {"messages": [{"role": "user", "content": "hi"}], "other": "x"},
        "a/b": {"m~n": 7}, "list": [{"x": 1}, {"x": 2}], "usage": {"prompt_tokens": 12.5},
        "n": null, "flag": false, "neg": -3, "big": 18446744073709551615, "s": "\"q\"\u00e9"}"#;

    #[test]
    fn what_a_pointer_reads_is_the_same_as_in_the_whole_record() {
        let pointers = [
            "/ts",
            "/model",
            "/request/messages",
            "/a~1b/m~0n",
            "/list/1/x",
            "/usage/prompt_tokens",
            "/usage/missing",
            "/n",
            "/flag",
            "/neg",
            "/big",
            "/s",
            "/model/deeper",
            "/absent/x",
        ];
        let paths = Paths::new(pointers);
        let sparse = paths.parse(RECORD).unwrap();
        let whole: Value = serde_json::from_str(RECORD).unwrap();
        for p in pointers {
            assert_eq!(sparse.pointer(p), whole.pointer(p), "{p}");
        }
        // What no pointer names is not read.
        assert!(sparse.pointer("/skip").is_none());
        assert!(sparse.pointer("/request").is_none());
        // The whole record, when a pointer asks for it; a pointer inside another one's value.
        assert_eq!(
            Paths::new([""]).parse(RECORD).unwrap().pointer(""),
            Some(&whole)
        );
        let nested = Paths::new(["/usage", "/usage/prompt_tokens", "", "/list/0"]);
        let read = nested.parse(RECORD).unwrap();
        for p in ["/usage", "/usage/prompt_tokens", "", "/list/0"] {
            assert_eq!(read.pointer(p), whole.pointer(p), "{p}");
        }
    }

    #[test]
    fn a_key_seen_twice_reads_as_its_last_value() {
        let line =
            r#"{"a": {"b": 1, "c": 2}, "l": [{"x": 1}], "a": {"b": 3}, "l": 5, "s": 1, "s": null}"#;
        let pointers = ["/a/b", "/a/c", "/l/0/x", "/s"];
        let whole: Value = serde_json::from_str(line).unwrap();
        let paths = Paths::new(pointers);
        let read = paths.parse(line).unwrap();
        for p in pointers {
            assert_eq!(read.pointer(p), whole.pointer(p), "{p}");
        }
        assert_eq!(read.pointer("/a/c"), None);
    }

    #[test]
    fn broken_json_is_refused_as_the_parser_would() {
        let paths = Paths::new(["/ts"]);
        for bad in [
            r#"{"ts": 1"#,
            r#"{"ts": 1} x"#,
            r#"{"other": [1,}"#,
            "",
            "{not json",
        ] {
            let sparse = paths.parse(bad).unwrap_err().to_string();
            let whole = serde_json::from_str::<Value>(bad).unwrap_err().to_string();
            assert_eq!(sparse, whole, "{bad}");
        }
        assert_eq!(
            Paths::new([""]).parse("5").unwrap().pointer(""),
            Some(&Value::from(5))
        );
        assert!(paths.parse("5").unwrap().pointer("/ts").is_none());
    }
}
