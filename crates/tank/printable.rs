//! Text from outside (registry messages, header values, layer entry names) made safe for
//! a terminal: control characters and bidirectional overrides are shown escaped, so a
//! registry cannot set the terminal's title, erase lines or forge output.

use std::fmt::Write as _;

/// `text` with every control character (C0, DEL, C1) and bidirectional override escaped as
/// Rust does (`\n`, `\u{1b}`); everything else unchanged.
pub(crate) fn printable(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                _ => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_and_bidi_overrides_are_escaped() {
        assert_eq!(
            printable("a\x1b]0;owned\x07b\nc\u{9b}d\u{202e}e\u{7f}"),
            "a\\u{1b}]0;owned\\u{7}b\\nc\\u{9b}d\\u{202e}e\\u{7f}"
        );
        assert_eq!(printable("plain tëxt: 100%"), "plain tëxt: 100%");
    }
}
