//! Suite + filters -> ordered jobs with stable ids. Pure.

use std::sync::Arc;

use crate::model::{Case, CaseRef, Job, Suite};

/// Which part of a suite to run.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Provider ids; empty = all.
    pub providers: Vec<String>,
    /// Case id globs; empty = all.
    pub cases: Vec<glob::Pattern>,
    /// Tags; empty = all. A case is kept when it has any of them.
    pub tags: Vec<String>,
    /// Overrides the suite's `repeat`.
    pub repeat: Option<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("select provider `{id}`: suite `{suite}` has no such provider (it has: {known}){hint}")]
    UnknownProvider {
        id: String,
        suite: String,
        known: String,
        hint: String,
    },
    #[error("plan: --repeat must be at least 1")]
    ZeroRepeat,
}

impl Filters {
    /// Whether `case` is run: its id matches a `--case` glob and it has a `--tag` (either
    /// filter absent keeps every case).
    #[must_use]
    pub fn selects(&self, case: &Case) -> bool {
        (self.cases.is_empty() || self.cases.iter().any(|g| g.matches(&case.id)))
            && (self.tags.is_empty() || case.tags.iter().any(|t| self.tags.contains(t)))
    }

    /// The filters as given (`--provider a --case c1 --tag smoke`), None when the whole suite
    /// is run. A run limited to some providers is filtered too: as the `previous` baseline of
    /// the next full run, it would leave the other providers without one. `--repeat` is no
    /// filter: the run still covers the whole suite.
    #[must_use]
    pub fn run_filter(&self) -> Option<String> {
        let words: Vec<String> = self
            .providers
            .iter()
            .map(|p| format!("--provider {p}"))
            .chain(self.cases.iter().map(|g| format!("--case {}", g.as_str())))
            .chain(self.tags.iter().map(|t| format!("--tag {t}")))
            .collect();
        (!words.is_empty()).then(|| words.join(" "))
    }
}

/// The providers of `suite` the filters keep, as (index into `suite.providers`, id).
pub fn providers(suite: &Suite, filters: &Filters) -> Result<Vec<(usize, String)>, PlanError> {
    for id in &filters.providers {
        if !suite.providers.iter().any(|p| &p.id == id) {
            let known: Vec<&str> = suite.providers.iter().map(|p| p.id.as_str()).collect();
            let hint = known
                .iter()
                .map(|k| (strsim::jaro_winkler(k, id), *k))
                .filter(|(s, _)| *s > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            return Err(PlanError::UnknownProvider {
                id: id.clone(),
                suite: suite.name.clone(),
                known: known.join(", "),
                hint,
            });
        }
    }
    Ok(suite
        .providers
        .iter()
        .enumerate()
        .filter(|(_, p)| filters.providers.is_empty() || filters.providers.contains(&p.id))
        .map(|(i, p)| (i, p.id.clone()))
        .collect())
}

/// Samples per case: `--repeat`, else the suite's `repeat`.
pub fn repeat(suite: &Suite, filters: &Filters) -> Result<u32, PlanError> {
    match filters.repeat.unwrap_or(suite.repeat) {
        0 => Err(PlanError::ZeroRepeat),
        n => Ok(n),
    }
}

/// The jobs of one case, numbered from `*seq` on (which moves past them): sample by sample,
/// provider by provider, each holding the case.
pub fn case_jobs(
    case: &Arc<Case>,
    case_index: usize,
    repeat: u32,
    providers: &[(usize, String)],
    seq: &mut usize,
) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(repeat as usize * providers.len());
    for sample in 0..repeat {
        for (provider_index, provider_id) in providers {
            jobs.push(Job {
                seq: *seq,
                case_index,
                case_id: case.id.clone(),
                provider_index: *provider_index,
                provider_id: provider_id.clone(),
                sample,
                case: CaseRef(Some(Arc::clone(case))),
            });
            *seq += 1;
        }
    }
    jobs
}

