//! The model versions a run's providers reported (`model`, OpenAI's `system_fingerprint`):
//! stored with the run, and a `model` marker added (origin `auto`) when the version a
//! provider mostly answered with differs from the one of its previous run that reported one.

use std::fmt::Write as _;

use crate::model::{MarkKind, MarkOrigin, ReportedModel, RunInfo};
use crate::store::{NewMark, Store, VersionCount};

/// Mark each provider's change of version in run `info` (its versions were counted by the
/// run's writer, batch by batch); the markers' texts.
pub(super) fn record(store: &mut Store, info: &RunInfo) -> anyhow::Result<Vec<String>> {
    let now = store.run_versions(&info.run_id)?;
    let mut texts = Vec::new();
    let created = super::finish::now_rfc3339();
    for provider in &info.providers {
        let Some(is) = dominant(&now, provider) else {
            continue;
        };
        let Some(prev) = store.previous_versioned_run(&info.suite, provider, &info.run_id)? else {
            continue;
        };
        let before = store.run_versions(&prev)?;
        let Some(was) = dominant(&before, provider) else {
            continue;
        };
        let Some(text) = change_text(provider, &was, &is, &info.suite) else {
            continue;
        };
        let (_, added) = store.add_mark(&NewMark {
            kind: MarkKind::Model,
            text: &text,
            at: &info.started_at,
            feature: None,
            source: None,
            origin: MarkOrigin::Auto,
            created_at: &created,
        })?;
        if added {
            texts.push(text);
        }
    }
    Ok(texts)
}

/// The version `provider` answered with most often in `counts` (sorted by the store: most
/// answered first).
fn dominant(counts: &[VersionCount], provider: &str) -> Option<ReportedModel> {
    counts
        .iter()
        .find(|c| c.provider == provider)
        .map(|c| c.version.clone())
}

/// `openai gpt-4o-2024-08-06 -> gpt-4o-2024-11-20 (fp_abc -> fp_def), seen by suite faq`;
/// None when nothing changed.
fn change_text(
    provider: &str,
    was: &ReportedModel,
    is: &ReportedModel,
    suite: &str,
) -> Option<String> {
    if was == is {
        return None;
    }
    let mut text = if was.model == is.model {
        format!("{provider} {}", is.model)
    } else {
        format!("{provider} {} -> {}", was.model, is.model)
    };
    if was.fingerprint != is.fingerprint {
        let fp = |f: &Option<String>| f.clone().unwrap_or_else(|| "no fingerprint".into());
        let _ = write!(
            text,
            " ({} -> {})",
            fp(&was.fingerprint),
            fp(&is.fingerprint)
        );
    }
    let _ = write!(text, ", seen by suite {suite}");
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(model: &str, fp: Option<&str>) -> ReportedModel {
        ReportedModel {
            model: model.into(),
            fingerprint: fp.map(Into::into),
        }
    }

    #[test]
    fn a_change_reads_as_the_spec_shows_it() {
        let a = v("gpt-4o-2024-08-06", Some("fp_abc"));
        let b = v("gpt-4o-2024-11-20", Some("fp_def"));
        assert_eq!(
            change_text("openai", &a, &b, "faq").unwrap(),
            "openai gpt-4o-2024-08-06 -> gpt-4o-2024-11-20 (fp_abc -> fp_def), seen by suite faq"
        );
        assert_eq!(
            change_text("openai", &a, &v("gpt-4o-2024-08-06", Some("fp_x")), "faq").unwrap(),
            "openai gpt-4o-2024-08-06 (fp_abc -> fp_x), seen by suite faq"
        );
        assert_eq!(
            change_text("claude", &v("m1", None), &v("m2", None), "s").unwrap(),
            "claude m1 -> m2, seen by suite s"
        );
        assert_eq!(change_text("openai", &a, &a, "faq"), None);
    }
}
