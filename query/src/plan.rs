//! The engine's expression tree and the lowering from `promql-parser`'s AST.
//!
//! Lowering resolves everything that is fixed for one query execution, as
//! Prometheus's `PreprocessExpr` does: `start()`/`end()`/`range()`/`step()`
//! become numbers, `@ start()`/`@ end()` become timestamps, parentheses
//! around function and aggregation arguments disappear, and the largest
//! step-invariant subtrees are wrapped so they are evaluated once. Every
//! node also records where it starts in the query text, for annotations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fenghuo_storage_api::model::{MatchOp, Matcher};
use promql_parser::label::{MatchOp as PMatchOp, Matcher as PMatcher};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self as pp, AtModifier, Expr, LabelModifier, Offset, VectorMatchCardinality};

use crate::error::QueryError;
use crate::extensions::{INFO_BYPASS_LABEL, Marker};
use crate::positions::{Cursor, Tok};

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eql,
    Neq,
    Gtr,
    Lss,
    Gte,
    Lte,
    And,
    Or,
    Unless,
    /// `</`: keep the histogram's observations below the scalar.
    TrimUpper,
    /// `>/`: keep the histogram's observations above the scalar.
    TrimLower,
}

impl BinOp {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "+" => BinOp::Add,
            "-" => BinOp::Sub,
            "*" => BinOp::Mul,
            "/" => BinOp::Div,
            "%" => BinOp::Mod,
            "^" => BinOp::Pow,
            "atan2" => BinOp::Atan2,
            "==" => BinOp::Eql,
            "!=" => BinOp::Neq,
            ">" => BinOp::Gtr,
            "<" => BinOp::Lss,
            ">=" => BinOp::Gte,
            "<=" => BinOp::Lte,
            "and" => BinOp::And,
            "or" => BinOp::Or,
            "unless" => BinOp::Unless,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Atan2 => "atan2",
            BinOp::Eql => "==",
            BinOp::Neq => "!=",
            BinOp::Gtr => ">",
            BinOp::Lss => "<",
            BinOp::Gte => ">=",
            BinOp::Lte => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
            BinOp::TrimUpper => "</",
            BinOp::TrimLower => ">/",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eql | BinOp::Neq | BinOp::Gtr | BinOp::Lss | BinOp::Gte | BinOp::Lte
        )
    }

    /// Operators whose result no longer means what the metric name says.
    pub fn changes_metric_schema(self) -> bool {
        matches!(
            self,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Pow | BinOp::Mod | BinOp::Atan2
        )
    }
}

/// Aggregation operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    TopK,
    BottomK,
    CountValues,
    Quantile,
    LimitK,
    LimitRatio,
}

impl AggOp {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "count" => AggOp::Count,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "group" => AggOp::Group,
            "stddev" => AggOp::Stddev,
            "stdvar" => AggOp::Stdvar,
            "topk" => AggOp::TopK,
            "bottomk" => AggOp::BottomK,
            "count_values" => AggOp::CountValues,
            "quantile" => AggOp::Quantile,
            "limitk" => AggOp::LimitK,
            "limit_ratio" => AggOp::LimitRatio,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Avg => "avg",
            AggOp::Count => "count",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Group => "group",
            AggOp::Stddev => "stddev",
            AggOp::Stdvar => "stdvar",
            AggOp::TopK => "topk",
            AggOp::BottomK => "bottomk",
            AggOp::CountValues => "count_values",
            AggOp::Quantile => "quantile",
            AggOp::LimitK => "limitk",
            AggOp::LimitRatio => "limit_ratio",
        }
    }
}

/// How the two sides of a vector/vector operation are matched.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorMatching {
    pub card: Card,
    /// `on(...)` when true, `ignoring(...)` otherwise.
    pub on: bool,
    pub labels: Vec<String>,
    /// Extra labels copied from the "one" side (`group_left(...)`).
    pub include: Vec<String>,
    pub fill_lhs: Option<f64>,
    pub fill_rhs: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

/// A vector selector with its time modifiers resolved to milliseconds.
#[derive(Clone, Debug)]
pub struct Selector {
    /// Index of the fetched series in the evaluation context.
    pub id: usize,
    /// Matcher sets; a series matching any set is selected (`or` in braces).
    pub matcher_sets: Vec<Vec<Matcher>>,
    /// `offset` in ms (positive looks back).
    pub offset: i64,
    /// `@` timestamp in ms.
    pub at: Option<i64>,
    pub pos: usize,
    /// `anchored` / `smoothed` modifiers (Prometheus 3 extended selectors).
    pub anchored: bool,
    pub smoothed: bool,
}

