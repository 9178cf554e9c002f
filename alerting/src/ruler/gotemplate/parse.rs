//! The parser of Go's `text/template`: builds the tree of text, actions, `if`/`range`/`with`
//! (with `else if`/`else with` chains), `define`/`block`/`template`, `break`/`continue` and
//! pipelines, checking variables and function names the way Go does at parse time.

use std::collections::HashMap;
use std::sync::Arc;

use super::lex::{Item, Tok, lex};

/// A list of nodes.
pub type List = Vec<Node>;

#[derive(Clone, Debug)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break(usize),
    Continue(usize),
}

/// The shared shape of `if`, `range` and `with`.
#[derive(Clone, Debug)]
pub struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

#[derive(Clone, Debug)]
pub struct Pipe {
    pub pos: usize,
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Clone, Debug)]
pub struct Cmd {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// A number constant: its text and the Go types it can take.
#[derive(Clone, Debug)]
pub struct Number {
    pub text: String,
    pub int: Option<i64>,
    pub float: Option<f64>,
    /// Written with a `.`, exponent (or as a float that is not an int).
    pub is_float: bool,
}

#[derive(Clone, Debug)]
pub enum Arg {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Number(Number),
    Str(String),
    Ident(String),
    Pipe(Box<Pipe>),
    /// A parenthesized pipeline (or other operand) followed by `.Field`s.
    Chain(Box<Arg>, Vec<String>),
}

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::Field(names) => {
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Arg::Var(v, names) => {
                f.write_str(v)?;
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Arg::Dot => f.write_str("."),
            Arg::Nil => f.write_str("nil"),
            Arg::Bool(b) => write!(f, "{b}"),
            Arg::Number(n) => f.write_str(&n.text),
            Arg::Str(s) => write!(f, "{s:?}"),
            Arg::Ident(i) => f.write_str(i),
            Arg::Pipe(p) => write!(f, "({p})"),
            Arg::Chain(a, names) => {
                write!(f, "{a}")?;
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::fmt::Display for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        f.write_str(&parts.join(" "))
    }
}

impl std::fmt::Display for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.decl.is_empty() {
            write!(
                f,
                "{} {} ",
                self.decl.join(", "),
                if self.is_assign { "=" } else { ":=" }
            )?;
        }
        let parts: Vec<String> = self.cmds.iter().map(|c| c.to_string()).collect();
        f.write_str(&parts.join(" | "))
    }
}

/// A parsed template: the main tree plus every `define`d one.
#[derive(Clone, Debug)]
pub struct Tree {
    pub name: String,
    pub text: Arc<str>,
    pub root: Arc<List>,
    pub defs: HashMap<String, Arc<List>>,
}

impl Tree {
    /// `NAME:LINE:COL` of a byte offset, as Go's `ErrorContext` prints it.
    pub fn location(&self, pos: usize) -> String {
        let pos = pos.min(self.text.len());
        let before = &self.text[..pos];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => pos - (nl + 1),
            None => pos,
        };
        format!("{}:{line}:{col}", self.name)
    }
}

struct Parser<'a> {
    name: &'a str,
    text: &'a str,
    items: Vec<Item>,
    i: usize,
    vars: Vec<String>,
    defs: HashMap<String, Arc<List>>,
    is_func: &'a dyn Fn(&str) -> bool,
    range_depth: usize,
    /// Open branches and parenthesized pipelines, bounded by [`MAX_NESTING`].
    nesting: usize,
}

/// Deepest nesting of `if`/`range`/`with` (an `else if` chain counts each link) and
/// parentheses. The parser and the executor recurse on it; Go's parser stops at 10000 with
/// the same message, on a growable stack.
pub const MAX_NESTING: usize = 1000;

type PResult<T> = Result<T, String>;

/// Builtin functions of `text/template`.
pub const BUILTINS: [&str; 17] = [
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf", "println",
    "urlquery", "eq", "ge", "gt", "le",
];
const MORE_BUILTINS: [&str; 3] = ["lt", "ne", "break"];

fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name) || (MORE_BUILTINS.contains(&name) && name != "break")
}

/// Parses `text` as template `name`. `is_func` tells which non-builtin functions exist.
pub fn parse(name: &str, text: &str, is_func: &dyn Fn(&str) -> bool) -> PResult<Tree> {
    crate::render_guard::guarded(|| parse_unguarded(name, text, is_func))
}

