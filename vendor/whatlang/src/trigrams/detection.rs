use hashbrown::HashMap;

#[cfg(any(test, feature = "dev"))]
use super::LangProfile;
use super::LangProfileList;
use super::utils::{TrigramsWithPositions, get_trigrams_with_positions};
use super::{ARABIC_LANGS, CYRILLIC_LANGS, DEVANAGARI_LANGS, HEBREW_LANGS, LATIN_LANGS};
use super::{MAX_TOTAL_DISTANCE, MAX_TRIGRAM_DISTANCE, Trigram};
use crate::Lang;
use crate::core::{FilterList, Info, InternalQuery, Text, calculate_confidence};
use crate::scripts::grouping::MultiLangScript;

#[derive(Debug)]
pub struct RawOutcome {
    pub trigrams_count: usize,
    #[allow(dead_code)]
    pub raw_distances: Vec<(Lang, u32)>,
    pub scores: Vec<(Lang, f64)>,
}

#[inline]
pub fn detect(iquery: &InternalQuery) -> Option<Info> {
    let raw_outcome = raw_detect(iquery);
    let RawOutcome {
        trigrams_count,
        scores,
        ..
    } = raw_outcome;

    let mut raw_scores_iter = scores.into_iter();

    let opt_lang_score1 = raw_scores_iter.next();
    let opt_lang_score2 = raw_scores_iter.next();

    // TODO: Logic is duplicated in alphabets. Consider refactoring
    opt_lang_score1.map(|(lang1, score1)| {
        let script = iquery.multi_lang_script.to_script();
        let confidence = if let Some((_, score2)) = opt_lang_score2 {
            calculate_confidence(score1, score2, trigrams_count)
        } else {
            1.0
        };
        Info::new(script, lang1, confidence)
    })
}

#[inline]
pub fn raw_detect(iquery: &InternalQuery) -> RawOutcome {
    let lang_profile_list = script_to_lang_profile_list(iquery.multi_lang_script);
    calculate_scores_in_profiles(&iquery.text, iquery.filter_list, lang_profile_list)
}

fn script_to_lang_profile_list(script: MultiLangScript) -> LangProfileList {
    use MultiLangScript as MLS;
    match script {
        MLS::Latin => LATIN_LANGS,
        MLS::Cyrillic => CYRILLIC_LANGS,
        MLS::Arabic => ARABIC_LANGS,
        MLS::Devanagari => DEVANAGARI_LANGS,
        MLS::Hebrew => HEBREW_LANGS,
    }
}

#[inline]
fn calculate_scores_in_profiles(
    text: &Text,
    filter_list: &FilterList,
    lang_profile_list: LangProfileList,
) -> RawOutcome {
    let TrigramsWithPositions {
        trigram_positions, ..
    } = get_trigrams_with_positions(&text.lowercase());
    let unique_trigrams_count = trigram_positions.len();

    let index = InvertedProfiles::of(lang_profile_list);
    let totals = index.total_distances(&trigram_positions);

    let mut lang_distances: Vec<(Lang, u32)> = Vec::with_capacity(lang_profile_list.len());
    for (&(lang, _), &total) in lang_profile_list.iter().zip(&totals) {
        if !filter_list.is_allowed(lang) {
            continue;
        }
        let dist = finish_distance(total, &trigram_positions);
        lang_distances.push((lang, dist));
    }

    // Sort languages by distance
    lang_distances.sort_unstable_by_key(|(_, dist)| *dist);

    let max_dist = unique_trigrams_count as u32 * MAX_TRIGRAM_DISTANCE;

    let raw_scores = lang_distances
        .iter()
        .map(|&(lang, distance)| (lang, distance_to_raw_score(distance, max_dist)))
        .collect();

    RawOutcome {
        trigrams_count: unique_trigrams_count,
        scores: raw_scores,
        raw_distances: lang_distances,
    }
}

/// The profiles of one script's languages turned around: for each trigram, the languages
/// whose profile holds it and at which position. A text's distance to every language is then
/// worked out from the text's own trigrams (at most `TEXT_TRIGRAMS_SIZE`), each looked up
/// once, instead of looking up each of every language's 300 trigrams in the text (evalwatch's
/// patch: the same distances, about a tenth of the work for a Latin-script text).
struct InvertedProfiles {
    /// For each language of the list, in its order: the distance of a text that holds none of
    /// its trigrams (`MAX_TRIGRAM_DISTANCE` for each trigram of its profile).
    empty_distances: Vec<u64>,
    /// Trigram -> the range of `postings` that lists where it appears.
    trigrams: HashMap<Trigram, (u32, u32)>,
    /// (index of the language in the list, position of the trigram in its profile).
    postings: Vec<(u16, u16)>,
}

impl InvertedProfiles {
    fn build(list: LangProfileList) -> Self {
        let mut by_trigram: HashMap<Trigram, Vec<(u16, u16)>> = HashMap::new();
        for (l, &(_, profile)) in list.iter().enumerate() {
            for (i, &trigram) in profile.iter().enumerate() {
                by_trigram
                    .entry(trigram)
                    .or_default()
                    .push((l as u16, i as u16));
            }
        }
        let mut trigrams = HashMap::with_capacity(by_trigram.len());
        let mut postings = Vec::new();
        for (trigram, list) in by_trigram {
            let start = postings.len() as u32;
            postings.extend_from_slice(&list);
            trigrams.insert(trigram, (start, list.len() as u32));
        }
        let empty_distances = list
            .iter()
            .map(|(_, profile)| profile.len() as u64 * u64::from(MAX_TRIGRAM_DISTANCE))
            .collect();
        Self {
            empty_distances,
            trigrams,
            postings,
        }
    }

