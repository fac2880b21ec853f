//! The connection-string tokenizer: `key=value;` pairs by the rules of .NET's
//! `System.Data.Common.DbConnectionStringBuilder`, which is what ServiceClient
//! uses. It knows nothing about which keys mean what; `settings` does.
//!
//! Values may be secrets, so they are kept in [`Secret`] and a [`SyntaxError`]
//! carries positions and key names only, never a value.

use std::collections::BTreeMap;

use crate::secret::Secret;

/// One `key=value` pair as written (key trimmed, value unquoted and trimmed).
#[derive(Debug)]
pub(crate) struct Entry {
    /// The key as the user spelt it, for messages.
    pub key: String,
    pub value: Secret,
}

/// The pairs of a connection string, keyed by the key in ASCII lower case
/// (keys are case-insensitive). A `BTreeMap` so that anything derived from it
/// (such as a "did you mean" hint) is deterministic.
pub(crate) type Pairs = BTreeMap<String, Entry>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyntaxErrorKind {
    /// `'` or `"` opened a value and nothing closed it.
    UnterminatedQuote,
    /// Something other than whitespace or `;` follows a closing quote.
    TextAfterClosingQuote,
    /// A key is followed by `;` or the end of the string instead of `=`.
    MissingEquals,
    /// `=` with nothing but whitespace before it.
    EmptyKey,
}

/// A syntax error: what, where (1-based character offset) and, when known,
/// the key it happened in. The caller decides whether the key may be shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub kind: SyntaxErrorKind,
    pub position: usize,
    pub key: Option<String>,
}

impl SyntaxError {
    /// The message for a user. `shown_key` is the key to name, if the caller
    /// judged it safe to print (an unknown "key" may be a fragment of a secret
    /// that contained an unquoted `;`).
    pub fn message(&self, shown_key: Option<&str>) -> String {
        let p = self.position;
        let of_value = match shown_key {
            Some(k) => format!("the value of '{k}'"),
            None => "a value".to_string(),
        };
        match self.kind {
            SyntaxErrorKind::UnterminatedQuote => format!(
                "connection string: unterminated quote in {of_value} starting at position {p} \
                 (inside a quoted value, write the quote character twice)"
            ),
            SyntaxErrorKind::TextAfterClosingQuote => format!(
                "connection string: unexpected text at position {p} after the closing quote of \
                 {of_value}; only spaces and ';' may follow it (inside a quoted value, write the \
                 quote character twice)"
            ),
            SyntaxErrorKind::MissingEquals => match shown_key {
                Some(k) => format!(
                    "connection string: key '{k}' at position {p} has no '=' (expected key=value)"
                ),
                None => format!(
                    "connection string: the entry at position {p} has no '=' (expected \
                     key=value; quote a value that contains ';')"
                ),
            },
            SyntaxErrorKind::EmptyKey => {
                format!("connection string: '=' at position {p} has no key before it")
            }
        }
    }
}

