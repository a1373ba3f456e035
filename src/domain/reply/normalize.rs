//! Normalisation of a reply into words: emoji pulled out, case and accents folded, repeated
//! letters collapsed, French elisions and English contractions split, SMS spellings and glued
//! words ("jpeux", "jannule") expanded, clause boundaries marked.

use unicode_normalization::char::{decompose_canonical, is_combining_mark};

use super::lexicon::{
    CLAUSE_WORDS, ELISIONS, FRENCH_AFTER_DONT, GLUED_AFTER_N, Index, STOPWORDS_EN, STOPWORDS_FR,
    index,
};
use super::types::{Lang, Normalized};

/// Normalise a reply (or a vocabulary phrase) into words and emoji.
pub fn normalize(text: &str) -> Normalized {
    let p = prepare(text);
    Normalized {
        words: p.tokens.into_iter().map(|t| t.word).collect(),
        emojis: p.emojis,
    }
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) word: String,
    /// A clause boundary (punctuation, "mais"...) stands right before this word.
    pub(super) boundary_before: bool,
}

pub(super) struct Prepared {
    pub(super) tokens: Vec<Token>,
    pub(super) emojis: Vec<char>,
    pub(super) question_mark: bool,
}

pub(super) fn truncate_chars(text: &str, max: usize) -> (&str, bool) {
    match text.char_indices().nth(max) {
        Some((at, _)) => (&text[..at], true),
        None => (text, false),
    }
}

pub(super) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => {
            let mut out: String = s[..at].chars().take(max.saturating_sub(1)).collect();
            out.push('…');
            out
        }
        None => s.to_string(),
    }
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0x2300..=0x23FF
        | 0x2190..=0x21FF | 0x25A0..=0x25FF | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0x203C | 0x2049 | 0x2122 | 0x2139 | 0x24C2)
}

/// Invisible emoji parts: variation selectors, ZWJ, keycap, skin tones, tags.
fn is_emoji_modifier(c: char) -> bool {
    matches!(c as u32,
        0xFE00..=0xFE0F | 0x200D | 0x20E3 | 0x1F3FB..=0x1F3FF | 0xE0020..=0xE007F)
}

fn fold_into(c: char, out: &mut String) {
    match c {
        'œ' | 'Œ' => out.push_str("oe"),
        'æ' | 'Æ' => out.push_str("ae"),
        'ß' => out.push_str("ss"),
        '\u{2019}' | '\u{2018}' | '\u{02BC}' | '`' | '\u{00B4}' | '\u{2032}' => out.push('\''),
        _ => {
            for l in c.to_lowercase() {
                decompose_canonical(l, |d| {
                    if !is_combining_mark(d) {
                        out.push(d);
                    }
                });
            }
        }
    }
}

pub(super) fn prepare(text: &str) -> Prepared {
    let mut emojis = Vec::new();
    let mut folded = String::with_capacity(text.len());
    for c in text.chars() {
        if is_emoji_modifier(c) {
            continue;
        }
        if is_emoji(c) {
            emojis.push(c);
            folded.push(' ');
        } else {
            fold_into(c, &mut folded);
        }
    }

    // Raw tokens with boundary marks.
    let mut raw: Vec<(String, bool)> = Vec::new();
    let mut cur = String::new();
    let mut boundary = false;
    let mut question_mark = false;
    for ch in folded.chars() {
        if ch.is_alphanumeric() {
            cur.push(ch);
        } else if ch == '\'' {
            if !cur.is_empty() {
                cur.push('\'');
            }
        } else {
            if !cur.is_empty() {
                raw.push((std::mem::take(&mut cur), boundary));
                boundary = false;
            }
            if matches!(ch, '?' | '\u{FF1F}' | '\u{00BF}') {
                question_mark = true;
            }
            if matches!(
                ch,
                '.' | ','
                    | ';'
                    | ':'
                    | '!'
                    | '?'
                    | '\u{FF1F}'
                    | '\u{00BF}'
                    | '\u{00A1}'
                    | '\n'
                    | '\r'
                    | '('
                    | ')'
                    | '\u{2026}'
                    | '"'
                    | '\u{00AB}'
                    | '\u{00BB}'
            ) {
                boundary = true;
            }
        }
    }
    if !cur.is_empty() {
        raw.push((cur, boundary));
    }

    let idx = index();
    let mut tokens: Vec<Token> = Vec::with_capacity(raw.len() + 4);
    for i in 0..raw.len() {
        let next = raw.get(i + 1).map(|(w, _)| w.as_str());
        let mut words = Vec::new();
        expand(idx, &raw[i].0, next, &mut words);
        let mut first = true;
        for w in words {
            let b = (first && raw[i].1) || CLAUSE_WORDS.contains(&w.as_str());
            tokens.push(Token {
                word: w,
                boundary_before: b,
            });
            first = false;
        }
    }
    // "rendez vous" -> "rdv"
    let mut merged: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].word == "rendez" && tokens.get(i + 1).is_some_and(|t| t.word == "vous") {
            merged.push(Token {
                word: "rdv".to_string(),
                boundary_before: tokens[i].boundary_before,
            });
            i += 2;
        } else {
            merged.push(tokens[i].clone());
            i += 1;
        }
    }
    Prepared {
        tokens: merged,
        emojis,
        question_mark,
    }
}

