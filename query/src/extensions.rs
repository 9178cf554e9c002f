//! Syntax Prometheus 3 accepts that `promql-parser` 0.11 does not, handled
//! by rewriting the query text before parsing:
//!
//! - duration expressions (`[5m+1m]`, `[1h/2:step()]`, `offset (2*1m)`,
//!   `offset -step()`, `min_of(...)`, `max_of(...)`, `range()`), evaluated
//!   for the query's step and range and replaced by plain durations;
//! - the `anchored` / `smoothed` range-selector modifiers, blanked out and
//!   returned as positions so the planner can flag the selectors;
//! - `info()`'s label-selector argument, which may consist only of
//!   matchers that match the empty string (a marker matcher is added and
//!   dropped again by the planner).

use crate::error::QueryError;
use crate::positions::{Tok, Token, tokenize};

/// Label name of the marker matcher added to `info()`'s second argument.
pub const INFO_BYPASS_LABEL: &str = "__fenghuo_info_bypass__";

/// Syntax the rewrite removed, recorded by position for the planner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// `anchored` after a selector.
    Anchored,
    /// `smoothed` after a selector.
    Smoothed,
    /// `</` (trim histogram buckets above), rewritten as `< `.
    TrimUpper,
    /// `>/` (trim histogram buckets below), rewritten as `> `.
    TrimLower,
}

/// The rewritten query.
#[derive(Clone, Debug, Default)]
pub struct Rewritten {
    pub text: String,
    /// Byte offsets (in `text`) where a modifier keyword stood, i.e. just
    /// after the selector it applies to.
    pub modifiers: Vec<(usize, Marker)>,
}

fn bad(msg: impl Into<String>) -> QueryError {
    QueryError::Parse(format!("parse error: {}", msg.into()))
}

