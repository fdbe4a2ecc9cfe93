//! Tolerant parsing of judge answers. A judge may think aloud before it answers, wrap its
//! JSON in a code fence, or answer with a `GRADE: 7/10` line instead: the last JSON object of
//! the answer is read first, then the last grade line. What cannot be read is an error that
//! says why (never a silent 0 or 1), and tells a refusal apart.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

/// Longest answer read (the end is kept: verdicts come last).
const MAX_ANSWER: usize = 64 * 1024;
/// Most JSON parse attempts on one answer.
const MAX_TRIES: usize = 256;

/// An answer that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unparsed {
    /// The judge declined to grade.
    pub refusal: bool,
    pub why: String,
}

/// A graded answer (`llm-rubric`).
#[derive(Debug, Clone, PartialEq)]
pub struct Grade {
    /// Normalised to [0,1].
    pub score: f64,
    /// The judge's own pass/fail, when it gave one.
    pub pass: Option<bool>,
    pub reason: String,
    pub confidence: Option<f64>,
}

/// The five factuality categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Subset,
    Superset,
    Same,
    Contradiction,
    DiffersHarmlessly,
}

impl Category {
    pub const ALL: [&'static str; 5] = [
        "subset",
        "superset",
        "same",
        "contradiction",
        "differs-harmlessly",
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subset => "subset",
            Self::Superset => "superset",
            Self::Same => "same",
            Self::Contradiction => "contradiction",
            Self::DiffersHarmlessly => "differs-harmlessly",
        }
    }

    /// A category as judges write it: the name (any case, `-`, `_` or space), or the letter
    /// of the prompt's list, `(B)` or `B`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let t: String = s
            .trim()
            .trim_matches(|c: char| {
                matches!(c, '(' | ')' | '[' | ']' | '"' | '\'' | '.' | '*' | '`')
            })
            .to_lowercase()
            .replace(['_', ' '], "-");
        Some(match t.as_str() {
            "a" | "subset" => Self::Subset,
            "b" | "superset" => Self::Superset,
            "c" | "same" | "equivalent" | "identical" => Self::Same,
            "d" | "contradiction" | "contradicts" | "disagreement" | "disagree" => {
                Self::Contradiction
            }
            "e" | "differs-harmlessly" | "differ-harmlessly" | "harmless" => {
                Self::DiffersHarmlessly
            }
            other => {
                // `(B) superset: ...` or `B: ...`: the leading letter.
                let letter = other.split(|c: char| !c.is_alphanumeric()).next()?;
                if letter.len() == 1 && letter != other {
                    return Self::parse(letter);
                }
                return None;
            }
        })
    }
}

/// A factuality answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryAnswer {
    pub category: Category,
    pub reason: String,
    pub confidence: Option<f64>,
}

/// How the support stands to one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimVerdict {
    Supported,
    Unsupported,
    Contradicted,
}

impl ClaimVerdict {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_lowercase().replace(['_', ' '], "-").as_str() {
            "supported" | "support" | "yes" | "true" => Some(Self::Supported),
            "unsupported" | "not-supported" | "unverified" | "no" | "false" => {
                Some(Self::Unsupported)
            }
            "contradicted" | "contradiction" | "contradicts" => Some(Self::Contradicted),
            _ => None,
        }
    }
}

/// One claim of an answer and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub text: String,
    pub verdict: ClaimVerdict,
}

/// A claim-by-claim answer (`hallucination`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimsAnswer {
    pub claims: Vec<Claim>,
    pub confidence: Option<f64>,
}

/// The end of `text`, at most `MAX_ANSWER` bytes, cut on a character boundary.
fn tail(text: &str) -> &str {
    if text.len() <= MAX_ANSWER {
        return text;
    }
    let mut start = text.len() - MAX_ANSWER;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The last top-level JSON object in `text`.
pub(crate) fn last_json_object(text: &str) -> Option<Map<String, Value>> {
    let text = tail(text);
    let mut found = None;
    let mut pos = 0;
    let mut tries = 0;
    while let Some(off) = text[pos..].find('{') {
        let start = pos + off;
        tries += 1;
        if tries > MAX_TRIES {
            break;
        }
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(Value::Object(map))) => {
                found = Some(map);
                pos = start + stream.byte_offset();
            }
            _ => pos = start + 1,
        }
    }
    found
}

static GRADE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[\s*#>_`-]*(?:final\s+)?(?:grade|score|rating|verdict|result|category|answer|choice)\s*[:=]\s*(.+?)[\s*_`.]*$")
        .expect("valid regex")
});

