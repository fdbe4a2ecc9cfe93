//! Lexical hallucination check: no model, deterministic, fast.
//!
//! The output is split into claims (sentences and clauses ending in `. ! ? ; :` or a line
//! break) and each claim into checkable units: content words, numbers, names and negations.
//! Function words (articles, prepositions, auxiliaries, question words) are never checked;
//! conversation words ("yes", "I", "could", "really") are checked with a light weight; the
//! speakers' own words ("I", "we") are never supported, and a claim that ends in `?` has its
//! opening question word counted as an unsupported conversation word.
//! Every unit is folded before it is looked up in the support (`expected`, each `context`
//! item, the rendered prompt), so paraphrases that only change the surface still match:
//!
//! - words: lowercased, common Latin diacritics removed (`é` = `e`), possessive `'s` dropped,
//!   a light suffix stemmer (`studies` = `studied` = `study`, `running` = `run`), British and
//!   American spellings, common irregular forms (`won` = `win`), unit abbreviations
//!   (`km` = `kilometres`) and currency signs (`$5` = `5 dollars`);
//! - numbers: `1,000` = `1000` = `1000.0`; number words and ordinals (`ten` = `10`,
//!   `twenty-five` = `25`, `third` = `3rd` = `3`); scales (`1.5 million` = `1500000`);
//! - dates: month names and abbreviations (`Jan` = `January`), so `March 3` and `3 March`
//!   are the same units; ISO dates split into numbers (`1935-01-08` = `8 January 1935`);
//! - negations (`not`, `never`, `n't`, ...): unsupported when the support has none; a hedge
//!   ("I'm not sure", "I don't know") is not a negated claim.
//!
//! A name of several capitalised words must appear whole in the support ("Amy Johnson" is not
//! "Amy Jo Johnson"). Units have weights: numbers and names (capitalised words inside a claim,
//! acronyms) weigh more than ordinary content words. The score mixes the output's overall weighted share of
//! unsupported units with its worst claim's share, so one invented sentence in a long answer
//! still shows, and with the share of its words not written so in the support (no folding:
//! it sees the changes of form the units forgive). See `docs/scoring.md` for what was measured and for the limits.
//!
//! This file holds claims, units, the support index and the score; `tokens.rs` splits, folds,
//! stems and hashes tokens; `words.rs` holds the word tables.

mod tokens;
mod words;

#[cfg(test)]
mod tests;

use serde::Serialize;

use tokens::{
    NEGATION_HASH, NO_HASH, Number, Token, Tokens, classify, combine, echo_hash, hash_word,
    month_hash, pair_hash, surface_hash, surface_skipped,
};

/// Weight of an ordinary content word.
const W_WORD: f64 = 1.0;
/// Weight of a name: a capitalised word that does not start its claim, or an acronym.
const W_NAME: f64 = 1.5;
/// Weight of a number (digits, number words, ordinals, dates' days and years).
const W_NUMBER: f64 = 2.0;
/// Weight of a negation.
const W_NEGATION: f64 = 1.0;
/// Weight of a conversation word ("yes", "I", "could", "really").
const W_LIGHT: f64 = 0.35;
/// Share of its weight an unsupported content word, name or number keeps when the output
/// finds it in the prompt (echo): still unsupported, but weighing less than an invented one.
const ECHO_WEIGHT: f64 = 0.5;
/// Share of the units' score that comes from the worst claim (the rest from the whole
/// output).
pub const CLAIM_MIX: f64 = 0.5;
/// Share of the score that comes from the surface share (the rest from the units' score).
pub const SURFACE_MIX: f64 = 0.25;

/// What an unsupported span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    Word,
    Name,
    Number,
    Negation,
}

/// One flagged span of the output (byte offsets into the output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub text: String,
    /// The strongest kind of unit in the span (number > name > negation > word).
    pub kind: UnitKind,
}

