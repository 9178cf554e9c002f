//! Functions that work on series rather than samples: `label_replace`,
//! `label_join` and `info` (enriching series with info-metric labels).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fenghuo_storage_api::api::SelectHints;
use fenghuo_storage_api::model::{Labels, METRIC_NAME, MatchOp, Matcher};
use regex::Regex;

use crate::error::QueryError;
use crate::eval::{Elem, Evaluator, Matrix, Metric, Series, merge_same_labelsets};
use crate::plan::{Call, Node};

fn string_arg(c: &Call, i: usize) -> String {
    match c.args.get(i).map(Node::unwrapped) {
        Some(Node::Str { v, .. }) => v.clone(),
        _ => String::new(),
    }
}

/// Prometheus 3 accepts any non-empty UTF-8 label name.
fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
}

/// Whether string argument `i` decoded to bytes that are not UTF-8.
fn invalid_arg(c: &Call, i: usize) -> bool {
    matches!(
        c.args.get(i).map(Node::unwrapped),
        Some(Node::Str { invalid: Some(_), .. })
    )
}

impl Evaluator<'_, '_> {
    pub(crate) fn eval_label_replace(&mut self, c: &Call) -> Result<Matrix, QueryError> {
        let dst = string_arg(c, 1);
        let repl = string_arg(c, 2);
        let src = string_arg(c, 3);
        let re_str = string_arg(c, 4);
        let re = Regex::new(&format!("^(?s:{re_str})$")).map_err(|_| {
            QueryError::exec(format!("invalid regular expression in label_replace(): {re_str}"))
        })?;
        if !valid_label_name(&dst) || invalid_arg(c, 1) {
            return Err(QueryError::exec(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let mut mat = self.eval(&c.args[0])?.into_matrix();
        for s in mat.iter_mut() {
            let src_val = s.metric.get(&src).unwrap_or("").to_string();
            if let Some(caps) = re.captures(&src_val) {
                let mut res = String::new();
                caps.expand(&repl, &mut res);
                let mut ls = (*s.metric).clone();
                ls.set(&dst, &res);
                s.metric = Arc::new(ls);
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
            }
        }
        merge_same_labelsets(mat)
    }

    pub(crate) fn eval_label_join(&mut self, c: &Call) -> Result<Matrix, QueryError> {
        let dst = string_arg(c, 1);
        let sep = string_arg(c, 2);
        let mut srcs = Vec::new();
        for i in 3..c.args.len() {
            let s = string_arg(c, i);
            if !valid_label_name(&s) || invalid_arg(c, i) {
                return Err(QueryError::exec(format!(
                    "invalid source label name in label_join(): {s}"
                )));
            }
            srcs.push(s);
        }
        if !valid_label_name(&dst) || invalid_arg(c, 1) {
            return Err(QueryError::exec(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        let mut mat = self.eval(&c.args[0])?.into_matrix();
        for s in mat.iter_mut() {
            let joined: Vec<&str> = srcs.iter().map(|n| s.metric.get(n).unwrap_or("")).collect();
            let joined = joined.join(&sep);
            let mut ls = (*s.metric).clone();
            ls.set(&dst, &joined);
            s.metric = Arc::new(ls);
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
        merge_same_labelsets(mat)
    }

    pub(crate) fn eval_info(&mut self, c: &Call) -> Result<Matrix, QueryError> {
        let (node_at, offset) = info_time_and_offset(&c.args[0], None);
        let original = self.current_samples;
        let mat = self.eval(&c.args[0])?.into_matrix();

        let mut data_matchers: HashMap<String, Vec<Matcher>> = HashMap::new();
        let mut name_matchers: Vec<Matcher> = Vec::new();
        if let Some(Node::Vector(sel)) = c.args.get(1).map(Node::unwrapped) {
            for m in sel.matchers() {
                data_matchers.entry(m.name.clone()).or_default().push(m.clone());
                if m.name == METRIC_NAME {
                    name_matchers.push(m.clone());
                }
            }
        } else {
            name_matchers.push(Matcher::equal(METRIC_NAME, "target_info"));
        }
        let effective = effective_name_matchers(&name_matchers)?;
        let ignore: HashSet<Metric> = mat
            .iter()
            .filter(|s| {
                let name = s.metric.metric_name().unwrap_or("");
                effective.iter().all(|m| m.matches(name))
            })
            .map(|s| s.metric.clone())
            .collect();

        let info_mat = self.fetch_info_series(&mat, &ignore, &mut data_matchers, node_at, offset)?;
        self.combine_with_info(mat, info_mat, &ignore, &data_matchers, original)
    }

    fn fetch_info_series(
        &mut self,
        mat: &Matrix,
        ignore: &HashSet<Metric>,
        data_matchers: &mut HashMap<String, Vec<Matcher>>,
        node_at: Option<i64>,
        offset: i64,
    ) -> Result<Matrix, QueryError> {
        let remove_names = |dm: &mut HashMap<String, Vec<Matcher>>| {
            dm.retain(|_, ms| {
                ms.retain(|m| m.name != METRIC_NAME);
                !ms.is_empty()
            });
        };
        let mut id_values: HashMap<&str, Vec<String>> = HashMap::new();
        for s in mat {
            if ignore.contains(&s.metric) {
                continue;
            }
            for l in ["instance", "job"] {
                if let Some(v) = s.metric.get(l).filter(|v| !v.is_empty()) {
                    let vals = id_values.entry(l).or_default();
                    if !vals.iter().any(|x| x == v) {
                        vals.push(v.to_string());
                    }
                }
            }
        }
        if id_values.is_empty() {
            remove_names(data_matchers);
            return Ok(Vec::new());
        }
        let mut matchers: Vec<Matcher> = Vec::new();
        for (name, vals) in &id_values {
            let re = vals
                .iter()
                .map(|v| regex::escape(v))
                .collect::<Vec<_>>()
                .join("|");
            matchers
                .push(Matcher::new(MatchOp::Regex, *name, re).map_err(|e| QueryError::exec(e.to_string()))?);
        }
        let mut names = Vec::new();
        for ms in data_matchers.values() {
            for m in ms {
                if m.name == METRIC_NAME {
                    names.push(m.clone());
                } else {
                    matchers.push(m.clone());
                }
            }
        }
        remove_names(data_matchers);
        matchers.extend(effective_name_matchers(&names)?);

        let start = node_at.unwrap_or(self.start) - (self.q.lookback - 1) - offset;
        let end = node_at.unwrap_or(self.end) - offset;
        let hints = SelectHints {
            start,
            end,
            max_samples: None,
        };
        let series = self.q.querier.select(&matchers, &hints)?;
        let loaded: Vec<Series> = series
            .into_iter()
            .map(|s| Series {
                metric: Arc::new(s.labels),
                floats: s.floats,
                hists: s.histograms,
                drop_name: false,
            })
            .collect();
        self.eval_series(&loaded, offset, node_at, true)
    }

    fn combine_with_info(
        &mut self,
        mat: Matrix,
        info_mat: Matrix,
        ignore: &HashSet<Metric>,
        data_matchers: &HashMap<String, Vec<Matcher>>,
        original: usize,
    ) -> Result<Matrix, QueryError> {
        let mut info_names: Vec<String> = Vec::new();
        for s in &info_mat {
            let n = s.metric.metric_name().unwrap_or("").to_string();
            if !info_names.contains(&n) {
                info_names.push(n);
            }
        }
        let sig = |name: &str, ls: &Labels| -> Labels {
            let mut out = ls.keep_only(&["instance", "job"]);
            out.set(METRIC_NAME, name);
            out
        };
        let all_match_empty = data_matchers.values().flatten().all(|m| m.matches(""));
        let info_sig: HashMap<Metric, Labels> = info_mat
            .iter()
            .map(|s| {
                (
                    s.metric.clone(),
                    sig(s.metric.metric_name().unwrap_or(""), &s.metric),
                )
            })
            .collect();
        self.step_loop(vec![mat, info_mat], None, original, |v, _, _| {
            let (base, info) = (&v[0], &v[1]);
            if base.is_empty() {
                return Ok(Vec::new());
            }
            let mut right: HashMap<Labels, &Elem> = HashMap::new();
            for s in info {
                let Some(sg) = info_sig.get(&s.metric) else {
                    continue;
                };
                let orig_t = s.f as i64;
                match right.get(sg) {
                    Some(existing) => {
                        let existing_t = existing.f as i64;
                        if existing_t < orig_t {
                            right.insert(sg.clone(), s);
                        } else if existing_t == orig_t {
                            return Err(QueryError::exec(format!(
                                "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                                existing.metric, existing_t, s.metric, orig_t
                            )));
                        }
                    }
                    None => {
                        right.insert(sg.clone(), s);
                    }
                }
            }
            let mut out = Vec::with_capacity(base.len());
            for b in base {
                if ignore.contains(&b.metric) {
                    out.push(b.clone());
                    continue;
                }
                let mut add = Labels::empty();
                let mut seen = 0;
                for name in &info_names {
                    let Some(is) = right.get(&sig(name, &b.metric)) else {
                        continue;
                    };
                    for l in is.metric.iter() {
                        if l.name == METRIC_NAME {
                            continue;
                        }
                        if !data_matchers.is_empty() && !data_matchers.contains_key(&l.name) {
                            continue;
                        }
                        if let Some(v) = add.get(&l.name)
                            && !v.is_empty()
                            && v != l.value
                        {
                            return Err(QueryError::exec(format!("conflicting label: {}", l.name)));
                        }
                        if b.metric.has(&l.name) {
                            continue;
                        }
                        add.set(&l.name, &l.value);
                    }
                    seen += 1;
                }
                if seen == 0 && !all_match_empty {
                    continue;
                }
                let mut ls = (*b.metric).clone();
                for l in add.iter() {
                    ls.set(&l.name, &l.value);
                }
                out.push(Elem {
                    metric: Arc::new(ls),
                    t: b.t,
                    f: b.f,
                    h: b.h.clone(),
                    drop_name: b.drop_name,
                });
            }
            Ok(out)
        })
    }
}

/// The name matchers used to find info series: given ones if any of them
/// is `=` or `=~`, else `__name__=~".+_info"` plus the given ones, else
/// `target_info`.
fn effective_name_matchers(given: &[Matcher]) -> Result<Vec<Matcher>, QueryError> {
    if given
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex))
    {
        return Ok(given.to_vec());
    }
    if !given.is_empty() {
        let mut out = vec![
            Matcher::new(MatchOp::Regex, METRIC_NAME, ".+_info")
                .map_err(|e| QueryError::exec(e.to_string()))?,
        ];
        out.extend(given.iter().cloned());
        return Ok(out);
    }
    Ok(vec![Matcher::equal(METRIC_NAME, "target_info")])
}

/// The `@` time and total offset of the first selector in `n` (with the
/// offsets of enclosing subqueries up to the first `@`), as Prometheus's
/// `infoSelectTimestampAndOffset`.
fn info_time_and_offset(n: &Node, _parent: Option<()>) -> (Option<i64>, i64) {
    fn walk(n: &Node, path: &mut Vec<(i64, Option<i64>)>) -> Option<(Option<i64>, i64)> {
        match n {
            Node::Vector(sel) | Node::Matrix { sel, .. } => {
                let mut at = sel.at;
                let mut offset = sel.offset;
                for (o, a) in path.iter().rev() {
                    if at.is_some() {
                        break;
                    }
                    offset += o;
                    at = *a;
                }
                Some((at, offset))
            }
            Node::Subquery(sq) => {
                path.push((sq.offset, sq.at));
                let r = walk(&sq.expr, path);
                path.pop();
                r
            }
            Node::Call(c) => c.args.iter().find_map(|a| walk(a, path)),
            Node::Aggregate(a) => a
                .param
                .iter()
                .chain(std::iter::once(&a.expr))
                .find_map(|x| walk(x, path)),
            Node::Binary(b) => walk(&b.lhs, path).or_else(|| walk(&b.rhs, path)),
            Node::Neg { expr, .. } | Node::Paren { expr, .. } | Node::StepInvariant(expr) => walk(expr, path),
            Node::Number { .. } | Node::Str { .. } => None,
        }
    }
    walk(n, &mut Vec::new()).unwrap_or((None, 0))
}
