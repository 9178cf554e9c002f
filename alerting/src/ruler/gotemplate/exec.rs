//! Execution of a parsed Go template: walks the tree with Go's rules for dot, variables and
//! scoping, truthiness, `missingkey=zero` map lookups, method calls on times and durations, the
//! builtin functions (`and`, `or`, `not`, `eq`..`ge`, `len`, `index`, `slice`, `print*`, `html`,
//! `js`, `urlquery`) and errors worded like Go's (`executing "x" at <...>: error calling ...`).

use std::sync::Arc;

use super::fmt::{format_v, sprint, sprintf, sprintln};
use super::parse::{Arg, Branch, Cmd, List, Node, Pipe, Tree};
use super::value::{Map, Value};

/// Functions beyond the builtins (Prometheus's template functions).
pub trait FuncSet {
    /// Whether `name` is a function (checked at parse time).
    fn has(&self, name: &str) -> bool;
    /// Number of parameters and whether the last one is variadic.
    fn arity(&self, name: &str) -> (usize, bool);
    /// Calls the function; an `Err` becomes `error calling NAME: ...`.
    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String>;
    /// Whether `recv` has a method `name` beyond the built-in ones of times and durations
    /// (e.g. Alertmanager's `KV.SortedPairs`). Methods take precedence over fields and map keys.
    fn has_method(&self, _recv: &Value, _name: &str) -> bool {
        false
    }
    /// Calls a method reported by [`FuncSet::has_method`].
    fn call_method(&self, _recv: &Value, name: &str, _args: Vec<Value>) -> Result<Value, String> {
        Err(format!("can't call method {name}"))
    }
    /// Writes a piece of template text to `out`; returns false to have it copied unchanged.
    /// Lets a func set track and rewrite output context (html/template's escaping).
    fn write_text(&self, _out: &mut String, _text: &str) -> bool {
        false
    }
    /// Writes an action's value to `out`; returns false for Go's default printing.
    fn write_value(&self, _out: &mut String, _value: &Value) -> bool {
        false
    }
    /// Output starts going to a nested buffer (Prometheus's `tmpl` runs a defined template into
    /// a string): an output context tracker starts afresh until [`FuncSet::end_nested`].
    fn begin_nested(&self) {}
    /// The nested output of [`FuncSet::begin_nested`] is done; the outer context resumes.
    /// An error of the nested output (e.g. malformed HTML) fails the call.
    fn end_nested(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Deepest nesting of `{{template}}` calls, `if`/`range`/`with` blocks and parenthesized
/// pipelines, all counted together, before giving up (Go allows 100000 template calls on a
/// growable stack; a Rust stack does not, and no real template comes near this).
const MAX_DEPTH: usize = 1000;
/// Largest output a template may produce; stops runaway `range` loops.
const MAX_OUTPUT: usize = 4 << 20;
/// Most nodes and loop iterations one execution may take. Go has no such limit, but a
/// template that writes nothing (`{{ range 1000000000 }}{{ end }}`, nested ranges) would
/// otherwise hold a notification worker or an API request for minutes. Real templates,
/// even over groups of thousands of alerts, take well under a million.
const MAX_STEPS: u64 = 10_000_000;

enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'a> {
    tree: &'a Tree,
    funcs: &'a dyn FuncSet,
    vars: Vec<(String, Value)>,
    out: String,
    depth: usize,
    steps: u64,
}

type EResult<T> = Result<T, String>;

/// Executes `tree` with `data` as dot; returns the output or Go's error text.
pub fn execute(tree: &Tree, data: &Value, funcs: &dyn FuncSet) -> Result<String, String> {
    crate::render_guard::guarded(|| execute_unguarded(tree, data, funcs))
}

fn execute_unguarded(tree: &Tree, data: &Value, funcs: &dyn FuncSet) -> Result<String, String> {
    let mut st = State {
        tree,
        funcs,
        vars: vec![("$".into(), data.clone())],
        out: String::new(),
        depth: 0,
        steps: 0,
    };
    let root = tree.root.clone();
    st.walk_list(data, &root)?;
    Ok(st.out)
}

impl State<'_> {
    fn fail<T>(&self, pos: usize, context: &str, msg: impl std::fmt::Display) -> EResult<T> {
        Err(format!(
            "template: {}: executing {:?} at <{}>: {}",
            self.tree.location(pos),
            self.tree.name,
            context,
            msg
        ))
    }