/// One claim of the output (byte offsets into the output) and its own score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    pub start: usize,
    pub end: usize,
    /// Checkable units in the claim.
    pub checked: usize,
    /// Weighted share of the claim's units that the support does not contain, in [0,1].
    pub score: f64,
}

/// The result of the lexical pass over one output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lexical {
    /// The lexical score in [0,1] (0 = fully supported): `0.375 × share` plus
    /// `0.375 × worst_claim` plus `0.25 × surface` (`CLAIM_MIX`, `SURFACE_MIX`). 0 when
    /// nothing in the output is checkable.
    pub score: f64,
    /// Weighted share of the output's checkable units that the support does not contain.
    pub share: f64,
    /// The worst claim's own weighted unsupported share (over claims with more than
    /// conversation words; a question only when the output has no such statement).
    pub worst_claim: f64,
    /// Share of the output's words, as written (lowercased, not stemmed or folded; every
    /// word but the commonest function words and answer particles), that the support does
    /// not have in the same form: it sees what folding forgives (a tense, a plural, a
    /// quantifier such as "all" or "most").
    pub surface: f64,
    /// Unsupported spans, in output order (adjacent unsupported units merged into one span).
    pub unsupported: Vec<Span>,
    /// Checkable units found in the output.
    pub checked: usize,
    /// Claims with at least one checkable unit, in output order.
    pub claims: Vec<Claim>,
}

/// Check `output` against the support texts (`expected`, `context`, the rendered prompt).
#[must_use]
pub fn check(output: &str, support: &[&str]) -> Lexical {
    check_with(&Support::new(support), output)
}

/// Check `output` against the support texts, with `echo` texts (the prompt) that support
/// nothing but soften what the output repeats from them: a content word, name or number
/// found only in the prompt is unsupported at half its weight ("Which came first, A or B?"
/// does not support "B came first" unless the support says so), a negation the prompt has
/// is supported.
#[must_use]
pub fn check_echo(output: &str, support: &[&str], echo: &[&str]) -> Lexical {
    check_with(&Support::with_echo(support, echo), output)
}