impl Selector {
    /// The matchers of the selector in Prometheus's `LabelMatchers` order
    /// (the metric name matcher last), first set only.
    pub fn matchers(&self) -> &[Matcher] {
        self.matcher_sets.first().map_or(&[], |m| m.as_slice())
    }
}

/// One node of the engine's expression tree.
#[derive(Clone, Debug)]
pub enum Node {
    Number {
        v: f64,
        pos: usize,
    },
    /// `invalid` holds the Go-quoted form when the literal's escapes
    /// produce bytes that are not UTF-8 (Go keeps them, Rust cannot).
    Str {
        v: String,
        pos: usize,
        invalid: Option<String>,
    },
    Vector(Selector),
    Matrix {
        sel: Selector,
        range: i64,
    },
    Subquery(Box<Subquery>),
    Call(Box<Call>),
    Aggregate(Box<Aggregate>),
    Binary(Box<Binary>),
    Neg {
        expr: Box<Node>,
        pos: usize,
    },
    Paren {
        expr: Box<Node>,
        pos: usize,
    },
    /// Evaluated once at the start time; the result is repeated per step.
    StepInvariant(Box<Node>),
}

#[derive(Clone, Debug)]
pub struct Subquery {
    pub expr: Node,
    pub range: i64,
    /// Resolved step (the default step when none was written).
    pub step: i64,
    pub offset: i64,
    pub at: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub name: &'static str,
    pub args: Vec<Node>,
    pub ret: ValueType,
    pub pos: usize,
}

#[derive(Clone, Debug)]
pub struct Aggregate {
    pub op: AggOp,
    pub expr: Node,
    pub param: Option<Node>,
    /// Sorted grouping labels.
    pub grouping: Vec<String>,
    pub without: bool,
    pub pos: usize,
}

#[derive(Clone, Debug)]
pub struct Binary {
    pub op: BinOp,
    pub lhs: Node,
    pub rhs: Node,
    /// Set for vector/vector operations.
    pub matching: Option<VectorMatching>,
    pub return_bool: bool,
}

impl Node {
    pub fn value_type(&self) -> ValueType {
        match self {
            Node::Number { .. } => ValueType::Scalar,
            Node::Str { .. } => ValueType::String,
            Node::Vector(_) => ValueType::Vector,
            Node::Matrix { .. } | Node::Subquery(_) => ValueType::Matrix,
            Node::Call(c) => c.ret,
            Node::Aggregate(_) => ValueType::Vector,
            Node::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar && b.rhs.value_type() == ValueType::Scalar {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Node::Neg { expr, .. } | Node::Paren { expr, .. } | Node::StepInvariant(expr) => {
                expr.value_type()
            }
        }
    }

    /// Byte offset where the expression starts in the query text.
    pub fn pos(&self) -> usize {
        match self {
            Node::Number { pos, .. }
            | Node::Str { pos, .. }
            | Node::Neg { pos, .. }
            | Node::Paren { pos, .. } => *pos,
            Node::Vector(s) | Node::Matrix { sel: s, .. } => s.pos,
            Node::Subquery(s) => s.expr.pos(),
            Node::Call(c) => c.pos,
            Node::Aggregate(a) => a.pos,
            Node::Binary(b) => b.lhs.pos(),
            Node::StepInvariant(e) => e.pos(),
        }
    }

    /// The node without enclosing parentheses and step-invariant wrappers.
    pub fn unwrapped(&self) -> &Node {
        match self {
            Node::Paren { expr, .. } | Node::StepInvariant(expr) => expr.unwrapped(),
            n => n,
        }
    }
}

/// Query-wide facts the lowering needs.
pub struct LowerCtx {
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub lookback: i64,
    pub default_subquery_step: i64,
    pub enable_experimental: bool,
    /// Positions of `anchored`/`smoothed` keywords removed from the text.
    pub modifiers: Vec<(usize, Marker)>,
}

/// A selector's fetch window, as Prometheus's `getTimeRangesForSelector`.
#[derive(Clone, Debug)]
pub struct FetchSpec {
    pub matcher_sets: Vec<Vec<Matcher>>,
    /// Used as a range selector (stale markers are dropped up front).
    pub matrix: bool,
    /// Only histogram count and sum are needed (Prometheus's
    /// `SkipHistogramBuckets`): buckets are dropped and counter resets are
    /// detected on read, as Prometheus's `HistogramStatsIterator` does.
    pub stats_only: bool,
    pub anchored: bool,
    pub smoothed: bool,
    pub start: i64,
    pub end: i64,
}

/// The lowered query.
pub struct Plan {
    pub root: Node,
    pub fetches: Vec<FetchSpec>,
}

/// Largest time or duration the engine computes with (about 142,000
/// years in ms). Absurd offsets, ranges and `@` times are clamped to it so
/// that sums of a few of them never overflow `i64`.
pub const MAX_TIME_MS: i64 = 1 << 52;

fn duration_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).min(MAX_TIME_MS)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}

