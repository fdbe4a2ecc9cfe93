//! A review sheet: its items, the HMAC that binds them to the sheet, and the page.
//!
//! The page is one self-contained HTML file that works from `file://`: the items travel as
//! JSON in `<script type="application/json" id="evalwatch-sheet">`, and one inline script
//! (allowed by its hash in the page's Content-Security-Policy, nothing else may run) renders
//! them with `textContent` only, so model output can never become markup.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{AssertionOutcome, CaseStatus};

const TEMPLATE: &str = include_str!("templates/sheet.html");
const SCRIPT: &str = include_str!("templates/sheet.js");
const SHEET_CSS: &str = include_str!("templates/sheet.css");
/// The reports' look, shared.
const REPORT_CSS: &str = include_str!("../report/html/templates/style.css");

/// One assertion's automatic verdict, as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemAssertion {
    #[serde(rename = "type")]
    pub type_name: String,
    pub pass: bool,
    pub unscorable: bool,
    pub score: Option<f64>,
    pub reason: String,
}

/// The automatic verdict of an item (hidden until graded in blind mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoVerdict {
    pub status: String,
    pub score: Option<f64>,
    pub assertions: Vec<ItemAssertion>,
}

/// One item of a sheet. `result_id` is the decimal `results.id`, a string so that no
/// JavaScript number rounds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SheetItem {
    pub result_id: String,
    pub case_id: String,
    pub provider: String,
    pub run_id: String,
    pub stratum: String,
    pub suite: String,
    pub sample: u32,
    pub prompt: String,
    pub expected: Option<String>,
    /// Why no expected answer is shown, when none is.
    pub expected_note: Option<String>,
    pub context: Vec<String>,
    pub output: Option<String>,
    pub auto: AutoVerdict,
    /// For an item of production traffic: the record it shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficItem>,
}

/// What a traffic item shows beside the text: where the record came from and what its user
/// said. (`case_id` holds the record's key, `provider` its model, `run_id` and `suite` its
/// source.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficItem {
    pub source: String,
    pub key: String,
    /// RFC 3339 UTC.
    pub time: String,
    pub model: Option<String>,
    pub feature: Option<String>,
    pub segment: Option<String>,
    pub region: Option<String>,
    pub trace_id: Option<String>,
    /// The user's vote when the sheet was made: positive, negative or neutral.
    pub vote: Option<String>,
    /// The vote as the user's tool wrote it.
    pub feedback_raw: Option<String>,
    pub comment: Option<String>,
    pub confidence: Option<f64>,
    /// The error kind of a failed request (`error` when the log names none).
    pub error: Option<String>,
    pub latency_ms: Option<f64>,
}

impl SheetItem {
    /// The automatic verdict of a stored result.
    #[must_use]
    pub fn auto_verdict(
        status: CaseStatus,
        score: Option<f64>,
        assertions: &[AssertionOutcome],
    ) -> AutoVerdict {
        AutoVerdict {
            status: status.as_str().to_owned(),
            score: score.filter(|s| s.is_finite()),
            assertions: assertions
                .iter()
                .map(|a| ItemAssertion {
                    type_name: a.type_name.clone(),
                    pass: a.pass,
                    unscorable: a.unscorable,
                    score: Some(a.score).filter(|s| s.is_finite()),
                    reason: a.reason.clone(),
                })
                .collect(),
        }
    }
}

/// Where a served sheet sends its grades.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Submit {
    pub url: String,
    pub token: String,
}

/// A reviewer's current grade of an item, as stored: what a page from the store shows of
/// the team's grades.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredGrade {
    /// The item's `result_id`, decimal, as in the items.
    pub result_id: String,
    pub reviewer: String,
    pub graded_at: String,
    /// `pass` or `fail`.
    pub verdict: &'static str,
    pub quality: Option<u8>,
    pub hallucination: Option<bool>,
    pub note: String,
}

/// The JSON a sheet carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SheetData<'a> {
    pub sheet_id: &'a str,
    pub created_at: &'a str,
    pub mac: &'a str,
    pub items: &'a [SheetItem],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit: Option<Submit>,
    /// Every reviewer's stored grades, on a page made from the store (`review serve`,
    /// `review show --html`); none on a freshly sampled sheet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grades: Option<&'a [StoredGrade]>,
    /// Whether the sheet is closed (a served page of a closed sheet still takes grades).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
}

/// A new random secret (hex) for a sheet's HMAC.
#[must_use]
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// A new sheet id: the creation time and 8 random hex digits (`20260301-101500-1a2b3c4d`).
#[must_use]
pub fn new_sheet_id(now: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "{}-{:08x}",
        now.format("%Y%m%d-%H%M%S"),
        rand::random::<u32>()
    )
}

/// HMAC-SHA256 (hex) keyed by the sheet's secret over its id and its result ids in order.
#[must_use]
pub fn mac(secret: &str, sheet_id: &str, result_ids: &[i64]) -> String {
    let Ok(mut m) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        // HMAC accepts keys of any length: unreachable, and no MAC matches an empty one.
        return String::new();
    };
    m.update(b"evalwatch-sheet\n");
    m.update(sheet_id.as_bytes());
    for id in result_ids {
        m.update(b"\n");
        m.update(id.to_string().as_bytes());
    }
    hex::encode(m.finalize().into_bytes())
}