/// Check `output` against a prepared support (build it once when many outputs share it).
#[must_use]
pub fn check_with(support: &Support, output: &str) -> Lexical {
    let mut units: Vec<Unit> = Vec::with_capacity(output.len() / 5 + 1);
    let mut buf = String::with_capacity(32);
    let mut claim = 0usize;
    let mut claim_has_units = false;
    let mut first_in_claim = true;
    let mut prev_end = 0usize;
    // Index in `units` of the unit made from the previous token, if that token made one.
    let mut prev_unit: Option<usize> = None;
    // The claim's first token when it is a function word ("what", "do"), and where a unit for
    // it would go: a question asks, it claims nothing the support can attribute, so the
    // question word of a claim that ends in `?` is an unsupported conversation word.
    let mut opener: Option<(usize, usize, usize)> = None;
    // Claims that end in `?`, in order.
    let mut questions: Vec<usize> = Vec::new();
    // Words counted by the surface share, and those of them the support lacks.
    let (mut surface_words, mut surface_missing) = (0usize, 0usize);
    // The previous token was "the".
    let mut prev_the = false;
    // The previous token was an "of" or "in" that opened its claim ("Of course", "In fact").
    let mut prev_opening_of = false;
    for (start, end) in Tokens::new(output) {
        let gap = &output[prev_end..start];
        if ends_claim(gap) {
            if claim_has_units {
                if gap.contains('?') {
                    flag_question(&mut units, opener, claim);
                    questions.push(claim);
                }
                claim += 1;
                claim_has_units = false;
            }
            first_in_claim = true;
            prev_unit = None;
        }
        prev_end = end;
        let raw = &output[start..end];
        let surface = surface_hash(raw);
        // Every skipped word has at most four letters.
        if raw.len() > 4 || !surface_skipped(surface) {
            surface_words += 1;
            surface_missing += usize::from(!support.contains(surface));
        }
        let token = classify(raw, &mut buf);
        if first_in_claim {
            opener = (token == Token::Skip && raw.len() > 1).then_some((start, end, units.len()));
        }
        let after_the = std::mem::replace(&mut prev_the, raw.eq_ignore_ascii_case("the"));
        let after_opening_of = std::mem::replace(
            &mut prev_opening_of,
            first_in_claim && (raw.eq_ignore_ascii_case("of") || raw.eq_ignore_ascii_case("in")),
        );
        let capitalised = is_name_like(raw, first_in_claim);
        // The unit made from the previous token is a name right before this one ("World
        // War" before "I").
        let after_name = prev_unit.is_some_and(|i| {
            units[i].kind == UnitKind::Name
                && output[units[i].end..start].chars().all(char::is_whitespace)
        });
        let first_token = first_in_claim;
        first_in_claim = false;
        let mut particle = false;
        let (kind, forms, weight) = match token {
            Token::Skip => {
                prev_unit = None;
                continue;
            }
            Token::Hedge(h) => {
                // "not sure", "don't know": the negation was about the speaker, not a claim;
                // the hedge word itself is checked like any word.
                if let Some(i) = prev_unit
                    && i + 1 == units.len()
                    && units[i].kind == UnitKind::Negation
                {
                    units.pop();
                    prev_unit = None;
                }
                (UnitKind::Word, [h, 0], W_WORD)
            }
            // "No." or "No, ..." answers a question; it does not negate a claim.
            Token::Negation if first_token && raw.eq_ignore_ascii_case("no") => {
                particle = true;
                (UnitKind::Word, [NO_HASH, 0], W_LIGHT)
            }
            // "No, not even", "Yes, never": a negation right after the answer particles that
            // open a claim is part of the answer, not a negated claim.
            Token::Negation if opens_with_particles(&units, claim) => {
                particle = true;
                (UnitKind::Word, [NO_HASH, 0], W_LIGHT)
            }
            Token::Light(h, p) => {
                particle = p;
                // "Not really", "Never really": a negation that opens its claim, followed by
                // a conversation word, answers rather than negates a claim.
                if let Some(i) = prev_unit
                    && units[i].kind == UnitKind::Negation
                    && units[i].claim == claim
                    && claim_is_empty(&units[..i], claim)
                {
                    let u = &mut units[i];
                    (u.kind, u.weight, u.form, u.particle, u.supported) =
                        (UnitKind::Word, W_LIGHT, NO_HASH, true, false);
                    particle = true;
                }
                (UnitKind::Word, [h, 0], W_LIGHT)
            }
            // "the us" is the country.
            Token::Speaker(h) if after_the => (UnitKind::Word, [h, 0], W_WORD),
            // A capitalised speaker word inside a name ("Barton Mine", "Us Weekly") is part
            // of the name; the speaker's own "I" ("I", "I'm") is not.
            Token::Speaker(h) if capitalised && !is_first_person_i(raw) => {
                (UnitKind::Name, [h, 0], W_NAME)
            }
            // "World War I", "Henry I": an "I" right after a name is a numeral of the name.
            Token::Speaker(h) if raw == "I" && after_name => (UnitKind::Name, [h, 0], W_NAME),
            Token::Speaker(_) => (UnitKind::Word, [0, 0], W_LIGHT),
            Token::Negation => (UnitKind::Negation, [NEGATION_HASH, 0], W_NEGATION),
            // "Of course", "In fact" open a reply the way "yes" does.
            Token::Word(h)
                if after_opening_of
                    && (raw.eq_ignore_ascii_case("course") || raw.eq_ignore_ascii_case("fact")) =>
            {
                (UnitKind::Word, [h, 0], W_LIGHT)
            }
            Token::Word(h) if capitalised => (UnitKind::Name, [h, 0], W_NAME),
            Token::Word(h) | Token::Scale(h, _) => (UnitKind::Word, [h, 0], W_WORD),
            Token::NumberWord(h, n) => (UnitKind::Number, [h, n.hash()], W_NUMBER),
            Token::Month(h, m) => (UnitKind::Number, [h, month_hash(m)], W_NUMBER),
            Token::Number(n) => (UnitKind::Number, [n.hash(), 0], W_NUMBER),
            Token::Literal(h) => (UnitKind::Number, [h, 0], W_NUMBER),
        };
        let mut unit = Unit {
            start,
            end,
            claim,
            kind,
            weight,
            supported: if kind == UnitKind::Negation {
                // A negation repeated from the prompt ("No, I didn't know") is an echo too.
                support.negation || support.echo_negation
            } else {
                forms.iter().any(|&f| f != 0 && support.contains(f))
            },
            number: match token {
                Token::Number(n) | Token::NumberWord(_, n) => Some(n),
                _ => None,
            },
            form: forms[0],
            particle,
        };
        if let Some(i) = prev_unit {
            // Two-token numbers: "1.5 million", "twenty five". Both halves are supported when
            // the combined value is.
            if let Some(combined) = combine(units[i].number, &token)
                && support.contains(combined.hash())
            {
                units[i].supported = true;
                unit.supported = true;
                unit.kind = UnitKind::Number;
                unit.weight = W_NUMBER;
                unit.number = None;
            }
            // A name of several words must appear as a whole: "Amy Johnson" is not supported
            // by "Amy Jo Johnson" even though both words are.
            if unit.kind == UnitKind::Name
                && units[i].kind == UnitKind::Name
                && output[units[i].end..start].chars().all(char::is_whitespace)
                && unit.supported
                && units[i].supported
                && !support.contains(pair_hash(units[i].form, unit.form))
                && !support.echoed(pair_hash(units[i].form, unit.form))
            {
                unit.supported = false;
            }
        }
        // A word the output only repeats from the prompt is still unsupported (the prompt
        // grounds nothing: a question's words restated are no answer, a previous turn's are
        // the other speaker's), at half its weight: a right answer often repeats the
        // question's words, a wrong one copies the wrong entity or year from it.
        // A conversation word ("yes", "you", "really") keeps its (light) weight.
        if !unit.supported && !unit.particle && unit.form != 0 && support.echoed(unit.form) {
            match unit.kind {
                UnitKind::Word if unit.weight < W_WORD => {}
                UnitKind::Word | UnitKind::Name | UnitKind::Number => unit.weight *= ECHO_WEIGHT,
                UnitKind::Negation => {}
            }
        }
        units.push(unit);
        claim_has_units = true;
        prev_unit = Some(units.len() - 1);
    }
    if claim_has_units && output[prev_end..].contains('?') {
        flag_question(&mut units, opener, claim);
        questions.push(claim);
    }
    #[allow(clippy::cast_precision_loss)]
    let surface = if surface_words == 0 {
        0.0
    } else {
        surface_missing as f64 / surface_words as f64
    };
    summarise(output, &units, &questions, surface)
}

