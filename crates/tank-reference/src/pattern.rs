//! Shell patterns with the semantics of Go's `path.Match`, for
//! [`Reference::familiar_match`](crate::Reference::familiar_match).
//!
//! ```text
//! pattern  := { term }
//! term     := '*'                 any run of characters but '/'
//!           | '?'                 any one character but '/'
//!           | '[' ['^'] { range } ']'   a class (non-empty; may match '/')
//!           | c                   c itself (c not '*', '?', '\\', '[')
//!           | '\\' c              c itself
//! range    := c | '\\' c | c '-' c    (c not '\\', '-', ']')
//! ```
//!
//! The whole pattern is checked before matching, so a malformed one is an error whatever
//! it is matched against (as Go does since 1.16).

use crate::Error;

#[derive(Debug)]
enum Token {
    /// `?`
    AnyChar,
    /// A character, possibly escaped.
    Literal(char),
    /// `[...]`
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::AnyChar => c != '/',
            Token::Literal(literal) => c == *literal,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

/// A run of single-character terms, after any number of `*` (`star`).
#[derive(Debug)]
struct Chunk {
    star: bool,
    tokens: Vec<Token>,
}

/// A checked pattern.
#[derive(Debug)]
pub(crate) struct Pattern {
    chunks: Vec<Chunk>,
}

impl Pattern {
    /// Checks and splits `pattern` into chunks.
    pub(crate) fn new(pattern: &str) -> Result<Pattern, Error> {
        let bad = |reason| Error::InvalidPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        let chars: Vec<char> = pattern.chars().collect();
        let mut chunks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let mut chunk = Chunk {
                star: false,
                tokens: Vec::new(),
            };
            while chars.get(i) == Some(&'*') {
                chunk.star = true;
                i += 1;
            }
            while let Some(&c) = chars.get(i) {
                match c {
                    '*' => break,
                    '?' => chunk.tokens.push(Token::AnyChar),
                    '\\' => {
                        i += 1;
                        let escaped = *chars.get(i).ok_or_else(|| bad("it ends with '\\'"))?;
                        chunk.tokens.push(Token::Literal(escaped));
                    }
                    '[' => {
                        i += 1;
                        let negated = chars.get(i) == Some(&'^');
                        if negated {
                            i += 1;
                        }
                        let mut ranges = Vec::new();
                        loop {
                            if chars.get(i) == Some(&']') && !ranges.is_empty() {
                                break;
                            }
                            let lo = class_char(&chars, &mut i).map_err(bad)?;
                            let mut hi = lo;
                            if chars.get(i) == Some(&'-') {
                                i += 1;
                                hi = class_char(&chars, &mut i).map_err(bad)?;
                            }
                            ranges.push((lo, hi));
                        }
                        chunk.tokens.push(Token::Class { negated, ranges });
                    }
                    literal => chunk.tokens.push(Token::Literal(literal)),
                }
                i += 1;
            }
            chunks.push(chunk);
        }
        Ok(Pattern { chunks })
    }

