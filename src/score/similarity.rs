//! `similarity` (string similarity in [0,1] against a threshold) and `levenshtein` (edit
//! distance against a maximum, as promptfoo).

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::json;

use super::text::quote;
use super::verdict::Verdict;
use crate::model::SimilarityAlgo;

/// Similarity of `a` and `b` in [0,1] (1 = identical).
///
/// `levenshtein` and `damerau` are normalised distances (1 - d / longer length, in
/// characters); `jaro`, `jaro-winkler` and `sorensen-dice` (character bigrams, whitespace
/// ignored) come from `strsim`; `token-jaccard` is |A ∩ B| / |A ∪ B| over the lowercase word
/// sets (words are runs of letters and digits); `soft-tokens` is [`soft_tokens`]. Two empty
/// strings are identical.
pub fn similarity_of(a: &str, b: &str, algo: SimilarityAlgo) -> f64 {
    let s = match algo {
        SimilarityAlgo::Levenshtein => strsim::normalized_levenshtein(a, b),
        SimilarityAlgo::Damerau => strsim::normalized_damerau_levenshtein(a, b),
        SimilarityAlgo::Jaro => strsim::jaro(a, b),
        SimilarityAlgo::JaroWinkler => strsim::jaro_winkler(a, b),
        SimilarityAlgo::SorensenDice => strsim::sorensen_dice(a, b),
        SimilarityAlgo::TokenJaccard => token_jaccard(a, b),
        SimilarityAlgo::SoftTokens => soft_tokens(a, b),
    };
    if s.is_finite() {
        s.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Jaccard index of the lowercase word sets of `a` and `b`; 1 when both have no words.
pub fn token_jaccard(a: &str, b: &str) -> f64 {
    let (a, b) = (lower(a), lower(b));
    let (x, y) = (words(&a), words(&b));
    if x.is_empty() && y.is_empty() {
        return 1.0;
    }
    let inter = x.intersection(&y).count();
    let union = x.len() + y.len() - inter;
    inter as f64 / union as f64
}

/// Words that carry no content for `soft-tokens` (articles, pronouns, auxiliaries,
/// prepositions, conjunctions).
const STOP: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "is", "are", "was", "were", "be", "been", "being", "to",
    "of", "in", "on", "at", "for", "with", "by", "from", "as", "it", "its", "this", "that",
    "these", "those", "he", "she", "they", "them", "his", "her", "their", "i", "you", "we", "us",
    "our", "your", "my", "me", "am", "do", "does", "did", "has", "have", "had", "there", "here",
    "what", "which", "who", "whom", "how", "when", "where", "why", "will", "would", "can", "could",
    "should", "may", "might", "must", "shall", "so", "than", "then", "too", "very", "just", "also",
    "into", "over", "under", "about", "after", "before", "up", "down", "out", "off", "again",
    "further", "once", "all", "any", "both", "each", "few", "more", "most", "other", "some",
    "such", "only", "own", "same", "s", "t",
];

/// `soft-tokens`: the content words of each text (lowercase, stop words removed, plural and
/// `-ed`/`-ing` endings dropped), each matched with its most similar word in the other text
/// by character-trigram Dice (1 for the same word, partial for "colour"/"color" or a typo);
/// the score is the harmonic mean of the two directions' average best match. 1 when neither
/// text has a content word, 0 when only one has.
///
/// Chosen as the default by Spearman correlation with human judgements on STS-B
/// (docs/scoring.md): it beats every character-edit metric and plain token overlap.
pub fn soft_tokens(a: &str, b: &str) -> f64 {
    let (a, b) = (lower(a), lower(b));
    let (x, y) = (content_trigrams(&a), content_trigrams(&b));
    if x.is_empty() && y.is_empty() {
        return 1.0;
    }
    if x.is_empty() || y.is_empty() {
        return 0.0;
    }
    let best = |w: &HashSet<[u8; 3]>, other: &[HashSet<[u8; 3]>]| {
        other.iter().map(|o| dice(w, o)).fold(0.0f64, f64::max)
    };
    let ab = x.iter().map(|w| best(w, &y)).sum::<f64>() / x.len() as f64;
    let ba = y.iter().map(|w| best(w, &x)).sum::<f64>() / y.len() as f64;
    if ab + ba > 0.0 {
        2.0 * ab * ba / (ab + ba)
    } else {
        0.0
    }
}

/// The distinct content words of `s` (lowercase), each as its set of character trigrams
/// (padded with a space at both ends, so short words still have some).
fn content_trigrams(s: &str) -> Vec<HashSet<[u8; 3]>> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for w in s.split(|c: char| !c.is_alphanumeric()) {
        if w.is_empty() || STOP.contains(&w) {
            continue;
        }
        let w = light_stem(w);
        if !seen.insert(w) {
            continue;
        }
        let mut padded = Vec::with_capacity(w.len() + 2);
        padded.push(b' ');
        padded.extend_from_slice(w.as_bytes());
        padded.push(b' ');
        out.push(padded.windows(3).map(|t| [t[0], t[1], t[2]]).collect());
    }
    out
}