fn parse_error(src: &str, pos: usize, msg: impl std::fmt::Display) -> QueryError {
    let (line, col) = line_col(src, pos);
    QueryError::Parse(format!("{line}:{col}: parse error: {msg}"))
}

fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let before = &src.as_bytes()[..pos];
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let last_break = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(-1, |i| i as isize);
    (line, (pos as isize - last_break) as usize)
}

/// Go's `strconv.Unquote` to raw bytes (escapes may produce non-UTF-8).
fn go_unquote_bytes(lit: &str) -> Option<Vec<u8>> {
    let b = lit.as_bytes();
    let q = *b.first()?;
    if q == b'`' {
        return Some(b.get(1..b.len().saturating_sub(1))?.to_vec());
    }
    let inner = b.get(1..b.len().checked_sub(1)?)?;
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] != b'\\' {
            out.push(inner[i]);
            i += 1;
            continue;
        }
        let e = *inner.get(i + 1)?;
        i += 2;
        match e {
            b'x' => {
                let h = std::str::from_utf8(inner.get(i..i + 2)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            b'0'..=b'7' => {
                let h = std::str::from_utf8(inner.get(i - 1..i + 2)?).ok()?;
                out.push(u8::from_str_radix(h, 8).ok()?);
                i += 2;
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let h = std::str::from_utf8(inner.get(i..i + n)?).ok()?;
                let c = char::from_u32(u32::from_str_radix(h, 16).ok()?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += n;
            }
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            other => out.push(other),
        }
    }
    Some(out)
}

/// Go's `%q` of a byte string: invalid UTF-8 bytes print as `\xNN`.
fn go_quote_bytes(b: &[u8]) -> String {
    let mut out = String::from("\"");
    let mut rest = b;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(&crate::gofmt::quote(s)[1..crate::gofmt::quote(s).len() - 1]);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                if let Ok(s) = std::str::from_utf8(good) {
                    let q = crate::gofmt::quote(s);
                    out.push_str(&q[1..q.len() - 1]);
                }
                out.push_str(&format!("\\x{:02x}", bad[0]));
                rest = &bad[1..];
            }
        }
    }
    out.push('"');
    out
}

/// Converts a `promql-parser` matcher into a storage matcher. Go's regex
/// syntax accepts a literal `{` that Rust's rejects, so retry escaped.
pub fn convert_matcher(m: &PMatcher) -> Result<Matcher, QueryError> {
    let (op, value) = match &m.op {
        PMatchOp::Equal => (MatchOp::Equal, m.value.clone()),
        PMatchOp::NotEqual => (MatchOp::NotEqual, m.value.clone()),
        PMatchOp::Re(_) => (MatchOp::Regex, m.value.clone()),
        PMatchOp::NotRe(_) => (MatchOp::NotRegex, m.value.clone()),
    };
    Matcher::new(op, m.name.clone(), value.clone())
        .or_else(|_| Matcher::new(op, m.name.clone(), escape_braces(&value)))
        .map_err(|e| QueryError::Parse(format!("parse error: {e}")))
}

