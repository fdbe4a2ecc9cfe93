//! Text normalisations (`normalize:` of an assertion), applied to the output and to the
//! expected value(s) alike before comparing.
//!
//! Whatever order the user lists them in, they apply in one fixed order, so that the result
//! is predictable: strip punctuation, lowercase, collapse whitespace, trim. Stripping
//! punctuation removes the character (it does not leave a space): `"30 days."` becomes
//! `"30 days"`, `"it's"` becomes `"its"`.

use std::borrow::Cow;

use crate::model::Normalize;

/// Bit of [`Normalize::Lowercase`] in a normalisation mask.
pub const LOWERCASE: u8 = 1;
/// Bit of [`Normalize::Trim`].
pub const TRIM: u8 = 2;
/// Bit of [`Normalize::CollapseWhitespace`].
pub const COLLAPSE_WHITESPACE: u8 = 4;
/// Bit of [`Normalize::StripPunctuation`].
pub const STRIP_PUNCTUATION: u8 = 8;

/// The mask of a list of normalisations.
#[must_use]
pub fn mask_of(list: &[Normalize]) -> u8 {
    list.iter().fold(0, |m, n| {
        m | match n {
            Normalize::Lowercase => LOWERCASE,
            Normalize::Trim => TRIM,
            Normalize::CollapseWhitespace => COLLAPSE_WHITESPACE,
            Normalize::StripPunctuation => STRIP_PUNCTUATION,
        }
    })
}

/// Normalise `s` as `list` says. Borrows when nothing changes.
#[must_use]
pub fn normalize<'a>(s: &'a str, list: &[Normalize]) -> Cow<'a, str> {
    apply(s, mask_of(list))
}

/// Whether `c` counts as punctuation for `strip_punctuation`: ASCII punctuation and the
/// usual typographic marks (curly quotes, dashes, ellipsis, guillemets, CJK marks).
#[must_use]
pub fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            c,
            '\u{2018}'
                | '\u{2019}'
                | '\u{201A}'
                | '\u{201C}'
                | '\u{201D}'
                | '\u{201E}'
                | '\u{2026}'
                | '\u{2013}'
                | '\u{2014}'
                | '\u{2010}'
                | '\u{2011}'
                | '\u{2012}'
                | '\u{00AB}'
                | '\u{00BB}'
                | '\u{2039}'
                | '\u{203A}'
                | '\u{00A1}'
                | '\u{00BF}'
                | '\u{00B7}'
                | '\u{2022}'
                | '\u{3001}'
                | '\u{3002}'
                | '\u{FF0C}'
                | '\u{FF01}'
                | '\u{FF1F}'
                | '\u{FF1A}'
                | '\u{FF1B}'
        )
}

/// Normalise `s` by a mask of the constants above. Borrows when the mask is empty or only
/// trims, or when nothing would change.
#[must_use]
pub fn apply(s: &str, mask: u8) -> Cow<'_, str> {
    if mask & !TRIM == 0 {
        return if mask & TRIM == 0 {
            Cow::Borrowed(s)
        } else {
            Cow::Borrowed(s.trim())
        };
    }
    if s.is_ascii() {
        return apply_ascii(s, mask);
    }
    if !needs_work(s, mask) {
        return Cow::Borrowed(if mask & TRIM == 0 { s } else { s.trim() });
    }
    let strip = mask & STRIP_PUNCTUATION != 0;
    let lower = mask & LOWERCASE != 0;
    let collapse = mask & COLLAPSE_WHITESPACE != 0;
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if strip && is_punctuation(c) {
            continue;
        }
        if collapse && c.is_whitespace() {
            if !in_space {
                out.push(' ');
                in_space = true;
            }
            continue;
        }
        in_space = false;
        if lower && !c.is_lowercase() {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    if mask & TRIM != 0 {
        let end = out.trim_end().len();
        out.truncate(end);
        let start = out.len() - out.trim_start().len();
        if start > 0 {
            out.drain(..start);
        }
    }
    Cow::Owned(out)
}

fn trim_if(x: &str, mask: u8) -> &str {
    if mask & TRIM == 0 { x } else { x.trim() }
}

/// [`apply`] for ASCII text, byte by byte.
fn apply_ascii(s: &str, mask: u8) -> Cow<'_, str> {
    let strip = mask & STRIP_PUNCTUATION != 0;
    let lower = mask & LOWERCASE != 0;
    let collapse = mask & COLLAPSE_WHITESPACE != 0;
    let b = s.as_bytes();
    let changes = b.iter().enumerate().any(|(i, &c)| {
        (strip && c.is_ascii_punctuation())
            || (lower && c.is_ascii_uppercase())
            || (collapse
                && c.is_ascii_whitespace()
                && (c != b' ' || b.get(i + 1).is_some_and(u8::is_ascii_whitespace)))
    });
    if !changes {
        return Cow::Borrowed(trim_if(s, mask));
    }
    let mut out = Vec::with_capacity(b.len());
    let mut in_space = false;
    for &c in b {
        if strip && c.is_ascii_punctuation() {
            continue;
        }
        if collapse && c.is_ascii_whitespace() {
            if !in_space {
                out.push(b' ');
                in_space = true;
            }
            continue;
        }
        in_space = false;
        out.push(if lower { c.to_ascii_lowercase() } else { c });
    }
    let out = String::from_utf8(out).unwrap_or_default();
    match trim_if(&out, mask) {
        t if t.len() == out.len() => Cow::Owned(out),
        t => Cow::Owned(t.to_owned()),
    }
}

