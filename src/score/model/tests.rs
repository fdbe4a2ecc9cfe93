use super::*;

#[allow(clippy::needless_pass_by_value)]
fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn parses_with_defaults_and_rejects_bad_params() {
    let c = ModelCheck::parse(
        "factuality",
        &params(json!({"scores": {"superset": 0.8}})),
        Some("30 days"),
        None,
    )
    .unwrap();
    let ModelCheck::Factuality {
        reference,
        scores,
        threshold,
        ..
    } = c
    else {
        panic!()
    };
    assert_eq!(reference, "30 days");
    assert!((scores.superset - 0.8).abs() < 1e-12);
    assert!((scores.subset - 0.5).abs() < 1e-12);
    assert!((threshold - DEFAULT_FACTUALITY_THRESHOLD).abs() < 1e-12);
    assert!(ModelCheck::parse("factuality", &params(json!({})), None, None).is_err());
    assert!(
        ModelCheck::parse(
            "factuality",
            &params(json!({"scores": {"sorta": 1}})),
            Some("x"),
            None
        )
        .unwrap_err()
        .contains("sorta")
    );
    assert!(
        ModelCheck::parse(
            "factuality",
            &params(json!({"scores": {"same": 2}})),
            Some("x"),
            None
        )
        .is_err()
    );
    assert!(
        ModelCheck::parse("llm-rubric", &params(json!({})), None, None)
            .unwrap_err()
            .contains("rubric")
    );
    assert!(
        ModelCheck::parse(
            "hallucination",
            &params(json!({"method": "vibes"})),
            None,
            None
        )
        .is_err()
    );
    assert!(ModelCheck::parse("hallucination", &params(json!({"max": 3})), None, None).is_err());
    let h = ModelCheck::parse("hallucination", &params(json!({})), None, None).unwrap();
    assert_eq!(
        h,
        ModelCheck::Hallucination {
            method: Method::Lexical,
            max: DEFAULT_HALLUCINATION_MAX,
            provider: None,
            support: SupportSources::default(),
            judge_share: DEFAULT_JUDGE_SHARE,
        }
    );
    assert!(!h.may_call());
    let s = ModelCheck::parse(
        "semantic",
        &params(json!({"provider": "emb", "value": "hi"})),
        None,
        Some(0.9),
    )
    .unwrap();
    assert_eq!(s.provider(), Some("emb"));
    assert!(s.may_call());
}

#[test]
fn support_sources_parse_and_default_to_the_prompt_as_an_echo() {
    let h = ModelCheck::parse(
        "hallucination",
        &params(json!({"support": ["context", "prompt"], "method": "both", "judge_share": 0.25})),
        None,
        None,
    )
    .unwrap();
    let ModelCheck::Hallucination {
        support: sources,
        judge_share,
        ..
    } = h
    else {
        panic!()
    };
    assert_eq!(sources.names(), ["context", "prompt"]);
    assert!((judge_share - 0.25).abs() < 1e-12);
    assert_eq!(
        SupportSources::from_value(Some(&json!("expected")))
            .unwrap()
            .names(),
        ["expected"]
    );
    assert_eq!(SupportSources::default().names(), ["expected", "context"]);
    for bad in [
        json!([]),
        json!(["contxt"]),
        json!([1]),
        json!(["prompt", "prompt"]),
    ] {
        assert!(SupportSources::from_value(Some(&bad)).is_err(), "{bad}");
    }

    let mut case = crate::score::testutil::case("q1", Vec::new());
    case.expected = Some("Arthur's Magazine was started in 1844.".into());
    case.context = vec!["First for Women was started in 1989.".into()];
    let prompt = "Which magazine was started first, Arthur's Magazine or First for Women?";
    // Default: the prompt excuses the words it shares with the output, but a name copied
    // from the question is not supported by it.
    let texts = support(&case, prompt, SupportSources::default());
    assert_eq!(texts.support.len(), 2);
    assert_eq!(texts.echo, [prompt]);
    let lx = texts.check("The magazine started first was Arthur's Magazine.");
    assert!(lx.unsupported.is_empty(), "{lx:?}");
    let wrong = support(
        &Case {
            context: vec![],
            ..case.clone()
        },
        "Which magazine was started first, Arthur's Magazine or Women's Health?",
        SupportSources::default(),
    )
    .check("Women's Health was started first.");
    assert!(
        wrong.unsupported.iter().any(|s| s.text.contains("Health")),
        "{wrong:?}"
    );
    // Naming the prompt makes it support content again.
    let with_prompt = support(
        &Case {
            context: vec![],
            ..case.clone()
        },
        "Which magazine was started first, Arthur's Magazine or Women's Health?",
        SupportSources::from_value(Some(&json!(["expected", "prompt"]))).unwrap(),
    )
    .check("Women's Health was started first.");
    assert!(with_prompt.unsupported.is_empty(), "{with_prompt:?}");
    // A case with no expected and no context has only its prompt to check against.
    let bare = crate::score::testutil::case("q2", Vec::new());
    let texts = support(
        &bare,
        "Summarise: the plant opened in 1998.",
        SupportSources::default(),
    );
    assert_eq!(texts.support, ["Summarise: the plant opened in 1998."]);
    assert!(texts.echo.is_empty());
}

