//! Parsing the `WWW-Authenticate` header of a 401 answer into the challenges tank can answer.
//!
//! The grammar is RFC 7235 section 4.1 (with RFC 9110's list rules):
//!
//! ```text
//! WWW-Authenticate = 1#challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! ```
//!
//! Several challenges may share one header, separated by commas like the parameters are
//! (`Bearer realm="x",service="y", Basic realm="z"`): a new challenge starts where a token is
//! not followed by `=`. Schemes and parameter names are case-insensitive; quoted values may hold
//! commas, spaces and backslash escapes, so scopes such as
//! `repository:a/b:pull,push repository:c:pull` come through whole.
//!
//! Only `Bearer` and `Basic` become [`Challenge`]s; other schemes (`Negotiate`, `Digest`, …)
//! are skipped, not errors. A Bearer challenge without a `realm` is an error, because there is
//! nowhere to ask for a token. Parameters tank does not use (`error`, `charset`, …) are ignored.
//! A response may carry several `WWW-Authenticate` headers: parse each and concatenate.

use crate::Error;

/// One authentication challenge of a `WWW-Authenticate` header that tank knows how to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Challenge {
    /// Token authentication: ask `realm` for a token, then send it as `Authorization: Bearer`.
    Bearer {
        /// The token endpoint URL, as sent (not validated as a URL here).
        realm: String,
        /// The `service` to name in the token request, when the registry sent one.
        service: Option<String>,
        /// The `scope` to ask for, when the registry sent one: one or more space-separated
        /// scopes such as `repository:library/alpine:pull` (see [`Challenge::scopes`]).
        scope: Option<String>,
    },
    /// HTTP Basic authentication: send the credential with every request.
    Basic {
        /// The realm, when the registry sent one (informative only).
        realm: Option<String>,
    },
}

impl Challenge {
    /// The individual scopes of a Bearer challenge's `scope` (split at whitespace), in order;
    /// empty for Basic or when there is no scope. Token requests send each as its own `scope`
    /// query parameter.
    pub fn scopes(&self) -> Vec<&str> {
        match self {
            Challenge::Bearer {
                scope: Some(scope), ..
            } => scope.split_ascii_whitespace().collect(),
            _ => Vec::new(),
        }
    }
}

/// Parses one `WWW-Authenticate` header value into the Bearer and Basic challenges it holds,
/// in header order.
///
/// Unknown schemes are skipped, so a header holding only those gives an empty list. A header
/// that does not follow the grammar (an empty one, an unterminated quoted string, a parameter
/// without a value, text after a value) or a Bearer challenge without a realm is
/// [`Error::Challenge`] naming the header.
///
/// ```
/// use tank_registry::{Challenge, parse_www_authenticate};
///
/// let challenges = parse_www_authenticate(
///     r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
/// )?;
/// assert_eq!(
///     challenges,
///     [Challenge::Bearer {
///         realm: "https://auth.docker.io/token".to_owned(),
///         service: Some("registry.docker.io".to_owned()),
///         scope: Some("repository:library/alpine:pull".to_owned()),
///     }]
/// );
/// # Ok::<(), tank_registry::Error>(())
/// ```
pub fn parse_www_authenticate(header: &str) -> Result<Vec<Challenge>, Error> {
    let raw = Parser::new(header).challenges()?;
    let mut challenges = Vec::new();
    for challenge in raw {
        if let Some(challenge) = interpret(header, challenge)? {
            challenges.push(challenge);
        }
    }
    Ok(challenges)
}

/// A challenge as it appears in the header, before its scheme is interpreted.
struct RawChallenge {
    /// The auth-scheme, lower-cased.
    scheme: String,
    /// The auth-params in order, names lower-cased, values unquoted.
    params: Vec<(String, String)>,
}

