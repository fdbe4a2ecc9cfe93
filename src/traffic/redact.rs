//! Redaction before anything is stored: built-in patterns for e-mail addresses, phone numbers,
//! payment cards (Luhn-checked) and secrets (API keys, tokens, private keys), and custom regexes.
//! Each match is replaced by `[redacted:<name>]`, so a reader sees that something was there.

use std::borrow::Cow;

use regex::{Captures, Regex, RegexSet};

/// One `redact:` entry of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedactRule {
    Email,
    Phone,
    Card,
    Secret,
    /// `{regex: "..."}`: every match is replaced by `[redacted]`.
    Regex(String),
}

impl RedactRule {
    /// The built-in names, for did-you-mean.
    pub const BUILT_IN: [&'static str; 4] = ["email", "phone", "card", "secret"];

    /// A built-in pattern by name.
    pub fn built_in(name: &str) -> Option<Self> {
        Some(match name {
            "email" => Self::Email,
            "phone" => Self::Phone,
            "card" => Self::Card,
            "secret" => Self::Secret,
            _ => return None,
        })
    }
}

/// A compiled custom pattern that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("redact regex `{pattern}` does not compile: {reason}")]
pub struct BadPattern {
    pub pattern: String,
    pub reason: String,
}

struct Pass {
    label: &'static str,
    regex: Regex,
    /// Cards: keep only digit runs that pass the Luhn check; phones: 8 to 15 digits.
    check: fn(&str) -> bool,
    /// Secrets written `key = value`: replace the value only (group `v`).
    value_group: bool,
}

/// The source's redaction, compiled once.
pub struct Redactor {
    any: RegexSet,
    passes: Vec<Pass>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<_> = self.passes.iter().map(|p| p.label).collect();
        f.debug_struct("Redactor")
            .field("passes", &labels)
            .finish_non_exhaustive()
    }
}

/// No redaction: every text as it is.
impl Default for Redactor {
    fn default() -> Self {
        Self {
            any: RegexSet::empty(),
            passes: Vec::new(),
        }
    }
}

const SECRET: &str = concat!(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    r"|\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}",
    r"|\b[rs]k_(?:live|test)_[A-Za-z0-9]{10,}",
    r"|\bAKIA[0-9A-Z]{16}\b",
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}",
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}",
    r"|\bAIza[0-9A-Za-z_-]{35}",
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    r"|(?i:\bbearer)\s+[A-Za-z0-9._~+/-]{16,}=*",
);
/// A name that holds a secret, alone or as the last part of a longer name (`client_secret`,
/// `refresh_token`, `X-Api-Key`, `db_password`); `tokens` or `max_tokens` is not one.
const SECRET_NAME: &str = r#"(?i)\b(?:[a-z0-9]+[_-])*(?:api[_-]?key|secret|password|passwd|token)"#;
/// A secret written as code (`name=value`, `"name": "value"`, `name: 'value'`): any value.
const SECRET_ASSIGNMENT: &str = r#"["']?\s*(?:=\s*["']?|:\s*["'])(?P<v>[^\s"',;&\[][^\s"',;&]*)"#;
/// `name: value` without quotes, which prose also writes ("The secret: patience"): only a value
/// of 6 or more characters that looks like one (a digit in it, or 16 characters or more).
const SECRET_COLON: &str = r#"["']?\s*:\s*(?P<v>[^\s"',;&\[][^\s"',;&]{5,})"#;
const CARD: &str = r"\b\d(?:[ -]?\d){12,18}\b";
const EMAIL: &str = r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b";
const PHONE: &str =
    r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\b\d{2,4}(?:[ .-]\d{2,4}){1,4}\b|\+\d{8,15}\b";

