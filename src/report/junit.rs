//! JUnit XML for CI test tabs: one `<testsuite>` per run, one `<testcase>` per result.

use std::io::{self, Write};

use quick_xml::escape::escape;

use super::RunView;
use crate::model::{CaseStatus, ResultRecord};

/// XML 1.0 forbids most control characters even when escaped; drop them.
fn clean(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| {
            matches!(c, '\t' | '\n' | '\r') || (*c >= ' ' && *c != '\u{FFFE}' && *c != '\u{FFFF}')
        })
        .collect();
    escape(kept.as_str()).into_owned()
}

/// Streams `<testsuites>`: call `suite` per run, `case` per result, `end_suite`, then `end`.
pub struct JunitWriter<W: Write> {
    w: W,
}

impl<W: Write> JunitWriter<W> {
    pub fn begin(mut w: W) -> io::Result<Self> {
        w.write_all(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"evalwatch\">\n",
        )?;
        Ok(Self { w })
    }

    pub fn suite(&mut self, view: &RunView<'_>) -> io::Result<()> {
        let (mut tests, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
        for m in view.overall() {
            tests += m.metrics.cases;
            failures += m.metrics.failed;
            errors += m.metrics.errors;
            skipped += m.metrics.unscorable;
        }
        writeln!(
            self.w,
            "  <testsuite name=\"{}\" id=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{:.3}\" timestamp=\"{}\">",
            clean(&view.info.suite),
            clean(&view.info.run_id),
            view.wall_secs.unwrap_or(0.0),
            clean(&view.info.started_at),
        )
    }

    pub fn case(&mut self, suite: &str, rec: &ResultRecord) -> io::Result<()> {
        let name = if rec.job.sample > 0 {
            format!("{} #{}", rec.job.case_id, rec.job.sample)
        } else {
            rec.job.case_id.clone()
        };
        let secs = rec.latency_ms.unwrap_or(0.0) / 1000.0;
        write!(
            self.w,
            "    <testcase classname=\"{}.{}\" name=\"{}\" time=\"{secs:.3}\"",
            clean(suite),
            clean(&rec.job.provider_id),
            clean(&name)
        )?;
        let failing: Vec<String> = rec
            .assertions
            .iter()
            .filter(|a| !a.pass)
            .map(|a| format!("{}: {}", a.type_name, a.reason))
            .collect();
        match rec.status {
            CaseStatus::Passed => self.w.write_all(b"/>\n"),
            CaseStatus::Failed => {
                let message = failing.first().cloned().unwrap_or_else(|| "failed".into());
                writeln!(
                    self.w,
                    ">\n      <failure message=\"{}\">{}\n\noutput:\n{}</failure>\n    </testcase>",
                    clean(&message),
                    clean(&failing.join("\n")),
                    clean(rec.output.as_deref().unwrap_or(""))
                )
            }
            CaseStatus::Error => writeln!(
                self.w,
                ">\n      <error message=\"{}\" type=\"{}\"/>\n    </testcase>",
                clean(rec.error.as_deref().unwrap_or("error")),
                rec.error_kind.map_or("error", |k| k.as_str())
            ),
            CaseStatus::Unscorable => writeln!(
                self.w,
                ">\n      <skipped message=\"unscorable: {}\"/>\n    </testcase>",
                clean(&failing.join("; "))
            ),
        }
    }

    pub fn end_suite(&mut self) -> io::Result<()> {
        self.w.write_all(b"  </testsuite>\n")
    }

    pub fn end(mut self) -> io::Result<W> {
        self.w.write_all(b"</testsuites>\n")?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(clean("a<b>&\"c\"\u{1}"), "a&lt;b&gt;&amp;&quot;c&quot;");
    }
}