/// Add the question word that opened claim `claim` (a function word, otherwise skipped) as an
/// unsupported conversation word, in its place among the units.
fn flag_question(units: &mut Vec<Unit>, opener: Option<(usize, usize, usize)>, claim: usize) {
    let Some((start, end, at)) = opener else {
        return;
    };
    if at > units.len() {
        return;
    }
    units.insert(
        at,
        Unit {
            start,
            end,
            claim,
            kind: UnitKind::Word,
            weight: W_LIGHT,
            supported: false,
            number: None,
            form: 0,
            particle: false,
        },
    );
}

/// The support texts, indexed for lookup: every folded form of every checkable unit.
#[derive(Debug, Clone)]
pub struct Support {
    /// Open-addressing hash set of form hashes (0 = empty slot).
    slots: Vec<u64>,
    len: usize,
    /// The support contains a negation somewhere.
    negation: bool,
    /// Echo texts were indexed (their forms are stored as `echo_hash`).
    echo: bool,
    /// An echo text has a negation.
    echo_negation: bool,
}

impl Support {
    /// Index the support texts (`expected`, each `context` item, the rendered prompt).
    #[must_use]
    pub fn new(texts: &[&str]) -> Self {
        // A text that another one contains verbatim adds nothing (the rendered prompt usually
        // contains the context): index only the containing one.
        let redundant = |i: usize, text: &str| {
            texts.iter().enumerate().any(|(j, other)| {
                j != i
                    && other.len() >= text.len()
                    && (other.len() > text.len() || j < i)
                    && contains_at_word_boundaries(other, text)
            })
        };
        let indexed: Vec<&str> = texts
            .iter()
            .enumerate()
            .filter(|&(i, t)| !redundant(i, t))
            .map(|(_, t)| *t)
            .collect();
        // At most about one form for every two bytes of text; the table starts at most half
        // full and grows if needed.
        let total: usize = indexed.iter().map(|t| t.len()).sum();
        let mut s = Self {
            slots: vec![0; total.max(16).next_power_of_two()],
            len: 0,
            negation: false,
            echo: false,
            echo_negation: false,
        };
        let mut buf = String::with_capacity(32);
        for text in indexed {
            // Currency signs stand for their words: "$5" supports "5 dollars".
            for (sign, word) in [('$', "dollar"), ('\u{20ac}', "euro"), ('\u{a3}', "pound")] {
                if text.contains(sign) {
                    s.insert(hash_word(word.as_bytes()));
                }
            }
            let mut prev: Option<Number> = None;
            let mut prev_form: u64 = 0;
            for (start, end) in Tokens::new(text) {
                s.insert(surface_hash(&text[start..end]));
                let token = classify(&text[start..end], &mut buf);
                if let Some(combined) = combine(prev, &token) {
                    s.insert(combined.hash());
                    s.insert_rounded(combined);
                }
                prev = None;
                let form = token.form();
                if prev_form != 0 && form != 0 {
                    s.insert(pair_hash(prev_form, form));
                }
                prev_form = form;
                match token {
                    Token::Skip => {}
                    Token::Negation => s.negation = true,
                    Token::Word(h)
                    | Token::Light(h, _)
                    | Token::Speaker(h)
                    | Token::Hedge(h)
                    | Token::Literal(h)
                    | Token::Scale(h, _) => {
                        s.insert(h);
                    }
                    Token::NumberWord(h, n) => {
                        s.insert(h);
                        s.insert(n.hash());
                        prev = Some(n);
                    }
                    Token::Month(h, m) => {
                        // A month also supports its number ("1935-01-08", "8/1/1935").
                        s.insert(h);
                        s.insert(month_hash(m));
                        s.insert(Number::new(m, 0).hash());
                    }
                    Token::Number(n) => {
                        s.insert(n.hash());
                        s.insert_rounded(n);
                        prev = Some(n);
                    }
                }
            }
        }
        s
    }

