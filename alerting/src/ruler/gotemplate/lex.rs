//! The lexer of Go's `text/template`: text, `{{ }}` actions with `{{-`/`-}}` whitespace trimming,
//! comments, and the tokens inside actions. Errors carry Go's wording (`unclosed action`).

/// A token kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Ident(String),
    Keyword(&'static str),
    Field(String),
    Var(String),
    Dot,
    Str(String),
    Char(char),
    Number(String),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Eof,
}

/// A token and the byte offset where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub tok: Tok,
    pub pos: usize,
}

const KEYWORDS: [&str; 10] = [
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits template text into tokens. On error returns the message and the byte offset.
pub fn lex(text: &str) -> Result<Vec<Item>, (String, usize)> {
    let b = text.as_bytes();
    let mut items = Vec::new();
    let mut i = 0;
    let mut trim_next_text = false;
    loop {
        // Text up to the next "{{".
        let next = text[i..].find("{{").map(|p| p + i);
        let end = next.unwrap_or(b.len());
        let mut t = &text[i..end];
        if std::mem::take(&mut trim_next_text) {
            t = t.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        let Some(start) = next else {
            if !t.is_empty() {
                items.push(Item {
                    tok: Tok::Text(t.to_string()),
                    pos: i,
                });
            }
            items.push(Item {
                tok: Tok::Eof,
                pos: b.len(),
            });
            return Ok(items);
        };
        // Left trim marker: "{{- " (dash then whitespace).
        let mut j = start + 2;
        let trim_left = b.get(j) == Some(&b'-') && b.get(j + 1).is_some_and(|c| is_space(*c));
        if trim_left {
            t = t.trim_end_matches([' ', '\t', '\r', '\n']);
            j += 1;
        }
        if !t.is_empty() {
            items.push(Item {
                tok: Tok::Text(t.to_string()),
                pos: i,
            });
        }
        // Comment?
        let mut k = j;
        while trim_left && k < b.len() && is_space(b[k]) {
            k += 1;
        }
        if text[k..].starts_with("/*") {
            let Some(close) = text[k + 2..].find("*/") else {
                return Err(("unclosed comment".into(), start));
            };
            let mut after = k + 2 + close + 2;
            let (trim_right, delim_at) = right_delim_at(b, after);
            if !delim_at {
                return Err(("comment ends before closing delimiter".into(), start));
            }
            if trim_right {
                while after < b.len() && is_space(b[after]) {
                    after += 1;
                }
                after += 1; // the dash
            }
            i = after + 2;
            trim_next_text = trim_right;
            continue;
        }
        items.push(Item {
            tok: Tok::LeftDelim,
            pos: start,
        });
        i = j;
        // Inside the action.
        let mut paren = 0i32;
        loop {
            let (trim_right, at_delim) = right_delim_at(b, i);
            if at_delim {
                if paren > 0 {
                    return Err(("unclosed left paren".into(), i));
                }
                let mut p = i;
                if trim_right {
                    while p < b.len() && is_space(b[p]) {
                        p += 1;
                    }
                    p += 1;
                }
                if trim_right && p > i + 1 {
                    // the whitespace before " -}}" is not a token
                }
                items.push(Item {
                    tok: Tok::RightDelim,
                    pos: p,
                });
                i = p + 2;
                trim_next_text = trim_right;
                break;
            }
            let Some(c) = text[i..].chars().next() else {
                return Err(("unclosed action".into(), i));
            };
            let pos = i;
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    while i < b.len() && is_space(b[i]) && !right_delim_at(b, i).1 {
                        i += 1;
                    }
                    items.push(Item { tok: Tok::Space, pos });
                }
                '=' => {
                    i += 1;
                    items.push(Item {
                        tok: Tok::Assign,
                        pos,
                    });
                }
                ':' => {
                    if b.get(i + 1) != Some(&b'=') {
                        return Err(("expected :=".into(), i));
                    }
                    i += 2;
                    items.push(Item {
                        tok: Tok::Declare,
                        pos,
                    });
                }
                '|' => {
                    i += 1;
                    items.push(Item { tok: Tok::Pipe, pos });
                }
                ',' => {
                    i += 1;
                    items.push(Item { tok: Tok::Comma, pos });
                }
                '(' => {
                    i += 1;
                    paren += 1;
                    items.push(Item {
                        tok: Tok::LParen,
                        pos,
                    });
                }
                ')' => {
                    i += 1;
                    paren -= 1;
                    if paren < 0 {
                        return Err(("unexpected right paren".into(), pos));
                    }
                    items.push(Item {
                        tok: Tok::RParen,
                        pos,
                    });
                }
                '"' => {
                    let (s, n) =
                        lex_quote(&text[i..]).ok_or(("unterminated quoted string".to_string(), pos))?;
                    i += n;
                    items.push(Item {
                        tok: Tok::Str(s),
                        pos,
                    });
                }
                '`' => {
                    let close = text[i + 1..]
                        .find('`')
                        .ok_or(("unterminated raw quoted string".to_string(), pos))?;
                    items.push(Item {
                        tok: Tok::Str(text[i + 1..i + 1 + close].to_string()),
                        pos,
                    });
                    i += close + 2;
                }
                '\'' => {
                    let (ch, n) =
                        lex_char(&text[i..]).ok_or(("unterminated character constant".to_string(), pos))?;
                    i += n;
                    items.push(Item {
                        tok: Tok::Char(ch),
                        pos,
                    });
                }
                '$' => {
                    let mut e = i + 1;
                    while let Some(c) = text[e..].chars().next().filter(|c| is_alnum(*c)) {
                        e += c.len_utf8();
                    }
                    items.push(Item {
                        tok: Tok::Var(text[i..e].to_string()),
                        pos,
                    });
                    i = e;
                }
                '.' => {
                    let next = text[i + 1..].chars().next();
                    if next.is_some_and(|c| c.is_ascii_digit()) {
                        let n = scan_number(&text[i..]);
                        items.push(Item {
                            tok: Tok::Number(text[i..i + n].to_string()),
                            pos,
                        });
                        i += n;
                    } else if next.is_some_and(is_alnum) {
                        let mut e = i + 1;
                        while let Some(c) = text[e..].chars().next().filter(|c| is_alnum(*c)) {
                            e += c.len_utf8();
                        }
                        items.push(Item {
                            tok: Tok::Field(text[i + 1..e].to_string()),
                            pos,
                        });
                        i = e;
                    } else {
                        i += 1;
                        items.push(Item { tok: Tok::Dot, pos });
                    }
                }
                '+' | '-' | '0'..='9' => {
                    let n = scan_number(&text[i..]);
                    if n == 0 || (n == 1 && (c == '+' || c == '-')) {
                        return Err((format!("bad number syntax: {:?}", &text[i..i + 1]), pos));
                    }
                    items.push(Item {
                        tok: Tok::Number(text[i..i + n].to_string()),
                        pos,
                    });
                    i += n;
                }
                c if is_alnum(c) => {
                    let mut e = i;
                    while let Some(c) = text[e..].chars().next().filter(|c| is_alnum(*c)) {
                        e += c.len_utf8();
                    }
                    let word = &text[i..e];
                    let tok = if let Some(k) = KEYWORDS.iter().find(|k| **k == word) {
                        Tok::Keyword(k)
                    } else if word == "true" || word == "false" {
                        Tok::Bool(word == "true")
                    } else if word == "nil" {
                        Tok::Nil
                    } else {
                        Tok::Ident(word.to_string())
                    };
                    items.push(Item { tok, pos });
                    i = e;
                }
                c => return Err((format!("bad character U+{:04X} '{c}'", c as u32), pos)),
            }
        }
    }
}