/// Splits a connection string into pairs.
///
/// Rules (DbConnectionStringBuilder): pairs are separated by `;`; empty pairs
/// are skipped; keys are trimmed and case-insensitive in ASCII (every key the
/// client knows is ASCII; Unicode lowering would add a ~15 KB table to the
/// component), `==` in a key is a literal `=`; a value is trimmed unless
/// quoted with `'` or `"`, inside which `;` is literal and the quote doubled
/// is a literal quote; an unquoted value runs to the next `;` (so `=` and
/// quotes inside it are literal, as in base64 secrets). The last duplicate
/// wins and an empty value removes the key. Stricter than .NET in one place:
/// a `;` inside a key is an error (.NET makes it part of the key, which only
/// hides the mistake).
pub(crate) fn tokenize(input: &str) -> Result<Pairs, SyntaxError> {
    // Characters, not bytes, so positions match what a user counts.
    let chars: Vec<char> = input.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let err = |kind, i: usize, key: &str| SyntaxError {
        kind,
        position: i + 1,
        key: (!key.is_empty()).then(|| key.to_string()),
    };

    let mut pairs = Pairs::new();
    let mut i = 0;
    while let Some(c) = at(i) {
        if c == ';' || c.is_whitespace() {
            i += 1;
            continue;
        }

        let key_start = i;
        let mut key = String::new();
        loop {
            match at(i) {
                None | Some(';') => {
                    return Err(err(
                        SyntaxErrorKind::MissingEquals,
                        key_start,
                        key.trim_end(),
                    ));
                }
                Some('=') if at(i + 1) == Some('=') => {
                    key.push('=');
                    i += 2;
                }
                Some('=') => break,
                Some(c) => {
                    key.push(c);
                    i += 1;
                }
            }
        }
        let key = key.trim_end().to_string();
        if key.is_empty() {
            return Err(err(SyntaxErrorKind::EmptyKey, i, ""));
        }
        i += 1; // the '='

        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        let value = match at(i) {
            Some(quote @ ('\'' | '"')) => {
                let open = i;
                i += 1;
                let mut value = String::new();
                loop {
                    match at(i) {
                        None => return Err(err(SyntaxErrorKind::UnterminatedQuote, open, &key)),
                        Some(c) if c == quote && at(i + 1) == Some(quote) => {
                            value.push(quote);
                            i += 2;
                        }
                        Some(c) if c == quote => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            value.push(c);
                            i += 1;
                        }
                    }
                }
                while at(i).is_some_and(char::is_whitespace) {
                    i += 1;
                }
                if !matches!(at(i), None | Some(';')) {
                    return Err(err(SyntaxErrorKind::TextAfterClosingQuote, i, &key));
                }
                value
            }
            _ => {
                let start = i;
                while at(i).is_some_and(|c| c != ';') {
                    i += 1;
                }
                let value: String = chars[start..i].iter().collect();
                value.trim_end().to_string()
            }
        };

        let lower = key.to_ascii_lowercase();
        if value.is_empty() {
            pairs.remove(&lower);
        } else {
            pairs.insert(
                lower,
                Entry {
                    key,
                    value: Secret::new(value),
                },
            );
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SyntaxErrorKind::*;

    /// The pairs as (lower-case key, value), sorted.
    fn pairs(input: &str) -> Vec<(String, String)> {
        match tokenize(input) {
            Ok(p) => p
                .into_iter()
                .map(|(k, e)| (k, e.value.expose().to_string()))
                .collect(),
            Err(e) => panic!("{input:?}: {e:?}"),
        }
    }

    fn owned(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn check(cases: &[(&str, &[(&str, &str)])]) {
        for (input, expected) in cases {
            assert_eq!(pairs(input), owned(expected), "input: {input:?}");
        }
    }

    #[test]
    fn pairs_are_split_on_semicolons_and_keys_lower_cased() {
        check(&[
            ("a=1", &[("a", "1")]),
            ("A=1;b=2", &[("a", "1"), ("b", "2")]),
            ("Service Uri=x", &[("service uri", "x")]),
            // ASCII case only: a key with other letters is no key the
            // client knows, so it is kept as written.
            ("ÄB=1", &[("Äb", "1")]),
        ]);
    }

    #[test]
    fn double_equals_in_a_key_is_a_literal_equals() {
        check(&[
            ("a==b=c", &[("a=b", "c")]),
            ("a===b", &[("a=", "b")]),
            ("a====b=c", &[("a==b", "c")]),
        ]);
    }

    #[test]
    fn whitespace_around_keys_and_unquoted_values_is_trimmed() {
        check(&[
            ("  Key  =  some value  ;", &[("key", "some value")]),
            ("\n\tA = 1 ;\n B=2\n", &[("a", "1"), ("b", "2")]),
        ]);
    }

    #[test]
    fn empty_pairs_and_trailing_semicolons_are_ignored() {
        check(&[
            ("", &[]),
            (";;;", &[]),
            ("a=1;;b=2;", &[("a", "1"), ("b", "2")]),
            (" ; a=1 ; ; ", &[("a", "1")]),
        ]);
    }

    #[test]
    fn quoted_values_keep_semicolons_spaces_and_doubled_quotes() {
        check(&[
            ("a='x;y'", &[("a", "x;y")]),
            ("a=\"x;y\"", &[("a", "x;y")]),
            ("a=' x '", &[("a", " x ")]),
            ("a='it''s'", &[("a", "it's")]),
            ("a=\"say \"\"hi\"\"\"", &[("a", "say \"hi\"")]),
            ("a=\"it's\"", &[("a", "it's")]),
            ("a='say \"hi\"'", &[("a", "say \"hi\"")]),
            ("a = 'x'  ; b=2", &[("a", "x"), ("b", "2")]),
            ("a=''''", &[("a", "'")]),
        ]);
    }

    #[test]
    fn unquoted_values_keep_inner_quotes_and_equals() {
        check(&[
            ("a=abc==", &[("a", "abc==")]),
            ("a=x=y", &[("a", "x=y")]),
            ("a=it's", &[("a", "it's")]),
            ("a=b'c'd", &[("a", "b'c'd")]),
        ]);
    }

    #[test]
    fn last_duplicate_wins_case_insensitively() {
        check(&[
            ("a=1;A=2", &[("a", "2")]),
            ("Url=x;url=y;URL=z", &[("url", "z")]),
        ]);
        let p = tokenize("url=1;URL=2").unwrap();
        assert_eq!(
            p["url"].key, "URL",
            "the last spelling is kept for messages"
        );
    }

    #[test]
    fn an_empty_value_removes_the_key() {
        check(&[
            ("a=1;a=", &[]),
            ("a=1;A=  ;b=2", &[("b", "2")]),
            ("a=1;a=''", &[]),
            ("a=;a=3", &[("a", "3")]),
        ]);
    }

    #[test]
    fn syntax_errors_give_kind_position_and_key() {
        let cases: &[(&str, SyntaxErrorKind, usize, Option<&str>)] = &[
            ("a='x", UnterminatedQuote, 3, Some("a")),
            ("a=1;Secret=\"x;y", UnterminatedQuote, 12, Some("Secret")),
            ("a='it''s", UnterminatedQuote, 3, Some("a")),
            ("a='x'y", TextAfterClosingQuote, 6, Some("a")),
            ("a='x' y;b=1", TextAfterClosingQuote, 7, Some("a")),
            ("a=1;b", MissingEquals, 5, Some("b")),
            ("a=1; bcd ;c=1", MissingEquals, 6, Some("bcd")),
            ("abc", MissingEquals, 1, Some("abc")),
            ("a==b", MissingEquals, 1, Some("a=b")),
            ("=x", EmptyKey, 1, None),
            ("a=1;  = x", EmptyKey, 7, None),
        ];
        for (input, kind, position, key) in cases {
            let e = tokenize(input).expect_err(input);
            assert_eq!(
                (e.kind, e.position, e.key.as_deref()),
                (*kind, *position, *key),
                "input: {input:?}"
            );
        }
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let e = tokenize("ä=é;b='x").unwrap_err();
        assert_eq!((e.kind, e.position), (UnterminatedQuote, 7));
    }

    #[test]
    fn messages_name_the_key_only_when_the_caller_allows_it() {
        let e = tokenize("Url=x;ClientSecret='abc").unwrap_err();
        assert_eq!(
            e.message(Some("ClientSecret")),
            "connection string: unterminated quote in the value of 'ClientSecret' starting at \
             position 20 (inside a quoted value, write the quote character twice)"
        );
        let e = tokenize("ClientSecret=ab;cd").unwrap_err();
        let m = e.message(None);
        assert!(m.contains("position 17") && !m.contains("cd"), "{m}");
    }

    #[test]
    fn debug_of_the_pairs_never_shows_a_value() {
        let p = tokenize("ClientSecret=S3cr3t!Value").unwrap();
        let debug = format!("{p:?}");
        assert!(!debug.contains("S3cr3t!Value") && debug.contains("ClientSecret"));
    }
}
