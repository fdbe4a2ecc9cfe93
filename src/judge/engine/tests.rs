use super::*;

#[test]
fn cosine_of_vectors() {
    assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]).unwrap() - 1.0).abs() < 1e-12);
    assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).unwrap().abs() < 1e-12);
    assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]).unwrap() + 1.0).abs() < 1e-12);
    assert_eq!(cosine(&[], &[]), None);
    assert_eq!(cosine(&[1.0], &[1.0, 2.0]), None);
    assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), None);
}

#[test]
fn factuality_categories_map_to_their_scores() {
    let f = ModelCheck::Factuality {
        reference: "30 days".into(),
        scores: checks::FactualityScores::default(),
        threshold: 0.75,
        provider: None,
    };
    let score = |cat: &str| {
        let (v, _) = decide(&f, "out", &format!("{{\"category\": \"{cat}\"}}")).unwrap();
        (
            v.score,
            v.pass,
            v.details["category"].as_str().map(str::to_owned),
        )
    };
    assert_eq!(score("same"), (1.0, true, Some("same".into())));
    assert_eq!(
        score("differs-harmlessly"),
        (1.0, true, Some("differs-harmlessly".into()))
    );
    assert_eq!(score("subset"), (0.5, false, Some("subset".into())));
    assert_eq!(score("superset"), (0.5, false, Some("superset".into())));
    assert_eq!(
        score("contradiction"),
        (0.0, false, Some("contradiction".into()))
    );
    let custom = checks::FactualityScores {
        superset: 0.9,
        ..checks::FactualityScores::default()
    };
    let f = ModelCheck::Factuality {
        reference: "x".into(),
        scores: custom,
        threshold: 0.75,
        provider: None,
    };
    let (v, _) = decide(&f, "out", "Category: B").unwrap();
    assert!(v.pass && (v.score - 0.9).abs() < 1e-12);
}

#[test]
fn hallucination_claims_count_unsupported_and_contradicted_apart() {
    let h = ModelCheck::Hallucination {
        method: Method::Judge,
        max: 0.2,
        provider: None,
        support: SupportSources::default(),
        judge_share: DEFAULT_JUDGE_SHARE,
    };
    let out = "Returns within 30 days. Shipping is free. Refunds take 90 days.";
    let answer = r#"{"claims": [
            {"claim": "Returns within 30 days", "verdict": "supported"},
            {"claim": "Shipping is free", "verdict": "unsupported"},
            {"claim": "Refunds take 90 days", "verdict": "contradicted"}], "confidence": 0.6}"#;
    let (v, conf) = decide(&h, out, answer).unwrap();
    assert_eq!(conf, Some(0.6));
    assert!(!v.pass);
    assert!((v.details["score"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert!((v.score - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(v.details["category"], "contradiction");
    assert_eq!(v.details["unsupported"][0]["start"], 24);
    assert_eq!(
        v.details["contradictions"][0]["text"],
        "Refunds take 90 days"
    );
    // A claim the judge paraphrased has no offsets.
    let (v, _) = decide(
        &h,
        out,
        r#"{"claims": [{"claim": "free delivery", "verdict": "unsupported"}]}"#,
    )
    .unwrap();
    assert_eq!(v.details["unsupported"][0]["start"], Value::Null);
    assert_eq!(v.details["category"], "unsupported");
    let (v, _) = decide(&h, out, r#"{"claims": []}"#).unwrap();
    assert!(v.pass && v.details["category"] == "supported");
}

#[test]
fn cache_keys_depend_on_judge_rubric_and_inputs() {
    let k = cache_key("j/m", "h", &json!({"output": "a"}));
    assert_eq!(k, cache_key("j/m", "h", &json!({"output": "a"})));
    assert_ne!(k, cache_key("j/m2", "h", &json!({"output": "a"})));
    assert_ne!(k, cache_key("j/m", "h2", &json!({"output": "a"})));
    assert_ne!(k, cache_key("j/m", "h", &json!({"output": "b"})));
}
