//! Text from outside (a registry's error messages, media types, header values, realms, a
//! credential helper's output) made safe to print on a terminal.
//!
//! A registry controls these strings; printed raw, escape sequences in them could set the
//! terminal title, move the cursor, erase lines or forge output, and bidirectional overrides
//! could reorder what a reader sees. Every [`crate::Error`] passes such text through
//! [`escape`] when it is displayed (the fields keep the text as received).
//!
//! Escaped: C0 controls (U+0000..U+001F, shown as `\n`, `\r`, `\t` or `\x1b`-style), DEL
//! (`\x7f`), C1 controls (U+0080..U+009F, `\u{9b}`-style), the bidirectional embeddings,
//! overrides and isolates (U+202A..U+202E, U+2066..U+2069, `\u{202e}`-style) and the line and
//! paragraph separators (U+2028, U+2029). Everything else, backslashes included, is left as
//! it is, so that escaping works the same on a whole message and on its parts (a registry can
//! still print the four characters `\x1b`; it cannot make the terminal act on them).

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as is.
fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{2028}'..='\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
    )
}

/// `text` with every control character, bidirectional override and line separator written
/// as a Rust-style escape (`\x1b`, `\n`, `\u{202e}`); borrowed when there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0}'..='\u{7f}' if is_unsafe(c) => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` between double quotes, with `"` and `\` escaped as well as what [`escape`]
/// escapes: for values whose edges matter (header values, realms, locations).
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe(c) => {
                let mut single = [0u8; 4];
                out.push_str(&escape(c.encode_utf8(&mut single)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// [`quoted`] for an optional value; `none` when absent.
pub(crate) fn quoted_option(text: Option<&str>) -> String {
    text.map_or_else(|| "none".to_owned(), quoted)
}

/// Whether `text` holds nothing [`escape`] would change: for tests and assertions.
pub fn is_printable(text: &str) -> bool {
    !text.chars().any(is_unsafe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_as_is() {
        for text in [
            "",
            "manifest unknown",
            r"back\slash",
            "ünïcödé ✓ 日本",
            "tab-free",
        ] {
            assert!(matches!(escape(text), Cow::Borrowed(same) if same == text));
            assert!(is_printable(text));
        }
    }

    #[test]
    fn controls_and_overrides_are_escaped() {
        let cases = [
            ("\u{1b}]0;pwned\u{7}", r"\x1b]0;pwned\x07"),
            ("a\nb\rc\td", r"a\nb\rc\td"),
            ("\u{0}\u{7f}", r"\x00\x7f"),
            ("csi\u{9b}2J", r"csi\u{9b}2J"),
            ("\u{80}\u{9f}", r"\u{80}\u{9f}"),
            ("abc\u{202e}fed", r"abc\u{202e}fed"),
            ("\u{2066}\u{2069}\u{202a}", r"\u{2066}\u{2069}\u{202a}"),
            ("line\u{2028}sep", r"line\u{2028}sep"),
            ("a\\b\n", r"a\b\n"),
        ];
        for (raw, shown) in cases {
            let escaped = escape(raw);
            assert_eq!(escaped, shown, "{raw:?}");
            assert!(is_printable(&escaped), "{escaped:?}");
            assert!(!is_printable(raw), "{raw:?}");
        }
    }

    #[test]
    fn quoted_escapes_quotes_backslashes_and_controls() {
        assert_eq!(quoted("plain"), r#""plain""#);
        assert_eq!(quoted("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quoted("\u{1b}[2J\n"), r#""\x1b[2J\n""#);
        assert_eq!(quoted("\u{202e}x"), r#""\u{202e}x""#);
        assert_eq!(quoted_option(None), "none");
        assert_eq!(quoted_option(Some("x")), r#""x""#);
    }
}