/// Jobs of a suite in a stable order: case by case, sample by sample, provider by provider
/// (so providers run side by side). `seq` numbers them.
pub fn plan(suite: &Suite, filters: &Filters) -> Result<Vec<Job>, PlanError> {
    let providers = providers(suite, filters)?;
    let repeat = repeat(suite, filters)?;
    let selected: Vec<usize> = suite
        .cases
        .iter()
        .enumerate()
        .filter(|(_, case)| filters.selects(case))
        .map(|(i, _)| i)
        .collect();
    // Sized exactly: a plan of 100,000 jobs grown by doubling would briefly hold twice that.
    let mut jobs = Vec::with_capacity(selected.len() * repeat as usize * providers.len());
    for case_index in selected {
        let case = &suite.cases[case_index];
        for sample in 0..repeat {
            for (provider_index, provider_id) in &providers {
                jobs.push(Job {
                    seq: jobs.len(),
                    case_index,
                    case_id: case.id.clone(),
                    provider_index: *provider_index,
                    provider_id: provider_id.clone(),
                    sample,
                    case: CaseRef::default(),
                });
            }
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Case, PromptTemplate, ProviderKind, ProviderSpec};

    fn case(id: &str, tags: &[&str]) -> Case {
        Case {
            id: id.into(),
            tags: tags.iter().map(|t| (*t).to_string()).collect(),
            vars: crate::model::Vars::new(),
            expected: Some("x".into()),
            context: vec![],
            asserts: vec![],
            threshold: None,
            repeat_policy: None,
            hash: "h".into(),
            location: crate::model::Location::default(),
        }
    }

    fn suite() -> Suite {
        Suite {
            name: "s".into(),
            description: None,
            tags: vec![],
            schedule: None,
            timezone: None,
            catch_up: None,
            jitter: None,
            source: "s.yaml".into(),
            providers: vec![
                ProviderSpec::new("a", ProviderKind::Echo),
                ProviderSpec::new("b", ProviderKind::Echo),
            ],
            system: None,
            prompt: PromptTemplate::Text("{{ q }}".into()),
            repeat: 2,
            repeat_policy: crate::model::RepeatPolicy::All,
            cases: vec![
                case("billing-1", &["billing"]),
                case("billing-2", &["billing", "eu"]),
                case("shipping-1", &["shipping"]),
            ],
            gates: vec![],
            alerts: vec![],
            review: None,
            hash: "h".into(),
            named_metrics: std::collections::BTreeSet::new(),
            settings: std::collections::BTreeMap::new(),
        }
    }

    #[test]
    fn plans_cases_by_samples_by_providers_in_order() {
        let jobs = plan(&suite(), &Filters::default()).unwrap();
        assert_eq!(jobs.len(), 3 * 2 * 2);
        let first: Vec<(&str, u32, &str)> = jobs[..4]
            .iter()
            .map(|j| (j.case_id.as_str(), j.sample, j.provider_id.as_str()))
            .collect();
        assert_eq!(
            first,
            [
                ("billing-1", 0, "a"),
                ("billing-1", 0, "b"),
                ("billing-1", 1, "a"),
                ("billing-1", 1, "b")
            ]
        );
        assert!(jobs.iter().enumerate().all(|(i, j)| j.seq == i));
    }

    #[test]
    fn filters_by_glob_tag_provider_and_repeat() {
        let f = Filters {
            providers: vec!["b".into()],
            cases: vec![glob::Pattern::new("billing-*").unwrap()],
            tags: vec!["eu".into()],
            repeat: Some(1),
        };
        let jobs = plan(&suite(), &f).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].case_id, "billing-2");
        assert_eq!(jobs[0].provider_id, "b");
        assert_eq!(jobs[0].provider_index, 1);
    }

    #[test]
    fn unknown_provider_suggests_the_closest() {
        let f = Filters {
            providers: vec!["bb".into()],
            ..Filters::default()
        };
        let err = plan(&suite(), &f).unwrap_err().to_string();
        assert!(err.contains("has no such provider"), "{err}");
        assert!(err.contains("a, b"), "{err}");
    }

    #[test]
    fn zero_repeat_is_an_error() {
        let f = Filters {
            repeat: Some(0),
            ..Filters::default()
        };
        assert_eq!(plan(&suite(), &f), Err(PlanError::ZeroRepeat));
    }
}