    fn walk_list(&mut self, dot: &Value, list: &List) -> EResult<Flow> {
        for n in list {
            match self.walk(dot, n)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    /// Counts one step of execution against [`MAX_STEPS`].
    fn step(&mut self) -> EResult<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(format!(
                "template: {}: execution exceeds {} steps",
                self.tree.name, MAX_STEPS
            ));
        }
        if self.steps.is_multiple_of(4096) {
            crate::render_guard::check_time().map_err(|e| format!("template: {}: {e}", self.tree.name))?;
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value, node: &Node) -> EResult<Flow> {
        self.step()?;
        if self.out.len() > MAX_OUTPUT {
            return Err(format!(
                "template: {}: output exceeds {} bytes",
                self.tree.name, MAX_OUTPUT
            ));
        }
        match node {
            Node::Text(t) => {
                if !self.funcs.write_text(&mut self.out, t) {
                    self.out.push_str(t);
                }
            }
            Node::Action(pipe) => {
                let v = self.eval_pipe(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.print_value(&v);
                }
            }
            Node::If(b) => return self.nested(|st| st.walk_if_with(dot, b, false)),
            Node::With(b) => return self.nested(|st| st.walk_if_with(dot, b, true)),
            Node::Range(b) => return self.nested(|st| st.walk_range(dot, b)),
            Node::Template { pos, name, pipe } => {
                let Some(list) = self.tree.defs.get(name).cloned() else {
                    return Err(format!(
                        "template: {}: executing {:?} at <{{{{template {:?}}}}}>: template: no template {:?} associated with template {:?}",
                        self.tree.location(*pos),
                        self.tree.name,
                        name,
                        name,
                        self.tree.name
                    ));
                };
                if self.depth >= MAX_DEPTH {
                    return self.fail(
                        *pos,
                        &format!("{{{{template {name:?}}}}}"),
                        "exceeded maximum template depth",
                    );
                }
                let new_dot = match pipe {
                    Some(p) => self.eval_pipe(dot, p)?,
                    None => Value::Nil,
                };
                let saved = std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                self.depth += 1;
                let r = self.walk_list(&new_dot, &list);
                self.depth -= 1;
                self.vars = saved;
                r?;
            }
            Node::Break(_) => return Ok(Flow::Break),
            Node::Continue(_) => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    /// Runs `f` one level deeper, failing past [`MAX_DEPTH`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> EResult<T>) -> EResult<T> {
        if self.depth >= MAX_DEPTH {
            return Err(format!(
                "template: {}: exceeded maximum nesting depth ({MAX_DEPTH})",
                self.tree.name
            ));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn walk_if_with(&mut self, dot: &Value, b: &Branch, with: bool) -> EResult<Flow> {
        let mark = self.vars.len();
        let v = self.eval_pipe(dot, &b.pipe)?;
        let r = if v.truth() {
            if with {
                self.walk_list(&v, &b.list)
            } else {
                self.walk_list(dot, &b.list)
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)
        } else {
            Ok(Flow::Normal)
        };
        self.vars.truncate(mark);
        r
    }

    fn walk_range(&mut self, dot: &Value, b: &Branch) -> EResult<Flow> {
        let mark = self.vars.len();
        // The range pipeline's declarations name the loop variables, not its result.
        let mut p = b.pipe.clone();
        let decl = std::mem::take(&mut p.decl);
        let v = self.eval_pipe(dot, &p)?;
        // Ranging over an integer yields 0..n without building the list first: a huge n must
        // run into the step limit, not allocate gigabytes.
        let (items, count): (Vec<(Value, Value)>, i64) = match &v {
            Value::List(l) => (
                l.iter()
                    .enumerate()
                    .map(|(i, e)| (Value::Int(i as i64), e.clone()))
                    .collect(),
                0,
            ),
            Value::Map(m) => (
                m.entries
                    .iter()
                    .map(|(k, e)| (Value::str(k.clone()), e.clone()))
                    .collect(),
                0,
            ),
            Value::Int(n) => (Vec::new(), (*n).max(0)),
            Value::Nil => (Vec::new(), 0),
            other => {
                return self.fail(
                    b.pipe.pos,
                    &b.pipe.to_string(),
                    format!("range can't iterate over {}", format_v(other)),
                );
            }
        };
        let is_int = matches!(v, Value::Int(_));
        let len = if is_int { count } else { items.len() as i64 };
        if len == 0 {
            let r = match &b.else_list {
                Some(e) => self.walk_list(dot, e),
                None => Ok(Flow::Normal),
            };
            self.vars.truncate(mark);
            return r.map(|_| Flow::Normal);
        }
        let mut items = items.into_iter();
        for i in 0..len {
            self.step()?;
            let (k, e) = if is_int {
                (Value::Int(i), Value::Int(i))
            } else {
                items.next().unwrap_or((Value::Nil, Value::Nil))
            };
            match decl.len() {
                0 => {}
                1 => self
                    .vars
                    .push((decl[0].clone(), if is_int { k.clone() } else { e.clone() })),
                _ => {
                    self.vars.push((decl[0].clone(), k.clone()));
                    self.vars.push((decl[1].clone(), e.clone()));
                }
            }
            let inner = self.vars.len();
            let r = self.walk_list(&e, &b.list)?;
            self.vars.truncate(inner);
            self.vars.truncate(mark);
            if matches!(r, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn print_value(&mut self, v: &Value) {
        if self.funcs.write_value(&mut self.out, v) {
            return;
        }
        match v {
            Value::Nil => self.out.push_str("<no value>"),
            Value::Struct(s) if s.pointer => {
                let mut s = (**s).clone();
                s.pointer = false;
                self.out.push_str(&format_v(&Value::Struct(Arc::new(s))));
            }
            _ => self.out.push_str(&format_v(v)),
        }
    }

    fn lookup_var(&self, name: &str) -> Option<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn eval_pipe(&mut self, dot: &Value, pipe: &Pipe) -> EResult<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_cmd(dot, cmd, value)?);
        }
        let value = value.unwrap_or_default();
        if !pipe.decl.is_empty() {
            if pipe.is_assign {
                let name = &pipe.decl[0];
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = value.clone();
                }
            } else {
                for d in &pipe.decl {
                    self.vars.push((d.clone(), value.clone()));
                }
            }
        }
        Ok(value)
    }

    fn eval_cmd(&mut self, dot: &Value, cmd: &Cmd, fin: Option<Value>) -> EResult<Value> {
        let ctx = cmd.to_string();
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        match first {
            Arg::Field(names) => {
                let recv = dot.clone();
                self.eval_field_chain(dot, recv, names, rest, fin, cmd)
            }
            Arg::Var(name, names) => {
                let Some(v) = self.lookup_var(name) else {
                    return self.fail(cmd.pos, &ctx, format!("undefined variable: {name}"));
                };
                if names.is_empty() {
                    self.not_a_function(cmd, rest, &fin)?;
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, names, rest, fin, cmd)
            }
            Arg::Chain(inner, names) => {
                let v = self.eval_arg(dot, inner, cmd)?;
                self.eval_field_chain(dot, v, names, rest, fin, cmd)
            }
            Arg::Ident(name) => self.eval_function(dot, name, rest, fin, cmd),
            Arg::Pipe(p) => {
                self.not_a_function(cmd, rest, &fin)?;
                self.nested(|st| st.eval_pipe(dot, p))
            }
            Arg::Nil => self.fail(cmd.pos, &ctx, "nil is not a command"),
            other => {
                self.not_a_function(cmd, rest, &fin)?;
                self.eval_arg(dot, other, cmd)
            }
        }
    }

    fn not_a_function(&self, cmd: &Cmd, rest: &[Arg], fin: &Option<Value>) -> EResult<()> {
        if !rest.is_empty() || fin.is_some() {
            return self.fail(
                cmd.pos,
                &cmd.to_string(),
                format!("can't give argument to non-function {}", cmd.args[0]),
            );
        }
        Ok(())
    }

    fn eval_arg(&mut self, dot: &Value, arg: &Arg, cmd: &Cmd) -> EResult<Value> {
        Ok(match arg {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Number(n) => {
                if n.is_float || n.int.is_none() {
                    Value::Float(n.float.unwrap_or(0.0))
                } else {
                    Value::Int(n.int.unwrap_or(0))
                }
            }
            Arg::Field(names) => self.eval_field_chain(dot, dot.clone(), names, &[], None, cmd)?,
            Arg::Var(name, names) => {
                let Some(v) = self.lookup_var(name) else {
                    return self.fail(cmd.pos, &cmd.to_string(), format!("undefined variable: {name}"));
                };
                if names.is_empty() {
                    v
                } else {
                    self.eval_field_chain(dot, v, names, &[], None, cmd)?
                }
            }
            Arg::Pipe(p) => self.nested(|st| st.eval_pipe(dot, p))?,
            Arg::Chain(inner, names) => {
                let v = self.eval_arg(dot, inner, cmd)?;
                self.eval_field_chain(dot, v, names, &[], None, cmd)?
            }
            Arg::Ident(name) => self.eval_function(dot, name, &[], None, cmd)?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut recv: Value,
        names: &[String],
        args: &[Arg],
        fin: Option<Value>,
        cmd: &Cmd,
    ) -> EResult<Value> {
        let n = names.len();
        for (i, name) in names.iter().enumerate() {
            if i + 1 < n {
                recv = self.eval_field(dot, name, recv, &[], None, cmd)?;
            } else {
                return self.eval_field(dot, name, recv, args, fin, cmd);
            }
        }
        Ok(recv)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        recv: Value,
        args: &[Arg],
        fin: Option<Value>,
        cmd: &Cmd,
    ) -> EResult<Value> {
        let ctx = cmd.to_string();
        if has_method(&recv, name) {
            let mut argv = Vec::new();
            for a in args {
                argv.push(self.eval_arg(dot, a, cmd)?);
            }
            argv.extend(fin);
            return call_method(&recv, name, argv).or_else(|e| self.fail(cmd.pos, &ctx, e));
        }
        if self.funcs.has_method(&recv, name) {
            let mut argv = Vec::new();
            for a in args {
                argv.push(self.eval_arg(dot, a, cmd)?);
            }
            argv.extend(fin);
            return self
                .funcs
                .call_method(&recv, name, argv)
                .or_else(|e| self.fail(cmd.pos, &ctx, e));
        }
        let has_args = !args.is_empty() || fin.is_some();
        match &recv {
            Value::Struct(s) => match s.fields.iter().find(|(n, _)| n == name) {
                Some((_, v)) => {
                    if has_args {
                        return self.fail(
                            cmd.pos,
                            &ctx,
                            format!("{name} has arguments but cannot be invoked as function"),
                        );
                    }
                    Ok(v.clone())
                }
                None => self.fail(
                    cmd.pos,
                    &ctx,
                    format!("can't evaluate field {name} in type {}", recv.type_name()),
                ),
            },
            Value::Map(m) => {
                if has_args {
                    return self.fail(cmd.pos, &ctx, format!("{name} is not a method but has arguments"));
                }
                Ok(m.entries.get(name).cloned().unwrap_or_else(|| m.zero.clone()))
            }
            Value::Nil => self.fail(
                cmd.pos,
                &ctx,
                format!("nil pointer evaluating interface {{}}.{name}"),
            ),
            _ => self.fail(
                cmd.pos,
                &ctx,
                format!("can't evaluate field {name} in type {}", recv.type_name()),
            ),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &str,
        args: &[Arg],
        fin: Option<Value>,
        cmd: &Cmd,
    ) -> EResult<Value> {
        let ctx = cmd.to_string();
        // Short-circuiting builtins see their arguments unevaluated.
        if name == "and" || name == "or" {
            let total = args.len() + usize::from(fin.is_some());
            if total == 0 {
                return self.fail(
                    cmd.pos,
                    &ctx,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                );
            }
            let mut last = Value::Nil;
            for a in args {
                last = self.eval_arg(dot, a, cmd)?;
                if (name == "and") != last.truth() {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let mut argv = Vec::with_capacity(args.len() + 1);
        for a in args {
            argv.push(self.eval_arg(dot, a, cmd)?);
        }
        argv.extend(fin);
        if name == "tmpl" && self.funcs.has("tmpl") {
            return self.call_tmpl(argv, cmd);
        }
        let res = if is_builtin(name) {
            builtin(name, argv)
        } else {
            let (n, variadic) = self.funcs.arity(name);
            if (!variadic && argv.len() != n) || (variadic && argv.len() + 1 < n) {
                let want = if variadic {
                    format!("at least {}", n - 1)
                } else {
                    n.to_string()
                };
                return self.fail(
                    cmd.pos,
                    &ctx,
                    format!("wrong number of args for {name}: want {want} got {}", argv.len()),
                );
            }
            self.funcs
                .call(name, argv)
                .map_err(|e| format!("error calling {name}: {e}"))
        };
        res.or_else(|e| self.fail(cmd.pos, &ctx, e))
    }
}

impl State<'_> {
    /// Prometheus's `tmpl NAME DATA` (console templates): runs a defined template into a string.
    fn call_tmpl(&mut self, argv: Vec<Value>, cmd: &Cmd) -> EResult<Value> {
        let ctx = cmd.to_string();
        if argv.len() != 2 {
            return self.fail(
                cmd.pos,
                &ctx,
                format!("wrong number of args for tmpl: want 2 got {}", argv.len()),
            );
        }
        let Some(name) = argv[0].as_str().map(str::to_string) else {
            return self.fail(cmd.pos, &ctx, "wrong type for value; expected string");
        };
        let Some(list) = self.tree.defs.get(&name).cloned() else {
            return self.fail(
                cmd.pos,
                &ctx,
                format!("error calling tmpl: html/template: {name:?} is undefined"),
            );
        };
        if self.depth >= MAX_DEPTH {
            return self.fail(cmd.pos, &ctx, "exceeded maximum template depth");
        }
        let new_dot = argv[1].clone();
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
        let saved_out = std::mem::take(&mut self.out);
        self.depth += 1;
        self.funcs.begin_nested();
        let r = self.walk_list(&new_dot, &list);
        let nested = self.funcs.end_nested();
        self.depth -= 1;
        self.vars = saved_vars;
        let produced = std::mem::replace(&mut self.out, saved_out);
        r?;
        if let Err(e) = nested {
            return self.fail(cmd.pos, &ctx, format!("error calling tmpl: {e}"));
        }
        Ok(Value::Html(produced))
    }
}

fn is_builtin(name: &str) -> bool {
    matches!(
        name,
        "call"
            | "html"
            | "index"
            | "slice"
            | "js"
            | "len"
            | "not"
            | "print"
            | "printf"
            | "println"
            | "urlquery"
            | "eq"
            | "ge"
            | "gt"
            | "le"
            | "lt"
            | "ne"
    )
}

fn want_args(name: &str, argv: &[Value], n: usize) -> Result<(), String> {
    if argv.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            argv.len()
        ));
    }
    Ok(())
}

fn builtin(name: &str, argv: Vec<Value>) -> Result<Value, String> {
    let calling = |e: String| format!("error calling {name}: {e}");
    match name {
        "not" => {
            want_args(name, &argv, 1)?;
            Ok(Value::Bool(!argv[0].truth()))
        }
        "len" => {
            want_args(name, &argv, 1)?;
            Ok(Value::Int(match &argv[0] {
                Value::Str(s) | Value::Html(s) => s.len() as i64,
                Value::Map(m) => m.entries.len() as i64,
                Value::List(l) => l.len() as i64,
                Value::Nil => return Err(calling("len of nil pointer".into())),
                v => return Err(calling(format!("len of type {}", v.type_name()))),
            }))
        }
        "index" => {
            if argv.is_empty() {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            }
            let mut it = argv.into_iter();
            let mut cur = it.next().unwrap_or_default();
            for idx in it {
                cur = match (&cur, &idx) {
                    (Value::Map(m), Value::Str(k)) => {
                        m.entries.get(k).cloned().unwrap_or_else(|| m.zero.clone())
                    }
                    (Value::Map(_), other) => {
                        return Err(calling(format!(
                            "value has type {}; should be string",
                            other.type_name()
                        )));
                    }
                    (Value::List(l), Value::Int(i)) => {
                        match usize::try_from(*i).ok().and_then(|i| l.get(i)) {
                            Some(v) => v.clone(),
                            None => return Err(calling(format!("index out of range: {i}"))),
                        }
                    }
                    (Value::Str(s), Value::Int(i)) => {
                        match usize::try_from(*i).ok().and_then(|i| s.as_bytes().get(i)) {
                            Some(b) => Value::Int(i64::from(*b)),
                            None => return Err(calling(format!("index out of range: {i}"))),
                        }
                    }
                    (Value::Nil, _) => return Err(calling("index of untyped nil".into())),
                    (v, _) => return Err(calling(format!("can't index item of type {}", v.type_name()))),
                };
            }
            Ok(cur)
        }
        "slice" => {
            if argv.is_empty() {
                return Err("wrong number of args for slice: want at least 1 got 0".into());
            }
            let idx: Vec<i64> = argv[1..]
                .iter()
                .map(|v| match v {
                    Value::Int(i) => Ok(*i),
                    o => Err(calling(format!(
                        "cannot index slice/array with type {}",
                        o.type_name()
                    ))),
                })
                .collect::<Result<_, _>>()?;
            let len = match &argv[0] {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                v => return Err(calling(format!("can't slice item of type {}", v.type_name()))),
            } as i64;
            let lo = idx.first().copied().unwrap_or(0);
            let hi = idx.get(1).copied().unwrap_or(len);
            if lo < 0 || hi < lo || hi > len {
                return Err(calling(format!(
                    "index out of range: {}",
                    if lo < 0 || lo > len { lo } else { hi }
                )));
            }
            Ok(match &argv[0] {
                Value::Str(s) => Value::Str(
                    s.get(lo as usize..hi as usize)
                        .ok_or_else(|| calling("slice of string splits a character".into()))?
                        .to_string(),
                ),
                Value::List(l) => Value::List(Arc::new(l[lo as usize..hi as usize].to_vec())),
                _ => Value::Nil,
            })
        }
        "print" => Ok(Value::Str(sprint(&argv))),
        "println" => Ok(Value::Str(sprintln(&argv))),
        "printf" => {
            let Some(Value::Str(f)) = argv.first() else {
                return Err(match argv.first() {
                    None => "wrong number of args for printf: want at least 1 got 0".into(),
                    Some(v) => format!("wrong type for value; expected string; got {}", v.type_name()),
                });
            };
            Ok(Value::Str(sprintf(f, &argv[1..])))
        }
        "html" => Ok(Value::Str(html_escape(&eval_args_text(&argv)))),
        "js" => Ok(Value::Str(js_escape(&eval_args_text(&argv)))),
        "urlquery" => Ok(Value::Str(query_escape(&eval_args_text(&argv)))),
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => compare(name, &argv).map(Value::Bool).map_err(calling),
        "call" => Err(calling("call of non-function".into())),
        _ => Err(format!("function {name:?} not defined")),
    }
}

fn eval_args_text(argv: &[Value]) -> String {
    if let [v] = argv
        && let Some(s) = v.as_str()
    {
        return s.to_string();
    }
    sprint(argv)
}

/// Go's `template.HTMLEscapeString`.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Nil => Kind::Invalid,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Duration(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) | Value::Html(_) => Kind::Str,
        _ => Kind::Other,
    }
}

const BAD_CMP: &str = "incompatible types for comparison";
const BAD_CMP_TYPE: &str = "invalid type for comparison";

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Duration(i) => *i,
        _ => 0,
    }
}

fn eq2(a: &Value, b: &Value) -> Result<bool, String> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        if ka != Kind::Invalid && kb != Kind::Invalid {
            return Err(BAD_CMP.into());
        }
        return Ok(false);
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Nil, Value::Nil) => true,
        _ if ka == Kind::Int => int_of(a) == int_of(b),
        _ if ka == Kind::Str => a.as_str() == b.as_str(),
        (Value::Map(_) | Value::List(_), _) => {
            return Err(format!("non-comparable type {}: {}", a.type_name(), format_v(a)));
        }
        _ => a == b,
    })
}