/// Whether a right delimiter (`}}` or ` -}}`) starts at `i`: (trim, found).
fn right_delim_at(b: &[u8], i: usize) -> (bool, bool) {
    if b.get(i) == Some(&b'}') && b.get(i + 1) == Some(&b'}') {
        return (false, true);
    }
    if b.get(i).is_some_and(|c| is_space(*c)) {
        let mut p = i;
        while p < b.len() && is_space(b[p]) {
            p += 1;
        }
        if b.get(p) == Some(&b'-') && b.get(p + 1) == Some(&b'}') && b.get(p + 2) == Some(&b'}') {
            return (true, true);
        }
    }
    (false, false)
}

fn scan_number(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let mut digits: &[u8] = b"0123456789_";
    if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        digits = b"0123456789abcdefABCDEF_";
    } else if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'o' | b'O')) {
        i += 2;
        digits = b"01234567_";
    } else if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'b' | b'B')) {
        i += 2;
        digits = b"01_";
    }
    while i < b.len() && digits.contains(&b[i]) {
        i += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && digits.contains(&b[i]) {
            i += 1;
        }
    }
    if digits.len() == 11 && matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}

fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, n: &mut usize) -> Option<char> {
    let c = chars.next()?;
    *n += c.len_utf8();
    Some(match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'v' => '\u{b}',
        '\\' => '\\',
        '"' => '"',
        '\'' => '\'',
        'x' | 'u' | 'U' => {
            let len = match c {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let mut v = 0u32;
            for _ in 0..len {
                let d = chars.next()?.to_digit(16)?;
                *n += 1;
                v = v * 16 + d;
            }
            char::from_u32(v)?
        }
        c if c.is_digit(8) => {
            let mut v = c.to_digit(8)?;
            for _ in 0..2 {
                let d = chars.next()?.to_digit(8)?;
                *n += 1;
                v = v * 8 + d;
            }
            char::from_u32(v)?
        }
        _ => return None,
    })
}

/// A double-quoted Go string at the start of `s`: its value and byte length.
fn lex_quote(s: &str) -> Option<(String, usize)> {
    let mut chars = s[1..].chars().peekable();
    let mut out = String::new();
    let mut n = 1;
    loop {
        let c = chars.next()?;
        n += c.len_utf8();
        match c {
            '"' => return Some((out, n)),
            '\\' => out.push(unescape(&mut chars, &mut n)?),
            '\n' => return None,
            c => out.push(c),
        }
    }
}

fn lex_char(s: &str) -> Option<(char, usize)> {
    let mut chars = s[1..].chars().peekable();
    let mut n = 1;
    let c = chars.next()?;
    n += c.len_utf8();
    let v = if c == '\\' {
        unescape(&mut chars, &mut n)?
    } else {
        c
    };
    if chars.next()? != '\'' {
        return None;
    }
    Some((v, n + 1))
}
