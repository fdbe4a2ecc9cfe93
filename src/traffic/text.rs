//! How the value of a text field reads as text: `input` and `output` (a string, chat
//! messages, or one message) and `context` (a string, or a list of passages). One reading,
//! run over a value already parsed (what [`super::mapping::Mapping`] builds a record's text
//! from) or over a line as it is parsed (what [`super::sparse::Paths::parse_light`] only
//! checks, so that a record left out of the sample never has its text built).
//!
//! The rules, as the mapping has always read them:
//! - text: a string; a list of messages, one a line; or one message;
//! - a message: a string; an object with a `parts` list (OpenTelemetry GenAI messages: the
//!   `content`, else the `text`, of each part that is a string, joined by spaces); else the
//!   object's `content`, else its `text`: a string, a list (its strings and the `text` of its
//!   objects, joined by spaces) or `null` (empty);
//! - passages: a string, or a list of messages (one passage each).
//!
//! A key seen twice reads as its last value, as in a whole parse.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What a field's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// `input`, `output`.
    Text,
    /// `context`.
    Passages,
}

/// What a text field's value read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// `null`: the field is absent.
    Null,
    /// Text (empty when only checked).
    Text(String),
    /// Passages (none when only checked).
    Passages(Vec<String>),
    /// Not of the field's kind. For passages: the first item that is no passage (`Some`), or
    /// a value that is neither text nor a list (`None`).
    Wrong(Option<usize>),
}

/// Reads a value of `kind`; `build`: the text is written (else only checked, nothing
/// allocated).
pub fn read<'de, D: Deserializer<'de>>(
    kind: TextKind,
    d: D,
    build: bool,
) -> Result<Read, D::Error> {
    d.deserialize_any(Top { kind, build })
}

/// Empties a map the reading does not use (a visitor must read its value to the end).
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// `s` when building.
fn owned(s: &str, build: bool) -> String {
    if build { s.to_owned() } else { String::new() }
}

/// Joins `item`s of a list with `sep`, leaving out those that read as `None`.
fn join_some<'de, A, S>(mut seq: A, sep: char, build: bool, item: S) -> Result<String, A::Error>
where
    A: SeqAccess<'de>,
    S: DeserializeSeed<'de, Value = Option<String>> + Copy,
{
    let mut out = String::new();
    let mut first = true;
    while let Some(got) = seq.next_element_seed(item)? {
        if let Some(s) = got {
            if build {
                if !first {
                    out.push(sep);
                }
                out.push_str(&s);
            }
            first = false;
        }
    }
    Ok(out)
}

/// The field's value itself.
struct Top {
    kind: TextKind,
    build: bool,
}