    /// A large number also supports itself rounded or cut to two or three significant
    /// digits: "8.5 million" and "over 8.5 million" restate 8,537,673.
    fn insert_rounded(&mut self, n: Number) {
        for rounded in n.rounded() {
            self.insert(rounded.hash());
        }
    }

    /// Index the support texts, plus `echo` texts (the prompt) whose words only soften the
    /// output's words that repeat them (see [`check_echo`]).
    #[must_use]
    pub fn with_echo(texts: &[&str], echo: &[&str]) -> Self {
        let mut s = Self::new(texts);
        let mut buf = String::with_capacity(32);
        // A rendered prompt usually repeats the support (the context): those parts are
        // supported already, so only the rest of the prompt (the question) is indexed.
        let mut parts: Vec<&str> = Vec::new();
        for text in echo {
            let mut cut: Vec<(usize, usize)> = texts
                .iter()
                .filter(|k| k.len() >= 32)
                .flat_map(|k| text.match_indices(k).map(|(at, m)| (at, at + m.len())))
                .collect();
            cut.sort_unstable();
            let mut from = 0;
            for (a, b) in cut {
                if a > from {
                    parts.push(&text[from..a]);
                }
                from = from.max(b);
            }
            parts.push(&text[from..]);
        }
        for text in parts {
            let mut prev_form = 0;
            for (start, end) in Tokens::new(text) {
                let token = classify(&text[start..end], &mut buf);
                let form = token.form();
                if form != 0 {
                    s.insert(echo_hash(form));
                    s.echo = true;
                    if prev_form != 0 {
                        s.insert(echo_hash(pair_hash(prev_form, form)));
                    }
                }
                prev_form = form;
                s.echo_negation |= token == Token::Negation;
                if let Token::NumberWord(_, n) = token {
                    s.insert(echo_hash(n.hash()));
                }
            }
        }
        s
    }