/// Drop one common English ending (`-ing`, `-ed`, `-es`, `-s`) when a stem of three or more
/// bytes is left.
fn light_stem(w: &str) -> &str {
    for suffix in ["ing", "ed", "es", "s"] {
        if w.len() > suffix.len() + 2
            && let Some(stem) = w.strip_suffix(suffix)
        {
            return stem;
        }
    }
    w
}

fn dice(a: &HashSet<[u8; 3]>, b: &HashSet<[u8; 3]>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let inter = a.intersection(b).count();
    2.0 * inter as f64 / (a.len() + b.len()) as f64
}

fn words(s: &str) -> HashSet<&str> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

fn lower(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|c| c.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

fn algo_name(algo: SimilarityAlgo) -> &'static str {
    match algo {
        SimilarityAlgo::Levenshtein => "levenshtein",
        SimilarityAlgo::Damerau => "damerau",
        SimilarityAlgo::Jaro => "jaro",
        SimilarityAlgo::JaroWinkler => "jaro-winkler",
        SimilarityAlgo::SorensenDice => "sorensen-dice",
        SimilarityAlgo::TokenJaccard => "token-jaccard",
        SimilarityAlgo::SoftTokens => "soft-tokens",
    }
}

/// `similarity`: score = similarity; passes when it reaches `threshold`.
pub fn similarity(
    out: &str,
    value: &str,
    raw: &str,
    algo: SimilarityAlgo,
    threshold: f64,
) -> Verdict {
    let s = similarity_of(out, value, algo);
    let pass = s + 1e-12 >= threshold;
    let name = algo_name(algo);
    let reason = format!(
        "{name} similarity to {} is {s:.3}, {} the threshold {threshold}",
        quote(raw),
        if pass { "at or above" } else { "below" }
    );
    Verdict::graded(
        pass,
        s,
        reason,
        json!({ "similarity": s, "algorithm": name, "threshold": threshold }),
    )
}