/// Turns a raw challenge into a [`Challenge`], or `None` for a scheme tank does not answer.
fn interpret(header: &str, raw: RawChallenge) -> Result<Option<Challenge>, Error> {
    if raw.scheme != "bearer" && raw.scheme != "basic" {
        return Ok(None);
    }
    let param = |name: &str| -> Result<Option<String>, Error> {
        let mut values = raw.params.iter().filter(|(key, _)| key == name);
        let first = values.next().map(|(_, value)| value.clone());
        if values.next().is_some() {
            return Err(challenge_error(
                header,
                format!(
                    "parameter {name} appears more than once in the {} challenge",
                    raw.scheme
                ),
            ));
        }
        Ok(first)
    };
    if raw.scheme == "basic" {
        return Ok(Some(Challenge::Basic {
            realm: param("realm")?,
        }));
    }
    let realm = match param("realm")? {
        Some(realm) if !realm.trim().is_empty() => realm,
        Some(_) => {
            return Err(challenge_error(
                header,
                "bearer challenge has an empty realm",
            ));
        }
        None => return Err(challenge_error(header, "bearer challenge has no realm")),
    };
    Ok(Some(Challenge::Bearer {
        realm,
        service: param("service")?,
        scope: param("scope")?,
    }))
}

fn challenge_error(header: &str, reason: impl Into<String>) -> Error {
    Error::Challenge {
        header: header.to_owned(),
        reason: reason.into(),
    }
}

/// RFC 9110 `tchar`: the characters of a token.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A control character other than HTAB: not allowed in a quoted-string, escaped or not.
fn is_control(byte: u8) -> bool {
    byte < b' ' && byte != b'\t' || byte == 0x7f
}

/// RFC 7235 `token68` characters, without the trailing `=` padding.
fn is_token68_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte)
}