/// The value of the last `GRADE: ...` style line.
fn last_grade_line(text: &str) -> Option<String> {
    tail(text)
        .lines()
        .rev()
        .find_map(|l| GRADE_LINE.captures(l).map(|c| c[1].trim().to_owned()))
}

const REFUSALS: [&str; 9] = [
    "i can't",
    "i cannot",
    "i can not",
    "i won't",
    "i'm sorry",
    "i am sorry",
    "i'm unable",
    "i am unable",
    "as an ai",
];

fn unparsed(text: &str, what: &str) -> Unparsed {
    let lower = text.to_lowercase();
    let refusal = REFUSALS.iter().any(|r| lower.contains(r));
    let why = if text.trim().is_empty() {
        "the judge answered nothing".to_owned()
    } else if refusal {
        format!("the judge declined to grade: {}", excerpt(text))
    } else {
        format!(
            "the judge answer holds no {what} (neither a JSON object nor a grade line): {}",
            excerpt(text)
        )
    };
    Unparsed { refusal, why }
}

/// At most 200 characters of `text` on one line, for reasons.
#[must_use]
pub fn excerpt(text: &str) -> String {
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= 200 {
        format!("\"{one}\"")
    } else {
        let cut: String = one.chars().take(200).collect();
        format!("\"{cut}…\"")
    }
}

fn confidence(map: &Map<String, Value>) -> Option<f64> {
    let v = map.get("confidence")?;
    let n = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()))?;
    (0.0..=1.0).contains(&n).then_some(n)
}

fn reason(map: &Map<String, Value>) -> String {
    ["reason", "reasoning", "explanation", "rationale"]
        .iter()
        .find_map(|k| map.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A score as judges write it, normalised to [0,1] (the rubric asks for 0 to 10):
/// `7/10`, `70%`, an integer 0-10 (tenths), a fraction in [0,1] (as is), a decimal in
/// (1,10] (tenths), `pass`/`fail`.
pub fn normalise_score(raw: &str) -> Result<f64, String> {
    let s =
        raw.trim_matches(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '*' | '`' | '.'));
    let lower = s.to_lowercase();
    match lower.as_str() {
        "pass" | "passed" | "yes" | "true" => return Ok(1.0),
        "fail" | "failed" | "no" | "false" => return Ok(0.0),
        _ => {}
    }
    let num = |t: &str| t.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    if let Some((a, b)) = s.split_once('/') {
        let b = b.split_whitespace().next().unwrap_or_default();
        return match (num(a), num(b)) {
            (Some(a), Some(b)) if b > 0.0 && (0.0..=b).contains(&a) => Ok(a / b),
            _ => Err(format!(
                "score `{s}` is not a fraction between 0 and its scale"
            )),
        };
    }
    if let Some(p) = s.strip_suffix('%') {
        return match num(p) {
            Some(p) if (0.0..=100.0).contains(&p) => Ok(p / 100.0),
            _ => Err(format!("score `{s}` is not a percentage")),
        };
    }
    // `7 out of 10`, `8 (good)`: the first word.
    let first = s.split_whitespace().next().unwrap_or_default();
    match num(first) {
        Some(v) if v.fract() == 0.0 && (0.0..=10.0).contains(&v) => Ok(v / 10.0),
        Some(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Some(v) if (1.0..=10.0).contains(&v) => Ok(v / 10.0),
        Some(v) => Err(format!("score {v} is outside the scale 0 to 10")),
        None => Err(format!("`{s}` is not a score")),
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An `llm-rubric` answer.
pub fn grade(text: &str) -> Result<Grade, Unparsed> {
    let bad = |why: String| Unparsed {
        refusal: false,
        why: format!("{why}: {}", excerpt(text)),
    };
    if let Some(map) = last_json_object(text) {
        let pass = map.get("pass").and_then(|v| match v {
            Value::Bool(b) => Some(*b),
            other => value_text(other).and_then(|s| normalise_score(&s).ok().map(|x| x >= 0.5)),
        });
        let raw = ["score", "grade", "rating"]
            .iter()
            .find_map(|k| map.get(*k).and_then(value_text));
        let score = match (raw, pass) {
            (Some(r), _) => normalise_score(&r).map_err(bad)?,
            (None, Some(p)) => f64::from(u8::from(p)),
            (None, None) => {
                return grade_line(text).ok_or_else(|| unparsed(text, "score"));
            }
        };
        return Ok(Grade {
            score,
            pass,
            reason: reason(&map),
            confidence: confidence(&map),
        });
    }
    match grade_line(text) {
        Some(g) => Ok(g),
        None => Err(match last_grade_line(text) {
            Some(v) => match normalise_score(&v) {
                Err(e) => bad(e),
                Ok(_) => unparsed(text, "score"),
            },
            None => unparsed(text, "score"),
        }),
    }
}

fn grade_line(text: &str) -> Option<Grade> {
    let v = last_grade_line(text)?;
    let score = normalise_score(&v).ok()?;
    Some(Grade {
        score,
        pass: None,
        reason: String::new(),
        confidence: None,
    })
}

/// A `factuality` answer.
pub fn category(text: &str) -> Result<CategoryAnswer, Unparsed> {
    if let Some(map) = last_json_object(text)
        && let Some(raw) = ["category", "choice", "answer", "verdict"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_str))
    {
        return Category::parse(raw)
            .map(|category| CategoryAnswer {
                category,
                reason: reason(&map),
                confidence: confidence(&map),
            })
            .ok_or_else(|| Unparsed {
                refusal: false,
                why: format!(
                    "the judge answered category `{raw}`, which is none of {}",
                    Category::ALL.join(", ")
                ),
            });
    }
    let from_line = last_grade_line(text).and_then(|v| Category::parse(&v));
    // A last line that is only the choice: `(B)`.
    let bare = || {
        tail(text)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .filter(|l| l.trim().len() <= 24)
            .and_then(Category::parse)
    };
    from_line
        .or_else(bare)
        .map(|category| CategoryAnswer {
            category,
            reason: String::new(),
            confidence: None,
        })
        .ok_or_else(|| unparsed(text, "category"))
}

static CLAIM_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^[\s*>\-•\d.)]*\[?\b(supported|unsupported|contradicted)\b\]?\s*[:\-–]?\s*(.+)$",
    )
    .expect("valid regex")
});

