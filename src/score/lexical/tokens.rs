//! Tokens of the lexical check: the text split into tokens, each folded (case, diacritics,
//! spelling variants, a light stemmer), read as a word, number, month, scale, negation or
//! literal, and hashed into the forms units are compared by.

use super::is_particle;
use super::words::{self, Special};

/// A decimal number as an integer mantissa and a count of fraction digits, normalised so
/// that equal values are equal (`1000` = `1,000` = `1000.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Number {
    mantissa: u64,
    scale: u32,
}

impl Number {
    pub(super) fn new(mut mantissa: u64, mut scale: u32) -> Self {
        while scale > 0 && mantissa.is_multiple_of(10) {
            mantissa /= 10;
            scale -= 1;
        }
        Self { mantissa, scale }
    }

    pub(super) fn hash(self) -> u64 {
        nonzero(mix(
            mix(0x6e75_6d62_6572_0000, self.mantissa),
            u64::from(self.scale),
        ))
    }

    /// A whole number of 100,000 or more rounded to, and cut to, two and three significant
    /// digits (8,537,673: 8,500,000, 8,540,000 and 8,530,000); nothing for smaller numbers
    /// or fractions, so years and small counts must match exactly.
    pub(super) fn rounded(self) -> impl Iterator<Item = Self> {
        let big = self.scale == 0 && self.mantissa >= 100_000;
        let digits = if big { self.mantissa.ilog10() + 1 } else { 0 };
        [2u32, 3]
            .into_iter()
            .filter(move |_| big)
            .flat_map(move |sig| {
                let unit = 10u64.pow(digits - sig);
                let cut = self.mantissa / unit * unit;
                let round = self.mantissa.saturating_add(unit / 2) / unit * unit;
                [Self::new(cut, 0), Self::new(round, 0)]
            })
    }

    /// `self` times ten to the `exp`, when it fits.
    fn scaled(self, exp: u32) -> Option<Self> {
        if self.scale >= exp {
            Some(Self::new(self.mantissa, self.scale - exp))
        } else {
            let factor = 10u64.checked_pow(exp - self.scale)?;
            Some(Self::new(self.mantissa.checked_mul(factor)?, 0))
        }
    }
}

/// The value of two adjacent tokens read as one number ("1.5 million", "twenty five").
pub(super) fn combine(prev: Option<Number>, token: &Token) -> Option<Number> {
    let prev = prev?;
    match *token {
        Token::Scale(_, exp) => prev.scaled(exp),
        Token::NumberWord(_, n)
            if prev.scale == 0
                && n.scale == 0
                && (20..=90).contains(&prev.mantissa)
                && prev.mantissa.is_multiple_of(10)
                && (1..=9).contains(&n.mantissa) =>
        {
            Some(Number::new(prev.mantissa + n.mantissa, 0))
        }
        _ => None,
    }
}

/// What one token of text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token {
    /// Function word, filler, or nothing left after folding.
    Skip,
    /// A hedge word that cancels a negation right before it ("not sure"): hash of its stem.
    Hedge(u64),
    Negation,
    /// A content word: hash of its stem.
    Word(u64),
    /// A word of the conversation ("yes", "I", "could"): hash of its stem, and whether it is
    /// an answer particle.
    Light(u64, bool),
    /// A word for a speaker ("I", "my", "we"): hash of the word. Never supported: the
    /// knowledge does not speak, and the prompt's "I" is the other speaker.
    Speaker(u64),
    /// A number word or ordinal: hash of its stem, and its value.
    NumberWord(u64, Number),
    /// A month name: hash of its stem, and the month.
    Month(u64, u64),
    /// A scale word ("million"): hash of its stem, and the power of ten.
    Scale(u64, u32),
    /// Digits.
    Number(Number),
    /// Something with digits that is not a plain number ("1.2.3", "A4"): exact match only.
    Literal(u64),
}