/// A cursor over the header's bytes. Every place it splits the text is an ASCII byte, so the
/// slices it takes are valid UTF-8.
struct Parser<'a> {
    header: &'a str,
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Parser<'a> {
    fn new(header: &'a str) -> Parser<'a> {
        Parser {
            header,
            bytes: header.as_bytes(),
            position: 0,
        }
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        challenge_error(self.header, reason)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn at_end(&self) -> bool {
        self.position >= self.bytes.len()
    }

    /// Whether the cursor is at the end or at a comma: where a list element ends.
    fn at_element_end(&self) -> bool {
        matches!(self.peek(), None | Some(b','))
    }

    /// Skips optional whitespace (`OWS` / `BWS`: spaces and tabs).
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.position += 1;
        }
    }

    /// Skips whitespace and empty list elements.
    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.position += 1;
        }
    }

    /// Reads a token, if one starts here.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.position;
        while self.peek().is_some_and(is_tchar) {
            self.position += 1;
        }
        (self.position > start).then(|| &self.header[start..self.position])
    }

    /// Whether an auth-param starts here (`token BWS "="`). After a comma this is what tells a
    /// further parameter from the next challenge's scheme, which is never followed by `=`.
    /// With `first`, the parameter must also have a value: right after the scheme, `abc=`
    /// followed by the end, a comma or more `=` is a token68 with padding. Does not move the
    /// cursor.
    fn at_param(&mut self, first: bool) -> bool {
        let start = self.position;
        let is_param = self.token().is_some() && {
            self.skip_whitespace();
            if self.peek() == Some(b'=') {
                self.position += 1;
                self.skip_whitespace();
                !first || (!self.at_element_end() && self.peek() != Some(b'='))
            } else {
                false
            }
        };
        self.position = start;
        is_param
    }

    /// The whole header: one or more challenges.
    fn challenges(&mut self) -> Result<Vec<RawChallenge>, Error> {
        let mut challenges = Vec::new();
        loop {
            self.skip_separators();
            if self.at_end() {
                break;
            }
            challenges.push(self.challenge()?);
        }
        if challenges.is_empty() {
            return Err(self.error("no challenge in the header"));
        }
        Ok(challenges)
    }

    /// One challenge, starting at its scheme; stops after its last parameter, before the comma
    /// that separates it from the next challenge (or at the end).
    fn challenge(&mut self) -> Result<RawChallenge, Error> {
        let scheme_at = self.position;
        let Some(scheme) = self.token() else {
            return Err(self.error(format!("expected an auth-scheme at byte {scheme_at}")));
        };
        let scheme = scheme.to_ascii_lowercase();
        let mut params = Vec::new();
        if self.at_element_end() {
            return Ok(RawChallenge { scheme, params });
        }
        if !matches!(self.peek(), Some(b' ' | b'\t')) {
            return Err(self.error(format!(
                "expected a space after auth-scheme {scheme} at byte {}",
                self.position
            )));
        }
        self.skip_whitespace();
        if self.at_element_end() {
            return Ok(RawChallenge { scheme, params });
        }
        if !self.at_param(true) {
            self.token68(&scheme)?;
            return Ok(RawChallenge { scheme, params });
        }
        loop {
            params.push(self.param()?);
            self.skip_whitespace();
            if self.at_end() {
                break;
            }
            if self.peek() != Some(b',') {
                return Err(self.error(format!(
                    "expected a comma after parameter {} at byte {}",
                    params
                        .last()
                        .map_or("", |(name, _): &(String, String)| name.as_str()),
                    self.position
                )));
            }
            // Look past the comma (and empty elements): another parameter of this challenge,
            // or the next challenge's scheme?
            let comma_at = self.position;
            self.skip_separators();
            if self.at_end() {
                break;
            }
            if !self.at_param(false) {
                self.position = comma_at;
                break;
            }
        }
        Ok(RawChallenge { scheme, params })
    }

    /// A token68 credential (`Negotiate YIIx...==`); tank uses none, so it is only checked.
    fn token68(&mut self, scheme: &str) -> Result<(), Error> {
        let start = self.position;
        while self.peek().is_some_and(is_token68_char) {
            self.position += 1;
        }
        if self.position == start {
            return Err(self.error(format!(
                "expected a parameter or token68 after auth-scheme {scheme} at byte {start}"
            )));
        }
        while self.peek() == Some(b'=') {
            self.position += 1;
        }
        self.skip_whitespace();
        if !self.at_element_end() {
            return Err(self.error(format!(
                "expected a parameter name followed by '=' at byte {start} of the {scheme} challenge"
            )));
        }
        Ok(())
    }

    /// One `name=value` parameter; the caller has checked that one starts here.
    fn param(&mut self) -> Result<(String, String), Error> {
        let name_at = self.position;
        let Some(name) = self.token() else {
            return Err(self.error(format!("expected a parameter name at byte {name_at}")));
        };
        let name = name.to_ascii_lowercase();
        self.skip_whitespace();
        if self.peek() != Some(b'=') {
            return Err(self.error(format!(
                "expected '=' after parameter {name} at byte {}",
                self.position
            )));
        }
        self.position += 1;
        self.skip_whitespace();
        let value = if self.peek() == Some(b'"') {
            self.quoted_string(&name)?
        } else {
            match self.token() {
                Some(value) => value.to_owned(),
                None => {
                    return Err(self.error(format!(
                        "parameter {name} has no value at byte {}",
                        self.position
                    )));
                }
            }
        };
        Ok((name, value))
    }

    /// A quoted-string starting at its opening quote, returned without quotes and escapes.
    fn quoted_string(&mut self, name: &str) -> Result<String, Error> {
        let open_at = self.position;
        self.position += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(format!(
                        "unterminated quoted value of parameter {name} (opened at byte {open_at})"
                    )));
                }
                Some(b'"') => {
                    self.position += 1;
                    break;
                }
                Some(b'\\') => {
                    self.position += 1;
                    match self.peek() {
                        // RFC 9110 quoted-pair: a backslash escapes HTAB, SP, VCHAR and
                        // obs-text only, never a control character.
                        Some(escaped) if is_control(escaped) => {
                            return Err(self.error(format!(
                                "escaped control character in the quoted value of parameter \
                                 {name} at byte {}",
                                self.position
                            )));
                        }
                        Some(escaped) => {
                            value.push(escaped);
                            self.position += 1;
                        }
                        None => {
                            return Err(self.error(format!(
                                "unterminated quoted value of parameter {name} \
                                 (ends in a backslash, opened at byte {open_at})"
                            )));
                        }
                    }
                }
                Some(byte) if is_control(byte) => {
                    return Err(self.error(format!(
                        "control character in the quoted value of parameter {name} at byte {}",
                        self.position
                    )));
                }
                Some(byte) => {
                    value.push(byte);
                    self.position += 1;
                }
            }
        }
        // Only ASCII backslashes were removed from valid UTF-8, so this never replaces anything.
        Ok(String::from_utf8_lossy(&value).into_owned())
    }
}

#[cfg(test)]
mod tests;
