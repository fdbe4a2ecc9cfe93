//! Word tables of the lexical check: words never checked (function words and conversation
//! filler), number words, ordinals, month names, and the hashes they are looked up by.

use std::sync::OnceLock;

/// Function words: third-person pronouns, auxiliaries, prepositions, conjunctions, question
/// words. Never checked against the support (a reply may always restate a question's "what"
/// and "which").
#[rustfmt::skip]
const STOP: &[&str] = &[
    // articles, determiners, quantifiers
    "a", "an", "the", "this", "that", "these", "those", "some", "any", "each", "every", "all",
    "both", "either", "such", "other", "another", "same", "own", "much", "many", "more", "most",
    "less", "least", "few", "several", "one", "ones",
    // third person pronouns and relatives
    "he", "him", "his", "himself", "she", "her", "hers", "herself", "it", "its", "itself", "they",
    "them", "their", "theirs", "themselves", "who", "whom", "whose", "which", "what", "whatever",
    "whoever", "he's", "she's", "it's", "they're", "they've", "that's", "there's", "what's",
    "here's", "who's",
    // auxiliaries
    "be", "is", "am", "are", "was", "were", "been", "being", "have", "has", "had", "having", "do",
    "does", "did", "doing", "done", "s", "t", "d", "ll", "re", "ve", "m",
    // prepositions and conjunctions
    "of", "in", "on", "at", "to", "for", "with", "by", "from", "about", "as", "into", "onto",
    "over", "under", "between", "through", "during", "before", "after", "above", "below", "up",
    "down", "out", "off", "than", "then", "and", "or", "but", "so", "yet", "if", "because", "while",
    "although", "though", "whether", "since", "until", "unless", "also", "too", "very", "only",
    "even", "still", "already", "there", "here", "where", "when", "why", "how", "now", "via", "per",
    "within", "upon", "among", "around", "along", "across", "toward", "towards", "etc",
    // units that only qualify a number (the number is what is checked)
    "percent", "cent",
];

/// The most common function words, the only words the surface share (`Lexical::surface`)
/// does not count (none longer than four letters, nor are the answer particles: `check_with`
/// relies on it).
#[rustfmt::skip]
pub(super) const SURFACE_SKIP: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "is", "are", "was", "were", "be", "to", "of", "in",
    "on", "at", "for", "with", "it", "this", "that", "i", "you", "we", "they", "he", "she",
];

/// Unit abbreviations and spelling variants, folded to one word before stemming.
#[rustfmt::skip]
const SYNONYMS: &[(&str, &str)] = &[
    ("km", "kilometre"), ("kms", "kilometre"), ("kilometer", "kilometre"),
    ("kilometers", "kilometre"), ("kilometres", "kilometre"), ("meter", "metre"),
    ("meters", "metre"), ("metres", "metre"), ("cm", "centimetre"), ("mm", "millimetre"),
    ("ft", "foot"), ("mi", "mile"), ("miles", "mile"), ("kg", "kilogram"),
    ("kgs", "kilogram"), ("kilograms", "kilogram"), ("lb", "pound"), ("lbs", "pound"),
    ("pounds", "pound"), ("hr", "hour"), ("hrs", "hour"), ("mins", "minute"), ("sec", "second"),
    ("secs", "second"), ("usd", "dollar"), ("dollars", "dollar"), ("eur", "euro"),
    ("euros", "euro"),
    // irregular verb forms (the stemmer handles the regular ones)
    ("won", "win"), ("wrote", "write"), ("written", "write"), ("began", "begin"),
    ("begun", "begin"), ("became", "become"), ("found", "find"), ("held", "hold"),
    ("led", "lead"), ("left", "leave"), ("sold", "sell"), ("bought", "buy"), ("built", "build"),
    ("taught", "teach"), ("gave", "give"), ("given", "give"), ("took", "take"),
    ("taken", "take"), ("grew", "grow"), ("grown", "grow"), ("known", "know"), ("knew", "know"),
    ("saw", "see"), ("seen", "see"), ("ran", "run"), ("sang", "sing"), ("sung", "sing"),
    ("spoke", "speak"), ("spoken", "speak"), ("fought", "fight"), ("thought", "think"),
    ("brought", "bring"), ("chose", "choose"), ("chosen", "choose"), ("drew", "draw"),
    ("drawn", "draw"), ("flew", "fly"), ("flown", "fly"), ("fell", "fall"), ("fallen", "fall"),
    ("lost", "lose"), ("met", "meet"), ("paid", "pay"), ("sent", "send"), ("spent", "spend"),
    ("stood", "stand"), ("struck", "strike"), ("told", "tell"), ("wore", "wear"),
    ("worn", "wear"), ("rose", "rise"), ("risen", "rise"), ("shot", "shoot"), ("hid", "hide"),
    ("children", "child"), ("men", "man"), ("women", "woman"), ("people", "person"),
    ("mice", "mouse"), ("feet", "foot"), ("teeth", "tooth"),
];

