//! Text from outside (an import file, the admin API, a patient's reply): which characters it may
//! hold, and how a bad value is quoted back in an error.
//!
//! Control characters (U+0000–U+001F, U+007F–U+009F) are refused in names and identifiers and
//! stripped from free text (a reply body keeps its tabs and line feeds): PostgreSQL refuses a NUL
//! in a text column outright, and none of them means anything in a name or an SMS. A value quoted
//! in an error is cut to [`QUOTE_MAX_CHARS`] so that a 1 MB field gives a one-line error.

/// A quoted value is cut after this many characters (then `…`): enough to recognise a date, a
/// site or a name, short enough for one line of a terminal.
pub const QUOTE_MAX_CHARS: usize = 60;

/// The first control character of `s` and its position (in characters, from 1).
pub fn find_control(s: &str) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find(|(_, c)| c.is_control())
        .map(|(i, c)| (i + 1, c))
}

/// "a control character (U+0000) at character 5": what an error says of [`find_control`]'s find.
pub fn describe_control((at, c): (usize, char)) -> String {
    format!("a control character (U+{:04X}) at character {at}", c as u32)
}

/// Free text without its control characters, tabs and line feeds kept (a carriage return is
/// dropped: `\r\n` becomes `\n`).
pub fn strip_controls(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n'))
        .collect()
}

/// `'value'` for an error message: control characters escaped, cut to [`QUOTE_MAX_CHARS`].
pub fn quote(s: &str) -> String {
    format!("'{}'", clip(s, QUOTE_MAX_CHARS))
}

/// `s` cut to `max` characters (then `…`), its control characters escaped (`\u{0}`).
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4 + 3));
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_is_found_with_its_position() {
        assert_eq!(find_control("Hélène\0Dupré"), Some((7, '\0')));
        assert_eq!(find_control("Hélène Dupré"), None);
        assert_eq!(
            describe_control((7, '\0')),
            "a control character (U+0000) at character 7"
        );
    }

    #[test]
    fn a_reply_keeps_its_line_feeds_and_loses_its_other_controls() {
        assert_eq!(
            strip_controls("oui\0 merci\r\nà demain\t\u{7}"),
            "oui merci\nà demain\t"
        );
    }

    #[test]
    fn a_megabyte_value_is_quoted_in_sixty_characters() {
        let big = "x".repeat(1 << 20);
        let q = quote(&big);
        assert_eq!(q.chars().count(), QUOTE_MAX_CHARS + 3);
        assert!(q.ends_with("…'"));
        assert_eq!(quote("24/13/2026"), "'24/13/2026'");
        assert_eq!(quote("a\0b"), "'a\\0b'");
    }
}