impl Redactor {
    /// Compiles the rules; secrets first, then cards before phones (a card number is also a
    /// run of digits).
    pub fn new(rules: &[RedactRule]) -> Result<Self, BadPattern> {
        let has = |r: &RedactRule| rules.contains(r);
        let mut passes = Vec::new();
        let always = |_: &str| true;
        if has(&RedactRule::Secret) {
            passes.push(pass("secret", SECRET, always, false));
            passes.push(pass(
                "secret",
                &format!("{SECRET_NAME}{SECRET_ASSIGNMENT}"),
                always,
                true,
            ));
            passes.push(pass(
                "secret",
                &format!("{SECRET_NAME}{SECRET_COLON}"),
                secret_like,
                true,
            ));
        }
        if has(&RedactRule::Card) {
            passes.push(pass("card", CARD, luhn, false));
        }
        if has(&RedactRule::Email) {
            passes.push(pass("email", EMAIL, always, false));
        }
        if has(&RedactRule::Phone) {
            passes.push(pass("phone", PHONE, phone_like, false));
        }
        for rule in rules {
            if let RedactRule::Regex(pattern) = rule {
                let regex = Regex::new(pattern).map_err(|e| BadPattern {
                    pattern: pattern.clone(),
                    reason: e.to_string(),
                })?;
                passes.push(Pass {
                    label: "",
                    regex,
                    check: always,
                    value_group: false,
                });
            }
        }
        let any =
            RegexSet::new(passes.iter().map(|p| p.regex.as_str())).map_err(|e| BadPattern {
                pattern: "(all patterns)".into(),
                reason: e.to_string(),
            })?;
        Ok(Self { any, passes })
    }

    /// Whether it redacts nothing (a source without `redact:` rules).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.passes.is_empty()
    }

    /// [`Self::apply`] to `text` itself: replaced only when something matched.
    pub fn apply_in_place(&self, text: &mut String) {
        if let Cow::Owned(redacted) = self.apply(text) {
            *text = redacted;
        }
    }

    /// The text with every match replaced; borrowed when nothing matched.
    pub fn apply<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.passes.is_empty() || !self.any.is_match(text) {
            return Cow::Borrowed(text);
        }
        let mut out = Cow::Borrowed(text);
        for p in &self.passes {
            let replaced = p.regex.replace_all(&out, |c: &Captures<'_>| {
                let whole = c.get(0).map_or("", |m| m.as_str());
                let target = if p.value_group { c.name("v") } else { c.get(0) };
                match target {
                    Some(m) if (p.check)(m.as_str()) => {
                        let mark = if p.label.is_empty() {
                            "[redacted]".to_owned()
                        } else {
                            format!("[redacted:{}]", p.label)
                        };
                        let start = m.start() - c.get(0).map_or(0, |w| w.start());
                        format!("{}{mark}{}", &whole[..start], &whole[start + m.len()..])
                    }
                    _ => whole.to_owned(),
                }
            });
            if let Cow::Owned(s) = replaced {
                out = Cow::Owned(s);
            }
        }
        out
    }
}

fn pass(label: &'static str, pattern: &str, check: fn(&str) -> bool, value_group: bool) -> Pass {
    Pass {
        label,
        // The built-in patterns are constants, checked by the tests below.
        regex: Regex::new(pattern).expect("built-in redaction pattern"),
        check,
        value_group,
    }
}

fn digits(s: &str) -> impl Iterator<Item = u32> + '_ {
    s.chars().filter_map(|c| c.to_digit(10))
}

fn luhn(s: &str) -> bool {
    let ds: Vec<u32> = digits(s).collect();
    if !(13..=19).contains(&ds.len()) {
        return false;
    }
    let sum: u32 = ds
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A value after `name:` that is a secret rather than a word of prose.
fn secret_like(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_digit()) || s.chars().count() >= 16
}