/// Whether normalising by `mask` could change `s` beyond trimming.
fn needs_work(s: &str, mask: u8) -> bool {
    let strip = mask & STRIP_PUNCTUATION != 0;
    let lower = mask & LOWERCASE != 0;
    let collapse = mask & COLLAPSE_WHITESPACE != 0;
    let mut prev_space = false;
    for c in s.chars() {
        if (strip && is_punctuation(c)) || (lower && c.to_lowercase().ne(std::iter::once(c))) {
            return true;
        }
        if collapse && c.is_whitespace() {
            if prev_space || c != ' ' {
                return true;
            }
            prev_space = true;
        } else {
            prev_space = false;
        }
    }
    false
}

/// Lowercase with curly apostrophes and quotes made straight, for phrase matching.
#[must_use]
pub fn fold_for_matching(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{2018}' | '\u{2019}' | '\u{02BC}' | '\u{FF07}' => out.push('\''),
            '\u{201C}' | '\u{201D}' => out.push('"'),
            c if c.is_lowercase() => out.push(c),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Whether `needle` occurs in `hay` as whole words (not inside a longer word). Both are
/// expected already folded to one case.
#[must_use]
pub fn contains_word(hay: &str, needle: &str) -> bool {
    find_word(hay, needle).is_some()
}

/// Byte offset of the first whole-word occurrence of `needle` in `hay`.
#[must_use]
pub fn find_word(hay: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let starts_word = needle.chars().next().is_some_and(char::is_alphanumeric);
    let ends_word = needle
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric);
    let mut from = 0;
    while let Some(pos) = hay[from..].find(needle) {
        let start = from + pos;
        let end = start + needle.len();
        let before_ok = !starts_word
            || !hay[..start]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric);
        let after_ok = !ends_word || !hay[end..].chars().next().is_some_and(char::is_alphanumeric);
        if before_ok && after_ok {
            return Some(start);
        }
        // Advance by one character past the start of this occurrence.
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_mask_borrows_unchanged() {
        let s = "  Hello,  World! ";
        assert!(matches!(apply(s, 0), Cow::Borrowed(x) if x == s));
        assert!(matches!(apply(s, TRIM), Cow::Borrowed("Hello,  World!")));
    }

    #[test]
    fn each_option_alone() {
        let s = "  Hello,\n\t World! ";
        assert_eq!(
            normalize(s, &[Normalize::Lowercase]),
            "  hello,\n\t world! "
        );
        assert_eq!(normalize(s, &[Normalize::Trim]), "Hello,\n\t World!");
        assert_eq!(
            normalize(s, &[Normalize::CollapseWhitespace]),
            " Hello, World! "
        );
        assert_eq!(
            normalize(s, &[Normalize::StripPunctuation]),
            "  Hello\n\t World "
        );
    }

    #[test]
    fn all_options_in_fixed_order() {
        let all = [
            Normalize::Trim,
            Normalize::Lowercase,
            Normalize::StripPunctuation,
            Normalize::CollapseWhitespace,
        ];
        assert_eq!(
            normalize("  The  answer - is: 30 DAYS. ", &all),
            "the answer is 30 days"
        );
        assert_eq!(
            normalize("\u{201C}Quoted\u{201D} \u{2014} text\u{2026}", &all),
            "quoted text"
        );
    }

    #[test]
    fn unchanged_input_is_borrowed() {
        assert!(matches!(
            apply("already lower", LOWERCASE | COLLAPSE_WHITESPACE),
            Cow::Borrowed(_)
        ));
        assert!(matches!(apply("Upper", LOWERCASE), Cow::Owned(_)));
        assert!(matches!(
            apply("two  spaces", COLLAPSE_WHITESPACE),
            Cow::Owned(_)
        ));
    }

    #[test]
    fn ascii_and_unicode_paths_agree() {
        let masks = [
            LOWERCASE,
            COLLAPSE_WHITESPACE,
            STRIP_PUNCTUATION,
            LOWERCASE | TRIM | COLLAPSE_WHITESPACE | STRIP_PUNCTUATION,
            TRIM | STRIP_PUNCTUATION,
        ];
        for s in ["  A, b\t\tC!  ", "x", "", " - ", "a  b", "a \n b"] {
            for m in masks {
                // Appending a non-ASCII letter forces the general path.
                let general = apply(&format!("{s}é"), m).into_owned();
                let ascii = apply(s, m).into_owned();
                let general = general
                    .strip_suffix('é')
                    .map(str::to_owned)
                    .unwrap_or(general);
                if m & TRIM == 0 {
                    assert_eq!(ascii, general, "{s:?} {m}");
                } else {
                    assert_eq!(ascii, general.trim_end(), "{s:?} {m}");
                }
            }
        }
    }

    #[test]
    fn unicode_lowercase() {
        assert_eq!(apply("ÉCOLE Straße", LOWERCASE), "école straße");
    }

    #[test]
    fn fold_makes_apostrophes_straight() {
        assert_eq!(fold_for_matching("I\u{2019}M Sorry"), "i'm sorry");
    }

    #[test]
    fn whole_words() {
        assert!(contains_word("the label is positive.", "positive"));
        assert!(!contains_word("the label is nonpositive", "positive"));
        assert!(!contains_word("positively", "positive"));
        assert!(contains_word("as an ai, i", "as an ai"));
        assert!(!contains_word("as an aide", "as an ai"));
        assert_eq!(find_word("aa a", "a"), Some(3));
        assert!(!contains_word("anything", ""));
    }
}