    fn of(list: LangProfileList) -> &'static Self {
        use std::sync::LazyLock;
        static LATIN: LazyLock<InvertedProfiles> =
            LazyLock::new(|| InvertedProfiles::build(LATIN_LANGS));
        static CYRILLIC: LazyLock<InvertedProfiles> =
            LazyLock::new(|| InvertedProfiles::build(CYRILLIC_LANGS));
        static ARABIC: LazyLock<InvertedProfiles> =
            LazyLock::new(|| InvertedProfiles::build(ARABIC_LANGS));
        static DEVANAGARI: LazyLock<InvertedProfiles> =
            LazyLock::new(|| InvertedProfiles::build(DEVANAGARI_LANGS));
        static HEBREW: LazyLock<InvertedProfiles> =
            LazyLock::new(|| InvertedProfiles::build(HEBREW_LANGS));
        if std::ptr::eq(list, LATIN_LANGS) {
            &LATIN
        } else if std::ptr::eq(list, CYRILLIC_LANGS) {
            &CYRILLIC
        } else if std::ptr::eq(list, ARABIC_LANGS) {
            &ARABIC
        } else if std::ptr::eq(list, DEVANAGARI_LANGS) {
            &DEVANAGARI
        } else {
            assert!(std::ptr::eq(list, HEBREW_LANGS), "an unknown profile list");
            &HEBREW
        }
    }

    /// Each language's sum over its profile of `|text position - profile position|` for a
    /// trigram the text holds and `MAX_TRIGRAM_DISTANCE` for one it does not: the sum
    /// `calculate_distance` makes, before its adjustment for short texts.
    fn total_distances(&self, text_trigrams: &HashMap<Trigram, u32>) -> Vec<u32> {
        let mut totals: Vec<i64> = self.empty_distances.iter().map(|&d| d as i64).collect();
        for (trigram, &n) in text_trigrams {
            if let Some(&(start, len)) = self.trigrams.get(trigram) {
                for &(l, i) in &self.postings[start as usize..(start + len) as usize] {
                    let dist = i64::from((n as i32 - i32::from(i)).unsigned_abs());
                    totals[usize::from(l)] += dist - i64::from(MAX_TRIGRAM_DISTANCE);
                }
            }
        }
        totals.into_iter().map(|t| t as u32).collect()
    }
}

/// `calculate_distance`'s adjustment for a text with fewer trigrams than a profile, applied
/// to a language's `total`.
#[inline]
fn finish_distance(mut total_dist: u32, text_trigrams: &HashMap<Trigram, u32>) -> u32 {
    let count = text_trigrams.len() as u32;

    if MAX_TRIGRAM_DISTANCE > count {
        let delta = MAX_TRIGRAM_DISTANCE - count;
        total_dist -= delta * MAX_TRIGRAM_DISTANCE;
    }

    total_dist.clamp(0, MAX_TOTAL_DISTANCE)
}

/// The distance as the crate computes it upstream, one profile at a time (kept to check the
/// inverted profiles against).
#[cfg(any(test, feature = "dev"))]
fn calculate_distance(lang_trigrams: LangProfile, text_trigrams: &HashMap<Trigram, u32>) -> u32 {
    let mut total_dist = 0u32;

    for (i, &trigram) in lang_trigrams.iter().enumerate() {
        let dist = match text_trigrams.get(&trigram) {
            Some(&n) => (n as i32 - i as i32).unsigned_abs(),
            None => MAX_TRIGRAM_DISTANCE,
        };
        total_dist += dist;
    }

    let count = text_trigrams.len() as u32;

    if MAX_TRIGRAM_DISTANCE > count {
        let delta = MAX_TRIGRAM_DISTANCE - count;
        total_dist -= delta * MAX_TRIGRAM_DISTANCE;
    }

    total_dist.clamp(0, MAX_TOTAL_DISTANCE)
}

/// evalwatch's patch, for its check: each language's trigram distance to `text`, in every
/// script's profiles, as (language, through the inverted profiles, as upstream computes it).
#[cfg(feature = "dev")]
pub fn distances_both_ways(text: &str) -> Vec<(Lang, u32, u32)> {
    let TrigramsWithPositions {
        trigram_positions, ..
    } = get_trigrams_with_positions(&Text::new(text).lowercase());
    let mut out = Vec::new();
    for list in [
        LATIN_LANGS,
        CYRILLIC_LANGS,
        ARABIC_LANGS,
        DEVANAGARI_LANGS,
        HEBREW_LANGS,
    ] {
        let totals = InvertedProfiles::of(list).total_distances(&trigram_positions);
        for (&(lang, profile), &total) in list.iter().zip(&totals) {
            out.push((
                lang,
                finish_distance(total, &trigram_positions),
                calculate_distance(profile, &trigram_positions),
            ));
        }
    }
    out
}

#[inline]
fn distance_to_raw_score(distance: u32, max_distance: u32) -> f64 {
    let similarity = max_distance - distance;
    similarity as f64 / max_distance as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_when_german_is_given() {
        let text = "Die Ordnung muss für immer in diesem Codebase bleiben";
        let iq = InternalQuery {
            text: Text::new(text),
            filter_list: &FilterList::default(),
            multi_lang_script: MultiLangScript::Latin,
        };
        let raw_outcome = raw_detect(&iq);

        assert_eq!(raw_outcome.trigrams_count, 50);

        let &(first_lang, first_score) = raw_outcome.scores.first().unwrap();
        let &(_last_lang, last_score) = raw_outcome.scores.last().unwrap();

        assert_eq!(first_lang, Lang::Deu);

        assert!(first_score >= 0.0);
        assert!(first_score <= 1.0);

        assert!(last_score >= 0.0);
        assert!(last_score <= 1.0);
    }
}
