//! The template function `title` as Prometheus 3.x has it (since v3.2):
//! `cases.Title(language.AmericanEnglish, cases.NoLower)` from golang.org/x/text. That caser
//! approximates Unicode word breaking (UAX #29) with four kinds of rune:
//!
//! - cased letters: the first one of a word gets its titlecase mapping, the others are kept
//!   (`NoLower`);
//! - "mid" punctuation (word-break MidLetter, MidNumLet, Single_Quote: `.` `:` `'` `’` `·` …):
//!   no break between letters, but two in a row end the word ("a.b" → "A.b", "a'.a" → "A'.A");
//! - other letters, digits, marks, connectors (`_`) and format characters: no break, and not
//!   cased either, so a word starting with digits capitalises its first letter ("49ers" →
//!   "49Ers");
//! - everything else (spaces, `-`, `,`, `;`, `"`, `^`, CJK): a break.
//!
//! English has no tailoring in x/text, so the root-locale mappings apply.

use std::sync::LazyLock;

use regex::Regex;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cased,
    Mid,
    Letter,
    Break,
}

/// Unicode classes of the non-ASCII runes (the regex crate carries the Unicode property tables).
struct Classes {
    cased: Regex,
    mid: Regex,
    letter: Regex,
}

static CLASSES: LazyLock<Option<Classes>> = LazyLock::new(|| {
    Some(Classes {
        cased: Regex::new(r"\A\p{Cased}\z").ok()?,
        mid: Regex::new(r"\A[\p{WB=MidLetter}\p{WB=MidNumLet}\p{WB=Single_Quote}]\z").ok()?,
        letter: Regex::new(
            r"\A[\p{WB=ALetter}\p{WB=Hebrew_Letter}\p{WB=Numeric}\p{WB=Extend}\p{WB=ExtendNumLet}\p{WB=Format}\p{WB=ZWJ}]\z",
        )
        .ok()?,
    })
});

fn kind(c: char) -> Kind {
    if c.is_ascii() {
        return match c {
            'a'..='z' | 'A'..='Z' => Kind::Cased,
            '\'' | '.' | ':' => Kind::Mid,
            '0'..='9' | '_' => Kind::Letter,
            _ => Kind::Break,
        };
    }
    let Some(classes) = CLASSES.as_ref() else {
        return if c.is_alphanumeric() {
            Kind::Letter
        } else {
            Kind::Break
        };
    };
    let mut buf = [0u8; 4];
    let s = c.encode_utf8(&mut buf);
    if classes.cased.is_match(s) {
        Kind::Cased
    } else if classes.mid.is_match(s) {
        Kind::Mid
    } else if classes.letter.is_match(s) {
        Kind::Letter
    } else {
        Kind::Break
    }
}

/// Appends the titlecase mapping of a cased rune (Unicode's `Titlecase_Mapping`, special
/// casing included), which differs from the uppercase one for digraphs, ligatures, `ß`,
/// Greek letters with ypogegrammeni and Georgian.
fn push_title(out: &mut String, c: char) {
    let special: Option<&str> = match c {
        'Ǆ' | 'ǅ' | 'ǆ' => Some("ǅ"),
        'Ǉ' | 'ǈ' | 'ǉ' => Some("ǈ"),
        'Ǌ' | 'ǋ' | 'ǌ' => Some("ǋ"),
        'Ǳ' | 'ǲ' | 'ǳ' => Some("ǲ"),
        'ß' => Some("Ss"),
        'ﬀ' => Some("Ff"),
        'ﬁ' => Some("Fi"),
        'ﬂ' => Some("Fl"),
        'ﬃ' => Some("Ffi"),
        'ﬄ' => Some("Ffl"),
        'ﬅ' | 'ﬆ' => Some("St"),
        'և' => Some("Եւ"),
        'ﬓ' => Some("Մն"),
        'ﬔ' => Some("Մե"),
        'ﬕ' => Some("Մի"),
        'ﬖ' => Some("Վն"),
        'ﬗ' => Some("Մխ"),
        '\u{1FB2}' => Some("\u{1FBA}\u{0345}"),
        '\u{1FB4}' => Some("\u{0386}\u{0345}"),
        '\u{1FC2}' => Some("\u{1FCA}\u{0345}"),
        '\u{1FC4}' => Some("\u{0389}\u{0345}"),
        '\u{1FF2}' => Some("\u{1FFA}\u{0345}"),
        '\u{1FF4}' => Some("\u{038F}\u{0345}"),
        '\u{1FB7}' => Some("\u{0391}\u{0342}\u{0345}"),
        '\u{1FC7}' => Some("\u{0397}\u{0342}\u{0345}"),
        '\u{1FF7}' => Some("\u{03A9}\u{0342}\u{0345}"),
        _ => None,
    };
    if let Some(s) = special {
        out.push_str(s);
        return;
    }
    let u = c as u32;
    let greek_iota_subscript = match u {
        // Lowercase alpha/eta/omega with ypogegrammeni: their titlecase forms are 8 higher.
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => char::from_u32(u + 8),
        0x1FB3 => Some('\u{1FBC}'),
        0x1FC3 => Some('\u{1FCC}'),
        0x1FF3 => Some('\u{1FFC}'),
        _ => None,
    };
    if let Some(t) = greek_iota_subscript {
        out.push(t);
        return;
    }
    // Georgian Mkhedruli letters have uppercase (Mtavruli) forms but are their own titlecase;
    // uppercase and titlecase letters are kept.
    let georgian = matches!(u, 0x10D0..=0x10FA | 0x10FD..=0x10FF);
    if georgian || c.is_uppercase() || !c.is_lowercase() {
        out.push(c);
        return;
    }
    out.extend(c.to_uppercase());
}

