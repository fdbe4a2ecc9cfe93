//! The language of a text, for `drift.language_mix`: `whatlang`'s trigram detector, the
//! maintained crate of the field. Short or mixed texts that it cannot call reliably count as
//! `unknown`, never as a guess.

/// The category a text counts under in the language mix.
pub const UNKNOWN: &str = "unknown";

/// Texts shorter than this (in characters) are `unknown`: trigram statistics of a few words
/// are noise.
const MIN_CHARS: usize = 12;

/// The English name of the language of `text` (e.g. "Spanish"), or [`UNKNOWN`].
#[must_use]
pub fn language_of(text: &str) -> &'static str {
    if text
        .chars()
        .filter(|c| c.is_alphabetic())
        .take(MIN_CHARS)
        .count()
        < MIN_CHARS
    {
        return UNKNOWN;
    }
    match whatlang::detect(text) {
        Some(info) if info.is_reliable() => info.lang().eng_name(),
        _ => UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_languages_are_named_and_short_texts_are_unknown() {
        assert_eq!(
            language_of(
                "Where is my order? I bought a pair of shoes last week and nothing arrived."
            ),
            "English"
        );
        assert_eq!(
            language_of(
                "¿Dónde está mi pedido? Compré unos zapatos la semana pasada y no ha llegado nada."
            ),
            "Spanish"
        );
        assert_eq!(
            language_of(
                "Wo ist meine Bestellung? Ich habe letzte Woche Schuhe gekauft und nichts ist angekommen."
            ),
            "German"
        );
        assert_eq!(language_of("ok"), UNKNOWN);
        assert_eq!(language_of("12345 67890 !!!"), UNKNOWN);
    }
}