/// Compare two MACs in constant time (no early exit on the first differing byte).
#[must_use]
pub fn same_mac(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// JSON safe inside a `<script>` element: `<`, `>` and `&` as `\u` escapes (they only
/// occur inside strings, where the escapes mean the same).
#[must_use]
pub fn script_json<T: Serialize>(value: &T) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// `s` escaped for HTML text and attributes (tera's escaping, as the report templates use).
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    // Writing to a Vec cannot fail.
    let _ = tera::escape_html(s, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The page of a sheet.
#[must_use]
pub fn render(data: &SheetData<'_>) -> String {
    let hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
    let connect = if data.submit.is_some() {
        "'self'"
    } else {
        "'none'"
    };
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; connect-src {connect}; img-src data:; base-uri 'none'; form-action 'none'"
    );
    // One pass over the template, so that nothing substituted is substituted again.
    let mut out = String::with_capacity(TEMPLATE.len() + SCRIPT.len() + 4096);
    let mut rest = TEMPLATE;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        match &after[..end] {
            "csp" => out.push_str(&csp), // our own text, no quote or markup
            "title" => out.push_str(&html_escape(data.sheet_id)),
            "css" => {
                out.push_str(REPORT_CSS);
                out.push_str(SHEET_CSS);
            }
            "data" => out.push_str(&script_json(data)),
            "script" => out.push_str(SCRIPT),
            other => {
                out.push_str("{{");
                out.push_str(other);
                out.push_str("}}");
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(output: &str) -> SheetItem {
        SheetItem {
            result_id: "4294967296".into(),
            case_id: "c</script>".into(),
            provider: "p".into(),
            run_id: "r".into(),
            stratum: "fail".into(),
            suite: "s".into(),
            sample: 0,
            prompt: "Q & A".into(),
            expected: Some("x".into()),
            expected_note: None,
            context: vec!["ctx".into()],
            output: Some(output.into()),
            auto: SheetItem::auto_verdict(CaseStatus::Failed, Some(f64::NAN), &[]),
            traffic: None,
        }
    }

    #[test]
    fn the_page_escapes_everything_and_allows_only_its_own_script() {
        let items = [item(
            "<script>alert(1)</script><img src=x onerror=alert(2)>",
        )];
        let data = SheetData {
            sheet_id: "s<1>",
            created_at: "t",
            mac: "m",
            items: &items,
            submit: None,
            grades: None,
            closed: false,
        };
        let page = render(&data);
        // Exactly the page's two script elements; model text never closes one.
        assert_eq!(page.matches("<script").count(), 2, "{page}");
        assert_eq!(page.matches("</script>").count(), 2);
        assert!(page.contains(r"\u003cscript\u003ealert(1)\u003c/script\u003e"));
        assert!(!page.contains("<img"));
        assert!(page.contains("<title>evalwatch review: s&lt;1&gt;</title>"));
        assert!(page.contains("id=\"evalwatch-sheet\""));
        let hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
        assert!(page.contains(&format!("script-src 'sha256-{hash}'")));
        assert!(page.contains("connect-src 'none'"));
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no external link"
        );
        // The JSON reads back to the same items.
        let start = page.find("id=\"evalwatch-sheet\">").unwrap() + "id=\"evalwatch-sheet\">".len();
        let end = start + page[start..].find("</script>").unwrap();
        let v: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
        assert_eq!(v["items"][0]["output"], items[0].output.clone().unwrap());
        assert_eq!(v["items"][0]["result_id"], "4294967296");
        assert!(v["items"][0]["auto"]["score"].is_null(), "NaN is null");
        assert!(v.get("submit").is_none());
    }

    #[test]
    fn mac_binds_the_id_and_the_items() {
        let a = mac("k", "s1", &[1, 2, 3]);
        assert_eq!(a.len(), 64);
        assert_eq!(a, mac("k", "s1", &[1, 2, 3]));
        assert_ne!(a, mac("k", "s1", &[1, 2]));
        assert_ne!(a, mac("k", "s1", &[1, 3, 2]));
        assert_ne!(a, mac("k", "s2", &[1, 2, 3]));
        assert_ne!(a, mac("other", "s1", &[1, 2, 3]));
        assert_ne!(mac("k", "s", &[12, 3]), mac("k", "s", &[1, 23]));
        assert!(same_mac(&a, &a.clone()));
        assert!(!same_mac(&a, &mac("k", "s1", &[1])));
        assert!(!same_mac("", ""));
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

    #[test]
    fn sheet_ids_are_unique_and_plain() {
        let now = chrono::Utc::now();
        let a = new_sheet_id(now);
        assert!(
            a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{a}"
        );
        assert_ne!(a, new_sheet_id(now));
        assert_eq!(new_secret().len(), 64);
    }
}
