//! Small constructors of model values for tests.

use std::path::PathBuf;

use crate::model::{Assertion, Case, Check, Location, Normalize, PromptTemplate, Suite};

/// An assertion of `check`, type name derived by the caller.
pub fn assertion(type_name: &str, check: Check) -> Assertion {
    let negate = type_name.starts_with("not-");
    Assertion {
        type_name: type_name.to_owned(),
        negate,
        check,
        weight: 1.0,
        threshold: None,
        metric: None,
        normalize: Vec::new(),
        location: Location::default(),
    }
}

pub fn with_weight(mut a: Assertion, weight: f64) -> Assertion {
    a.weight = weight;
    a
}

pub fn with_normalize(mut a: Assertion, n: &[Normalize]) -> Assertion {
    a.normalize = n.to_vec();
    a
}

pub fn contains(v: &str) -> Check {
    Check::Contains {
        value: v.to_owned(),
    }
}

pub fn case(id: &str, asserts: Vec<Assertion>) -> Case {
    Case {
        id: id.to_owned(),
        tags: Vec::new(),
        vars: crate::model::Vars::new(),
        expected: None,
        context: Vec::new(),
        asserts: asserts.into_iter().map(std::sync::Arc::new).collect(),
        threshold: None,
        repeat_policy: None,
        hash: format!("hash-{id}"),
        location: Location::default(),
    }
}

pub fn suite(cases: Vec<Case>) -> Suite {
    Suite {
        name: "test".into(),
        description: None,
        tags: Vec::new(),
        schedule: None,
        timezone: None,
        catch_up: None,
        jitter: None,
        source: PathBuf::from("suites/test.yaml"),
        providers: Vec::new(),
        system: None,
        prompt: PromptTemplate::Text("{{ q }}".into()),
        repeat: 1,
        repeat_policy: crate::model::RepeatPolicy::All,
        cases,
        gates: Vec::new(),
        alerts: Vec::new(),
        review: None,
        hash: "suite-hash".into(),
        named_metrics: std::collections::BTreeSet::new(),
        settings: std::collections::BTreeMap::new(),
    }
}