/// Escapes `{` that does not start a valid repetition (`{n}`, `{n,}`, `{n,m}`).
fn escape_braces(re: &str) -> String {
    let b = re.as_bytes();
    let mut out = String::with_capacity(re.len());
    let mut i = 0;
    while i < b.len() {
        let c = re[i..].chars().next().unwrap_or('\0');
        if c == '\\' {
            let next = re[i + 1..].chars().next().map_or(0, char::len_utf8);
            out.push_str(&re[i..i + 1 + next]);
            i += 1 + next;
            continue;
        }
        if c == '{' {
            let rest = &re[i + 1..];
            let close = rest.find('}');
            let valid = close.is_some_and(|j| {
                let inner = &rest[..j];
                let mut parts = inner.splitn(2, ',');
                let first = parts.next().unwrap_or("");
                !first.is_empty()
                    && first.bytes().all(|d| d.is_ascii_digit())
                    && parts.next().is_none_or(|s| s.bytes().all(|d| d.is_ascii_digit()))
            });
            if !valid {
                out.push_str("\\{");
                i += 1;
                continue;
            }
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

struct Lowerer<'a> {
    src: &'a str,
    cur: Cursor<'a>,
    ctx: &'a LowerCtx,
    fetches: Vec<FetchSpec>,
    /// Selectors nested in info()'s label-selector argument are not fetched.
    no_fetch: bool,
}

/// Lowers `expr` (parsed from `src`) for one execution.
pub fn lower(expr: &Expr, src: &str, ctx: &LowerCtx) -> Result<Plan, QueryError> {
    let mut l = Lowerer {
        src,
        cur: Cursor::new(src),
        ctx,
        fetches: Vec::new(),
        no_fetch: false,
    };
    let mut root = l.lower(expr)?;
    let (_, wrap) = preprocess(&mut root);
    if wrap {
        root = Node::StepInvariant(Box::new(root));
    }
    let mut plan = Plan {
        root,
        fetches: l.fetches,
    };
    compute_fetch_ranges(&mut plan, ctx);
    mark_stats_only(&plan.root, false, &mut plan.fetches);
    Ok(plan)
}

impl Lowerer<'_> {
    fn skip_unary_plus(&mut self) {
        while self.cur.peek_text() == "+" {
            self.cur.bump();
        }
    }

    fn lower(&mut self, expr: &Expr) -> Result<Node, QueryError> {
        self.skip_unary_plus();
        match expr {
            Expr::NumberLiteral(n) => {
                let pos = self.cur.pos();
                while matches!(self.cur.peek_text(), "-" | "+") {
                    self.cur.bump();
                }
                if matches!(self.cur.peek().map(|t| t.kind), Some(Tok::Number | Tok::Ident)) {
                    self.cur.bump();
                }
                Ok(Node::Number { v: n.val, pos })
            }
            Expr::StringLiteral(s) => {
                let pos = self.cur.pos();
                let mut invalid = None;
                if let Some(t) = self.cur.peek().filter(|t| t.kind == Tok::Str) {
                    if let Some(bytes) = go_unquote_bytes(t.text)
                        && std::str::from_utf8(&bytes).is_err()
                    {
                        invalid = Some(go_quote_bytes(&bytes));
                    }
                    self.cur.bump();
                }
                Ok(Node::Str {
                    v: s.val.clone(),
                    pos,
                    invalid,
                })
            }
            Expr::VectorSelector(vs) => {
                let pos = self.cur.pos();
                self.walk_selector_body(vs);
                self.walk_modifiers();
                Ok(Node::Vector(self.selector(vs, pos, false)?))
            }
            Expr::MatrixSelector(ms) => {
                let pos = self.cur.pos();
                self.walk_selector_body(&ms.vs);
                self.walk_modifiers();
                self.cur.skip_group("[", "]");
                self.walk_modifiers();
                Ok(Node::Matrix {
                    sel: self.selector(&ms.vs, pos, true)?,
                    range: duration_ms(&ms.range),
                })
            }
            Expr::Subquery(sq) => {
                let inner = self.lower(&sq.expr)?;
                self.cur.skip_group("[", "]");
                self.walk_modifiers();
                let step = match &sq.step {
                    Some(d) if !d.is_zero() => duration_ms(d),
                    _ => self.ctx.default_subquery_step,
                };
                Ok(Node::Subquery(Box::new(Subquery {
                    expr: inner,
                    range: duration_ms(&sq.range),
                    step,
                    offset: offset_ms(&sq.offset),
                    at: self.at(&sq.at),
                })))
            }
            Expr::Paren(p) => {
                let pos = self.cur.pos();
                self.cur.eat("(");
                let inner = self.lower(&p.expr)?;
                self.cur.eat(")");
                Ok(Node::Paren {
                    expr: Box::new(inner),
                    pos,
                })
            }
            Expr::Unary(u) => {
                let pos = self.cur.pos();
                self.cur.eat("-");
                let inner = self.lower(&u.expr)?;
                Ok(Node::Neg {
                    expr: Box::new(inner),
                    pos,
                })
            }
            Expr::Call(c) => self.lower_call(c),
            Expr::Aggregate(a) => self.lower_aggregate(a),
            Expr::Binary(b) => self.lower_binary(b),
            Expr::Extension(_) => Err(QueryError::Parse("parse error: unsupported expression".into())),
        }
    }

    fn walk_selector_body(&mut self, vs: &pp::VectorSelector) {
        if vs.name.is_some() && self.cur.peek().is_some_and(|t| t.kind == Tok::Ident) {
            self.cur.bump();
        }
        if self.cur.peek_text() == "{" {
            self.cur.skip_group("{", "}");
        }
    }

    /// Consumes `offset <dur>` and `@ <time>` in any order.
    fn walk_modifiers(&mut self) {
        loop {
            if self.cur.eat("offset") {
                while matches!(self.cur.peek_text(), "-" | "+") {
                    self.cur.bump();
                }
                self.cur.bump();
            } else if self.cur.eat("@") {
                while matches!(self.cur.peek_text(), "-" | "+") {
                    self.cur.bump();
                }
                let is_fn = matches!(self.cur.peek_text(), "start" | "end");
                self.cur.bump();
                if is_fn {
                    self.cur.skip_group("(", ")");
                }
            } else {
                return;
            }
        }
    }

    fn at(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.ctx.start),
            Some(AtModifier::End) => Some(self.ctx.end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    fn selector(
        &mut self,
        vs: &pp::VectorSelector,
        pos: usize,
        matrix: bool,
    ) -> Result<Selector, QueryError> {
        let mut sets: Vec<Vec<Matcher>> = Vec::new();
        let raw_sets: Vec<&Vec<PMatcher>> = if vs.matchers.or_matchers.is_empty() {
            vec![&vs.matchers.matchers]
        } else {
            vs.matchers.or_matchers.iter().collect()
        };
        for raw in raw_sets {
            let mut set = raw
                .iter()
                .filter(|m| m.name != INFO_BYPASS_LABEL)
                .map(convert_matcher)
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(name) = &vs.name {
                set.push(Matcher::equal(
                    fenghuo_storage_api::model::METRIC_NAME,
                    name.clone(),
                ));
            }
            sets.push(set);
        }
        let id = self.fetches.len();
        self.fetches.push(FetchSpec {
            matcher_sets: if self.no_fetch { Vec::new() } else { sets.clone() },
            matrix,
            stats_only: false,
            anchored: false,
            smoothed: false,
            start: 0,
            end: 0,
        });
        // A modifier keyword stood between the selector's last token and
        // the next one.
        let (from, to) = (self.cur.last_end(), self.cur.pos());
        let has = |m: Marker| {
            self.ctx
                .modifiers
                .iter()
                .any(|(p, k)| *k == m && *p >= from && *p < to)
        };
        let (anchored, smoothed) = (has(Marker::Anchored), has(Marker::Smoothed));
        if let Some(f) = self.fetches.last_mut() {
            f.anchored = anchored;
            f.smoothed = smoothed;
        }
        Ok(Selector {
            id,
            matcher_sets: sets,
            offset: offset_ms(&vs.offset),
            at: self.at(&vs.at),
            pos,
            anchored,
            smoothed,
        })
    }

    fn lower_call(&mut self, c: &pp::Call) -> Result<Node, QueryError> {
        let pos = self.cur.pos();
        let name = c.func.name;
        if c.func.experimental && !self.ctx.enable_experimental {
            return Err(parse_error(
                self.src,
                pos,
                format!("function \"{name}\" is not enabled"),
            ));
        }
        self.cur.bump(); // function name
        self.cur.eat("(");
        let mut args = Vec::with_capacity(c.args.args.len());
        for (i, a) in c.args.args.iter().enumerate() {
            if i > 0 {
                self.cur.eat(",");
            }
            let saved = self.no_fetch;
            if name == "info" && i == 1 {
                self.no_fetch = true;
            }
            let node = self.lower(a)?;
            self.no_fetch = saved;
            args.push(node);
        }
        self.cur.eat(")");
        // start(), end(), range() and step() are constant for one execution.
        let folded = match name {
            "start" => Some(self.ctx.start as f64 / 1000.0),
            "end" => Some(self.ctx.end as f64 / 1000.0),
            "range" => Some((self.ctx.end - self.ctx.start) as f64 / 1000.0),
            "step" => Some(if self.ctx.start == self.ctx.end {
                0.0
            } else {
                self.ctx.step as f64 / 1000.0
            }),
            _ => None,
        };
        if let Some(v) = folded {
            return Ok(Node::Number { v, pos });
        }
        Ok(Node::Call(Box::new(Call {
            name,
            args,
            ret: c.func.return_type,
            pos,
        })))
    }

    fn walk_grouping(&mut self) {
        if matches!(
            self.cur.peek_text().to_ascii_lowercase().as_str(),
            "by" | "without"
        ) {
            self.cur.bump();
            self.cur.skip_group("(", ")");
        }
    }

    fn lower_aggregate(&mut self, a: &pp::AggregateExpr) -> Result<Node, QueryError> {
        let pos = self.cur.pos();
        let opname = a.op.to_string();
        let op = AggOp::parse(&opname)
            .ok_or_else(|| parse_error(self.src, pos, format!("unknown aggregation operator {opname}")))?;
        if matches!(op, AggOp::LimitK | AggOp::LimitRatio) && !self.ctx.enable_experimental {
            return Err(parse_error(
                self.src,
                pos,
                format!(
                    "{opname}() is experimental and must be enabled with --enable-feature=promql-experimental-functions"
                ),
            ));
        }
        self.cur.bump();
        self.walk_grouping();
        self.cur.eat("(");
        let param = match &a.param {
            Some(p) => {
                let n = self.lower(p)?;
                self.cur.eat(",");
                Some(n)
            }
            None => None,
        };
        let expr = self.lower(&a.expr)?;
        self.cur.eat(")");
        self.walk_grouping();
        let (mut grouping, without) = match &a.modifier {
            None => (Vec::new(), false),
            Some(LabelModifier::Include(ls)) => (ls.labels.clone(), false),
            Some(LabelModifier::Exclude(ls)) => (ls.labels.clone(), true),
        };
        grouping.sort();
        Ok(Node::Aggregate(Box::new(Aggregate {
            op,
            expr: strip_parens(expr),
            param: param.map(strip_parens),
            grouping,
            without,
            pos,
        })))
    }

    fn lower_binary(&mut self, b: &pp::BinaryExpr) -> Result<Node, QueryError> {
        let lhs = self.lower(&b.lhs)?;
        let opname = b.op.to_string();
        let mut op = BinOp::parse(&opname)
            .ok_or_else(|| parse_error(self.src, lhs.pos(), format!("unknown binary operator {opname}")))?;
        // `</` and `>/` were rewritten to `<` and `>`; the marker says which.
        let op_pos = self.cur.pos();
        for (p, m) in &self.ctx.modifiers {
            if *p == op_pos {
                match (m, op) {
                    (Marker::TrimUpper, BinOp::Lss) => op = BinOp::TrimUpper,
                    (Marker::TrimLower, BinOp::Gtr) => op = BinOp::TrimLower,
                    _ => {}
                }
            }
        }
        self.cur.bump(); // operator
        // Modifiers: bool, on/ignoring(...), group_left/right(...), fill*(...).
        loop {
            let t = self.cur.peek_text().to_ascii_lowercase();
            match t.as_str() {
                "bool" => self.cur.bump(),
                "on" | "ignoring" | "fill" | "fill_left" | "fill_right" => {
                    self.cur.bump();
                    self.cur.skip_group("(", ")");
                }
                "group_left" | "group_right" => {
                    self.cur.bump();
                    if self.cur.peek_text() == "(" {
                        self.cur.skip_group("(", ")");
                    }
                }
                _ => break,
            }
        }
        let rhs = self.lower(&b.rhs)?;
        let both_vectors = lhs.value_type() == ValueType::Vector && rhs.value_type() == ValueType::Vector;
        let modifier = b.modifier.clone().unwrap_or_default();
        let matching = if both_vectors {
            let (card, include) = match &modifier.card {
                VectorMatchCardinality::OneToOne => (Card::OneToOne, Vec::new()),
                VectorMatchCardinality::ManyToOne(ls) => (Card::ManyToOne, ls.labels.clone()),
                VectorMatchCardinality::OneToMany(ls) => (Card::OneToMany, ls.labels.clone()),
                VectorMatchCardinality::ManyToMany => (Card::ManyToMany, Vec::new()),
            };
            let card = if matches!(op, BinOp::And | BinOp::Or | BinOp::Unless) {
                Card::ManyToMany
            } else {
                card
            };
            let (on, labels) = match &modifier.matching {
                Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
                Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
                None => (false, Vec::new()),
            };
            Some(VectorMatching {
                card,
                on,
                labels,
                include,
                fill_lhs: modifier.fill_values.lhs,
                fill_rhs: modifier.fill_values.rhs,
            })
        } else {
            None
        };
        Ok(Node::Binary(Box::new(Binary {
            op,
            lhs,
            rhs,
            matching,
            return_bool: modifier.return_bool,
        })))
    }
}

/// Removes parentheses around a function or aggregation argument, as
/// Prometheus's `unwrapParenExpr` does (positions then refer to the inside).
fn strip_parens(n: Node) -> Node {
    match n {
        Node::Paren { expr, .. } => strip_parens(*expr),
        n => n,
    }
}

/// Functions whose value depends on the evaluation time even when their
/// arguments do not (Prometheus's `AtModifierUnsafeFunctions`).
pub fn is_at_modifier_unsafe(name: &str) -> bool {
    matches!(
        name,
        "days_in_month"
            | "day_of_month"
            | "day_of_week"
            | "day_of_year"
            | "end"
            | "hour"
            | "minute"
            | "month"
            | "year"
            | "predict_linear"
            | "range"
            | "start"
            | "step"
            | "time"
            | "timestamp"
    )
}

/// Prometheus's `preprocessExprHelper`: wraps the largest step-invariant
/// subtrees. Returns (is step invariant, should the caller wrap it).
fn preprocess(n: &mut Node) -> (bool, bool) {
    match n {
        Node::Vector(sel) => (sel.at.is_some(), sel.at.is_some()),
        Node::Aggregate(a) => {
            // Like Prometheus, the parameter is not considered.
            preprocess(&mut a.expr)
        }
        Node::Binary(b) => {
            let (inv_l, wrap_l) = preprocess(&mut b.lhs);
            let (inv_r, wrap_r) = preprocess(&mut b.rhs);
            if inv_l && inv_r {
                return (true, true);
            }
            if wrap_l {
                wrap(&mut b.lhs);
            }
            if wrap_r {
                wrap(&mut b.rhs);
            }
            (false, false)
        }
        Node::Call(c) => {
            let mut invariant = !is_at_modifier_unsafe(c.name);
            let mut timestamp_safe = c.name == "timestamp";
            let mut wraps = Vec::with_capacity(c.args.len());
            for a in c.args.iter_mut() {
                if let Node::Paren { .. } = a {
                    let inner = std::mem::replace(a, Node::Number { v: 0.0, pos: 0 });
                    *a = strip_parens(inner);
                }
                let (arg_inv, arg_wrap) = preprocess(a);
                invariant &= arg_inv;
                if !arg_inv || !matches!(a, Node::Vector(_)) {
                    timestamp_safe = false;
                }
                wraps.push(arg_wrap);
            }
            if invariant || timestamp_safe {
                return (true, true);
            }
            for (a, w) in c.args.iter_mut().zip(wraps) {
                if w {
                    wrap(a);
                }
            }
            (false, false)
        }
        Node::Matrix { sel, .. } => (sel.at.is_some(), false),
        Node::Subquery(s) => {
            let (inv, _) = preprocess(&mut s.expr);
            if inv {
                wrap(&mut s.expr);
            }
            (s.at.is_some(), false)
        }
        Node::Paren { expr, .. } | Node::Neg { expr, .. } => preprocess(expr),
        Node::Str { .. } | Node::Number { .. } => (true, false),
        Node::StepInvariant(_) => (true, false),
    }
}

fn wrap(n: &mut Node) {
    let inner = std::mem::replace(n, Node::Number { v: 0.0, pos: 0 });
    *n = Node::StepInvariant(Box::new(inner));
}

/// Marks selectors whose nearest relevant ancestor is
/// `histogram_count/sum/avg` (not a subquery or a function needing buckets).
fn mark_stats_only(n: &Node, stats: bool, fetches: &mut [FetchSpec]) {
    match n {
        Node::Vector(sel) | Node::Matrix { sel, .. } => {
            if let Some(f) = fetches.get_mut(sel.id) {
                f.stats_only = stats;
            }
        }
        Node::Subquery(s) => mark_stats_only(&s.expr, false, fetches),
        Node::Call(c) => {
            let stats = match c.name {
                "histogram_count" | "histogram_sum" | "histogram_avg" => true,
                "histogram_quantile" | "histogram_quantiles" | "histogram_fraction" => false,
                _ => stats,
            };
            c.args.iter().for_each(|a| mark_stats_only(a, stats, fetches));
        }
        Node::Aggregate(a) => {
            if let Some(p) = &a.param {
                mark_stats_only(p, stats, fetches);
            }
            mark_stats_only(&a.expr, stats, fetches);
        }
        Node::Binary(b) => {
            // Trimming needs the buckets.
            let stats = stats && !matches!(b.op, BinOp::TrimUpper | BinOp::TrimLower);
            mark_stats_only(&b.lhs, stats, fetches);
            mark_stats_only(&b.rhs, stats, fetches);
        }
        Node::Neg { expr, .. } | Node::Paren { expr, .. } | Node::StepInvariant(expr) => {
            mark_stats_only(expr, stats, fetches)
        }
        Node::Number { .. } | Node::Str { .. } => {}
    }
}

/// Enclosing subquery of a selector, for fetch-range computation.
#[derive(Clone, Copy)]
struct SubqCtx {
    offset: i64,
    range: i64,
    at: Option<i64>,
}

/// Sets every fetch's [start, end] as Prometheus's `getTimeRangesForSelector`.
fn compute_fetch_ranges(plan: &mut Plan, ctx: &LowerCtx) {
    let mut stack = Vec::new();
    let mut fetches = std::mem::take(&mut plan.fetches);
    visit_ranges(&plan.root, ctx, &mut stack, &mut fetches);
    plan.fetches = fetches;
}

fn visit_ranges(n: &Node, ctx: &LowerCtx, stack: &mut Vec<SubqCtx>, fetches: &mut [FetchSpec]) {
    match n {
        Node::Vector(sel) => set_range(sel, 0, ctx, stack, fetches),
        Node::Matrix { sel, range } => set_range(sel, *range, ctx, stack, fetches),
        Node::Subquery(s) => {
            stack.push(SubqCtx {
                offset: s.offset,
                range: s.range,
                at: s.at,
            });
            visit_ranges(&s.expr, ctx, stack, fetches);
            stack.pop();
        }
        Node::Call(c) => c.args.iter().for_each(|a| visit_ranges(a, ctx, stack, fetches)),
        Node::Aggregate(a) => {
            if let Some(p) = &a.param {
                visit_ranges(p, ctx, stack, fetches);
            }
            visit_ranges(&a.expr, ctx, stack, fetches);
        }
        Node::Binary(b) => {
            visit_ranges(&b.lhs, ctx, stack, fetches);
            visit_ranges(&b.rhs, ctx, stack, fetches);
        }
        Node::Neg { expr, .. } | Node::Paren { expr, .. } | Node::StepInvariant(expr) => {
            visit_ranges(expr, ctx, stack, fetches)
        }
        Node::Number { .. } | Node::Str { .. } => {}
    }
}

fn set_range(sel: &Selector, range: i64, ctx: &LowerCtx, stack: &[SubqCtx], fetches: &mut [FetchSpec]) {
    let (mut start, mut end) = (ctx.start, ctx.end);
    let (mut subq_offset, mut subq_range, mut subq_at) = (0i64, 0i64, None);
    for s in stack {
        subq_offset += s.offset;
        subq_range += s.range;
        if let Some(at) = s.at {
            subq_offset = s.offset;
            subq_range = s.range;
            subq_at = Some(at);
        }
    }
    if let Some(at) = subq_at {
        start = at;
        end = at;
    }
    if let Some(at) = sel.at {
        start = at;
        end = at;
    } else {
        start = start - subq_offset - subq_range;
        end -= subq_offset;
    }
    if range == 0 {
        // The lookback window is left-open: exclude a sample exactly at the edge.
        start -= ctx.lookback - 1;
        if sel.smoothed {
            end += ctx.lookback;
        }
    } else if sel.anchored {
        start -= ctx.lookback + range - 1;
    } else if sel.smoothed {
        start -= ctx.lookback + range - 1;
        end += ctx.lookback;
    } else {
        start -= range - 1;
    }
    start -= sel.offset;
    end -= sel.offset;
    if let Some(f) = fetches.get_mut(sel.id) {
        f.start = start;
        f.end = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> LowerCtx {
        LowerCtx {
            start: 0,
            end: 0,
            step: 0,
            lookback: 300_000,
            default_subquery_step: 60_000,
            enable_experimental: true,
            modifiers: Vec::new(),
        }
    }

    #[test]
    fn positions_follow_source() {
        let q = "sum by (a) (rate(foo[5m])) + on(x) group_left bar offset 1m";
        let e = promql_parser::parser::parse(q).unwrap();
        let p = lower(&e, q, &ctx()).unwrap();
        let Node::Binary(b) = &p.root else {
            panic!("{:?}", p.root)
        };
        assert_eq!(b.lhs.pos(), 0);
        let Node::Aggregate(a) = &b.lhs else { panic!() };
        assert_eq!(a.expr.pos(), 12);
        let Node::Call(c) = &a.expr else { panic!() };
        assert_eq!(c.args[0].pos(), 17);
        assert_eq!(b.rhs.pos(), 46);
    }

    #[test]
    fn step_invariant_parts_are_wrapped() {
        let q = "foo @ 10 + bar";
        let e = promql_parser::parser::parse(q).unwrap();
        let p = lower(&e, q, &ctx()).unwrap();
        let Node::Binary(b) = &p.root else { panic!() };
        assert!(matches!(b.lhs, Node::StepInvariant(_)));
        assert!(matches!(b.rhs, Node::Vector(_)));
    }

    #[test]
    fn go_style_braces_are_escaped() {
        assert_eq!(escape_braces("a{b}c{2}"), "a\\{b}c{2}");
    }
}

#[cfg(test)]
mod string_tests {
    use super::*;

    #[test]
    fn invalid_utf8_string_literals_are_flagged() {
        let q = r#"label_replace(m, "\xff", "", "src", "(.*)")"#;
        let e = promql_parser::parser::parse(q).unwrap();
        let ctx = LowerCtx {
            start: 0,
            end: 0,
            step: 0,
            lookback: 300_000,
            default_subquery_step: 60_000,
            enable_experimental: true,
            modifiers: Vec::new(),
        };
        let p = lower(&e, q, &ctx).unwrap();
        let Node::Call(c) = p.root.unwrapped() else {
            panic!("{:?}", p.root)
        };
        assert!(
            matches!(&c.args[1], Node::Str { invalid: Some(s), .. } if s == r#""\xff""#),
            "{:?}",
            c.args[1]
        );
    }
}
