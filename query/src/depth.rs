//! Bounds how deeply a PromQL expression can nest, before anything parses it.
//!
//! `promql-parser` builds, formats and drops its AST recursively, and so do
//! the planner and the evaluator: a query nested ten thousand levels deep
//! (`((((…1…))))`, or `1+1+1+…`, which parses into a left-deep chain of
//! binary expressions) overflowed a thread's stack and aborted the whole
//! process. Go's growable stacks spare Prometheus that; fenghuo refuses such
//! queries with a `bad_data` error instead, and runs query work on a stack of
//! known size ([`run_with_stack`]) deep enough for any query this check lets
//! through.
//!
//! The check works on tokens, not on the AST, so it cannot itself recurse.
//! It computes an upper bound of the AST's depth: every bracket group
//! (`(`, `[`, `{`) adds a level below the level it opens in, and every
//! operator at a level (binary or unary operators, the set operators, a
//! subquery or range `[` that wraps the expression before it) may add one
//! more, since a chain of n operators parses into n nested nodes. The bound
//! is exact for chains and nested parentheses and close for real queries.

use crate::error::QueryError;
use crate::positions::{Tok, tokenize};

/// The deepest expression a query may contain. Far above what people and
/// Grafana write (a few dozen levels), far below what the stack given by
/// [`run_with_stack`] holds in a debug build.
pub const MAX_EXPRESSION_DEPTH: usize = 1000;

/// Stack for parsing, planning, evaluating, formatting and dropping one
/// query. Only the pages a query touches are ever committed.
pub const QUERY_STACK_BYTES: usize = 256 << 20;

/// Refuses `query` when its expression may nest deeper than
/// [`MAX_EXPRESSION_DEPTH`], with a message naming the limit.
pub fn check_depth(query: &str) -> Result<(), QueryError> {
    let depth = depth_bound(query, MAX_EXPRESSION_DEPTH);
    if depth > MAX_EXPRESSION_DEPTH {
        return Err(QueryError::Parse(format!(
            "parse error: expression nests deeper than the limit of {MAX_EXPRESSION_DEPTH} levels \
             (parentheses, operator chains, subqueries)"
        )));
    }
    Ok(())
}

/// Parses `query` with `promql-parser` after [`check_depth`]; errors in
/// Prometheus's "parse error" form. Callers run it under [`run_with_stack`].
pub fn parse(query: &str) -> Result<promql_parser::parser::Expr, QueryError> {
    check_depth(query)?;
    parse_checked(query)
}

/// [`parse`] for text whose depth was already checked (the engine checks
/// the query before rewriting it; the rewrite only makes it shallower).
pub(crate) fn parse_checked(query: &str) -> Result<promql_parser::parser::Expr, QueryError> {
    // promql-parser panics on some input (a range of 10^25 seconds overflows its
    // `Duration` conversion; found by AFL). A parser panic is the query's fault: bad_data.
    std::panic::catch_unwind(|| promql_parser::parser::parse(query))
        .map_err(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the parser failed".into());
            QueryError::Parse(format!("parse error: {why}"))
        })?
        .map_err(|e| QueryError::Parse(format!("parse error: {e}")))
}

/// Runs `f` on a stack of [`QUERY_STACK_BYTES`] (a fresh segment when the
/// current one has less left), whatever thread calls it.
pub fn run_with_stack<T>(f: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(QUERY_STACK_BYTES / 2, QUERY_STACK_BYTES, f)
}

/// An upper bound of the nesting depth of `query`'s expression; stops
/// counting once it is past `give_up` (the answer is then only known to be
/// larger).
pub fn depth_bound(query: &str, give_up: usize) -> usize {
    // One frame per open bracket group: the operators seen at its level and
    // the deepest bound among the groups closed inside it.
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    for tok in tokenize(query) {
        let text = tok.text;
        let is_operator = match tok.kind {
            Tok::Punct => matches!(
                text,
                "+" | "-" | "*" | "/" | "%" | "^" | "==" | "!=" | "<" | ">" | "<=" | ">=" | "["
            ),
            Tok::Ident => ["and", "or", "unless", "atan2"]
                .iter()
                .any(|k| text.eq_ignore_ascii_case(k)),
            Tok::Number | Tok::Str => false,
        };
        if is_operator && let Some(top) = stack.last_mut() {
            top.0 += 1;
        }
        match text {
            "(" | "[" | "{" => stack.push((0, 0)),
            ")" | "]" | "}" if stack.len() > 1 => {
                let (ops, deepest) = stack.pop().unwrap_or_default();
                if let Some(parent) = stack.last_mut() {
                    parent.1 = parent.1.max(ops + deepest + 1);
                }
            }
            _ => {}
        }
        let open = stack.len() - 1;
        let top = stack.last().map_or(0, |(ops, deepest)| ops + deepest);
        if open + top > give_up {
            return open + top + 1;
        }
    }
    // Groups left open by a malformed query still count.
    let mut bound = 0;
    while let Some((ops, deepest)) = stack.pop() {
        bound = ops + deepest.max(bound) + 1;
    }
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_parens(n: usize) -> String {
        format!("{}1{}", "(".repeat(n), ")".repeat(n))
    }

    #[test]
    fn ordinary_queries_are_shallow() {
        for (q, at_most) in [
            ("up", 1),
            ("sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m]))", 6),
            ("a + b * c - d", 4),
            ("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))", 8),
            ("max_over_time(rate(x[1m])[5m:30s])", 6),
        ] {
            let d = depth_bound(q, 100);
            assert!((1..=at_most).contains(&d), "{q}: {d}");
        }
    }

    #[test]
    fn bound_covers_the_real_depth() {
        // Each of these nests about n levels deep in the AST.
        let n = 50;
        for q in [
            nested_parens(n),
            vec!["1"; n + 1].join("+"),
            vec!["x"; n + 1].join(" or "),
            format!("{}1", "-".repeat(n)),
            format!("x{}", "[1m:]".repeat(n)),
            format!("{}x{}", "abs(".repeat(n), ")".repeat(n)),
        ] {
            let d = depth_bound(&q, 10_000);
            assert!(d >= n, "{q}: {d}");
            assert!(d <= 2 * n + 2, "{q}: {d}");
        }
    }

    #[test]
    fn operators_inside_strings_and_comments_do_not_count() {
        let q = format!("x{{a=\"{}\"}} # {}", "+(".repeat(5000), "+(".repeat(5000));
        assert!(depth_bound(&q, 10_000) < 5);
        check_depth(&q).unwrap();
    }

    #[test]
    fn parser_panics_are_parse_errors() {
        // promql-parser converts this range to a Duration and panics on the overflow.
        let e = parse("rate(up[5555555555555555555555555])").unwrap_err();
        assert_eq!(e.error_type(), "bad_data");
        assert!(e.to_string().contains("parse error"), "{e}");
    }

    #[test]
    fn deep_queries_are_refused_naming_the_limit() {
        for q in [
            nested_parens(10_000),
            vec!["1"; 10_001].join("+"),
            format!("x{}", "[1m:]".repeat(2_000)),
            "(".repeat(100_000),
        ] {
            let e = check_depth(&q).unwrap_err();
            assert_eq!(e.error_type(), "bad_data");
            assert!(e.to_string().contains("limit of 1000"), "{e}");
        }
        check_depth(&nested_parens(MAX_EXPRESSION_DEPTH - 1)).unwrap();
    }
}