/// `levenshtein`: passes when the edit distance (in characters) is at most `max_distance`;
/// score = 1 - distance / longer length.
pub fn levenshtein(out: &str, value: &str, raw: &str, max_distance: usize) -> Verdict {
    let d = strsim::levenshtein(out, value);
    let longer = out.chars().count().max(value.chars().count());
    let score = if longer == 0 {
        1.0
    } else {
        1.0 - d as f64 / longer as f64
    };
    let pass = d <= max_distance;
    let reason = format!(
        "edit distance to {} is {d}, {} the maximum {max_distance}",
        quote(raw),
        if pass { "within" } else { "over" }
    );
    Verdict::graded(
        pass,
        score,
        reason,
        json!({ "distance": d, "max_distance": max_distance }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SimilarityAlgo; 7] = [
        SimilarityAlgo::Levenshtein,
        SimilarityAlgo::Damerau,
        SimilarityAlgo::Jaro,
        SimilarityAlgo::JaroWinkler,
        SimilarityAlgo::SorensenDice,
        SimilarityAlgo::TokenJaccard,
        SimilarityAlgo::SoftTokens,
    ];

    #[test]
    fn soft_tokens_match_content_words_softly() {
        // Stop words and word order do not matter; plural and -ed/-ing endings fold.
        let same = soft_tokens(
            "The cats played in the garden.",
            "In the garden, a cat plays",
        );
        assert!((same - 1.0).abs() < 1e-12, "{same}");
        // A spelling variant or typo is a partial match, not a miss.
        let variant = soft_tokens("favourite colour", "favorite color");
        assert!(variant > 0.5 && variant < 1.0, "{variant}");
        assert!(variant > token_jaccard("favourite colour", "favorite color"));
        // A paraphrase sharing the content words ranks above one about something else,
        // which the character metrics get backwards here.
        let (a, close, far) = (
            "A man is playing a guitar.",
            "A guitar is being played by a man.",
            "A man is playing a flute.",
        );
        assert!(soft_tokens(a, close) > soft_tokens(a, far));
        assert!(
            similarity_of(a, close, SimilarityAlgo::Levenshtein)
                < similarity_of(a, far, SimilarityAlgo::Levenshtein)
        );
        // Only stop words on both sides: identical; on one side: nothing in common.
        assert!((soft_tokens("the", "of a") - 1.0).abs() < 1e-12);
        assert!(soft_tokens("the", "guitar").abs() < 1e-12);
        assert!((soft_tokens("", "") - 1.0).abs() < 1e-12);
        // Non-ASCII text does not panic and matches itself.
        assert!((soft_tokens("café crème", "Café crème") - 1.0).abs() < 1e-12);
    }

    #[test]
    fn identical_is_one_and_disjoint_is_low() {
        for algo in ALL {
            assert!(
                (similarity_of("the cat sat", "the cat sat", algo) - 1.0).abs() < 1e-12,
                "{algo:?}"
            );
            assert!(similarity_of("abcdef", "uvwxyz", algo) < 0.2, "{algo:?}");
        }
    }

    #[test]
    fn known_values() {
        // kitten -> sitting: distance 3 over 7 chars.
        let l = similarity_of("kitten", "sitting", SimilarityAlgo::Levenshtein);
        assert!((l - (1.0 - 3.0 / 7.0)).abs() < 1e-12);
        // A transposition is one Damerau edit, two Levenshtein edits.
        let d = similarity_of("abcd", "abdc", SimilarityAlgo::Damerau);
        assert!((d - 0.75).abs() < 1e-12);
        let l = similarity_of("abcd", "abdc", SimilarityAlgo::Levenshtein);
        assert!((l - 0.5).abs() < 1e-12);
        let j = similarity_of("martha", "marhta", SimilarityAlgo::Jaro);
        assert!((j - 0.944).abs() < 1e-3);
        let jw = similarity_of("martha", "marhta", SimilarityAlgo::JaroWinkler);
        assert!((jw - 0.961).abs() < 1e-3);
        let sd = similarity_of("night", "nacht", SimilarityAlgo::SorensenDice);
        assert!((sd - 0.25).abs() < 1e-12);
    }

    #[test]
    fn jaccard_over_lowercase_word_sets() {
        assert!((token_jaccard("The cat sat", "the CAT ran") - 0.5).abs() < 1e-12);
        assert!((token_jaccard("a a a b", "b a") - 1.0).abs() < 1e-12);
        assert!((token_jaccard("", "") - 1.0).abs() < 1e-12);
        assert!(token_jaccard("", "x").abs() < 1e-12);
        assert!((token_jaccard("hello, world!", "world hello") - 1.0).abs() < 1e-12);
    }

    #[test]
    fn similarity_threshold() {
        let v = similarity(
            "kitten",
            "sitting",
            "sitting",
            SimilarityAlgo::Levenshtein,
            0.5,
        );
        assert!(v.pass);
        assert!((v.score - 4.0 / 7.0).abs() < 1e-12);
        let v = similarity(
            "kitten",
            "sitting",
            "sitting",
            SimilarityAlgo::Levenshtein,
            0.8,
        );
        assert!(!v.pass);
        assert!(v.reason.contains("below the threshold 0.8"), "{}", v.reason);
    }

    #[test]
    fn levenshtein_distance() {
        let v = levenshtein("kitten", "sitting", "sitting", 3);
        assert!(v.pass);
        assert_eq!(v.details["distance"], 3);
        assert!((v.score - (1.0 - 3.0 / 7.0)).abs() < 1e-12);
        let v = levenshtein("kitten", "sitting", "sitting", 2);
        assert!(!v.pass);
        assert!(v.reason.contains("over the maximum 2"));
        let v = levenshtein("", "", "", 0);
        assert!(v.pass);
        assert!((v.score - 1.0).abs() < f64::EPSILON);
        // Characters, not bytes.
        assert_eq!(
            levenshtein("café", "cafe", "cafe", 5).details["distance"],
            1
        );
    }
}