/// Rewrites `query` for a query with `step_ms` and `range_ms` (both 0 for
/// instant queries).
pub fn rewrite(query: &str, step_ms: i64, range_ms: i64) -> Result<Rewritten, QueryError> {
    let toks = tokenize(query);
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut modifiers = Vec::new();
    let mut brace_depth = 0i32;
    let ctx = DurCtx {
        step: step_ms as f64 / 1000.0,
        range: range_ms as f64 / 1000.0,
    };
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match t.text {
            "{" => brace_depth += 1,
            "}" => brace_depth -= 1,
            _ => {}
        }
        if brace_depth > 0 {
            i += 1;
            continue;
        }
        if t.text == "[" {
            let Some(j) = matching(&toks, i, "[", "]") else {
                break;
            };
            let inner = &toks[i + 1..j];
            let colon = top_level(inner, ":");
            let (range_part, step_part) = match colon {
                Some(c) => (&inner[..c], Some(&inner[c + 1..])),
                None => (inner, None),
            };
            for part in [Some(range_part), step_part].into_iter().flatten() {
                if part.is_empty() || is_plain_duration(part) {
                    continue;
                }
                let v = eval_part(part, &ctx)?;
                let ms = to_ms(v, false)?;
                edits.push((part[0].pos, end_of(&part[part.len() - 1]), format!("{ms}ms")));
            }
            i = j + 1;
            continue;
        }
        if t.kind == Tok::Ident
            && t.text.eq_ignore_ascii_case("offset")
            && let Some((end_idx, value)) = offset_expr(&toks, i + 1, &ctx)?
        {
            {
                let ms = to_ms(value, true)?;
                if ms == 0 {
                    // `offset 0` is no offset; promql-parser rejects a zero duration.
                    edits.push((t.pos, end_of(&toks[end_idx - 1]), String::new()));
                } else {
                    let text = if ms < 0 {
                        format!("-{}ms", -ms)
                    } else {
                        format!("{ms}ms")
                    };
                    edits.push((toks[i + 1].pos, end_of(&toks[end_idx - 1]), text));
                }
                i = end_idx;
                continue;
            }
        }
        if (t.text == "<" || t.text == ">")
            && toks
                .get(i + 1)
                .is_some_and(|n| n.text == "/" && n.pos == t.pos + 1)
        {
            let m = if t.text == "<" {
                Marker::TrimUpper
            } else {
                Marker::TrimLower
            };
            edits.push((t.pos + 1, t.pos + 2, " ".to_string()));
            modifiers.push((t.pos, m));
            i += 2;
            continue;
        }
        if t.kind == Tok::Ident
            && (t.text.eq_ignore_ascii_case("anchored") || t.text.eq_ignore_ascii_case("smoothed"))
            && i > 0
            && ends_selector(&toks[i - 1])
        {
            let m = if t.text.eq_ignore_ascii_case("anchored") {
                Marker::Anchored
            } else {
                Marker::Smoothed
            };
            edits.push((t.pos, end_of(t), " ".repeat(t.text.len())));
            modifiers.push((t.pos, m));
        }
        if t.kind == Tok::Ident
            && t.text == "info"
            && toks.get(i + 1).is_some_and(|n| n.text == "(")
            && let Some(close) = matching(&toks, i + 1, "(", ")")
            && let Some(comma) = top_level(&toks[i + 2..close], ",")
            && toks.get(i + 2 + comma + 1).is_some_and(|f| f.text == "{")
            && let Some(rb) = matching(&toks, i + 2 + comma + 1, "{", "}")
        {
            let empty = rb == i + 2 + comma + 2;
            let ins = if empty {
                format!("{INFO_BYPASS_LABEL}=\"1\"")
            } else {
                format!(",{INFO_BYPASS_LABEL}=\"1\"")
            };
            edits.push((toks[rb].pos, toks[rb].pos, ins));
        }
        i += 1;
    }
    if edits.is_empty() {
        return Ok(Rewritten {
            text: query.to_string(),
            modifiers,
        });
    }
    edits.sort_by_key(|e| e.0);
    let mut text = String::with_capacity(query.len() + 16);
    let mut last = 0;
    let mut shifted_mods = Vec::new();
    let mut delta: isize = 0;
    let mut mod_iter = modifiers.into_iter().peekable();
    for (start, end, rep) in edits {
        while let Some((p, m)) = mod_iter.peek().copied() {
            if p < start || (p == start && rep.trim().is_empty()) {
                shifted_mods.push(((p as isize + delta) as usize, m));
                mod_iter.next();
            } else {
                break;
            }
        }
        text.push_str(&query[last..start]);
        text.push_str(&rep);
        delta += rep.len() as isize - (end - start) as isize;
        last = end;
    }
    for (p, m) in mod_iter {
        shifted_mods.push(((p as isize + delta) as usize, m));
    }
    text.push_str(&query[last..]);
    Ok(Rewritten {
        text,
        modifiers: shifted_mods,
    })
}

fn end_of(t: &Token) -> usize {
    t.pos + t.text.len()
}

fn ends_selector(t: &Token) -> bool {
    matches!(t.text, "]" | "}" | ")") || t.kind == Tok::Ident || t.kind == Tok::Number
}

/// Index of the token closing the group opened at `open_idx`.
fn matching(toks: &[Token], open_idx: usize, open: &str, close: &str) -> Option<usize> {
    let mut depth = 0;
    for (k, t) in toks.iter().enumerate().skip(open_idx) {
        if t.text == open {
            depth += 1;
        } else if t.text == close {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

/// Index of the first `sep` outside parentheses.
fn top_level(toks: &[Token], sep: &str) -> Option<usize> {
    let mut depth = 0;
    for (k, t) in toks.iter().enumerate() {
        match t.text {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth -= 1,
            s if s == sep && depth == 0 => return Some(k),
            _ => {}
        }
    }
    None
}

fn is_duration_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut units = 0;
    while i < b.len() {
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if st == i {
            return false;
        }
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        if !matches!(&s[us..i], "ms" | "s" | "m" | "h" | "d" | "w" | "y") {
            return false;
        }
        units += 1;
    }
    units > 0
}

/// A single duration (or bare number) token `promql-parser` reads itself.
fn is_plain_duration(part: &[Token]) -> bool {
    part.len() == 1 && (is_duration_literal(part[0].text) || part[0].text.bytes().all(|b| b.is_ascii_digit()))
}

/// Seconds of a number or duration literal.
fn literal_seconds(s: &str) -> Option<f64> {
    if is_duration_literal(s) {
        let b = s.as_bytes();
        let mut i = 0;
        let mut total_ms: f64 = 0.0;
        while i < b.len() {
            let st = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let n: f64 = s[st..i].parse().ok()?;
            let us = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let mult = match &s[us..i] {
                "ms" => 1.0,
                "s" => 1e3,
                "m" => 6e4,
                "h" => 3.6e6,
                "d" => 8.64e7,
                "w" => 6.048e8,
                "y" => 3.1536e10,
                _ => return None,
            };
            total_ms += n * mult;
        }
        return Some(total_ms / 1000.0);
    }
    let lower = s.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok().map(|v| v as f64);
    }
    lower.parse::<f64>().ok()
}

struct DurCtx {
    step: f64,
    range: f64,
}

/// Recursive-descent evaluation of a duration expression.
struct DurParser<'t, 'a> {
    toks: &'t [Token<'a>],
    i: usize,
    ctx: &'t DurCtx,
}