    /// The echo texts have this word form.
    fn echoed(&self, form: u64) -> bool {
        self.echo && self.contains(echo_hash(form))
    }

    fn insert(&mut self, h: u64) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = (h as usize) & mask;
        loop {
            let slot = self.slots[i];
            if slot == h {
                return;
            }
            if slot == 0 {
                self.slots[i] = h;
                self.len += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let doubled = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        self.len = 0;
        for h in old.into_iter().filter(|&h| h != 0) {
            self.insert(h);
        }
    }

    fn contains(&self, h: u64) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = (h as usize) & mask;
        loop {
            let slot = self.slots[i];
            if slot == h {
                return true;
            }
            if slot == 0 {
                return false;
            }
            i = (i + 1) & mask;
        }
    }
}

/// True when `text` occurs in `other` with no letter or digit right before or after it (its
/// tokens are then tokens of `other` too).
fn contains_at_word_boundaries(other: &str, text: &str) -> bool {
    let edge = |c: Option<char>| !c.is_some_and(char::is_alphanumeric);
    // Search for a short head of `text` (cheap to set up), then compare the rest in place.
    let mut head = text.len().min(32);
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    other.match_indices(&text[..head]).any(|(at, _)| {
        other.as_bytes()[at..].starts_with(text.as_bytes())
            && edge(other[..at].chars().next_back())
            && other
                .get(at + text.len()..)
                .is_some_and(|rest| edge(rest.chars().next()))
    })
}

/// One checkable unit of the output.
struct Unit {
    start: usize,
    end: usize,
    claim: usize,
    kind: UnitKind,
    weight: f64,
    supported: bool,
    /// The unit's value when it is a number (for two-token numbers).
    number: Option<Number>,
    /// The unit's first form (for name pairs).
    form: u64,
    /// An answer particle ("yes", "no").
    particle: bool,
}

