//! Request bodies checked the way Alertmanager's go-openapi server checks them, with its error
//! shapes: a body that is not the expected JSON is `400 {"code":400,"message":"parsing alerts
//! body from \"\" failed, because ..."}`; a schema violation is `422 {"code":602,"message":"0.labels
//! in body is required"}` (602 required, 612 too few items, 601 wrong type); only then does the
//! handler look at the values (Alertmanager's own 400 strings).

// Checks short-circuit with ready-made error responses; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// go-openapi's error object.
pub fn error(status: StatusCode, code: u16, message: impl Into<String>) -> Response {
    (
        status,
        [("Content-Type", "application/json")],
        serde_json::json!({"code": code, "message": message.into()}).to_string(),
    )
        .into_response()
}

fn parse_failed(what: &str, why: impl std::fmt::Display) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        400,
        format!("parsing {what} body from \"\" failed, because {why}"),
    )
}

fn required(path: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        602,
        format!("{path} in body is required"),
    )
}

fn wrong_type(path: &str, want: &str, got: &Value) -> Response {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        601,
        format!("{path} in body must be of type {want}: {got:?}"),
    )
}

fn check_time(what: &str, v: Option<&Value>) -> Result<(), Response> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|_| ())
            .map_err(|e| parse_failed(what, format!("parsing time {s:?}: {e}"))),
        Some(other) => Err(parse_failed(
            what,
            format!("json: cannot unmarshal {other} into a date-time"),
        )),
    }
}

fn check_string_map(path: &str, v: Option<&Value>) -> Result<(), Response> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) => {
            for (k, x) in m {
                if !x.is_string() {
                    return Err(wrong_type(&format!("{path}.{k}"), "string", x));
                }
            }
            Ok(())
        }
        Some(other) => Err(wrong_type(path, "object", other)),
    }
}

fn json(what: &str, body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| parse_failed(what, e))
}

/// Checks a `postableAlerts` body.
pub fn check_alerts(body: &[u8]) -> Result<(), Response> {
    let v = json("alerts", body)?;
    let Value::Array(items) = v else {
        return Err(parse_failed(
            "alerts",
            "json: cannot unmarshal object into Go value of type models.PostableAlerts",
        ));
    };
    for (i, a) in items.iter().enumerate() {
        let Value::Object(o) = a else {
            return Err(parse_failed(
                "alerts",
                "json: cannot unmarshal non-object into Go value of type models.PostableAlert",
            ));
        };
        check_time("alerts", o.get("startsAt"))?;
        check_time("alerts", o.get("endsAt"))?;
        if o.get("labels").is_none_or(Value::is_null) {
            return Err(required(&format!("{i}.labels")));
        }
        check_string_map(&format!("{i}.labels"), o.get("labels"))?;
        check_string_map(&format!("{i}.annotations"), o.get("annotations"))?;
        if let Some(g) = o.get("generatorURL")
            && !g.is_string()
            && !g.is_null()
        {
            return Err(wrong_type(&format!("{i}.generatorURL"), "string", g));
        }
    }
    Ok(())
}

/// Checks a `postableSilence` body.
pub fn check_silence(body: &[u8]) -> Result<(), Response> {
    let v = json("silence", body)?;
    let Value::Object(o) = v else {
        return Err(parse_failed(
            "silence",
            "json: cannot unmarshal non-object into Go value of type models.PostableSilence",
        ));
    };
    check_time("silence", o.get("startsAt"))?;
    check_time("silence", o.get("endsAt"))?;
    for f in ["comment", "createdBy", "endsAt", "matchers", "startsAt"] {
        if o.get(f).is_none_or(Value::is_null) {
            return Err(required(f));
        }
    }
    for f in ["comment", "createdBy", "id"] {
        if let Some(x) = o.get(f)
            && !x.is_string()
            && !x.is_null()
        {
            return Err(wrong_type(f, "string", x));
        }
    }
    let Some(Value::Array(ms)) = o.get("matchers") else {
        return Err(wrong_type(
            "matchers",
            "array",
            o.get("matchers").unwrap_or(&Value::Null),
        ));
    };
    if ms.is_empty() {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            612,
            "matchers in body should have at least 1 items",
        ));
    }
    for (i, m) in ms.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err(wrong_type(&format!("matchers.{i}"), "object", m));
        };
        for f in ["isRegex", "name", "value"] {
            if m.get(f).is_none_or(Value::is_null) {
                return Err(required(&format!("matchers.{i}.{f}")));
            }
        }
        for (f, want) in [
            ("name", "string"),
            ("value", "string"),
            ("isRegex", "boolean"),
            ("isEqual", "boolean"),
        ] {
            let ok = match (m.get(f), want) {
                (None | Some(Value::Null), _) => true,
                (Some(x), "string") => x.is_string(),
                (Some(x), _) => x.is_boolean(),
            };
            if !ok {
                return Err(wrong_type(
                    &format!("matchers.{i}.{f}"),
                    want,
                    m.get(f).unwrap_or(&Value::Null),
                ));
            }
        }
    }
    check_string_map("annotations", o.get("annotations"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(r: Result<(), Response>) -> u16 {
        r.err().map(|r| r.status().as_u16()).unwrap_or(200)
    }

    #[test]
    fn shapes_like_go_openapi() {
        assert_eq!(status(check_alerts(b"{bad")), 400);
        assert_eq!(status(check_alerts(br#"{"labels":{}}"#)), 400);
        assert_eq!(status(check_alerts(br#"[{}]"#)), 422);
        assert_eq!(
            status(check_alerts(br#"[{"labels":{"a":"b"},"startsAt":"x"}]"#)),
            400
        );
        assert_eq!(status(check_alerts(br#"[{"labels":{"a":1}}]"#)), 422);
        assert_eq!(status(check_alerts(br#"[{"labels":{"a":"b"}}]"#)), 200);
        let ok = br#"{"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2024-01-01T00:00:00Z","endsAt":"2024-01-02T00:00:00Z","createdBy":"me","comment":"c"}"#;
        assert_eq!(status(check_silence(ok)), 200);
        assert_eq!(status(check_silence(br#"{"matchers":[],"startsAt":"2024-01-01T00:00:00Z","endsAt":"2024-01-02T00:00:00Z","createdBy":"me","comment":"c"}"#)), 422);
        assert_eq!(status(check_silence(br#"{"matchers":[{"name":"a","value":"b"}],"startsAt":"2024-01-01T00:00:00Z","endsAt":"2024-01-02T00:00:00Z","createdBy":"me","comment":"c"}"#)), 422);
    }
}