/// A `hallucination` answer: the claims and their verdicts.
pub fn claims(text: &str) -> Result<ClaimsAnswer, Unparsed> {
    if let Some(map) = last_json_object(text)
        && let Some(list) = map.get("claims").and_then(Value::as_array)
    {
        let mut out = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let claim = ["claim", "text", "statement"]
                .iter()
                .find_map(|k| item.get(*k).and_then(Value::as_str));
            let verdict = ["verdict", "label", "status"]
                .iter()
                .find_map(|k| item.get(*k).and_then(Value::as_str))
                .and_then(ClaimVerdict::parse);
            match (claim, verdict) {
                (Some(c), Some(v)) => out.push(Claim {
                    text: c.trim().to_owned(),
                    verdict: v,
                }),
                _ => {
                    return Err(Unparsed {
                        refusal: false,
                        why: format!(
                            "claim {} of the judge answer lacks a `claim` text or a verdict (supported, contradicted, unsupported): {}",
                            i + 1,
                            excerpt(&item.to_string())
                        ),
                    });
                }
            }
        }
        return Ok(ClaimsAnswer {
            claims: out,
            confidence: confidence(&map),
        });
    }
    let claims: Vec<Claim> = tail(text)
        .lines()
        .filter_map(|l| CLAIM_LINE.captures(l))
        .filter_map(|c| {
            Some(Claim {
                verdict: ClaimVerdict::parse(&c[1])?,
                text: c[2].trim().trim_matches('"').to_owned(),
            })
        })
        .collect();
    if claims.is_empty() {
        Err(unparsed(text, "list of claims"))
    } else {
        Ok(ClaimsAnswer {
            claims,
            confidence: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_last_json_object_wins_over_earlier_ones_and_nested_ones() {
        let t = "Example: {\"score\": 2}\nMy verdict:\n```json\n{\"reason\": \"ok\", \"score\": 8, \"pass\": true, \"confidence\": 0.9, \"x\": {\"score\": 1}}\n```";
        let g = grade(t).unwrap();
        assert!(close(g.score, 0.8));
        assert_eq!(g.pass, Some(true));
        assert_eq!(g.reason, "ok");
        assert_eq!(g.confidence, Some(0.9));
    }

    #[test]
    fn the_last_grade_line_wins() {
        let t = "Score: 3/10 at first sight.\nOn reflection it is better.\nGRADE: 9/10\n";
        assert!(close(grade(t).unwrap().score, 0.9));
        let t = "Grade: PASS\nthinking...\n**Final grade:** FAIL";
        assert!(close(grade(t).unwrap().score, 0.0));
        assert!(close(grade("score = 70%").unwrap().score, 0.7));
        assert!(close(grade("Score: 0.35").unwrap().score, 0.35));
    }

    #[test]
    fn scores_normalise_to_the_unit_interval() {
        assert!(close(normalise_score("7").unwrap(), 0.7));
        assert!(close(normalise_score("10").unwrap(), 1.0));
        assert!(close(normalise_score("0").unwrap(), 0.0));
        assert!(close(normalise_score("4/5").unwrap(), 0.8));
        assert!(close(normalise_score("7.5").unwrap(), 0.75));
        assert!(close(normalise_score("8 out of 10").unwrap(), 0.8));
        assert!(normalise_score("11").is_err());
        assert!(normalise_score("-1").is_err());
        assert!(normalise_score("6/5").is_err());
        assert!(normalise_score("great").is_err());
        assert!(normalise_score("NaN").is_err());
    }

    #[test]
    fn garbage_and_refusals_are_unparsed_never_a_grade() {
        let e = grade("The answer seems fine to me overall.").unwrap_err();
        assert!(!e.refusal);
        assert!(e.why.contains("no score"), "{}", e.why);
        assert!(e.why.contains("seems fine"), "{}", e.why);
        let e = grade("I'm sorry, but I can't help with grading this.").unwrap_err();
        assert!(e.refusal);
        assert!(e.why.contains("declined"), "{}", e.why);
        let e = grade("").unwrap_err();
        assert!(e.why.contains("nothing"));
        // JSON without a score, and an out-of-scale score, are errors too.
        assert!(grade("{\"reason\": \"fine\"}").is_err());
        let e = grade("{\"score\": 42}").unwrap_err();
        assert!(e.why.contains("outside"), "{}", e.why);
        assert!(grade("Grade: 42").is_err());
        // A pass alone is a 0/1 grade.
        assert!(close(grade("{\"pass\": false}").unwrap().score, 0.0));
    }

    #[test]
    fn categories_by_name_letter_or_line() {
        let c = category(
            "{\"category\": \"superset\", \"reason\": \"adds a fee\", \"confidence\": 0.7}",
        )
        .unwrap();
        assert_eq!(c.category, Category::Superset);
        assert_eq!(c.confidence, Some(0.7));
        assert_eq!(
            category("{\"category\": \"Differs_Harmlessly\"}")
                .unwrap()
                .category,
            Category::DiffersHarmlessly
        );
        assert_eq!(
            category("reasoning...\n(D)").unwrap().category,
            Category::Contradiction
        );
        assert_eq!(
            category("Answer: (A) subset: fine\n").unwrap().category,
            Category::Subset
        );
        assert_eq!(category("Category: same").unwrap().category, Category::Same);
        let e = category("{\"category\": \"mostly right\"}").unwrap_err();
        assert!(e.why.contains("mostly right"));
        assert!(category("it is probably fine").is_err());
        // Confidence outside [0,1] is dropped, not clamped.
        assert_eq!(
            category("{\"category\": \"same\", \"confidence\": 7}")
                .unwrap()
                .confidence,
            None
        );
    }

    #[test]
    fn claims_from_json_or_lines() {
        let a = claims("{\"claims\": [{\"claim\": \"30 days\", \"verdict\": \"supported\"}, {\"claim\": \"free shipping\", \"verdict\": \"unsupported\"}], \"confidence\": 0.8}").unwrap();
        assert_eq!(a.claims.len(), 2);
        assert_eq!(a.claims[1].verdict, ClaimVerdict::Unsupported);
        assert_eq!(a.confidence, Some(0.8));
        let a = claims("- SUPPORTED: returns within 30 days\n- [CONTRADICTED] 90 days\n").unwrap();
        assert_eq!(a.claims.len(), 2);
        assert_eq!(a.claims[1].verdict, ClaimVerdict::Contradicted);
        assert_eq!(a.claims[1].text, "90 days");
        assert!(claims("{\"claims\": []}").unwrap().claims.is_empty());
        assert!(claims("{\"claims\": [{\"claim\": \"x\", \"verdict\": \"maybe\"}]}").is_err());
        assert!(claims("everything checks out").is_err());
    }

    #[test]
    fn long_or_hostile_answers_do_not_hang_or_panic() {
        let many = "{".repeat(100_000);
        assert!(grade(&many).is_err());
        let unicode = "é".repeat(MAX_ANSWER) + "\nGRADE: 5";
        assert!(close(grade(&unicode).unwrap().score, 0.5));
    }
}
