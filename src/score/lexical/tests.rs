use std::fmt::Write as _;

use super::{Support, UnitKind, check, check_echo, check_with};

fn spans(output: &str, support: &[&str]) -> Vec<String> {
    check(output, support)
        .unsupported
        .into_iter()
        .map(|s| s.text)
        .collect()
}

fn score(output: &str, support: &[&str]) -> f64 {
    check(output, support).score
}

/// The weighted share of unsupported units: 0 when folding matched every unit, whatever the
/// surface share (which sees the change of form) adds to the score.
fn units_share(output: &str, support: &[&str]) -> f64 {
    check(output, support).share
}

#[test]
fn fully_supported_output_scores_zero() {
    let r = check(
        "The capital of France is Paris.",
        &["Paris is the capital of France."],
    );
    assert!(r.score.abs() < 1e-12, "{r:?}");
    assert!(r.unsupported.is_empty());
    assert_eq!(r.checked, 3); // capital, France, Paris
}

#[test]
fn unsupported_word_is_flagged_with_its_bytes() {
    let out = "The capital of France is Lyon.";
    let r = check(out, &["Paris is the capital of France."]);
    assert_eq!(r.unsupported.len(), 1);
    let s = &r.unsupported[0];
    assert_eq!((s.start, s.end, s.text.as_str()), (25, 29, "Lyon"));
    assert_eq!(&out[s.start..s.end], "Lyon");
    assert_eq!(s.kind, UnitKind::Name);
    assert!(r.score > 0.3 && r.score <= 1.0, "{}", r.score);
}

#[test]
fn numbers_match_across_formats() {
    let support = ["Revenue was 1,000 dollars in 2023, ten times more, and the track is 6.213 km."];
    for out in [
        "Revenue was 1000 dollars.",
        "Revenue was 1000.00 dollars.",
        "It was 10 times more.",
        "The track is 6.213 km.",
    ] {
        assert!(
            units_share(out, &support).abs() < 1e-12,
            "{out}: {:?}",
            spans(out, &support)
        );
    }
    assert_eq!(spans("Revenue was 1,001 dollars.", &support), ["1,001"]);
    assert_eq!(spans("The track is 6.2 km.", &support), ["6.2"]);
    let r = check("It was 11 times more.", &support);
    assert_eq!(r.unsupported[0].kind, UnitKind::Number);
}

#[test]
fn number_words_ordinals_and_scales() {
    assert!(units_share("twenty-five players", &["25 players"]).abs() < 1e-12);
    assert!(units_share("25 players", &["twenty five players"]).abs() < 1e-12);
    assert!(units_share("the 3rd album", &["their third album"]).abs() < 1e-12);
    assert!(
        units_share(
            "1,500,000 participants",
            &["an estimated 1.5 million participants"]
        ) < 1e-12
    );
    assert!(units_share("1.5 million participants", &["1,500,000 participants"]).abs() < 1e-12);
    assert!(units_share("$1.2 billion", &["revenue of 1,200 million"]).abs() < 1e-12);
    assert_eq!(
        spans("2.5 million participants", &["1,500,000 participants"]),
        ["2.5 million"]
    );
    assert_eq!(spans("twenty-six players", &["25 players"]), ["twenty-six"]);
}

#[test]
fn dates_match_in_any_order_and_format() {
    let support = ["Elvis Presley (January 8, 1935 – August 16, 1977) was a singer."];
    for out in [
        "Elvis Presley was born on 8 January 1935.",
        "Elvis Presley was born on Jan 8, 1935.",
        "Elvis Presley was born 1935-01-08.",
        "Elvis Presley died on 16 Aug 1977.",
    ] {
        let r = check(out, &support);
        let flagged: Vec<&str> = r.unsupported.iter().map(|s| s.text.as_str()).collect();
        // "born"/"died" are not in the support; the date itself must be.
        assert!(
            flagged.iter().all(|t| *t == "born" || *t == "died"),
            "{out}: {flagged:?}"
        );
    }
    assert_eq!(
        spans(
            "Elvis Presley was a singer born in February 1935.",
            &support
        ),
        ["born", "February"]
    );
    assert_eq!(
        spans("The meeting is on March 3.", &["On 3 March: meeting."]).len(),
        0
    );
    // "may" is a month only when capitalised.
    assert!(spans("It was released in May 1987.", &["released in May 1987"]).is_empty());
    assert_eq!(
        spans("It was released in June 1987.", &["released in May 1987"]),
        ["June"]
    );
    let r = check("It may be released.", &["It is released."]);
    assert_eq!(r.unsupported.len(), 1);
    assert_eq!(r.unsupported[0].kind, UnitKind::Word);
}