/// Collapse letters repeated 3+ times ("ouiii" -> "oui"); digits are kept.
fn collapse_repeats(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut j = i;
        while j < chars.len() && chars[j] == c {
            j += 1;
        }
        let run = j - i;
        if run >= 3 && c.is_alphabetic() {
            out.push(c);
        } else {
            for _ in 0..run {
                out.push(c);
            }
        }
        i = j;
    }
    out
}

fn push_words(s: &str, out: &mut Vec<String>) {
    out.extend(s.split_whitespace().map(str::to_string));
}

/// Expand one raw token into normalised words.
fn expand(idx: &Index, raw: &str, next_raw: Option<&str>, out: &mut Vec<String>) {
    let trimmed = raw.trim_matches('\'');
    if trimmed.is_empty() {
        return;
    }
    let word = collapse_repeats(trimmed);
    let bare: String = word.chars().filter(|&c| c != '\'').collect();
    let next_bare = next_raw.map(|n| n.trim_matches('\'').to_string());

    // "c bon" -> "c est bon", but "c est" stays.
    if bare == "c" && !word.contains('\'') {
        let followed_by_est = next_bare
            .as_deref()
            .is_some_and(|n| matches!(n, "est" | "etait" | "etais"));
        out.push("c".to_string());
        if !followed_by_est {
            out.push("est".to_string());
        }
        return;
    }
    // "dont" is French ("dont je parle") unless an English verb follows.
    if bare == "dont" {
        let french = !word.contains('\'')
            && next_bare
                .as_deref()
                .is_some_and(|n| FRENCH_AFTER_DONT.contains(&n) || n.starts_with("j'"));
        push_words(if french { "dont" } else { "do not" }, out);
        return;
    }
    if let Some(mapped) = idx.sms.get(bare.as_str()) {
        push_words(mapped, out);
        return;
    }
    if let Some(canon) = bare
        .strip_prefix('j')
        .and_then(|rest| idx.glued_j.get(rest))
    {
        out.push("je".to_string());
        out.push((*canon).to_string());
        return;
    }
    if let Some(rest) = bare.strip_prefix('n').filter(|r| GLUED_AFTER_N.contains(r)) {
        out.push("ne".to_string());
        out.push(rest.to_string());
        return;
    }
    // digits glued to a unit: "10min" -> "10 min"
    let digits_end = bare
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map(|(i, _)| i)
        .unwrap_or(bare.len());
    if digits_end > 0 && digits_end < bare.len() {
        let unit = &bare[digits_end..];
        if matches!(unit, "min" | "mn" | "mins" | "minute" | "minutes") {
            out.push(bare[..digits_end].to_string());
            out.push("min".to_string());
            return;
        }
    }
    if let Some((left, right)) = word.split_once('\'') {
        let right_bare: String = right.chars().filter(|&c| c != '\'').collect();
        if let Some((_, full)) = ELISIONS.iter().find(|(p, _)| *p == left) {
            out.push((*full).to_string());
            if !right_bare.is_empty() {
                expand(idx, &right_bare, next_raw, out);
            }
            return;
        }
        let english = match right_bare.as_str() {
            "t" if left.ends_with('n') => {
                let stem = &left[..left.len() - 1];
                let stem = match stem {
                    "ca" => "can",
                    "wo" => "will",
                    "sha" => "shall",
                    "ai" => "is",
                    s => s,
                };
                Some((stem.to_string(), "not"))
            }
            "ll" => Some((left.to_string(), "will")),
            "m" => Some((left.to_string(), "am")),
            "re" => Some((left.to_string(), "are")),
            "ve" => Some((left.to_string(), "have")),
            "d" => Some((left.to_string(), "would")),
            "s" => Some((left.to_string(), "is")),
            _ => None,
        };
        if let Some((stem, suffix)) = english {
            if !stem.is_empty() {
                expand(idx, &stem, None, out);
            }
            out.push(suffix.to_string());
            return;
        }
    }
    out.push(bare);
}

pub(super) fn detect_from_tokens(tokens: &[Token]) -> Lang {
    let mut fr = 0usize;
    let mut en = 0usize;
    for t in tokens {
        let w = t.word.as_str();
        if STOPWORDS_FR.contains(&w) {
            fr += 1;
        }
        if STOPWORDS_EN.contains(&w) {
            en += 1;
        }
    }
    if en > fr { Lang::En } else { Lang::Fr }
}

pub(super) fn is_time_word(w: &str) -> bool {
    let digits = w.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 2 {
        return false;
    }
    let rest = &w[digits..];
    match rest.strip_prefix('h') {
        Some(min) => min.is_empty() || min.chars().all(|c| c.is_ascii_digit()),
        None => matches!(rest, "am" | "pm"),
    }
}
