//! `/api/v1/parse_query`: the PromQL syntax tree as JSON, in the shape of
//! Prometheus's `translateAST` (used by its UI's tree view).

use promql_parser::parser::{
    AtModifier, Expr, LabelModifier, Offset, VectorMatchCardinality, VectorSelector, token::TokenType,
};
use serde_json::{Value, json};

pub fn translate(expr: &Expr) -> Value {
    match expr {
        Expr::Aggregate(a) => {
            let (grouping, without) = match &a.modifier {
                Some(LabelModifier::Include(ls)) => (ls.labels.clone(), false),
                Some(LabelModifier::Exclude(ls)) => (ls.labels.clone(), true),
                None => (vec![], false),
            };
            json!({
                "type": "aggregation",
                "op": token_name(a.op),
                "expr": translate(&a.expr),
                "param": a.param.as_deref().map(translate),
                "grouping": grouping,
                "without": without,
            })
        }
        Expr::Binary(b) => {
            let matching = b.modifier.as_ref().map(|m| {
                let (card, include) = match &m.card {
                    VectorMatchCardinality::OneToOne => ("one-to-one", vec![]),
                    VectorMatchCardinality::ManyToOne(ls) => ("many-to-one", ls.labels.clone()),
                    VectorMatchCardinality::OneToMany(ls) => ("one-to-many", ls.labels.clone()),
                    VectorMatchCardinality::ManyToMany => ("many-to-many", vec![]),
                };
                let (labels, on) = match &m.matching {
                    Some(LabelModifier::Include(ls)) => (ls.labels.clone(), true),
                    Some(LabelModifier::Exclude(ls)) => (ls.labels.clone(), false),
                    None => (vec![], false),
                };
                json!({
                    "card": card,
                    "labels": labels,
                    "on": on,
                    "include": include,
                    "fillValues": {"lhs": m.fill_values.lhs, "rhs": m.fill_values.rhs},
                })
            });
            json!({
                "type": "binaryExpr",
                "op": token_name(b.op),
                "lhs": translate(&b.lhs),
                "rhs": translate(&b.rhs),
                "matching": matching,
                "bool": b.return_bool(),
            })
        }
        Expr::Call(c) => json!({
            "type": "call",
            "func": {
                "name": c.func.name,
                "argTypes": c.func.arg_types.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                "variadic": c.func.variadic,
                "returnType": c.func.return_type.to_string(),
            },
            "args": c.args.args.iter().map(|a| translate(a)).collect::<Vec<_>>(),
        }),
        Expr::MatrixSelector(m) => {
            let mut v = selector(&m.vs, "matrixSelector");
            v["range"] = json!(m.range.as_millis() as i64);
            v["rangeExpr"] = Value::Null;
            v
        }
        Expr::Subquery(s) => json!({
            "type": "subquery",
            "expr": translate(&s.expr),
            "range": s.range.as_millis() as i64,
            "rangeExpr": null,
            "offset": offset_ms(s.offset.as_ref()),
            "offsetExpr": null,
            "step": s.step.map(|d| d.as_millis() as i64).unwrap_or(0),
            "stepExpr": null,
            "timestamp": at_timestamp(s.at.as_ref()),
            "startOrEnd": start_or_end(s.at.as_ref()),
        }),
        Expr::NumberLiteral(n) => json!({"type": "numberLiteral", "val": fenghuo_gofmt::sample_value(n.val)}),
        Expr::Paren(p) => json!({"type": "parenExpr", "expr": translate(&p.expr)}),
        Expr::StringLiteral(s) => json!({"type": "stringLiteral", "val": s.val}),
        Expr::Unary(u) => json!({"type": "unaryExpr", "op": "-", "expr": translate(&u.expr)}),
        Expr::VectorSelector(vs) => selector(vs, "vectorSelector"),
        Expr::Extension(_) => Value::Null,
    }
}

fn selector(vs: &VectorSelector, kind: &str) -> Value {
    let mut matchers: Vec<Value> = Vec::new();
    if let Some(name) = &vs.name {
        matchers.push(json!({"name": "__name__", "value": name, "type": "="}));
    }
    for m in &vs.matchers.matchers {
        matchers.push(json!({"name": m.name, "value": m.value, "type": m.op.to_string()}));
    }
    json!({
        "type": kind,
        "name": vs.name.clone().unwrap_or_default(),
        "offset": offset_ms(vs.offset.as_ref()),
        "offsetExpr": null,
        "matchers": matchers,
        "timestamp": at_timestamp(vs.at.as_ref()),
        "startOrEnd": start_or_end(vs.at.as_ref()),
        "anchored": false,
        "smoothed": false,
    })
}

fn token_name(t: TokenType) -> String {
    t.to_string()
}

fn offset_ms(o: Option<&Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    }
}

fn at_timestamp(at: Option<&AtModifier>) -> Value {
    match at {
        Some(AtModifier::At(t)) => {
            let ms = match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => d.as_millis() as i64,
                Err(e) => -(e.duration().as_millis() as i64),
            };
            json!(ms)
        }
        _ => Value::Null,
    }
}

fn start_or_end(at: Option<&AtModifier>) -> Value {
    match at {
        Some(AtModifier::Start) => json!("start"),
        Some(AtModifier::End) => json!("end"),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_a_sum_by_of_rate() {
        let expr = promql_parser::parser::parse(
            "sum by (job) (rate(http_requests_total{code=\"200\"}[5m] offset 1m))",
        )
        .unwrap();
        let v = translate(&expr);
        assert_eq!(v["type"], "aggregation");
        assert_eq!(v["op"], "sum");
        assert_eq!(v["grouping"], json!(["job"]));
        let sel = &v["expr"]["args"][0];
        assert_eq!(sel["type"], "matrixSelector");
        assert_eq!(sel["range"], 300_000);
        assert_eq!(sel["offset"], 60_000);
        assert_eq!(
            sel["matchers"][1],
            json!({"name": "code", "value": "200", "type": "="})
        );
    }
}
