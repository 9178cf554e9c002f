//! A small PromQL tokenizer used to recover source positions.
//!
//! `promql-parser`'s AST carries no spans, but Prometheus prints the
//! `line:col` of the offending sub-expression in every annotation. The
//! planner walks the AST in source order alongside these tokens (an
//! in-order walk of the tree visits nodes in the order they were written)
//! and records where each node starts.

/// Kinds of tokens the position walk distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    /// Identifier or keyword (`foo`, `sum`, `by`, `offset`, `Inf`).
    Ident,
    /// Number or duration (`1`, `0x1f`, `1.5e3`, `5m`, `1h30m`).
    Number,
    Str,
    /// Punctuation or operator; the text says which.
    Punct,
}

#[derive(Clone, Debug)]
pub struct Token<'a> {
    pub kind: Tok,
    pub text: &'a str,
    pub pos: usize,
}

/// Splits `src` into tokens. Never fails: unknown bytes become one-byte
/// punctuation tokens.
pub fn tokenize(src: &str) -> Vec<Token<'_>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Inside `[...]` only durations appear, and `:` separates them.
    let mut bracket_depth = 0i32;
    while i < b.len() {
        let c = b[i];
        if c == b'[' {
            bracket_depth += 1;
        } else if c == b']' {
            bracket_depth -= 1;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let kind;
        if c.is_ascii_alphabetic() || c == b'_' || (c == b':' && bracket_depth <= 0) || c >= 0x80 {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':' || b[i] >= 0x80)
            {
                i += 1;
            }
            kind = Tok::Ident;
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            while i < b.len() {
                let d = b[i];
                let exponent_sign = (d == b'+' || d == b'-')
                    && matches!(b[i - 1], b'e' | b'E' | b'p' | b'P')
                    && b.get(i + 1).is_some_and(|x| x.is_ascii_digit())
                    && !src[start..i].contains(['h', 'm', 's', 'd', 'w', 'y']);
                if d.is_ascii_alphanumeric() || d == b'.' || d == b'_' || exponent_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            kind = Tok::Number;
        } else if c == b'"' || c == b'\'' || c == b'`' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' && c != b'`' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            kind = Tok::Str;
        } else {
            // Bytes, not a `str` slice: `i + 2` may fall inside a multi-byte character.
            let two = b.get(i..i + 2).unwrap_or_default();
            i += if matches!(two, b"==" | b"!=" | b">=" | b"<=" | b"=~" | b"!~") {
                2
            } else {
                1
            };
            kind = Tok::Punct;
        }
        // Keep char boundaries valid for non-ASCII input.
        while i < b.len() && !src.is_char_boundary(i) {
            i += 1;
        }
        out.push(Token {
            kind,
            text: &src[start..i],
            pos: start,
        });
    }
    out
}

/// A cursor over tokens with forgiving helpers: a position walk must never
/// fail a query, so mismatches only make positions less precise.
pub struct Cursor<'a> {
    toks: Vec<Token<'a>>,
    i: usize,
    end: usize,
    last_end: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(src: &'a str) -> Self {
        Self {
            toks: tokenize(src),
            i: 0,
            end: src.len(),
            last_end: 0,
        }
    }

    /// Byte offset of the current token (end of input when exhausted).
    pub fn pos(&self) -> usize {
        self.toks.get(self.i).map_or(self.end, |t| t.pos)
    }

    pub fn peek(&self) -> Option<&Token<'a>> {
        self.toks.get(self.i)
    }

    pub fn peek_text(&self) -> &str {
        self.toks.get(self.i).map_or("", |t| t.text)
    }

    pub fn bump(&mut self) {
        if let Some(t) = self.toks.get(self.i) {
            self.last_end = t.pos + t.text.len();
            self.i += 1;
        }
    }

    /// Byte offset just after the last consumed token.
    pub fn last_end(&self) -> usize {
        self.last_end
    }

    /// Consumes the current token if its text is `text` (case-insensitive for keywords).
    pub fn eat(&mut self, text: &str) -> bool {
        if self.peek_text().eq_ignore_ascii_case(text) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Consumes a balanced group starting at the current opening bracket.
    pub fn skip_group(&mut self, open: &str, close: &str) {
        if !self.eat(open) {
            return;
        }
        let mut depth = 1;
        while let Some(t) = self.peek() {
            let text = t.text;
            self.bump();
            if text == open {
                depth += 1;
            } else if text == close {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cover_promql() {
        let toks = tokenize(r#"sum by (a) (rate(x{y=~"a\"}"}[5m] offset -1m)) >= bool 1e-3 @ 10"#);
        let texts: Vec<_> = toks.iter().map(|t| t.text).collect();
        assert_eq!(
            texts,
            vec![
                "sum",
                "by",
                "(",
                "a",
                ")",
                "(",
                "rate",
                "(",
                "x",
                "{",
                "y",
                "=~",
                r#""a\"}""#,
                "}",
                "[",
                "5m",
                "]",
                "offset",
                "-",
                "1m",
                ")",
                ")",
                ">=",
                "bool",
                "1e-3",
                "@",
                "10"
            ]
        );
        assert_eq!(toks[6].pos, 12);
    }
}
