//! `Vars`: the template variables of a case, as a sorted list.
//!
//! A suite keeps every case for the whole run; a `BTreeMap` per case costs a node of eleven
//! slots (~630 bytes) for the one or two variables a case usually has. A sorted boxed slice
//! holds exactly what is there and reads the same: lookups by key, iteration in key order,
//! and it serialises as a map with sorted keys (so case hashes are unchanged).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Template variables, sorted by name, each name once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Vars(Box<[(String, Value)]>);

impl Vars {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Names and values in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&String, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Set `key`, replacing a value already there.
    pub fn insert(&mut self, key: String, value: Value) {
        match self.find(&key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => {
                let mut items = std::mem::take(&mut self.0).into_vec();
                items.insert(i, (key, value));
                self.0 = items.into_boxed_slice();
            }
        }
    }

    /// `self` overridden by `over`: a case's own variables over the suite's defaults.
    #[must_use]
    pub fn merged(&self, over: Self) -> Self {
        if self.is_empty() {
            return over;
        }
        if over.is_empty() {
            return self.clone();
        }
        let mut items: Vec<(String, Value)> = Vec::with_capacity(self.len() + over.len());
        let mut base = self.0.iter().peekable();
        for (k, v) in over.0 {
            while let Some((bk, bv)) = base.next_if(|(bk, _)| bk.as_str() < k.as_str()) {
                items.push((bk.clone(), bv.clone()));
            }
            base.next_if(|(bk, _)| *bk == k);
            items.push((k, v));
        }
        items.extend(base.cloned());
        Self(items.into_boxed_slice())
    }

    /// As a map (what a request carries to a provider).
    #[must_use]
    pub fn to_map(&self) -> BTreeMap<String, Value> {
        self.0.iter().cloned().collect()
    }
}

impl FromIterator<(String, Value)> for Vars {
    /// Later values of a name replace earlier ones, as in a map.
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut items: Vec<(String, Value)> = iter.into_iter().collect();
        // Stable: of equal names, the last one written is kept below.
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, Value)> = Vec::with_capacity(items.len());
        for (k, v) in items {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        Self(out.into_boxed_slice())
    }
}

impl From<BTreeMap<String, Value>> for Vars {
    fn from(map: BTreeMap<String, Value>) -> Self {
        Self(map.into_iter().collect::<Vec<_>>().into_boxed_slice())
    }
}

impl<'a> IntoIterator for &'a Vars {
    type Item = (&'a String, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, Value)>,
        fn(&'a (String, Value)) -> (&'a String, &'a Value),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for Vars {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de> Deserialize<'de> for Vars {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;

        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Vars;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of variables")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Vars, A::Error> {
                let mut items = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    items.push(entry);
                }
                Ok(items.into_iter().collect())
            }
        }

        deserializer.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, Value)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn lookups_iteration_and_serialisation_match_a_sorted_map() {
        let v = vars(&[("b", json!(2)), ("a", json!("x")), ("c", json!([1]))]);
        let map: BTreeMap<String, Value> = [
            ("a".to_owned(), json!("x")),
            ("b".to_owned(), json!(2)),
            ("c".to_owned(), json!([1])),
        ]
        .into_iter()
        .collect();
        assert_eq!(v.get("a"), Some(&json!("x")));
        assert_eq!(v.get("zz"), None);
        assert!(v.contains_key("c"));
        assert!(!v.contains_key("d"));
        assert_eq!(v.len(), 3);
        let keys: Vec<&str> = v.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(v.to_map(), map);
        assert_eq!(Vars::from(map.clone()), v);
        let back: Vars = serde_json::from_str(r#"{"c":[1],"a":"x","b":2}"#).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn a_later_value_of_a_name_wins() {
        let v = vars(&[("a", json!(1)), ("a", json!(2))]);
        assert_eq!(v.len(), 1);
        assert_eq!(v.get("a"), Some(&json!(2)));
        let mut w = vars(&[("b", json!(1))]);
        w.insert("a".into(), json!(0));
        w.insert("b".into(), json!(5));
        w.insert("c".into(), json!(9));
        let pairs: Vec<(&str, &Value)> = w.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!(
            pairs,
            [("a", &json!(0)), ("b", &json!(5)), ("c", &json!(9))]
        );
    }

    #[test]
    fn merging_overrides_defaults_and_keeps_the_rest() {
        let defaults = vars(&[
            ("lang", json!("en")),
            ("tone", json!("dry")),
            ("z", json!(0)),
        ]);
        let own = vars(&[("a", json!(1)), ("lang", json!("fr")), ("zz", json!(2))]);
        let merged = defaults.merged(own.clone());
        let expect: BTreeMap<String, Value> = {
            let mut m = defaults.to_map();
            m.extend(own.to_map());
            m
        };
        assert_eq!(merged.to_map(), expect);
        assert_eq!(merged.get("lang"), Some(&json!("fr")));
        assert_eq!(Vars::new().merged(own.clone()), own);
        assert_eq!(defaults.merged(Vars::new()), defaults);
    }
}