fn prec(op: &str) -> Option<u8> {
    match op {
        "+" | "-" => Some(1),
        "*" | "/" | "%" => Some(2),
        "^" => Some(3),
        _ => None,
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    crate::functions::instant::go_min(a, b)
}

fn go_max(a: f64, b: f64) -> f64 {
    crate::functions::instant::go_max(a, b)
}

impl DurParser<'_, '_> {
    fn peek(&self) -> &str {
        self.toks.get(self.i).map_or("", |t| t.text)
    }

    fn expect(&mut self, s: &str) -> Result<(), QueryError> {
        if self.peek() == s {
            self.i += 1;
            Ok(())
        } else {
            Err(bad(format!(
                "unexpected {:?} in duration expression, expected {s:?}",
                self.peek()
            )))
        }
    }

    fn expr(&mut self, min_prec: u8) -> Result<f64, QueryError> {
        let mut lhs = self.unary()?;
        while let Some(p) = prec(self.peek()) {
            if p < min_prec {
                break;
            }
            let op = self.peek().to_string();
            self.i += 1;
            // `^` is right-associative, the others left-associative.
            let rhs = if op == "^" {
                self.expr(p)?
            } else {
                self.expr(p + 1)?
            };
            lhs = match op.as_str() {
                "+" => lhs + rhs,
                "-" => lhs - rhs,
                "*" => lhs * rhs,
                "/" => {
                    if rhs == 0.0 {
                        return Err(bad("division by zero"));
                    }
                    lhs / rhs
                }
                "%" => {
                    if rhs == 0.0 {
                        return Err(bad("modulo by zero"));
                    }
                    lhs % rhs
                }
                _ => lhs.powf(rhs),
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<f64, QueryError> {
        match self.peek() {
            "-" => {
                self.i += 1;
                Ok(-self.expr(3)?)
            }
            "+" => {
                self.i += 1;
                self.expr(3)
            }
            _ => self.atom(),
        }
    }

    fn atom(&mut self) -> Result<f64, QueryError> {
        let Some(t) = self.toks.get(self.i) else {
            return Err(bad("unexpected end of duration expression"));
        };
        self.i += 1;
        if t.text == "(" {
            let v = self.expr(1)?;
            self.expect(")")?;
            return Ok(v);
        }
        if t.kind == Tok::Number {
            return literal_seconds(t.text).ok_or_else(|| bad(format!("bad duration {:?}", t.text)));
        }
        if t.kind == Tok::Ident {
            let name = t.text.to_ascii_lowercase();
            match name.as_str() {
                "step" | "range" => {
                    self.expect("(")?;
                    self.expect(")")?;
                    return Ok(if name == "step" {
                        self.ctx.step
                    } else {
                        self.ctx.range
                    });
                }
                "min_of" | "max_of" => {
                    self.expect("(")?;
                    let a = self.expr(1)?;
                    self.expect(",")?;
                    let b = self.expr(1)?;
                    self.expect(")")?;
                    return Ok(if name == "min_of" {
                        go_min(a, b)
                    } else {
                        go_max(a, b)
                    });
                }
                _ => {}
            }
        }
        Err(bad(format!("unexpected {:?} in duration expression", t.text)))
    }
}

fn eval_part(part: &[Token], ctx: &DurCtx) -> Result<f64, QueryError> {
    let mut p = DurParser {
        toks: part,
        i: 0,
        ctx,
    };
    let v = p.expr(1)?;
    if p.i != part.len() {
        return Err(bad(format!("unexpected {:?} in duration expression", p.peek())));
    }
    Ok(v)
}

/// Parses what follows `offset` (Prometheus's `offset_duration_expr`): an
/// optionally signed literal, `step()`, `range()`, `min_of/max_of(...)` or a
/// parenthesized expression. Returns the end token index and the value in
/// seconds when it is not a plain literal `promql-parser` reads itself.
fn offset_expr(toks: &[Token], start: usize, ctx: &DurCtx) -> Result<Option<(usize, f64)>, QueryError> {
    let mut k = start;
    let mut sign = 1.0;
    if let Some(t) = toks.get(k)
        && (t.text == "+" || t.text == "-")
    {
        if t.text == "-" {
            sign = -1.0;
        }
        k += 1;
    }
    let Some(t) = toks.get(k) else { return Ok(None) };
    let end = if t.text == "(" {
        matching(toks, k, "(", ")").map(|j| j + 1)
    } else if t.kind == Tok::Ident {
        let name = t.text.to_ascii_lowercase();
        match name.as_str() {
            "step" | "range" => Some(k + 3),
            "min_of" | "max_of" => matching(toks, k + 1, "(", ")").map(|j| j + 1),
            _ => None,
        }
    } else {
        None
    };
    let Some(end) = end else { return Ok(None) };
    if end > toks.len() {
        return Ok(None);
    }
    let v = eval_part(&toks[k..end], ctx)?;
    Ok(Some((end, sign * v)))
}

/// Milliseconds of a duration in seconds, as Prometheus truncates it.
fn to_ms(v: f64, allow_negative: bool) -> Result<i64, QueryError> {
    if v.is_nan() || v.is_infinite() {
        return Err(QueryError::BadData("duration is NaN or infinite".into()));
    }
    if v <= 0.0 && !allow_negative {
        return Err(QueryError::BadData("duration must be greater than 0".into()));
    }
    if !(-9_223_372_036.854_775..=9_223_372_036.854_775).contains(&v) {
        return Err(QueryError::BadData("duration is out of range".into()));
    }
    Ok(((v * 1000.0) as i64).clamp(-crate::plan::MAX_TIME_MS, crate::plan::MAX_TIME_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_expressions_become_literals() {
        let r = rewrite("changes(x[2m*(10+5)])", 0, 0).unwrap();
        assert_eq!(r.text, "changes(x[1800000ms])");
        let r = rewrite("x[29s+1s:5s+5s]", 0, 0).unwrap();
        assert_eq!(r.text, "x[30000ms:10000ms]");
        let r = rewrite("x offset -step()*2", 5000, 10000).unwrap();
        assert_eq!(r.text, "x offset -5000ms*2");
        let r = rewrite("x offset (-2 ^ 2)", 0, 0).unwrap();
        assert_eq!(r.text, "x offset -4000ms");
        assert!(rewrite("x[step()]", 0, 0).is_err());
    }

    #[test]
    fn modifiers_are_recorded() {
        let r = rewrite("increase(metric[1m] anchored)", 0, 0).unwrap();
        assert_eq!(r.text, "increase(metric[1m]         )");
        assert_eq!(r.modifiers, vec![(20, Marker::Anchored)]);
    }

    #[test]
    fn info_selector_gets_marker() {
        let r = rewrite(r#"info(m, {data=~".*"})"#, 0, 0).unwrap();
        assert_eq!(
            r.text,
            format!(r#"info(m, {{data=~".*",{INFO_BYPASS_LABEL}="1"}})"#)
        );
    }
}

#[cfg(test)]
mod offset_zero_tests {
    use super::*;

    #[test]
    fn zero_offset_is_dropped() {
        let r = rewrite("metric1_total offset range()", 0, 0).unwrap();
        assert_eq!(r.text.trim(), "metric1_total");
    }
}