/// Score, spans and claims from the checked units.
fn summarise(output: &str, units: &[Unit], questions: &[usize], surface: f64) -> Lexical {
    // A bare "Yes." or "No" answers a yes/no question: nothing a lexical check can verify.
    let units = if units.iter().all(|u| u.particle) {
        &[]
    } else {
        units
    };
    let mut claims: Vec<Claim> = Vec::new();
    let mut unsupported: Vec<Span> = Vec::new();
    let (mut total_w, mut bad_w) = (0.0f64, 0.0f64);
    // The worst claim's share, over claims with some content: a claim made only of
    // conversation words ("I do.", "Yes.") is not a claim about the knowledge.
    // A question asks rather than claims: it is the worst claim only when the output has no
    // statement with content ("What is a mobile phone?"), not beside one ("It is made with
    // rice. What beers do you like?").
    let mut worst = 0.0f64;
    let mut worst_question = 0.0f64;
    let mut has_statement = false;
    let mut start = 0;
    while start < units.len() {
        let claim = units[start].claim;
        let end = units[start..]
            .iter()
            .position(|u| u.claim != claim)
            .map_or(units.len(), |n| start + n);
        let part = &units[start..end];
        let w: f64 = part.iter().map(|u| u.weight).sum();
        let bad: f64 = part.iter().filter(|u| !u.supported).map(|u| u.weight).sum();
        let score = if w > 0.0 { bad / w } else { 0.0 };
        if part.iter().any(|u| u.weight >= W_WORD) {
            if questions.contains(&claim) {
                worst_question = worst_question.max(score);
            } else {
                has_statement = true;
                worst = worst.max(score);
            }
        }
        total_w += w;
        bad_w += bad;
        claims.push(Claim {
            start: part[0].start,
            end: part[part.len() - 1].end,
            checked: part.len(),
            score,
        });
        for (i, u) in part.iter().enumerate().filter(|(_, u)| !u.supported) {
            let joins = i > 0
                && !part[i - 1].supported
                && output[part[i - 1].end..u.start]
                    .chars()
                    .all(|c| c.is_whitespace() || c == '-');
            match unsupported.last_mut() {
                Some(span) if joins => {
                    span.text.push_str(&output[span.end..u.end]);
                    span.end = u.end;
                    span.kind = stronger(span.kind, u.kind);
                }
                _ => unsupported.push(Span {
                    start: u.start,
                    end: u.end,
                    text: output[u.start..u.end].to_owned(),
                    kind: u.kind,
                }),
            }
        }
        start = end;
    }
    if !has_statement {
        worst = worst_question;
    }
    let share = if total_w > 0.0 {
        (bad_w / total_w).clamp(0.0, 1.0)
    } else {
        0.0
    };
    // Nothing checkable (or only answer particles): no surface share either.
    let surface = if total_w > 0.0 { surface } else { 0.0 };
    let score = if total_w > 0.0 {
        let units_score = (1.0 - CLAIM_MIX) * share + CLAIM_MIX * worst;
        ((1.0 - SURFACE_MIX) * units_score + SURFACE_MIX * surface).clamp(0.0, 1.0)
    } else {
        0.0
    };
    Lexical {
        score,
        share,
        worst_claim: worst,
        surface,
        unsupported,
        checked: units.len(),
        claims,
    }
}

fn stronger(a: UnitKind, b: UnitKind) -> UnitKind {
    let rank = |k: UnitKind| match k {
        UnitKind::Word => 0,
        UnitKind::Negation => 1,
        UnitKind::Name => 2,
        UnitKind::Number => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// An answer particle ("yes", "no"), folded.
fn is_particle(folded: &str) -> bool {
    words::PARTICLES.contains(&folded)
}

/// True when claim `claim` so far (at the end of `units`) has at least one unit and every
/// one is an answer particle ("No", "Yes, no").
fn opens_with_particles(units: &[Unit], claim: usize) -> bool {
    let mut own = units
        .iter()
        .rev()
        .take_while(|u| u.claim == claim)
        .peekable();
    own.peek().is_some() && own.all(|u| u.particle)
}

/// True when claim `claim` has no unit yet in `units`.
fn claim_is_empty(units: &[Unit], claim: usize) -> bool {
    units.last().is_none_or(|u| u.claim != claim)
}

/// "I" and its contractions ("I'm", "I'd") as written: the speaker, even though capitalised.
fn is_first_person_i(raw: &str) -> bool {
    let mut chars = raw.chars();
    chars.next() == Some('I') && matches!(chars.next(), None | Some('\'' | '\u{2019}'))
}

/// True when the text between two tokens ends a claim.
fn ends_claim(gap: &str) -> bool {
    gap.bytes()
        .any(|b| matches!(b, b'.' | b'!' | b'?' | b';' | b':' | b'\n'))
}

/// A capitalised word that does not start its claim, or an acronym of two or more letters.
fn is_name_like(raw: &str, first_in_claim: bool) -> bool {
    let mut chars = raw.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !first.is_uppercase() {
        return false;
    }
    if !first_in_claim {
        return true;
    }
    // An acronym: every further letter upper case too.
    let mut letters = chars.filter(|c| c.is_alphabetic()).peekable();
    letters.peek().is_some() && letters.all(char::is_uppercase)
}
