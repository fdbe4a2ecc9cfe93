//! What drift on traffic keeps of a sampled record besides its text: the length of its input
//! and output in characters, and the language of its input. Computed once, when the record is
//! stored, so that `drift.input_length`, `drift.output_length` and `drift.language_mix` work
//! even for a source that keeps no text (`store_text: none`).

use super::language::language_of;
use super::record::Record;

/// The lengths and language of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    pub input_chars: Option<u64>,
    pub output_chars: Option<u64>,
    /// The input's language ([`super::language::UNKNOWN`] when too short to tell); `None`
    /// without an input.
    pub language: Option<&'static str>,
}

impl Shape {
    /// The shape of `record` as read (its text redacted, not yet dropped).
    #[must_use]
    pub fn of(record: &Record) -> Self {
        let chars = |t: &Option<String>| t.as_deref().map(|t| t.chars().count() as u64);
        Self {
            input_chars: chars(&record.input),
            output_chars: chars(&record.output),
            language: record.input.as_deref().map(language_of),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_count_characters_and_the_language_is_the_inputs() {
        let r = Record {
            input: Some("¿Dónde está mi pedido? Compré unos zapatos la semana pasada.".into()),
            output: Some("Lo siento".into()),
            ..Record::default()
        };
        let s = Shape::of(&r);
        assert_eq!(s.input_chars, Some(60));
        assert_eq!(s.output_chars, Some(9));
        assert_eq!(s.language, Some("Spanish"));
        assert_eq!(Shape::of(&Record::default()), Shape::default());
    }
}