/// `cases.Title(language.AmericanEnglish, cases.NoLower).String(s)`.
pub fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut mid_word = false;
    let mut prev_mid = false;
    for c in s.chars() {
        let k = kind(c);
        if prev_mid && k == Kind::Mid {
            mid_word = false;
        }
        match k {
            Kind::Cased if !mid_word => {
                push_title(&mut out, c);
                mid_word = true;
            }
            Kind::Break => {
                out.push(c);
                mid_word = false;
            }
            _ => out.push(c),
        }
        prev_mid = k == Kind::Mid;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::title;

    #[test]
    fn words_break_like_x_text_title_casing() {
        // golang.org/x/text/cases map_test.go's title-breaking cases, with NoLower (letters after
        // the first of a word keep their case).
        for (src, want) in [
            ("FOO CASE TEST", "FOO CASE TEST"),
            ("DON'T DO THiS", "DON'T DO THiS"),
            (
                "χωΡΊΣ χωΡΊΣ^a χωΡΊΣ:a χωΡΊΣ:^a χωΡΊΣ^ όμΩΣ Σ",
                "ΧωΡΊΣ ΧωΡΊΣ^A ΧωΡΊΣ:a ΧωΡΊΣ:^A ΧωΡΊΣ^ ΌμΩΣ Σ",
            ),
            ("with-hyphens", "With-Hyphens"),
            ("49ers 49ers", "49Ers 49Ers"),
            (
                r#""capitalize a^a -hyphen 0X _u a_u:a"#,
                r#""Capitalize A^A -Hyphen 0X _U A_u:a"#,
            ),
            (
                "MidNumLet a.b\u{2018}c\u{2019}d\u{2024}e\u{fe52}f\u{ff07}f\u{ff0e}g",
                "MidNumLet A.b\u{2018}c\u{2019}d\u{2024}e\u{fe52}f\u{ff07}f\u{ff0e}g",
            ),
            (
                "MidNum a,b;c\u{037e}d\u{0589}e\u{060c}f\u{2044}g\u{fe50}h",
                "MidNum A,B;C\u{037e}D\u{0589}E\u{060c}F\u{2044}G\u{fe50}H",
            ),
            (
                "\u{0345} x\u{3031}x x\u{05d0}x \u{05d0}x a'.a a.a a4,a",
                "\u{0399} X\u{3031}X X\u{05d0}x \u{05d0}X A'.A A.a A4,A",
            ),
            ("abc aBc ABC abC İsıI o'Brien", "Abc ABc ABC AbC İsıI O'Brien"),
            ("ǅA ǆa ǄA", "ǅA ǅa ǅA"),
        ] {
            assert_eq!(title(src), want, "{src}");
        }
    }

    #[test]
    fn prometheus_3_examples() {
        for (src, want) in [
            ("hello world", "Hello World"),
            ("hello-world foo_bar x.y", "Hello-World Foo_bar X.y"),
            ("don't", "Don't"),
            ("DON'T", "DON'T"),
            ("a.b", "A.b"),
            ("a..b", "A..B"),
            ("host:port", "Host:port"),
            ("it’s", "It’s"),
            ("straße ßtraße", "Straße Sstraße"),
            ("ﬁne", "Fine"),
            ("ᾳ", "ᾼ"),
            ("ვ", "ვ"),
            ("éa über", "Éa Über"),
            ("", ""),
        ] {
            assert_eq!(title(src), want, "{src}");
        }
    }
}