/// Words of the conversation itself rather than of the knowledge: acknowledgements, the
/// speakers ("I", "you"), modals and vague words. Checked, but light: a reply made mostly of
/// them is chit-chat, which a grounded reply should not be, yet a single "yes" or "I think"
/// in a grounded sentence barely moves the score.
#[rustfmt::skip]
const LIGHT: &[&str] = &[
    "yes", "yeah", "yea", "yep", "yup", "nope", "ok", "okay", "oh", "ah", "well", "wow", "hey", "hi",
    "hello", "haha", "lol", "hmm", "um", "uh", "i", "me", "my", "mine", "myself", "you", "your",
    "yours", "yourself", "we", "us", "our", "ours", "i'm", "i've", "i'd", "i'll", "you're",
    "you've", "you'd", "you'll", "we're", "we've", "let's", "can", "could", "would", "should",
    "might", "may", "must", "will", "shall", "something", "anything", "everything", "nothing",
    "someone", "anyone", "everyone", "thing", "things", "stuff", "just", "really", "actually",
    "probably", "maybe", "perhaps", "pretty", "quite", "lot", "lots", "bit",
    // Agreeing with the other speaker ("That's true.", "Exactly!") acknowledges, like "yes".
    "true", "right", "correct", "exactly", "indeed", "agree", "agreed",
];

/// Answer particles: an output that is only these ("Yes.", "no") is a bare answer to a
/// yes/no question, which a lexical check cannot verify.
/// Conversation words for the speakers themselves: never supported (see `Token::Speaker`).
pub(super) const SPEAKERS: &[&str] = &[
    "i", "me", "my", "mine", "myself", "i'm", "i've", "i'd", "i'll", "we", "us", "our", "ours",
    "we're", "we've", "let's",
];
pub(super) const PARTICLES: &[&str] = &["yes", "no", "yeah", "yep", "nope", "yup", "yea"];

/// Negations: checked as one unit against any negation in the support.
#[rustfmt::skip]
const NEGATION: &[&str] = &[
    "not", "no", "never", "none", "nobody", "nowhere", "neither", "nor", "cannot", "without",
];

/// Words after a negation that make it a hedge about the speaker, not a claim
/// ("I'm not sure", "I don't know").
const HEDGE_AFTER_NEGATION: &[&str] = &["sure", "know", "think", "certain", "remember", "recall"];

/// Number words (cardinals and ordinals) and their values.
#[rustfmt::skip]
const NUMBER_WORDS: &[(&str, u64)] = &[
    ("zero", 0), ("two", 2), ("three", 3), ("four", 4), ("five", 5), ("six", 6), ("seven", 7),
    ("eight", 8), ("nine", 9), ("ten", 10), ("eleven", 11), ("twelve", 12), ("thirteen", 13),
    ("fourteen", 14), ("fifteen", 15), ("sixteen", 16), ("seventeen", 17), ("eighteen", 18),
    ("nineteen", 19), ("twenty", 20), ("thirty", 30), ("forty", 40), ("fifty", 50), ("sixty", 60),
    ("seventy", 70), ("eighty", 80), ("ninety", 90), ("hundred", 100), ("dozen", 12), ("first", 1),
    ("third", 3), ("fourth", 4), ("fifth", 5), ("sixth", 6), ("seventh", 7), ("eighth", 8),
    ("ninth", 9), ("tenth", 10), ("eleventh", 11), ("twelfth", 12), ("twentieth", 20), ("twice", 2),
];