fn parse_unguarded(name: &str, text: &str, is_func: &dyn Fn(&str) -> bool) -> PResult<Tree> {
    let items = lex(text).map_err(|(msg, pos)| format!("template: {name}:{}: {msg}", line_of(text, pos)))?;
    let mut p = Parser {
        name,
        text,
        items,
        i: 0,
        vars: vec!["$".into()],
        defs: HashMap::new(),
        is_func,
        range_depth: 0,
        nesting: 0,
    };
    let root = p.list_top()?;
    Ok(Tree {
        name: name.to_string(),
        text: Arc::from(text),
        root: Arc::new(root),
        defs: p.defs,
    })
}

fn line_of(text: &str, pos: usize) -> usize {
    1 + text[..pos.min(text.len())].matches('\n').count()
}

enum Stop {
    End(usize),
    Else(usize),
}

impl Parser<'_> {
    fn err<T>(&self, pos: usize, msg: impl Into<String>) -> PResult<T> {
        Err(format!(
            "template: {}:{}: {}",
            self.name,
            line_of(self.text, pos),
            msg.into()
        ))
    }

    fn peek(&self) -> &Item {
        &self.items[self.i.min(self.items.len() - 1)]
    }

    fn next(&mut self) -> Item {
        let it = self.peek().clone();
        if self.i < self.items.len() {
            self.i += 1;
        }
        it
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.tok != Tok::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let it = self.next_non_space();
        self.i -= 1;
        it
    }

    fn describe(tok: &Tok) -> String {
        match tok {
            Tok::Text(t) => format!("{t:?}"),
            Tok::LeftDelim => "\"{{\"".into(),
            Tok::RightDelim => "\"}}\"".into(),
            Tok::Space => "space".into(),
            Tok::Ident(s) | Tok::Number(s) => format!("<{s}>"),
            Tok::Keyword(k) => format!("<{k}>"),
            Tok::Field(f) => format!("<.{f}>"),
            Tok::Var(v) => format!("<{v}>"),
            Tok::Dot => "<.>".into(),
            Tok::Str(s) => format!("{s:?}"),
            Tok::Char(c) => format!("{c:?}"),
            Tok::Bool(b) => format!("<{b}>"),
            Tok::Nil => "<nil>".into(),
            Tok::Pipe => "\"|\"".into(),
            Tok::LParen => "\"(\"".into(),
            Tok::RParen => "\")\"".into(),
            Tok::Declare => "\":=\"".into(),
            Tok::Assign => "\"=\"".into(),
            Tok::Comma => "\",\"".into(),
            Tok::Eof => "EOF".into(),
        }
    }

    fn unexpected<T>(&self, it: &Item, context: &str) -> PResult<T> {
        if it.tok == Tok::Eof {
            return self.err(it.pos, "unexpected EOF");
        }
        self.err(
            it.pos,
            format!("unexpected {} in {context}", Self::describe(&it.tok)),
        )
    }

    fn list_top(&mut self) -> PResult<List> {
        let mut list = Vec::new();
        loop {
            let it = self.peek().clone();
            match &it.tok {
                Tok::Eof => return Ok(list),
                Tok::LeftDelim => {
                    self.next();
                    let d = self.peek_non_space();
                    if d.tok == Tok::Keyword("define") {
                        self.next_non_space();
                        self.parse_define(d.pos)?;
                        continue;
                    }
                    match self.action(it.pos)? {
                        Ok(n) => list.push(n),
                        Err(Stop::End(p)) => return self.err(p, "unexpected {{end}}"),
                        Err(Stop::Else(p)) => return self.err(p, "unexpected {{else}}"),
                    }
                }
                Tok::Text(t) => {
                    list.push(Node::Text(t.clone()));
                    self.next();
                }
                _ => {
                    let it = self.next();
                    return self.unexpected(&it, "input");
                }
            }
        }
    }

    /// Items up to `{{end}}` or `{{else}}`; returns the list and which one stopped it.
    fn item_list(&mut self, context: &str) -> PResult<(List, Stop)> {
        let mut list = Vec::new();
        loop {
            let it = self.peek().clone();
            match &it.tok {
                Tok::Eof => return self.err(it.pos, "unexpected EOF"),
                Tok::Text(t) => {
                    list.push(Node::Text(t.clone()));
                    self.next();
                }
                Tok::LeftDelim => {
                    self.next();
                    let d = self.peek_non_space();
                    if d.tok == Tok::Keyword("define") {
                        return self.err(d.pos, format!("unexpected <define> in {context}"));
                    }
                    match self.action(it.pos)? {
                        Ok(n) => list.push(n),
                        Err(stop) => return Ok((list, stop)),
                    }
                }
                _ => {
                    let it = self.next();
                    return self.unexpected(&it, context);
                }
            }
        }
    }

    fn expect_right(&mut self, context: &str) -> PResult<()> {
        let it = self.next_non_space();
        if it.tok != Tok::RightDelim {
            return self.unexpected(&it, context);
        }
        Ok(())
    }

    fn parse_define(&mut self, _pos: usize) -> PResult<()> {
        let name = self.next_non_space();
        let Tok::Str(n) = name.tok else {
            return self.unexpected(&name, "define clause");
        };
        self.expect_right("define clause")?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, stop) = self.item_list("define")?;
        self.vars = saved;
        match stop {
            Stop::End(_) => {}
            Stop::Else(p) => return self.err(p, "unexpected {{else}}"),
        }
        self.defs.insert(n, Arc::new(list));
        Ok(())
    }

    /// After `{{`: one action node, or a stop marker for `end`/`else`.
    fn action(&mut self, pos: usize) -> PResult<Result<Node, Stop>> {
        let it = self.peek_non_space();
        match it.tok {
            Tok::Keyword("end") => {
                self.next_non_space();
                self.expect_right("end")?;
                return Ok(Err(Stop::End(it.pos)));
            }
            Tok::Keyword("else") => {
                self.next_non_space();
                let nx = self.peek_non_space();
                if nx.tok == Tok::Keyword("if") || nx.tok == Tok::Keyword("with") {
                    // "{{else if ...}}": leave the keyword for the caller to parse as a nested branch.
                    return Ok(Err(Stop::Else(it.pos)));
                }
                self.expect_right("else")?;
                return Ok(Err(Stop::Else(it.pos)));
            }
            Tok::Keyword("if") => {
                self.next_non_space();
                return self.branch("if", it.pos).map(|b| Ok(Node::If(b)));
            }
            Tok::Keyword("range") => {
                self.next_non_space();
                self.range_depth += 1;
                let r = self.branch("range", it.pos);
                self.range_depth -= 1;
                return r.map(|b| Ok(Node::Range(b)));
            }
            Tok::Keyword("with") => {
                self.next_non_space();
                return self.branch("with", it.pos).map(|b| Ok(Node::With(b)));
            }
            Tok::Keyword("template") | Tok::Keyword("block") => {
                self.next_non_space();
                let is_block = it.tok == Tok::Keyword("block");
                let ctx = if is_block {
                    "block clause"
                } else {
                    "template clause"
                };
                let name = self.next_non_space();
                let Tok::Str(n) = name.tok else {
                    return self.unexpected(&name, ctx);
                };
                let nx = self.peek_non_space();
                let pipe = if nx.tok == Tok::RightDelim {
                    self.next_non_space();
                    None
                } else {
                    Some(self.pipeline(ctx, Tok::RightDelim)?)
                };
                if is_block {
                    let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
                    let (list, stop) = self.item_list("block")?;
                    self.vars = saved;
                    if !matches!(stop, Stop::End(_)) {
                        return self.err(it.pos, "unexpected {{else}} in block");
                    }
                    self.defs.insert(n.clone(), Arc::new(list));
                }
                return Ok(Ok(Node::Template {
                    pos: it.pos,
                    name: n,
                    pipe,
                }));
            }
            Tok::Keyword("break") | Tok::Keyword("continue") => {
                self.next_non_space();
                let kw = if it.tok == Tok::Keyword("break") {
                    "break"
                } else {
                    "continue"
                };
                if self.range_depth == 0 {
                    return self.err(it.pos, format!("{{{{{kw}}}}} outside {{{{range}}}}"));
                }
                self.expect_right(kw)?;
                return Ok(Ok(if kw == "break" {
                    Node::Break(it.pos)
                } else {
                    Node::Continue(it.pos)
                }));
            }
            Tok::Eof => return self.err(pos, "unclosed action"),
            _ => {}
        }
        let pipe = self.pipeline("command", Tok::RightDelim)?;
        Ok(Ok(Node::Action(pipe)))
    }

    fn branch(&mut self, context: &str, pos: usize) -> PResult<Branch> {
        self.nested(pos, |p| p.branch_body(context, pos))
    }

    /// Runs `f` one nesting level deeper, failing past [`MAX_NESTING`].
    fn nested<T>(&mut self, pos: usize, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.nesting >= MAX_NESTING {
            return self.err(pos, "max expression depth exceeded");
        }
        self.nesting += 1;
        let r = f(self);
        self.nesting -= 1;
        r
    }

    fn branch_body(&mut self, context: &str, pos: usize) -> PResult<Branch> {
        let mark = self.vars.len();
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        let (list, stop) = self.item_list(context)?;
        let else_list = match stop {
            Stop::End(_) => None,
            Stop::Else(epos) => {
                let nx = self.peek_non_space();
                if (nx.tok == Tok::Keyword("if") && context == "if")
                    || (nx.tok == Tok::Keyword("with") && context == "with")
                {
                    // else-if / else-with: a nested branch that consumes the shared {{end}}.
                    let kw = self.next_non_space();
                    let ctx = if kw.tok == Tok::Keyword("if") {
                        "if"
                    } else {
                        "with"
                    };
                    let inner = self.branch(ctx, epos)?;
                    Some(vec![if ctx == "if" {
                        Node::If(inner)
                    } else {
                        Node::With(inner)
                    }])
                } else {
                    let (l, stop) = self.item_list(context)?;
                    match stop {
                        Stop::End(_) => Some(l),
                        Stop::Else(p) => return self.err(p, "expected end; found {{else}}"),
                    }
                }
            }
        };
        self.vars.truncate(mark);
        Ok(Branch {
            pos,
            pipe,
            list,
            else_list,
        })
    }

    fn pipeline(&mut self, context: &str, end: Tok) -> PResult<Pipe> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        // Declarations.
        loop {
            let v = self.peek_non_space();
            let Tok::Var(name) = &v.tok else { break };
            let save = self.i;
            self.next_non_space();
            let after = self.peek().clone();
            let nx = self.peek_non_space();
            match nx.tok {
                Tok::Declare | Tok::Assign => {
                    pipe.is_assign = nx.tok == Tok::Assign;
                    self.next_non_space();
                    if pipe.is_assign && !self.vars.contains(name) {
                        return self.err(v.pos, format!("undefined variable {name:?}"));
                    }
                    pipe.decl.push(name.clone());
                    if !pipe.is_assign {
                        self.vars.push(name.clone());
                    }
                    break;
                }
                Tok::Comma => {
                    self.next_non_space();
                    pipe.decl.push(name.clone());
                    self.vars.push(name.clone());
                    if context == "range" && pipe.decl.len() < 2 {
                        let p = self.peek_non_space();
                        if matches!(p.tok, Tok::Var(_)) {
                            continue;
                        }
                        return self.err(p.pos, "range can only initialize variables");
                    }
                    return self.err(v.pos, format!("too many declarations in {context}"));
                }
                _ => {
                    let _ = after;
                    self.i = save;
                    break;
                }
            }
        }
        loop {
            let it = self.peek_non_space();
            if it.tok == end {
                self.next_non_space();
                if pipe.cmds.is_empty() {
                    return self.err(it.pos, format!("missing value for {context}"));
                }
                for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if let Some(a) = c.args.first()
                        && matches!(
                            a,
                            Arg::Bool(_) | Arg::Dot | Arg::Nil | Arg::Number(_) | Arg::Str(_)
                        )
                    {
                        return self.err(
                            c.pos,
                            format!("non executable command in pipeline stage {}", i + 1),
                        );
                    }
                }
                return Ok(pipe);
            }
            match it.tok {
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(_)
                | Tok::Var(_)
                | Tok::LParen => {
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                Tok::Eof => return self.err(it.pos, "unclosed action"),
                _ => {
                    let it = self.next_non_space();
                    return self.unexpected(&it, context);
                }
            }
        }
    }

    fn command(&mut self) -> PResult<Cmd> {
        let first = self.peek_non_space();
        let mut cmd = Cmd {
            pos: first.pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let it = self.next();
            match it.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RParen => {
                    self.i -= 1;
                }
                Tok::Pipe => {}
                Tok::Eof => return self.err(it.pos, "unclosed action"),
                _ => return self.unexpected(&it, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.err(first.pos, "empty command");
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(term) = self.term()? else { return Ok(None) };
        let mut fields = Vec::new();
        while let Tok::Field(f) = &self.peek().tok {
            fields.push(f.clone());
            self.next();
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            Arg::Field(mut f) => {
                f.extend(fields);
                Arg::Field(f)
            }
            Arg::Var(v, mut f) => {
                f.extend(fields);
                Arg::Var(v, f)
            }
            Arg::Bool(_) | Arg::Str(_) | Arg::Number(_) | Arg::Nil | Arg::Dot => {
                return self.err(self.peek().pos, format!("unexpected . after term {term:?}"));
            }
            other => Arg::Chain(Box::new(other), fields),
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let it = self.next_non_space();
        Ok(Some(match it.tok {
            Tok::Ident(name) => {
                if !is_builtin(&name) && !(self.is_func)(&name) {
                    return self.err(it.pos, format!("function {name:?} not defined"));
                }
                Arg::Ident(name)
            }
            Tok::Dot => Arg::Dot,
            Tok::Nil => Arg::Nil,
            Tok::Var(v) => {
                if !self.vars.contains(&v) {
                    return self.err(it.pos, format!("undefined variable {v:?}"));
                }
                Arg::Var(v, Vec::new())
            }
            Tok::Field(f) => Arg::Field(vec![f]),
            Tok::Bool(b) => Arg::Bool(b),
            Tok::Char(c) => Arg::Number(Number {
                text: format!("{c:?}"),
                int: Some(c as i64),
                float: Some(c as u32 as f64),
                is_float: false,
            }),
            Tok::Number(text) => match parse_number(&text) {
                Some(n) => Arg::Number(n),
                None => return self.err(it.pos, format!("illegal number syntax: {text:?}")),
            },
            Tok::LParen => {
                let p = self.nested(it.pos, |p| p.pipeline("parenthesized pipeline", Tok::RParen))?;
                Arg::Pipe(Box::new(p))
            }
            Tok::Str(s) => Arg::Str(s),
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }
}

fn parse_number(text: &str) -> Option<Number> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let radix_int = |s: &str, r: u32| i64::from_str_radix(s, r).ok().map(|v| if neg { -v } else { v });
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        radix_int(h, 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        radix_int(o, 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        radix_int(b, 2)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.chars().all(|c| c.is_ascii_digit()) {
        radix_int(&lower[1..], 8)
    } else {
        lower.parse::<i64>().ok().map(|v| if neg { -v } else { v })
    };
    let is_float_syntax = !lower.starts_with("0x") && lower.contains(['.', 'e']);
    let float = if let Some(i) = int {
        Some(i as f64)
    } else {
        lower.parse::<f64>().ok().map(|v| if neg { -v } else { v })
    };
    float?;
    // A float constant with an integral value is also an int (Go's parse.NumberNode).
    let int = int.or_else(|| {
        float
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
            .map(|f| f as i64)
    });
    Some(Number {
        text: text.to_string(),
        int,
        float,
        is_float: is_float_syntax,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str) -> PResult<Tree> {
        parse("t", t, &|n| n == "humanize")
    }

    #[test]
    fn parse_errors_read_like_go() {
        assert_eq!(
            p("{{ $x ").err().as_deref(),
            Some("template: t:1: unclosed action")
        );
        assert_eq!(
            p("{{ if 1 }}").err().as_deref(),
            Some("template: t:1: unexpected EOF")
        );
        assert_eq!(
            p("{{ nope 1 }}").err().as_deref(),
            Some("template: t:1: function \"nope\" not defined")
        );
        assert_eq!(
            p("\n{{ $y }}").err().as_deref(),
            Some("template: t:2: undefined variable \"$y\"")
        );
        assert_eq!(
            p("{{ end }}").err().as_deref(),
            Some("template: t:1: unexpected {{end}}")
        );
    }

    #[test]
    fn parses_control_structures() {
        let t = p(
            "{{ define \"x\" }}X{{ end }}{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}{{ range $i, $v := . }}{{ $i }}{{ end }}{{ template \"x\" . }}",
        );
        let t = t.unwrap_or_else(|e| panic!("{e}"));
        assert!(t.defs.contains_key("x"));
        assert_eq!(t.root.len(), 3);
    }
}