impl Token {
    /// The token's first form (0 when it has none).
    pub(super) fn form(self) -> u64 {
        match self {
            Token::Skip | Token::Negation => 0,
            Token::Word(h)
            | Token::Light(h, _)
            | Token::Speaker(h)
            | Token::Hedge(h)
            | Token::NumberWord(h, _)
            | Token::Month(h, _)
            | Token::Scale(h, _)
            | Token::Literal(h) => h,
            Token::Number(n) => n.hash(),
        }
    }
}

/// Classify one raw token; `buf` is scratch space.
pub(super) fn classify(raw: &str, buf: &mut String) -> Token {
    if raw.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return parse_number(raw, buf);
    }
    fold(raw, buf);
    if buf.ends_with("n't") {
        return Token::Negation;
    }
    if buf.ends_with("'s") {
        buf.truncate(buf.len() - 2);
    } else if buf.ends_with('\'') {
        buf.truncate(buf.len() - 1);
    }
    if buf.is_empty() {
        return Token::Skip;
    }
    let mut word_hash = hash_word(buf.as_bytes());
    let mut special = words::special(word_hash);
    if let Some(Special::Synonym(i)) = special {
        buf.clear();
        buf.push_str(words::synonym(i));
        word_hash = hash_word(buf.as_bytes());
        special = None;
    }
    if special == Some(Special::Light) && buf == "may" && raw.starts_with('M') {
        return Token::Month(word_hash, 5);
    }
    match special {
        Some(Special::Stop | Special::Synonym(_)) => Token::Skip,
        // "US" is a country, not "us".
        Some(Special::Light)
            if words::SPEAKERS.contains(&buf.as_str())
                && !(raw.len() > 1 && raw.bytes().all(|b| b.is_ascii_uppercase())) =>
        {
            Token::Speaker(word_hash)
        }
        Some(Special::Light) => Token::Light(word_hash, is_particle(buf)),
        Some(Special::Negation) => Token::Negation,
        Some(Special::Hedge) => Token::Hedge(stem_hash(buf)),
        Some(Special::Number(v)) => Token::NumberWord(stem_hash(buf), Number::new(v, 0)),
        Some(Special::Scale(e)) => Token::Scale(stem_hash(buf), e),
        Some(Special::Month(m)) => Token::Month(stem_hash(buf), m),
        None => {
            if buf.bytes().any(|b| b.is_ascii_digit()) {
                Token::Literal(word_hash)
            } else if buf.len() == 1 {
                // Single letters ("a", "e", initials) carry nothing checkable.
                Token::Skip
            } else {
                Token::Word(stem_hash(buf))
            }
        }
    }
}

/// Parse a token that starts with a digit: `1,000`, `6.213`, `1990s`, `20th`, `5km`.
fn parse_number(raw: &str, buf: &mut String) -> Token {
    let mut mantissa: u64 = 0;
    let mut scale: u32 = 0;
    let mut dots = 0;
    let mut overflow = false;
    let mut end = raw.len();
    for (i, b) in raw.bytes().enumerate() {
        match b {
            b'0'..=b'9' => {
                match mantissa
                    .checked_mul(10)
                    .and_then(|m| m.checked_add(u64::from(b - b'0')))
                {
                    Some(m) => mantissa = m,
                    None => overflow = true,
                }
                if dots == 1 {
                    scale += 1;
                }
            }
            b',' => {}
            b'.' => dots += 1,
            _ => {
                end = i;
                break;
            }
        }
    }
    if overflow || dots > 1 || scale > 18 {
        fold(raw, buf);
        return Token::Literal(hash_word(buf.as_bytes()));
    }
    let suffix = &raw[end..];
    let plain_suffix = suffix.is_empty()
        || ["st", "nd", "rd", "th", "s", "'s", "%"]
            .iter()
            .any(|s| suffix.eq_ignore_ascii_case(s));
    if !plain_suffix && suffix.bytes().any(|b| b.is_ascii_digit()) {
        // "A4"-like codes that started with a digit ("3M2"): exact match only.
        fold(raw, buf);
        return Token::Literal(hash_word(buf.as_bytes()));
    }
    Token::Number(Number::new(mantissa, scale))
}