fn lt2(a: &Value, b: &Value) -> Result<bool, String> {
    let (ka, kb) = (kind(a), kind(b));
    if matches!(ka, Kind::Invalid | Kind::Other | Kind::Bool)
        || matches!(kb, Kind::Invalid | Kind::Other | Kind::Bool)
    {
        return Err(BAD_CMP_TYPE.into());
    }
    if ka != kb {
        return Err(BAD_CMP.into());
    }
    Ok(match (a, b) {
        (Value::Float(x), Value::Float(y)) => x < y,
        _ if ka == Kind::Int => int_of(a) < int_of(b),
        _ => a.as_str() < b.as_str(),
    })
}

fn compare(name: &str, argv: &[Value]) -> Result<bool, String> {
    if name == "eq" {
        if argv.len() < 2 {
            return Err("missing argument for comparison".into());
        }
        for b in &argv[1..] {
            if eq2(&argv[0], b)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if argv.len() != 2 {
        return Err(format!(
            "wrong number of args for {name}: want 2 got {}",
            argv.len()
        ));
    }
    let (a, b) = (&argv[0], &argv[1]);
    match name {
        "ne" => eq2(a, b).map(|e| !e),
        "lt" => lt2(a, b),
        "le" => Ok(lt2(a, b)? || eq2(a, b)?),
        "gt" => Ok(!(lt2(a, b)? || eq2(a, b)?)),
        _ => lt2(a, b).map(|l| !l),
    }
}

fn has_method(v: &Value, name: &str) -> bool {
    match v {
        Value::Struct(_) => name == "String" && v.stringer().is_some(),
        Value::Time { .. } => matches!(
            name,
            "Format"
                | "Unix"
                | "UnixMilli"
                | "UnixNano"
                | "UTC"
                | "Local"
                | "String"
                | "Year"
                | "YearDay"
                | "Month"
                | "Day"
                | "Hour"
                | "Minute"
                | "Second"
                | "Nanosecond"
                | "Weekday"
                | "IsZero"
        ),
        Value::Duration(_) => matches!(
            name,
            "Seconds" | "Minutes" | "Hours" | "Milliseconds" | "Microseconds" | "Nanoseconds" | "String"
        ),
        _ => false,
    }
}

fn call_method(v: &Value, name: &str, args: Vec<Value>) -> Result<Value, String> {
    let want = if name == "Format" { 1 } else { 0 };
    if args.len() != want {
        return Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ));
    }
    match v {
        Value::Struct(_) => Ok(Value::str(v.stringer().unwrap_or_default())),
        Value::Time { secs, nanos } => {
            let dt = chrono::DateTime::from_timestamp(*secs, *nanos).unwrap_or_default();
            use chrono::{Datelike, Timelike};
            Ok(match name {
                "Format" => {
                    let Some(layout) = args[0].as_str() else {
                        return Err(format!(
                            "wrong type for value; expected string; got {}",
                            args[0].type_name()
                        ));
                    };
                    Value::Str(go_time_format(&dt, layout))
                }
                "Unix" => Value::Int(*secs),
                "UnixMilli" => Value::Int(secs * 1000 + i64::from(*nanos) / 1_000_000),
                "UnixNano" => Value::Int(secs.saturating_mul(1_000_000_000) + i64::from(*nanos)),
                "UTC" | "Local" => v.clone(),
                "String" => Value::Str(super::fmt::format_time(*secs, *nanos)),
                "Year" => Value::Int(i64::from(dt.year())),
                "YearDay" => Value::Int(i64::from(dt.ordinal())),
                "Month" => Value::Str(dt.format("%B").to_string()),
                "Day" => Value::Int(i64::from(dt.day())),
                "Hour" => Value::Int(i64::from(dt.hour())),
                "Minute" => Value::Int(i64::from(dt.minute())),
                "Second" => Value::Int(i64::from(dt.second())),
                "Nanosecond" => Value::Int(i64::from(*nanos)),
                "Weekday" => Value::Str(dt.format("%A").to_string()),
                // Go's zero time is January 1, year 1, 00:00:00 UTC, not the Unix epoch.
                _ => Value::Bool(*secs == -62_135_596_800 && *nanos == 0),
            })
        }
        Value::Duration(d) => Ok(match name {
            "Seconds" => Value::Float(*d as f64 / 1e9),
            "Minutes" => Value::Float(*d as f64 / 6e10),
            "Hours" => Value::Float(*d as f64 / 3.6e12),
            "Milliseconds" => Value::Int(d / 1_000_000),
            "Microseconds" => Value::Int(d / 1_000),
            "Nanoseconds" => Value::Int(*d),
            _ => Value::Str(super::fmt::format_go_duration(*d)),
        }),
        _ => Err(format!("can't call method {name}")),
    }
}

