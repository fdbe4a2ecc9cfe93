//! Reads only what a field map points at. A log record of ~500 bytes holds a few dozen keys,
//! of which a source reads a dozen; building the whole `serde_json::Value` tree for each line
//! was most of `ingest`'s time. [`Paths`] holds the source's pointers as a tree of tokens,
//! made once, and [`Paths::parse`] builds a `Value` with those paths only: every other key is
//! skipped by the parser without being allocated. Reading a pointer of the source gives the
//! same answer on that `Value` as on the whole record.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::mapping::unescape;

/// The pointers a source reads, as a tree of unescaped tokens.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    root: Node,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// A pointer ends here: the value is kept whole.
    whole: bool,
    /// Keys read below this one (few: a linear search beats hashing).
    children: Vec<(String, Node)>,
}

impl Paths {
    /// The tree of `pointers` (RFC 6901, already checked: `""` or starting with `/`).
    pub fn new<'p>(pointers: impl IntoIterator<Item = &'p str>) -> Self {
        let mut root = Node::default();
        for p in pointers {
            let mut node = &mut root;
            if !p.is_empty() {
                for token in p.trim_start_matches('/').split('/') {
                    let token = unescape(token).into_owned();
                    let i = if let Some(i) = node.children.iter().position(|(k, _)| *k == token) {
                        i
                    } else {
                        node.children.push((token, Node::default()));
                        node.children.len() - 1
                    };
                    node = &mut node.children[i].1;
                }
            }
            node.whole = true;
        }
        Self { root }
    }

    /// One JSON text, with only the paths of the tree built. Errors are the parser's, as for a
    /// whole parse (syntax, trailing characters), since every byte is still read.
    pub fn parse(&self, text: &str) -> serde_json::Result<Value> {
        let mut de = serde_json::Deserializer::from_str(text);
        let v = (&self.root).deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }
}

impl<'de> DeserializeSeed<'de> for &Node {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.whole {
            serde::Deserialize::deserialize(d)
        } else {
            d.deserialize_any(self)
        }
    }
}

/// A key of an object: its child in the tree when the tree reads it.
struct Key<'n>(&'n Node);

impl<'de, 'n> DeserializeSeed<'de> for Key<'n> {
    type Value = Option<(String, &'n Node)>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'n> Visitor<'_> for Key<'n> {
    type Value = Option<(String, &'n Node)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .children
            .iter()
            .find(|(k, _)| k == key)
            .map(|(k, n)| (k.clone(), n)))
    }
}

impl<'de> Visitor<'de> for &Node {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key(self))? {
            match key {
                Some((k, child)) => {
                    let v = map.next_value_seed(child)?;
                    out.insert(k, v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    /// Pointers through a list (`/messages/0/content`) are rare: the list is kept whole.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
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
        // What no pointer reads is not built.
        assert!(sparse.get("skip").is_none());
        assert!(sparse.pointer("/request/other").is_none());
        // The whole record, when a pointer asks for it.
        assert_eq!(Paths::new([""]).parse(RECORD).unwrap(), whole);
        assert_eq!(
            Paths::new(["/usage", "/usage/prompt_tokens"])
                .parse(RECORD)
                .unwrap()["usage"],
            whole["usage"]
        );
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
        assert_eq!(paths.parse("5").unwrap(), Value::from(5));
    }
}