#[test]
fn judge_sample_is_stable_and_close_to_its_share() {
    let n = 4000;
    let picked = (0..n)
        .filter(|i| judge_sampled(&format!("case-{i}"), "Paris is the capital.", 0.1))
        .count();
    assert!((300..=500).contains(&picked), "{picked} of {n}");
    for i in 0..50 {
        let id = format!("case-{i}");
        assert_eq!(
            judge_sampled(&id, "out", 0.3),
            judge_sampled(&id, "out", 0.3)
        );
    }
    assert!(!judge_sampled("a", "b", 0.0));
    assert!(judge_sampled("a", "b", 1.0));
}

/// A lexical hallucination check with every default but `max`.
fn lexical(max: f64) -> ModelCheck {
    ModelCheck::Hallucination {
        method: Method::Lexical,
        max,
        provider: None,
        support: SupportSources::default(),
        judge_share: DEFAULT_JUDGE_SHARE,
    }
}

#[test]
fn lexical_reason_and_details_say_what_the_score_is() {
    let support = ["Items can be returned within 30 days of delivery."];
    let h = lexical(0.2);
    // Two claims: one supported, one invented; the blended score is not a share.
    let output = "Items can be returned within 30 days. Refunds take 90 weeks via carrier pigeon.";
    let lx = lexical::check(output, &support);
    assert!(lx.share > 0.0 && lx.worst_claim > lx.share, "{lx:?}");
    let v = without_judge(&h, "hallucination", output, &SupportTexts::plain(&support));
    assert!(!v.pass);
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    assert!(
        v.reason.contains(&format!("score {:.2}", lx.score)),
        "{}",
        v.reason
    );
    assert!(v.reason.contains(&pct(lx.share)), "{}", v.reason);
    assert!(v.reason.contains(&pct(lx.worst_claim)), "{}", v.reason);
    assert!(v.reason.contains(&pct(lx.surface)), "{}", v.reason);
    assert!(v.reason.contains("0.375 × the first"), "{}", v.reason);
    assert!(
        !v.reason.contains(&format!(
            "{} of the output is not in the support",
            pct(lx.score)
        )),
        "{}",
        v.reason
    );
    assert_eq!(v.details["score"], json!(lx.score));
    assert_eq!(v.details["share"], json!(lx.share));
    assert_eq!(v.details["worst_claim"], json!(lx.worst_claim));
    assert_eq!(v.details["surface"], json!(lx.surface));
    let weighed = 0.375 * lx.share + 0.375 * lx.worst_claim + 0.25 * lx.surface;
    assert!((lx.score - weighed).abs() < 1e-12, "{lx:?}");
    assert_eq!(v.details["claims"], json!(2));
}

#[test]
fn an_empty_output_is_unscorable_not_a_silent_pass() {
    let support = ["Items can be returned within 30 days of delivery."];
    for method in [Method::Lexical, Method::Both, Method::Judge] {
        let h = ModelCheck::Hallucination {
            method,
            max: 0.2,
            provider: None,
            support: SupportSources::default(),
            judge_share: DEFAULT_JUDGE_SHARE,
        };
        for output in ["", "  \n\t "] {
            let v = without_judge(&h, "hallucination", output, &SupportTexts::plain(&support));
            assert!(v.unscorable && !v.pass, "{method:?} {output:?}: {v:?}");
            assert!(v.reason.contains("empty"), "{}", v.reason);
        }
    }
    // Text with nothing checkable is scored 0 and says so.
    let h = lexical(0.2);
    let v = without_judge(&h, "hallucination", "Yes.", &SupportTexts::plain(&support));
    assert!(v.pass && !v.unscorable);
    assert!(
        v.reason.contains("nothing in the output is checkable"),
        "{}",
        v.reason
    );
}

#[test]
fn lexical_pass_fails_over_max_and_reports_spans() {
    let support = ["Items can be returned within 30 days of delivery."];
    let h = lexical(0.2);
    let ok = without_judge(
        &h,
        "hallucination",
        "Items can be returned within 30 days.",
        &SupportTexts::plain(&support),
    );
    assert!(ok.pass && !ok.unscorable);
    assert_eq!(ok.details["score"], json!(0.0));
    let bad = without_judge(
        &h,
        "hallucination",
        "Refunds take 90 weeks via carrier pigeon.",
        &SupportTexts::plain(&support),
    );
    assert!(!bad.pass);
    assert!(
        bad.details["unsupported"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    assert!(bad.score < 0.5);
    // `both` with something flagged needs a judge: never a silent verdict.
    let both = ModelCheck::Hallucination {
        method: Method::Both,
        max: 0.2,
        provider: None,
        support: SupportSources::default(),
        judge_share: DEFAULT_JUDGE_SHARE,
    };
    assert!(
        without_judge(
            &both,
            "hallucination",
            "Refunds take 90 weeks via carrier pigeon.",
            &SupportTexts::plain(&support)
        )
        .unscorable
    );
    let clean = without_judge(
        &both,
        "hallucination",
        "Items can be returned within 30 days.",
        &SupportTexts::plain(&support),
    );
    assert!(clean.pass && clean.reason.contains("no judge needed"));
}