/// Scale words: a number before them is multiplied ("1.5 million" = 1500000).
#[rustfmt::skip]
const SCALES: &[(&str, u32)] = &[
    ("thousand", 3), ("million", 6), ("billion", 9), ("trillion", 12), ("bn", 9),
];

/// Month names and abbreviations.
#[rustfmt::skip]
const MONTHS: &[(&str, u64)] = &[
    ("january", 1), ("jan", 1), ("february", 2), ("feb", 2), ("march", 3), ("mar", 3), ("april", 4),
    ("apr", 4), ("may", 5), ("june", 6), ("jun", 6), ("july", 7), ("jul", 7), ("august", 8),
    ("aug", 8), ("september", 9), ("sep", 9), ("sept", 9), ("october", 10), ("oct", 10),
    ("november", 11), ("nov", 11), ("december", 12), ("dec", 12),
];

/// What a folded word is, beyond an ordinary content word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    Stop,
    Light,
    Negation,
    Hedge,
    Number(u64),
    Scale(u32),
    Month(u64),
    /// Another spelling of this word (an index into the synonyms).
    Synonym(usize),
}

/// Folded-word hash -> what it is: an open-addressing table (power-of-two size, at most a
/// quarter full), looked up once per token.
fn table() -> &'static [(u64, Special)] {
    static TABLE: OnceLock<Vec<(u64, Special)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut entries: Vec<(u64, Special)> = Vec::new();
        // Later entries win over earlier ones: a word that is a number and a stop word is a
        // stop word; "no", "neither", "nor" are negations.
        let mut put = |w: &str, s: Special| {
            let h = super::hash_word(w.as_bytes());
            if let Some(e) = entries.iter_mut().find(|e| e.0 == h) {
                e.1 = s;
            } else {
                entries.push((h, s));
            }
        };
        for (w, v) in NUMBER_WORDS {
            put(w, Special::Number(*v));
        }
        for (w, v) in MONTHS {
            put(w, Special::Month(*v));
        }
        for (w, e) in SCALES {
            put(w, Special::Scale(*e));
        }
        for (i, (w, _)) in SYNONYMS.iter().enumerate() {
            put(w, Special::Synonym(i));
        }
        for w in STOP {
            put(w, Special::Stop);
        }
        for w in LIGHT {
            put(w, Special::Light);
        }
        for w in HEDGE_AFTER_NEGATION {
            put(w, Special::Hedge);
        }
        for w in NEGATION {
            put(w, Special::Negation);
        }
        let size = (entries.len() * 4).next_power_of_two();
        let mut table = vec![(0u64, Special::Stop); size];
        for (h, s) in entries {
            let mut i = (h as usize) & (size - 1);
            while table[i].0 != 0 {
                i = (i + 1) & (size - 1);
            }
            table[i] = (h, s);
        }
        table
    })
}

/// What the folded (unstemmed) word with this hash is, if anything special.
pub(super) fn special(hash: u64) -> Option<Special> {
    let t = table();
    let mask = t.len() - 1;
    let mut i = (hash as usize) & mask;
    loop {
        let (h, s) = t[i];
        if h == hash {
            return Some(s);
        }
        if h == 0 {
            return None;
        }
        i = (i + 1) & mask;
    }
}

/// The canonical word of a synonym.
pub(super) fn synonym(index: usize) -> &'static str {
    SYNONYMS.get(index).map_or("", |(_, to)| to)
}