/// Formats a UTC time with a Go layout (`2006-01-02T15:04:05Z07:00`).
pub fn go_time_format(dt: &chrono::DateTime<chrono::Utc>, layout: &str) -> String {
    const TOKENS: [(&str, &str); 30] = [
        ("January", "%B"),
        ("Monday", "%A"),
        ("2006", "%Y"),
        ("Z07:00", "Z"),
        ("-07:00", "+00:00"),
        ("-0700", "+0000"),
        ("Z0700", "Z"),
        ("MST", "UTC"),
        (".000000000", "%.9f"),
        (".000000", "%.6f"),
        (".000", "%.3f"),
        (".999999999", "%.f"),
        ("Jan", "%b"),
        ("Mon", "%a"),
        ("01", "%m"),
        ("02", "%d"),
        ("_2", "%e"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("06", "%y"),
        ("PM", "%p"),
        ("pm", "%P"),
        ("002", "%j"),
        ("1", "%-m"),
        ("2", "%-d"),
        ("3", "%-I"),
        ("4", "%-M"),
        ("5", "%-S"),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (tok, spec) in TOKENS {
            if let Some(r) = rest.strip_prefix(tok) {
                if spec.starts_with('%') {
                    let s = dt.format(spec).to_string();
                    // chrono's "%.f" prints nothing for whole seconds, like Go's ".999999999".
                    out.push_str(&s);
                } else {
                    out.push_str(spec);
                }
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Builds a `map[string]interface{}` value (e.g. for `args`).
pub fn any_map(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value::Map(Arc::new(Map {
        entries: entries.into_iter().collect(),
        zero: Value::Nil,
        type_name: "map[string]interface {}",
    }))
}