/// Lowercase `raw` into `buf`, removing common Latin diacritics and normalising apostrophes.
fn fold(raw: &str, buf: &mut String) {
    buf.clear();
    if raw.is_ascii() {
        buf.push_str(raw);
        buf.make_ascii_lowercase();
        return;
    }
    for c in raw.chars() {
        if c.is_ascii() {
            buf.push(c.to_ascii_lowercase());
            continue;
        }
        match c {
            '\u{2019}' | '\u{2018}' | '\u{02bc}' => buf.push('\''),
            _ => {
                for l in c.to_lowercase() {
                    match strip_diacritic(l) {
                        Some(base) => buf.push_str(base),
                        None => buf.push(l),
                    }
                }
            }
        }
    }
}

/// The ASCII base of a lowercase Latin letter with a diacritic.
fn strip_diacritic(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'ş' => "s",
        'ß' => "ss",
        'ť' | 'ţ' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

/// Hash of the light stem of a folded word (the word itself when it is not plain ASCII).
fn stem_hash(word: &str) -> u64 {
    let b = word.as_bytes();
    if !word.is_ascii() || b.len() <= 3 {
        return hash_word(b);
    }
    let mut s: [u8; 64] = [0; 64];
    let n = b.len().min(64);
    s[..n].copy_from_slice(&b[..n]);
    let len = stem(&mut s[..n]);
    hash_word(&s[..len])
}

/// A light English suffix stemmer on ASCII lowercase letters; returns the stem's length.
///
/// Deliberately conservative (plurals, `-ed`, `-ing`, final `-e`, `-y` = `-i`, doubled final
/// consonant): it only has to map the forms of one word to one key, and over-stemming would
/// make different words match.
fn stem(w: &mut [u8]) -> usize {
    let mut n = w.len();
    let ends = |w: &[u8], n: usize, suffix: &[u8]| n > suffix.len() && w[..n].ends_with(suffix);
    // Plurals and third person.
    if ends(w, n, b"sses") {
        n -= 2;
    } else if ends(w, n, b"ies") && n > 4 {
        n -= 2; // studies -> studi
    } else if ends(w, n, b"s") && !ends(w, n, b"ss") && !ends(w, n, b"us") && !ends(w, n, b"is") {
        n -= 1;
    }
    // Past tense and participles, when a real stem (with a vowel) is left.
    let has_vowel = |w: &[u8], n: usize| w[..n].iter().any(|c| b"aeiouy".contains(c));
    if ends(w, n, b"ing") && n >= 6 && has_vowel(w, n - 3) {
        n -= 3;
        n = undouble(w, n);
    } else if ends(w, n, b"ied") && n > 4 {
        n -= 2; // studied -> studi
    } else if ends(w, n, b"ed") && n >= 5 && has_vowel(w, n - 2) {
        n -= 2;
        n = undouble(w, n);
    }
    // British and American spellings: -ise/-ize (organise, organised), -our/-or (colour),
    // -tre/-ter (metre, centre).
    if n >= 5 && w[n - 3..n] == *b"our" {
        n -= 1;
        w[n - 1] = b'r';
    } else if n >= 5 && w[n - 3..n] == *b"tre" {
        w[n - 2] = b'e';
        w[n - 1] = b'r';
    }
    if n >= 5 && w[n - 2] == b'i' && w[n - 1] == b's' {
        w[n - 1] = b'z';
    } else if n >= 6 && w[n - 3..n] == *b"ise" {
        w[n - 2] = b'z';
    }
    // Final -e and -y: make/making, study/studies.
    if n > 3 && w[n - 1] == b'e' {
        n -= 1;
    } else if n > 3 && w[n - 1] == b'y' {
        w[n - 1] = b'i';
    }
    n
}

/// Drop a doubled final consonant ("runn" -> "run"), except l, s, z.
fn undouble(w: &[u8], n: usize) -> usize {
    if n >= 3 && w[n - 1] == w[n - 2] && !b"aeiouylsz".contains(&w[n - 1]) {
        n - 1
    } else {
        n
    }
}

/// Iterator over the tokens of a text as byte ranges: runs of letters and digits, with
/// `.`/`,` inside numbers (`1,000.5`) and apostrophes inside words (`don't`) kept.
pub(super) struct Tokens<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Tokens<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }
}

