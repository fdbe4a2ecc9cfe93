//! Built-in rubric prompts, versioned. A prompt never changes under the same version: a
//! changed prompt gets a new version, and its hash (stored with every judged result) changes
//! with it, so a trend visibly breaks where a rubric changed.

use sha2::{Digest, Sha256};

/// A rubric prompt: a system message and a user-message template with `{{name}}` slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rubric {
    /// `llm-rubric`, `factuality`, `hallucination`, `semantic`.
    pub kind: &'static str,
    pub version: &'static str,
    pub system: &'static str,
    pub template: &'static str,
}

impl Rubric {
    /// Hex SHA-256 (first 16 characters) of the version, the prompt and `extra` (the user's
    /// own rubric text for `llm-rubric`, the scores of `factuality`).
    #[must_use]
    pub fn hash(&self, extra: &str) -> String {
        let mut h = Sha256::new();
        for part in [self.kind, self.version, self.system, self.template, extra] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())[..16].to_owned()
    }

    /// The user message with `{{name}}` slots filled (values are inserted verbatim, once:
    /// a value holding `{{...}}` is not expanded again).
    #[must_use]
    pub fn render(&self, slots: &[(&str, &str)]) -> String {
        let mut out = String::with_capacity(self.template.len() + 256);
        let mut rest = self.template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let name = after[..end].trim();
            match slots.iter().find(|(k, _)| *k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&rest[start..start + 2 + end + 2]),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

pub const LLM_RUBRIC: Rubric = Rubric {
    kind: "llm-rubric",
    version: "llm-rubric/v1",
    system: "You are a strict, impartial grader. You grade one answer against a rubric. You do not answer the question yourself.",
    template: "Grade the ANSWER against the RUBRIC.\n\n<rubric>\n{{rubric}}\n</rubric>\n\n<question>\n{{prompt}}\n</question>\n\n<reference>\n{{reference}}\n</reference>\n\n<answer>\n{{output}}\n</answer>\n\nThink briefly, then end with one line of JSON and nothing after it:\n{\"reason\": \"<one sentence>\", \"score\": <integer 0 to 10, 10 = fully meets the rubric>, \"pass\": <true|false>, \"confidence\": <0.0 to 1.0>}",
};

pub const FACTUALITY: Rubric = Rubric {
    kind: "factuality",
    version: "factuality/v1",
    system: "You compare the facts of a submitted answer with an expert answer. You judge facts only, not style or wording.",
    template: "Compare the factual content of the SUBMISSION with the EXPERT answer to the QUESTION.\n\n<question>\n{{prompt}}\n</question>\n\n<expert>\n{{reference}}\n</expert>\n\n<submission>\n{{output}}\n</submission>\n\nChoose exactly one category:\n(A) subset: the submission is a subset of the expert answer and fully consistent with it.\n(B) superset: the submission is a superset of the expert answer and fully consistent with it (it adds facts the expert answer does not state).\n(C) same: the submission contains all the same details as the expert answer.\n(D) contradiction: the submission and the expert answer disagree on a fact.\n(E) differs-harmlessly: the answers differ, but the differences do not matter for factuality.\n\nEnd with one line of JSON and nothing after it:\n{\"category\": \"<subset|superset|same|contradiction|differs-harmlessly>\", \"reason\": \"<one sentence>\", \"confidence\": <0.0 to 1.0>}",
};

pub const HALLUCINATION: Rubric = Rubric {
    kind: "hallucination",
    version: "hallucination/v1",
    system: "You check an answer claim by claim against the SUPPORT texts. A claim the support does not state counts as unsupported even if nothing contradicts it. General world knowledge is not support.",
    template: "Split the ANSWER into its factual claims and check each against the SUPPORT.\n\n<support>\n{{support}}\n</support>\n\n<answer>\n{{output}}\n</answer>\n\nFor each claim give the verdict `supported` (the support states it), `contradicted` (the support says otherwise) or `unsupported` (the support does not state it). Quote each claim as it appears in the answer. An answer with no factual claim (a greeting, a refusal) has an empty list.\n\nEnd with one line of JSON and nothing after it:\n{\"claims\": [{\"claim\": \"<quoted text>\", \"verdict\": \"<supported|contradicted|unsupported>\"}], \"confidence\": <0.0 to 1.0>}",
};

/// `semantic` has no prompt; its "rubric" is the cosine of two embeddings.
pub const SEMANTIC: Rubric = Rubric {
    kind: "semantic",
    version: "semantic/v1",
    system: "",
    template: "cosine(embed(output), embed(reference))",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tracks_the_prompt_and_the_extra_text() {
        let a = LLM_RUBRIC.hash("be polite");
        assert_eq!(a.len(), 16);
        assert_eq!(a, LLM_RUBRIC.hash("be polite"));
        assert_ne!(a, LLM_RUBRIC.hash("be brief"));
        let changed = Rubric {
            version: "llm-rubric/v2",
            ..LLM_RUBRIC
        };
        assert_ne!(a, changed.hash("be polite"));
        assert_ne!(FACTUALITY.hash(""), HALLUCINATION.hash(""));
    }

    #[test]
    fn render_fills_slots_once() {
        let r = Rubric {
            template: "a={{x}} b={{ y }} c={{z}} {{",
            ..LLM_RUBRIC
        };
        assert_eq!(
            r.render(&[("x", "{{y}}"), ("y", "2")]),
            "a={{y}} b=2 c={{z}} {{"
        );
    }
}