#[test]
fn multi_word_names_must_appear_whole() {
    let support =
        ["Kimberly was played by actress Amy Jo Johnson. It was directed by Todd Phillips."];
    assert!(spans("Amy Jo Johnson played Kimberly.", &support).is_empty());
    assert_eq!(
        spans("Kimberly was played by Amy Johnson.", &support),
        ["Johnson"]
    );
    assert_eq!(
        spans("It was directed by Kevin Phillips.", &support),
        ["Kevin"]
    );
    // Names separated by punctuation are separate names.
    assert!(
        spans(
            "They meet in Khartoum, Sudan.",
            &["They meet at Khartoum in Sudan"]
        )
        .is_empty()
    );
}

#[test]
fn quoted_titles_are_checked() {
    let support =
        [r#"Presley's first RCA single, "Heartbreak Hotel", was released in January 1956."#];
    assert!(spans(r#"His first single was "Heartbreak Hotel"."#, &support).is_empty());
    assert_eq!(
        spans(r#"His first single was "Hound Dog"."#, &support),
        ["Hound Dog"]
    );
}

#[test]
fn negations_need_a_negation_in_the_support() {
    let support = ["The band wins the award every year."];
    let r = check("The band did not win the award.", &support);
    assert_eq!(r.unsupported.len(), 1, "{r:?}");
    assert_eq!(r.unsupported[0].kind, UnitKind::Negation);
    assert_eq!(r.unsupported[0].text, "not");
    assert_eq!(
        spans("The band didn't win the award.", &support),
        ["didn't"]
    );
    // A negation somewhere in the support supports it.
    assert!(spans("The band did not win.", &["The band never wins the award."]).is_empty());
    // "I'm not sure" is a hedge, not a negated claim: "sure" is checked, "not" is not.
    let r = check("I'm not sure the band wins.", &support);
    let flagged: Vec<&str> = r.unsupported.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(flagged, ["I'm", "sure"]);
    assert!(r.unsupported.iter().all(|s| s.kind != UnitKind::Negation));
}

#[test]
fn bare_yes_or_no_answers_are_not_checkable() {
    for out in ["yes", "No.", "Yes!", "nope"] {
        let r = check(out, &["Paris is in France."]);
        assert!(r.score.abs() < 1e-12 && r.checked == 0, "{out}: {r:?}");
    }
    // A "No," that starts an answer is a particle, not a negation of the claim.
    let r = check("No, the capital is Paris.", &["Paris is the capital."]);
    assert!(
        r.unsupported.iter().all(|s| s.kind != UnitKind::Negation),
        "{r:?}"
    );
}

#[test]
fn chit_chat_is_light_but_counts() {
    let support = ["Skiing is a competitive winter sport."];
    let grounded = score("Yeah, skiing is a competitive winter sport.", &support);
    let chat = score("Yeah, I love it, you should try it!", &support);
    assert!(grounded < 0.1, "{grounded}");
    assert!(chat > 0.5, "{chat}");
}

#[test]
fn stems_fold_word_forms() {
    assert!(units_share("She studied it.", &["her studies"]).abs() < 1e-12);
    assert!(units_share("running races", &["he runs a race"]) < 1e-12);
    assert!(units_share("the colour of the theatre", &["color theater"]).abs() < 1e-12);
    assert!(units_share("It is 5 km long", &["five kilometres long"]).abs() < 1e-12);
    assert!(units_share("It cost 5 dollars", &["It cost $5"]).abs() < 1e-12);
    assert!(units_share("Arthur's Magazine", &["Arthur Magazine"]).abs() < 1e-12);
    assert!(
        units_share(
            "The band won. She wrote it.",
            &["the band wins", "written by her"]
        ) < 1e-12
    );
    assert!(units_share("It is 4,200 ft long", &["4200 feet long"]).abs() < 1e-12);
    assert_eq!(spans("studio", &["studies"]), ["studio"]);
}

#[test]
fn claims_are_scored_separately() {
    let support = ["Paris is the capital of France. It has 2 million inhabitants."];
    let r = check(
        "Paris is the capital of France. Berlin hosts Oktoberfest gatherings annually.",
        &support,
    );
    assert_eq!(r.claims.len(), 2);
    assert!(r.claims[0].score.abs() < 1e-12);
    assert!((r.claims[1].score - 1.0).abs() < 1e-12);
    // The worst claim lifts the score above the plain share of unsupported units.
    let share = 5.0 / 8.0;
    assert!(r.score > share, "{} vs {share}", r.score);
    assert!(r.score <= 1.0);
}

#[test]
fn empty_inputs_never_panic() {
    let r = check("", &[]);
    assert!(r.score.abs() < 1e-12 && r.checked == 0 && r.unsupported.is_empty());
    let r = check("", &["some support"]);
    assert!(r.score.abs() < 1e-12 && r.checked == 0);
    let r = check("Paris", &[]);
    assert!((r.score - 1.0).abs() < 1e-12);
    let r = check("the of and", &["x"]);
    assert!(r.score.abs() < 1e-12 && r.checked == 0);
    let r = check("...!?", &[""]);
    assert_eq!(r.checked, 0);
}

#[test]
fn non_ascii_text_keeps_char_boundaries() {
    let support =
        ["Die Rhöner Säuwäntzt sind eine Band aus Eichenzell-Lütter. 東京は日本の首都です。"];
    let outputs = [
        "Die Rhoner Sauwantzt kommen aus Zürich.",
        "東京は首都です。大阪も。",
        "naïve café’s crème brûlée n’t 1,2. ’ é1,2. ٣٤ 🎉🎉 Ωmega",
        "l'été dernier, à Montréal — «citation» …",
        "'",
        "’s",
        "1.2.3 A4 3M2 0x1F 12th 1990s",
    ];
    for out in outputs {
        let r = check(out, &support);
        assert!((0.0..=1.0).contains(&r.score), "{out}: {}", r.score);
        for s in &r.unsupported {
            assert!(out.is_char_boundary(s.start) && out.is_char_boundary(s.end));
            assert_eq!(&out[s.start..s.end], s.text);
        }
        for c in &r.claims {
            assert!(out.is_char_boundary(c.start) && out.is_char_boundary(c.end));
        }
    }
    // Diacritics fold: "Rhoner Sauwantzt" is the band in the support; "Zürich" is not.
    assert_eq!(spans(outputs[0], &support), ["kommen", "Zürich"]);
}

#[test]
fn prepared_support_gives_the_same_result() {
    let texts = [
        "The Golden Gate Bridge opened on May 27, 1937.",
        "Its main span is 4,200 feet long.",
        "When did it open?",
    ];
    let support = Support::new(&texts);
    for out in [
        "It opened on 27 May 1937.",
        "It opened in 1939 and the span is 4,600 feet.",
        "",
    ] {
        assert_eq!(check_with(&support, out), check(out, &texts));
    }
}

#[test]
fn large_support_grows_the_index() {
    let mut support = String::new();
    for i in 0..5000 {
        write!(support, "word{i} item{i} ").unwrap();
    }
    let r = check("word4999 item0 word5000", &[&support]);
    assert_eq!(r.unsupported.len(), 1);
    assert_eq!(r.unsupported[0].text, "word5000");
}

#[test]
fn support_texts_contained_in_another_are_still_supported() {
    let context = "The bridge opened on May 27, 1937.";
    let prompt = format!("Context: {context}\nQuestion: when did it open?");
    let r = check("It opened on 27 May 1937.", &["1937", context, &prompt]);
    assert!(r.unsupported.is_empty(), "{r:?}");
    // Contained mid-word: "pen" in "opened" is not the word "pen".
    assert!(check("a pen", &["pen", "it opened"]).unsupported.is_empty());
    assert_eq!(spans("a pen", &["it opened"]), ["pen"]);
}

#[test]
fn random_text_never_panics_and_spans_stay_on_char_boundaries() {
    const ALPHABET: &[&str] = &[
        "a", "Z", "7", "0", ",", ".", "'", "\u{2019}", "-", " ", "\n", "é", "Ü", "ß", "東", "🎉",
        "n't", "1,000", "3rd", "May", "million", "twenty", "no", "not", "Yes", "$", "%", "١",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..2000 {
        let mut text = |len: u64| -> String {
            let n = next() % len;
            (0..n)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect()
        };
        let output = text(40);
        let support = [text(60), text(20)];
        let r = check(&output, &[&support[0], &support[1]]);
        assert!((0.0..=1.0).contains(&r.score), "{output:?}: {}", r.score);
        assert!(r.unsupported.len() <= r.checked);
        for s in &r.unsupported {
            assert_eq!(
                output.get(s.start..s.end),
                Some(s.text.as_str()),
                "{output:?}"
            );
        }
        let prepared = Support::new(&[&support[0], &support[1]]);
        assert_eq!(check_with(&prepared, &output), r);
    }
}

#[test]
fn speaker_words_are_never_supported_even_by_the_prompt() {
    // The previous turn's "I" is the other speaker: it does not support the reply's "I".
    let knowledge = "Instagram is owned by Facebook.";
    let r = check("I like Instagram.", &[knowledge, "I like Instagram a lot."]);
    assert!(
        r.unsupported.iter().any(|s| s.text == "I"),
        "{:?}",
        r.unsupported
    );
    assert!(r.score > 0.0, "{r:?}");
    // Without a speaker word the same content is fully supported.
    let r = check("Instagram is owned by Facebook.", &[knowledge]);
    assert!(r.score.abs() < 1e-12, "{r:?}");
    // "US" is a country, not "us".
    let r = check("It runs along US 60.", &["The road runs along US 60."]);
    assert!(r.unsupported.is_empty(), "{r:?}");
    // So is "the us".
    let r = check(
        "It is popular in the us.",
        &["It is popular in the US and Canada."],
    );
    assert!(r.unsupported.is_empty(), "{r:?}");
    let r = check("It is popular in the us.", &["It is popular in Canada."]);
    assert_eq!(r.unsupported.len(), 1, "{r:?}");
}

#[test]
fn a_question_in_the_output_is_not_a_supported_claim() {
    let knowledge = "A mobile phone is a portable telephone.";
    let r = check("What is a mobile phone?", &[knowledge]);
    assert_eq!(
        r.unsupported
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>(),
        ["What"],
        "{r:?}"
    );
    assert!(r.score > 0.0);
    // The same words as a statement are supported.
    let r = check("A mobile phone is a portable telephone.", &[knowledge]);
    assert!(r.score.abs() < 1e-12, "{r:?}");
    // Only the question claim gets the flag, at its place in the output.
    let r = check(
        "A mobile phone is a portable telephone. Do you have one?",
        &[knowledge],
    );
    let texts: Vec<&str> = r.unsupported.iter().map(|s| s.text.as_str()).collect();
    assert!(
        texts.first().is_some_and(|t| t.starts_with("Do")),
        "{texts:?}"
    );
    assert_eq!(r.claims.len(), 2, "{r:?}");
    assert!(r.claims[0].score.abs() < 1e-12, "{r:?}");
}

#[test]
fn agreeing_with_the_other_speaker_is_not_the_worst_claim() {
    let knowledge = "Vegetarians abstain from the consumption of meat.";
    let agreed = score(
        "That's true. Vegetarians abstain from the consumption of meat.",
        &[knowledge],
    );
    let invented = score(
        "That's odd. Vegetarians abstain from the consumption of meat.",
        &[knowledge],
    );
    assert!(agreed > 0.0, "{agreed}");
    assert!(agreed < invented, "{agreed} vs {invented}");
    assert!(agreed < 0.2, "{agreed}");
}

#[test]
fn a_question_beside_a_statement_is_not_the_worst_claim() {
    let knowledge = "Coors beer is made with up to 30 % rice.";
    let asked = score(
        "It is made with up to 30% rice. Which beers do you like?",
        &[knowledge],
    );
    let claimed = score(
        "It is made with up to 30% rice. Belgian beers taste better.",
        &[knowledge],
    );
    assert!(asked > 0.0, "{asked}");
    assert!(asked < claimed, "{asked} vs {claimed}");
    // With no statement beside it, the question is the worst claim.
    let only_question = score("Which beers do you like?", &[knowledge]);
    assert!(only_question > asked, "{only_question} vs {asked}");
}

#[test]
fn capitalised_words_inside_a_name_are_names_not_speaker_words() {
    // "Mine" in "Barton Mine" is part of a place name the support has.
    let support = ["The Barton Mine is a garnet mine in the Adirondacks."];
    let r = check("Barton Mine is in the Adirondacks.", &support);
    assert!(r.unsupported.is_empty(), "{r:?}");
    assert!(r.score.abs() < 1e-12, "{r:?}");
    // The same name missing from the support is flagged as a name.
    let r = check(
        "Barton Mine is in the Adirondacks.",
        &["Garnets are mined in the Adirondacks."],
    );
    assert!(
        r.unsupported
            .iter()
            .any(|s| s.text.contains("Mine") && s.kind == UnitKind::Name),
        "{r:?}"
    );
    // The speaker's own "I" is still a speaker word.
    let r = check("I like the Adirondacks.", &support);
    assert_eq!(r.unsupported.len(), 1, "{r:?}");
    assert_eq!(
        (r.unsupported[0].text.as_str(), r.unsupported[0].kind),
        ("I like", UnitKind::Word)
    );
}

#[test]
fn codes_with_a_letter_and_digits_are_one_unit() {
    let support = ["Interstate 90 (I-90) runs from Seattle to Boston."];
    let r = check("I-90 runs from Seattle to Boston.", &support);
    assert!(r.unsupported.is_empty(), "{r:?}");
    // A different code is one unsupported number-like unit, not a speaker word and a number.
    let r = check("I-95 runs from Seattle to Boston.", &support);
    let flagged: Vec<&str> = r.unsupported.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(flagged, ["I-95"], "{r:?}");
    assert_eq!(r.unsupported[0].kind, UnitKind::Number);
}

#[test]
fn negated_answer_particles_are_not_negated_claims() {
    let support = ["Lionel Messi plays for Inter Miami."];
    for reply in ["Not really.", "No, not even.", "No, never.", "Not really!"] {
        let r = check(reply, &support);
        assert!(r.score.abs() < 1e-12 && r.checked == 0, "{reply}: {r:?}");
    }
    // In front of a grounded sentence they weigh like "No" does, not like a negated claim.
    let particle = check("Not really. Messi plays for Inter Miami.", &support);
    assert!(
        particle
            .unsupported
            .iter()
            .all(|s| s.kind != UnitKind::Negation),
        "{particle:?}"
    );
    // A negated claim is still a negation.
    let claim = check("Messi does not play for Inter Miami.", &support);
    assert!(
        claim
            .unsupported
            .iter()
            .any(|s| s.kind == UnitKind::Negation),
        "{claim:?}"
    );
    let claim = check("Not Messi but Suarez plays for Inter Miami.", &support);
    assert!(
        claim
            .unsupported
            .iter()
            .any(|s| s.kind == UnitKind::Negation),
        "{claim:?}"
    );
}

#[test]
fn the_prompt_as_echo_softens_repeated_words_but_supports_nothing() {
    let context = "The Golden Gate Bridge opened in 1937 and spans the Golden Gate strait.";
    // The rendered prompt repeats the context, then asks.
    let prompt = format!("{context}\nQuestion: Was the famous bridge finished in 1936 by Strauss?");
    // "famous" and "finished" only come from the question: still unsupported, at half the
    // weight of words that come from nowhere.
    let echoed = check_echo(
        "The famous bridge was finished and opened in 1937.",
        &[context],
        &[&prompt],
    );
    let flagged: Vec<&str> = echoed.unsupported.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(flagged, ["famous", "finished"], "{echoed:?}");
    let new = check_echo(
        "The tall bridge was painted and opened in 1937.",
        &[context],
        &[&prompt],
    );
    assert!(
        echoed.score > 0.0 && echoed.score < new.score,
        "{} vs {}",
        echoed.score,
        new.score
    );
    // A year and a name copied from the question are not supported by it.
    let r = check_echo(
        "The bridge opened in 1936 under Strauss.",
        &[context],
        &[&prompt],
    );
    let flagged: Vec<&str> = r.unsupported.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(flagged, ["1936", "Strauss"], "{r:?}");
    // ... though they weigh less than an invented year and name.
    let invented = check_echo(
        "The bridge opened in 1935 under Morrow.",
        &[context],
        &[&prompt],
    );
    assert!(
        r.score < invented.score,
        "{} vs {}",
        r.score,
        invented.score
    );
    // As full support the prompt supports them.
    assert!(
        check("It was finished in 1936 by Strauss.", &[context, &prompt])
            .unsupported
            .is_empty()
    );
}

#[test]
fn the_prompt_as_echo_softens_no_conversation_word() {
    // The previous turn says "hello" and "really"; repeating them grounds nothing.
    let knowledge = "Inception is a 2010 science fiction film directed by Christopher Nolan.";
    let turn = "Hello! I really liked the film, did you?";
    let r = check_echo("Hello, really!", &[knowledge], &[turn]);
    let flagged: Vec<&str> = r.unsupported.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(flagged, ["Hello", "really"], "{r:?}");
    assert!(r.score > 0.0, "{r:?}");
    // The speaker's "I" is flagged and so is "liked" (the other speaker's word, softened).
    let r = check_echo("Nolan directed the film I liked.", &[knowledge], &[turn]);
    let flagged: Vec<&str> = r.unsupported.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(flagged, ["I liked"], "{r:?}");
}

#[test]
fn an_i_after_a_name_is_its_numeral_not_the_speaker() {
    // Found in FaithDial's GPT-2 audit (tuning rows): a faithful reply flagged for "I".
    let support = ["Chanel was credited in the post-World War I era with liberating women."];
    assert_eq!(
        spans("It was after World War I.", &support),
        Vec::<String>::new()
    );
    // Only whole: the numeral must follow the same name in the support.
    assert_eq!(
        spans("It was after World War I.", &["It was after World War II."]),
        ["I"]
    );
    // The speaker's "I" after a name is still the speaker.
    assert_eq!(
        spans("Paris, I love it.", &["Paris is lovely."]),
        ["I love"]
    );
}

#[test]
fn of_course_opens_a_reply_like_yes() {
    let support = ["49 giant pandas lived in captivity outside China."];
    let with = units_share(
        "Of course! Pandas live in captivity outside China!",
        &support,
    );
    let plain = units_share("Yes! Pandas live in captivity outside China!", &support);
    assert!((with - plain).abs() < 1e-12, "{with} vs {plain}");
    // "course" elsewhere is a content word.
    assert_eq!(spans("It is a course outside China.", &support), ["course"]);
}

#[test]
fn a_large_number_supports_itself_rounded() {
    let support = ["With an estimated 2016 population of 8,537,673, New York City is dense."];
    for out in [
        "The population is over 8.5 million.",
        "The population is 8.54 million.",
        "New York City has a population of 8,500,000.",
    ] {
        assert_eq!(spans(out, &support), Vec::<String>::new(), "{out}");
    }
    // Rounded to one digit, or wrongly, it is not.
    assert_eq!(
        spans("The population is 8 million.", &support),
        ["8 million"]
    );
    assert_eq!(
        spans("The population is 8.6 million.", &support),
        ["8.6 million"]
    );
    // Years and small numbers match exactly.
    assert_eq!(
        spans("It was founded in 1940.", &["It was founded in 1937."]),
        ["1940"]
    );
}

#[test]
fn the_surface_share_sees_what_folding_forgives() {
    // Folding matches every unit ("studied" = "studies"), so no span is flagged, but the
    // surface share counts the words not written as in the support.
    let r = check("She studied it.", &["her studies"]);
    assert!(r.unsupported.is_empty() && r.share.abs() < 1e-12, "{r:?}");
    // "she" and "it" are among the skipped commonest words: one counted word, not found.
    assert!((r.surface - 1.0).abs() < 1e-12, "{r:?}");
    assert!((r.score - super::SURFACE_MIX).abs() < 1e-12, "{r:?}");
    // A quantifier the units skip ("all") is counted by the surface share.
    let support = ["Most of the oceans are salty."];
    let most = check("Most of the oceans are salty.", &support);
    let all = check("All of the oceans are salty.", &support);
    assert!(most.score.abs() < 1e-12, "{most:?}");
    assert!(all.share.abs() < 1e-12 && all.score > 0.0, "{all:?}");
    // An output of answer particles only stays unscored.
    assert!(check("Yes.", &support).score.abs() < 1e-12);
}

#[test]
fn surface_skipped_words_are_short() {
    // `check_with` looks a token up among the skipped words only when it is this short.
    for w in super::words::SURFACE_SKIP
        .iter()
        .chain(super::words::PARTICLES)
    {
        assert!(w.len() <= 4, "{w}");
    }
}