impl Iterator for Tokens<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let text = self.text;
        let bytes = text.as_bytes();
        // `i` only ever moves by whole characters, so it stays on a char boundary.
        let char_at = |i: usize| -> char {
            match bytes.get(i) {
                Some(&b) if b < 0x80 => char::from(b),
                Some(_) => text.get(i..).and_then(|r| r.chars().next()).unwrap_or(' '),
                None => ' ',
            }
        };
        let mut i = self.pos;
        while i < bytes.len() {
            let c = char_at(i);
            if c.is_alphanumeric() {
                break;
            }
            i += c.len_utf8();
        }
        if i >= bytes.len() {
            self.pos = bytes.len();
            return None;
        }
        let start = i;
        let mut prev = char_at(i);
        i += prev.len_utf8();
        while i < bytes.len() {
            let c = char_at(i);
            let keep = c.is_alphanumeric()
                || match c {
                    '.' | ',' => {
                        prev.is_ascii_digit() && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                    }
                    '\'' | '\u{2019}' => {
                        prev.is_alphabetic() && char_at(i + c.len_utf8()).is_alphabetic()
                    }
                    // Codes of capital letters and digits ("I-90", "COVID-19", "F-16") are
                    // one token: "I" there is not the speaker.
                    '-' => {
                        prev.is_ascii_uppercase()
                            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                            && text[start..i].bytes().all(|b| b.is_ascii_uppercase())
                    }
                    _ => false,
                };
            if !keep {
                break;
            }
            prev = c;
            i += c.len_utf8();
        }
        self.pos = i;
        Some((start, i))
    }
}

pub(super) const NEGATION_HASH: u64 = 0x6e65_6761_7469_6f6e;

/// Form of "no" as an answer particle (never in the support: the support's "no" is a
/// negation).
pub(super) const NO_HASH: u64 = 0x6e6f_0000_7061_7274;

/// Hash of a folded word (FNV-1a), never 0.
pub(super) fn hash_word(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(bytes);
    nonzero(mix(h.finish(), 0x776f_7264))
}

/// The surface form of a raw token: its lowercased characters as written (no folding of
/// diacritics, no stemming, no synonyms), hashed apart from every other form.
pub(super) fn surface_hash(raw: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    if raw.is_ascii() {
        for b in raw.bytes() {
            h.write_u8(b.to_ascii_lowercase());
        }
    } else {
        let mut utf8 = [0u8; 4];
        for c in raw.chars().flat_map(char::to_lowercase) {
            h.write(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
    nonzero(mix(h.finish(), 0x7375_7266_6163_6500))
}

/// True for the surface forms the surface share does not count: the most common function
/// words and the answer particles.
pub(super) fn surface_skipped(hash: u64) -> bool {
    static SKIPPED: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    SKIPPED
        .get_or_init(|| {
            words::SURFACE_SKIP
                .iter()
                .chain(words::PARTICLES)
                .map(|w| surface_hash(w))
                .collect()
        })
        .contains(&hash)
}

pub(super) fn pair_hash(a: u64, b: u64) -> u64 {
    nonzero(mix(a.rotate_left(17) ^ 0x7061_6972, b))
}

/// The form `h` as found in an echo text (the prompt).
pub(super) fn echo_hash(h: u64) -> u64 {
    nonzero(mix(h ^ 0x6563_686f_0000_0000, 0x6563_686f))
}

pub(super) fn month_hash(m: u64) -> u64 {
    nonzero(mix(0x6d6f_6e74_6800_0000, m))
}

/// Mix two words into one (splitmix64 finaliser on their combination).
fn mix(a: u64, b: u64) -> u64 {
    let mut x = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn nonzero(h: u64) -> u64 {
    if h == 0 { 1 } else { h }
}