/// 8 to 15 digits, and not an ISO date (2026-12-06) or a time.
fn phone_like(s: &str) -> bool {
    let n = digits(s).count();
    if !(8..=15).contains(&n) {
        return false;
    }
    let b = s.as_bytes();
    let iso_date = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
    !iso_date
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Redactor {
        Redactor::new(&[
            RedactRule::Email,
            RedactRule::Phone,
            RedactRule::Card,
            RedactRule::Secret,
        ])
        .unwrap()
    }

    #[test]
    fn each_built_in_pattern_redacts_what_it_names() {
        let r = all();
        let cases = [
            (
                "mail me at jane.doe+x@mail.example.co.uk.",
                "mail me at [redacted:email].",
            ),
            ("call +49 30 1234 5678 now", "call [redacted:phone] now"),
            ("call (030) 123-4567 now", "call [redacted:phone] now"),
            ("card 4111 1111 1111 1111 ok", "card [redacted:card] ok"),
            ("card 4111-1111-1111-1111", "card [redacted:card]"),
            (
                "key sk-proj-abcdefghijklmnop1234 used",
                "key [redacted:secret] used",
            ),
            ("AKIAIOSFODNN7EXAMPLE", "[redacted:secret]"),
            (
                "Authorization: Bearer abcdefghijklmnop.qrs",
                "Authorization: [redacted:secret]",
            ),
            (
                "api_key=hunter2hunter2; next",
                "api_key=[redacted:secret]; next",
            ),
            (
                "\"password\": \"s3cr3t-pw\"",
                "\"password\": \"[redacted:secret]\"",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(r.apply(text), want, "{text}");
        }
    }

    #[test]
    fn stripe_keys_token_assignments_and_short_passwords_are_secrets() {
        let r = all();
        let cases = [
            (
                "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc ok",
                "stripe [redacted:secret] ok",
            ),
            ("sk_test_4eC39HqLyjWDarjtT1zd", "[redacted:secret]"),
            ("rk_live_51HxYz0abcdEFGH12", "[redacted:secret]"),
            ("token: s3cr3tvalue99", "token: [redacted:secret]"),
            ("token=s3cr3tvalue99&x=1", "token=[redacted:secret]&x=1"),
            ("password=abc12", "password=[redacted:secret]"),
            ("PASSWORD='ab1'", "PASSWORD='[redacted:secret]'"),
            (
                "{\"refresh_token\": \"abc\"}",
                "{\"refresh_token\": \"[redacted:secret]\"}",
            ),
            (
                "client_secret=xyz9 db_password: hunter22",
                "client_secret=[redacted:secret] db_password: [redacted:secret]",
            ),
            ("X-Api-Key: 9f8e7d6c5b", "X-Api-Key: [redacted:secret]"),
        ];
        for (text, want) in cases {
            assert_eq!(r.apply(text), want, "{text}");
        }
    }

    #[test]
    fn prose_about_tokens_and_passwords_stays_as_it_is() {
        let r = all();
        for text in [
            "The token: it expires after an hour.",
            "Token: the one shown on your dashboard",
            "The secret: patience and practice.",
            "password: see the security page",
            "Your password: choose something memorable",
            "max_tokens=512, total_tokens: 1200",
            "tokens: 1500 used",
            "the risk_live_events table and desk_test_plan",
            "sk_live_ alone is just a prefix",
        ] {
            assert_eq!(r.apply(text), text);
        }
    }

    #[test]
    fn look_alikes_stay_as_they_are() {
        let r = all();
        for text in [
            "Returns within 30 days of 2026-12-06.",
            "Order 1234 5678 9012 3456 is late", // fails Luhn: not a card
            "version 1.2.3, port 8080, 3 items",
            "I-90 near exit 12",
            "user@localhost has no domain",
            "the password is strong", // no value assigned
        ] {
            assert_eq!(r.apply(text), text);
        }
    }

    #[test]
    fn only_the_chosen_rules_apply_and_custom_regexes_too() {
        let r =
            Redactor::new(&[RedactRule::Email, RedactRule::Regex(r"ACME-\d{4}".into())]).unwrap();
        assert_eq!(
            r.apply("a@b.io, ticket ACME-1234, card 4111 1111 1111 1111"),
            "[redacted:email], ticket [redacted], card 4111 1111 1111 1111"
        );
        let e = Redactor::new(&[RedactRule::Regex("(".into())]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("redact regex `(` does not compile"),
            "{e}"
        );
        assert_eq!(RedactRule::built_in("card"), Some(RedactRule::Card));
        assert_eq!(RedactRule::built_in("cards"), None);
    }

    #[test]
    fn private_keys_are_redacted_whole() {
        let text =
            "k:\n-----BEGIN RSA PRIVATE KEY-----\nMIIB\nabc\n-----END RSA PRIVATE KEY-----\nend";
        assert_eq!(all().apply(text), "k:\n[redacted:secret]\nend");
    }
}
