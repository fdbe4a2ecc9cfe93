//! The language of a text, for `drift.language_mix`: `whatlang`'s trigram detector, the
//! maintained crate of the field (patched to compute its distances through inverted profiles,
//! the same results about five times faster: `vendor/whatlang/PATCH.md`). Short or mixed texts
//! that it cannot call reliably count as `unknown`, never as a guess.

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

    /// One sentence in each of 26 languages, in the five scripts whatlang has profiles for.
    const CORPUS: &[&str] = &[
        "Where is my order? I bought a pair of shoes last week and nothing has arrived yet.",
        "¿Dónde está mi pedido? Compré unos zapatos la semana pasada y todavía no ha llegado nada.",
        "Wo ist meine Bestellung? Ich habe letzte Woche Schuhe gekauft und es ist nichts angekommen.",
        "Où est ma commande ? J'ai acheté des chaussures la semaine dernière et rien n'est arrivé.",
        "Dov'è il mio ordine? Ho comprato un paio di scarpe la settimana scorsa e non è arrivato niente.",
        "Onde está o meu pedido? Comprei um par de sapatos na semana passada e ainda não chegou nada.",
        "Waar is mijn bestelling? Ik heb vorige week schoenen gekocht en er is nog niets aangekomen.",
        "Gdzie jest moje zamówienie? W zeszłym tygodniu kupiłem buty i nic jeszcze nie dotarło.",
        "Kde je moje objednávka? Minulý týden jsem koupil boty a zatím nic nedorazilo.",
        "Var är min beställning? Jag köpte ett par skor förra veckan och ingenting har kommit än.",
        "Siparişim nerede? Geçen hafta bir çift ayakkabı aldım ve hâlâ hiçbir şey gelmedi.",
        "Đơn hàng của tôi đâu rồi? Tôi đã mua một đôi giày tuần trước và vẫn chưa nhận được gì.",
        "Di mana pesanan saya? Saya membeli sepasang sepatu minggu lalu dan belum ada yang datang.",
        "Missä tilaukseni on? Ostin kengät viime viikolla, eikä mitään ole vielä tullut.",
        "Hol van a rendelésem? Múlt héten vettem egy pár cipőt, és még semmi sem érkezett meg.",
        "Где мой заказ? Я купил пару обуви на прошлой неделе, и до сих пор ничего не пришло.",
        "Де моє замовлення? Я купив пару взуття минулого тижня, і досі нічого не надійшло.",
        "Къде е моята поръчка? Купих чифт обувки миналата седмица и още нищо не е пристигнало.",
        "أين طلبي؟ اشتريت زوجًا من الأحذية الأسبوع الماضي ولم يصل أي شيء حتى الآن.",
        "سفارش من کجاست؟ هفته گذشته یک جفت کفش خریدم و هنوز چیزی نرسیده است.",
        "میرا آرڈر کہاں ہے؟ میں نے پچھلے ہفتے جوتوں کا ایک جوڑا خریدا اور ابھی تک کچھ نہیں پہنچا۔",
        "मेरा ऑर्डर कहाँ है? मैंने पिछले हफ्ते जूतों की एक जोड़ी खरीदी थी और अभी तक कुछ नहीं आया।",
        "माझी ऑर्डर कुठे आहे? मी गेल्या आठवड्यात बूट खरेदी केले आणि अजून काहीही आले नाही.",
        "मेरो अर्डर कहाँ छ? मैले गत हप्ता जुत्ता किनें र अझै केही आएको छैन।",
        "איפה ההזמנה שלי? קניתי זוג נעליים בשבוע שעבר ועדיין שום דבר לא הגיע.",
        "וווּ איז מיין באַשטעלונג? איך האָב געקויפט שיך לעצטע וואָך און גאָרנישט איז נישט אָנגעקומען.",
    ];

    /// The patch in vendor/whatlang changes how each language's trigram distance is computed,
    /// not what: on each sentence, on texts of up to 900 words mixed from all of them (past the
    /// 600 trigrams a text is cut to), and on repeated words (trigrams far down a text's
    /// ranking), every language's distance is upstream's.
    #[test]
    fn the_patched_detector_computes_upstreams_distances() {
        let words: Vec<&str> = CORPUS.iter().flat_map(|s| s.split_whitespace()).collect();
        let mut texts: Vec<String> = CORPUS.iter().map(|s| (*s).to_owned()).collect();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..400 {
            let len = 1 + next(900);
            // Mostly one sentence's words, sometimes any word: texts of one language and mixed.
            let home = next(CORPUS.len());
            let home_words: Vec<&str> = CORPUS[home].split_whitespace().collect();
            let text: Vec<&str> = (0..len)
                .map(|_| {
                    if next(4) == 0 {
                        words[next(words.len())]
                    } else {
                        home_words[next(home_words.len())]
                    }
                })
                .collect();
            texts.push(text.join(" "));
        }
        texts.push("the the the the and and of".repeat(50));
        texts.push(String::new());
        let (mut compared, mut matched) = (0, 0);
        for text in &texts {
            for (lang, patched, upstream) in whatlang::dev::trigram_distances_both_ways(text) {
                assert_eq!(
                    patched,
                    upstream,
                    "{lang:?} on {:?}",
                    text.chars().take(80).collect::<String>()
                );
                compared += 1;
                if upstream < 90_000 {
                    matched += 1;
                }
            }
        }
        // Every text against every language of every script; most share some trigrams.
        assert!(compared > 400 * 50, "{compared}");
        assert!(matched > compared / 4, "{matched} of {compared}");
    }
}