impl<'de> Visitor<'de> for Top {
    type Value = Read;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Read, E> {
        let s = owned(s, self.build);
        Ok(match self.kind {
            TextKind::Text => Read::Text(s),
            TextKind::Passages => Read::Passages(if self.build { vec![s] } else { Vec::new() }),
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Read, E> {
        Ok(Read::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Read, E> {
        Ok(Read::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Read, E> {
        Ok(Read::Wrong(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Read, E> {
        Ok(Read::Wrong(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Read, E> {
        Ok(Read::Wrong(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Read, E> {
        Ok(Read::Wrong(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Read, A::Error> {
        let build = self.build;
        let mut lines = Vec::new();
        let mut text = String::new();
        let mut wrong = None;
        let mut i = 0;
        while let Some(got) = seq.next_element_seed(Message { build })? {
            match got {
                Some(s) if build => match self.kind {
                    TextKind::Text => {
                        if i > 0 {
                            text.push('\n');
                        }
                        text.push_str(&s);
                    }
                    TextKind::Passages => lines.push(s),
                },
                Some(_) => {}
                None => {
                    wrong.get_or_insert(i);
                }
            }
            i += 1;
        }
        Ok(match (wrong, self.kind) {
            (Some(i), TextKind::Passages) => Read::Wrong(Some(i)),
            (Some(_), TextKind::Text) => Read::Wrong(None),
            (None, TextKind::Text) => Read::Text(text),
            (None, TextKind::Passages) => Read::Passages(lines),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Read, A::Error> {
        match self.kind {
            TextKind::Text => Ok(match (Message { build: self.build }).visit_map(map)? {
                Some(s) => Read::Text(s),
                None => Read::Wrong(None),
            }),
            TextKind::Passages => {
                drain_map(map)?;
                Ok(Read::Wrong(None))
            }
        }
    }
}

/// The keys a message's reading looks at.
enum Key {
    Parts,
    Content,
    Text,
    Other,
}

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Self;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Key {
    type Value = Self;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self, E> {
        Ok(match key {
            "parts" => Self::Parts,
            "content" => Self::Content,
            "text" => Self::Text,
            _ => Self::Other,
        })
    }
}

/// What a message's reading looks at in an object: what each key's value read as (the last
/// value of a key seen twice).
struct Fields {
    parts: Got,
    content: Got,
    text: Got,
}

/// What a key of an object held.
enum Got {
    Missing,
    /// There, but not read as text.
    Other,
    Text(String),
}

impl From<Option<String>> for Got {
    fn from(read: Option<String>) -> Self {
        read.map_or(Self::Other, Self::Text)
    }
}

impl Got {
    fn text(self) -> Option<String> {
        match self {
            Self::Text(s) => Some(s),
            Self::Missing | Self::Other => None,
        }
    }
}

impl Fields {
    /// `parts` read with `parts` when given (else passed over), `content` and `text` with
    /// `value`.
    fn read<'de, A, P, S>(mut map: A, parts: Option<P>, value: S) -> Result<Self, A::Error>
    where
        A: MapAccess<'de>,
        P: DeserializeSeed<'de, Value = Option<String>> + Copy,
        S: DeserializeSeed<'de, Value = Option<String>> + Copy,
    {
        let mut f = Self {
            parts: Got::Missing,
            content: Got::Missing,
            text: Got::Missing,
        };
        while let Some(key) = map.next_key_seed(Key::Other)? {
            match (key, parts) {
                (Key::Parts, Some(parts)) => f.parts = map.next_value_seed(parts)?.into(),
                (Key::Content, _) => f.content = map.next_value_seed(value)?.into(),
                (Key::Text, _) => f.text = map.next_value_seed(value)?.into(),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(f)
    }

    /// The `content`, else the `text` (`None`: neither, or not read as text).
    fn content_or_text(self) -> Option<String> {
        match self.content {
            Got::Missing => self.text.text(),
            content => content.text(),
        }
    }
}

/// Every other kind of value reads as `None` (a list or an object read to its end).
macro_rules! none_otherwise {
    ($($skip:ident),*) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }

        $(none_otherwise!(@$skip);)*
    };
    (@unit) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    };
    (@seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq)?;
            Ok(None)
        }
    };
    (@map) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            drain_map(map)?;
            Ok(None)
        }
    };
}

/// Declares a reading: a seed that reads any value with itself as the visitor.
macro_rules! reading {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy)]
        struct $name {
            build: bool,
        }

        impl<'de> DeserializeSeed<'de> for $name {
            type Value = Option<String>;

            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
    };
}

reading!(Message, "A message: its text, `None` when it is none.");
reading!(
    PartList,
    "The value of a message's `parts`: `Some` when a list."
);
reading!(
    Part,
    "An item of `parts`: its `content`, else its `text`, when a string."
);
reading!(Content, "The value of a message's `content` or `text`.");
reading!(
    Piece,
    "An item of a list under `content` or `text`: a string, or an object's `text`."
);
reading!(Str, "A value that counts only as a string.");

impl<'de> Visitor<'de> for Message {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(owned(s, self.build)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let build = self.build;
        let f = Fields::read(map, Some(PartList { build }), Content { build })?;
        // A `parts` list wins; a `parts` that is no list is passed over.
        if let Got::Text(joined) = f.parts {
            return Ok(Some(joined));
        }
        Ok(f.content_or_text())
    }

    none_otherwise!(unit, seq);
}

impl<'de> Visitor<'de> for PartList {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("message parts")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        join_some(seq, ' ', self.build, Part { build: self.build }).map(Some)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    none_otherwise!(unit, map);
}

impl<'de> Visitor<'de> for Part {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message part")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let s = Str { build: self.build };
        Ok(Fields::read(map, None::<Str>, s)?.content_or_text())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    none_otherwise!(unit, seq);
}

impl<'de> Visitor<'de> for Content {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("message content")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(owned(s, self.build)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Some(String::new()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        join_some(seq, ' ', self.build, Piece { build: self.build }).map(Some)
    }

    none_otherwise!(map);
}

impl<'de> Visitor<'de> for Piece {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a piece of message content")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(owned(s, self.build)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let s = Str { build: self.build };
        Ok(Fields::read(map, None::<Str>, s)?.text.text())
    }

    none_otherwise!(unit, seq);
}

impl<'de> Visitor<'de> for Str {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(owned(s, self.build)))
    }

    none_otherwise!(unit, seq, map);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// (value, as text, as passages: `Err(None)` no list, `Err(Some(i))` item `i` no passage).
    type Case = (
        &'static str,
        Option<&'static str>,
        Result<&'static [&'static str], Option<usize>>,
    );

    /// What the mapping read before this module (its `text`, `message` and `passages` over a
    /// parsed value), value by value.
    const CASES: &[Case] = &[
        (r#""hi""#, Some("hi"), Ok(&["hi"])),
        (r#"["a", "b"]"#, Some("a\nb"), Ok(&["a", "b"])),
        ("[]", Some(""), Ok(&[])),
        (
            r#"[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]"#,
            Some("x\ny"),
            Ok(&["x", "y"]),
        ),
        (
            r#"[{"role":"user","content":[{"type":"text","text":"p1"},"p2",{"type":"image"},5,{"text":7}]}]"#,
            Some("p1 p2"),
            Ok(&["p1 p2"]),
        ),
        (r#"{"role":"user","content":"one"}"#, Some("one"), Err(None)),
        (r#"{"role":"user","text":"t"}"#, Some("t"), Err(None)),
        (r#"{"content":"c","text":"t"}"#, Some("c"), Err(None)),
        (r#"{"text":"t","content":"c"}"#, Some("c"), Err(None)),
        (r#"{"content":null}"#, Some(""), Err(None)),
        (r#"{"content":5,"text":"t"}"#, None, Err(None)),
        (r#"{"content":{"a":1}}"#, None, Err(None)),
        (r#"{"role":"user"}"#, None, Err(None)),
        (
            r#"{"parts":[{"type":"text","content":"a"},{"text":"b"},{"content":5,"text":"c"},"s",{"x":1}],"content":"ignored"}"#,
            Some("a b"),
            Err(None),
        ),
        (r#"{"parts":"no","content":"c"}"#, Some("c"), Err(None)),
        (r#"{"parts":[],"content":"c"}"#, Some(""), Err(None)),
        (r#"{"parts":{"a":1}}"#, None, Err(None)),
        (
            r#"{"content":"first","content":"second"}"#,
            Some("second"),
            Err(None),
        ),
        (
            r#"{"parts":[{"content":"a"}],"parts":"x","text":"t"}"#,
            Some("t"),
            Err(None),
        ),
        (r#"[{"content":"a"},5]"#, None, Err(Some(1))),
        (r#"[{"content":"a"},null]"#, None, Err(Some(1))),
        (r#"[["nested"]]"#, None, Err(Some(0))),
        ("5", None, Err(None)),
        ("true", None, Err(None)),
        (r#"[{"role":"user","content":[]}]"#, Some(""), Ok(&[""])),
        (
            r#"[{"content":"a\nb"},"\u00e9\"q"]"#,
            Some("a\nb\né\"q"),
            Ok(&["a\nb", "é\"q"]),
        ),
        (
            r#"{"content":[{"text":"x","content":"y"},{"content":"only"}]}"#,
            Some("x"),
            Err(None),
        ),
        (
            r#"[{"parts":[{"type":"text","content":"p"}]},{"role":"u","content":"c"}]"#,
            Some("p\nc"),
            Ok(&["p", "c"]),
        ),
    ];

    fn expected(kind: TextKind, case: &Case) -> Read {
        match kind {
            TextKind::Text => case
                .1
                .map_or(Read::Wrong(None), |t| Read::Text(t.to_owned())),
            TextKind::Passages => match case.2 {
                Ok(p) => Read::Passages(p.iter().map(|s| (*s).to_owned()).collect()),
                Err(at) => Read::Wrong(at),
            },
        }
    }

    /// Only checked: the same verdict, nothing written.
    fn checked(r: &Read) -> Read {
        match r {
            Read::Text(_) => Read::Text(String::new()),
            Read::Passages(_) => Read::Passages(Vec::new()),
            other => other.clone(),
        }
    }

    #[test]
    fn a_value_reads_the_same_parsed_as_while_parsing_and_only_checked() {
        for case in CASES {
            let v: Value = serde_json::from_str(case.0).unwrap();
            for kind in [TextKind::Text, TextKind::Passages] {
                let want = expected(kind, case);
                let whole = read(kind, &v, true).unwrap();
                assert_eq!(whole, want, "{kind:?} of {} (parsed)", case.0);
                let mut de = serde_json::Deserializer::from_str(case.0);
                let streamed = read(kind, &mut de, true).unwrap();
                de.end().unwrap();
                assert_eq!(streamed, want, "{kind:?} of {} (while parsing)", case.0);
                let mut de = serde_json::Deserializer::from_str(case.0);
                let only = read(kind, &mut de, false).unwrap();
                de.end().unwrap();
                assert_eq!(only, checked(&want), "{kind:?} of {} (checked)", case.0);
            }
        }
    }

    #[test]
    fn null_is_absent() {
        for kind in [TextKind::Text, TextKind::Passages] {
            assert_eq!(read(kind, &Value::Null, true).unwrap(), Read::Null);
            let mut de = serde_json::Deserializer::from_str("null");
            assert_eq!(read(kind, &mut de, false).unwrap(), Read::Null);
        }
    }
}