    /// Whether the whole of `name` matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let chars: Vec<char> = name.chars().collect();
        let mut rest: &[char] = &chars;
        for (index, chunk) in self.chunks.iter().enumerate() {
            let last = index + 1 == self.chunks.len();
            if chunk.star && chunk.tokens.is_empty() {
                // A trailing '*' matches what is left unless it holds a '/'.
                return !rest.contains(&'/');
            }
            // Each chunk takes its leftmost match; a star may skip anything but '/', and
            // the last chunk must end the name.
            let mut next = None;
            for skip in 0..=rest.len() {
                if skip > 0 && (!chunk.star || rest[skip - 1] == '/') {
                    break;
                }
                if let Some(after) = match_chunk(&chunk.tokens, &rest[skip..]) {
                    if !last || after.is_empty() {
                        next = Some(after);
                        break;
                    }
                }
            }
            match next {
                Some(after) => rest = after,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

/// One character of a class at `chars[*i]`, escaped or not; fails where Go's `getEsc` does.
fn class_char(chars: &[char], i: &mut usize) -> Result<char, &'static str> {
    let unclosed = "a '[' class is not closed";
    match chars.get(*i) {
        None => return Err(unclosed),
        Some('-') => return Err("a '-' in a class must stand between two characters"),
        Some(']') => return Err("a class must hold at least one character"),
        Some('\\') => *i += 1,
        Some(_) => {}
    }
    let c = *chars.get(*i).ok_or(unclosed)?;
    *i += 1;
    if *i >= chars.len() {
        return Err(unclosed);
    }
    Ok(c)
}

/// Matches `tokens` at the start of `name`; what follows on success.
fn match_chunk<'a>(tokens: &[Token], name: &'a [char]) -> Option<&'a [char]> {
    if name.len() < tokens.len() {
        return None;
    }
    tokens
        .iter()
        .zip(name)
        .all(|(token, c)| token.matches(*c))
        .then(|| &name[tokens.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> Result<bool, Error> {
        Pattern::new(pattern).map(|pattern| pattern.matches(name))
    }

    // Rows from Go's path/match_test.go semantics, the ones Docker's filters rely on.
    #[test]
    fn go_path_match_semantics() {
        let rows: &[(&str, &str, Option<bool>)] = &[
            ("abc", "abc", Some(true)),
            ("*", "abc", Some(true)),
            ("*c", "abc", Some(true)),
            ("a*", "a", Some(true)),
            ("a*", "abc", Some(true)),
            ("a*", "ab/c", Some(false)),
            ("a*/b", "abc/b", Some(true)),
            ("a*/b", "a/c/b", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
            ("ab[c]", "abc", Some(true)),
            ("ab[b-d]", "abc", Some(true)),
            ("ab[e-g]", "abc", Some(false)),
            ("ab[^c]", "abc", Some(false)),
            ("ab[^b-d]", "abc", Some(false)),
            ("ab[^e-g]", "abc", Some(true)),
            ("a\\*b", "a*b", Some(true)),
            ("a\\*b", "ab", Some(false)),
            ("a?b", "a☺b", Some(true)),
            ("a[^a]b", "a☺b", Some(true)),
            ("a???b", "a☺b", Some(false)),
            ("a[^a][^a][^a]b", "a☺b", Some(false)),
            ("[a-ζ]*", "α", Some(true)),
            ("*[a-ζ]", "A", Some(false)),
            ("a?b", "a/b", Some(false)),
            ("a*b", "a/b", Some(false)),
            ("[\\]a]", "]", Some(true)),
            ("[\\-]", "-", Some(true)),
            ("[x\\-]", "x", Some(true)),
            ("[x\\-]", "-", Some(true)),
            ("[x\\-]", "z", Some(false)),
            ("[\\-x]", "x", Some(true)),
            ("[\\-x]", "-", Some(true)),
            ("[\\-x]", "a", Some(false)),
            ("[]a]", "]", None),
            ("[-]", "-", None),
            ("[x-]", "x", None),
            ("[x-]", "-", None),
            ("[x-]", "z", None),
            ("[-x]", "x", None),
            ("[-x]", "-", None),
            ("[-x]", "a", None),
            ("\\", "a", None),
            ("[a-b-c]", "a", None),
            ("[", "a", None),
            ("[^", "a", None),
            ("[^bc", "a", None),
            ("a[", "a", None),
            ("a[", "ab", None),
            ("a[", "x", None),
            ("a/b[", "x", None),
            ("*x", "xxx", Some(true)),
        ];
        for (pattern, name, expected) in rows {
            let actual = matches(pattern, name);
            match expected {
                Some(expected) => {
                    assert_eq!(actual, Ok(*expected), "{pattern:?} against {name:?}")
                }
                None => assert!(
                    matches!(actual, Err(Error::InvalidPattern { .. })),
                    "{pattern:?} against {name:?}: {actual:?}"
                ),
            }
        }
    }
}
