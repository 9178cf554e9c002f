//! Notification templates in two languages side by side. Handlebars is fenghuo's own: the data
//! users know from Alertmanager (status, receiver, group/common labels and annotations, alerts
//! split into firing and resolved, external URL) plus fenghuo's silence and ack links, escalation
//! step and digest info; default templates for every receiver; files `*.hbs` (registered by file
//! stem). Go templates are Alertmanager's ([`crate::amtemplate`]): a field that parses as a Go
//! template renders with Go semantics, and every other file in `templates:` is a Go template file.
//! Escaping fits the channel: HTML for mail (html/template's contextual escaping for Go),
//! JSON-string for webhook bodies, none for markdown.

use std::collections::BTreeMap;
use std::path::Path;

use handlebars::{Handlebars, handlebars_helper};
use serde::Serialize;

use crate::amtemplate::{GoTemplate, GoTemplates};
use crate::clock::Ts;
use crate::error::AlertingError;
use crate::model::{Alert, LabelSet};

/// How rendered values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Escape {
    Html,
    Json,
    None,
}

/// Go's zero time, as Alertmanager renders an unset `endsAt`.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One alert in template data and webhook payloads (Alertmanager's `template.Alert`).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TemplateAlert {
    pub status: String,
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

fn rfc3339(t: Ts) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

impl TemplateAlert {
    /// From a flushed alert: firing alerts carry Go's zero `endsAt`, as in Alertmanager.
    pub fn from_alert(a: &Alert, now: Ts) -> Self {
        let resolved = a.resolved_at(now);
        TemplateAlert {
            status: if resolved {
                "resolved".into()
            } else {
                "firing".into()
            },
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: rfc3339(a.starts_at),
            ends_at: if resolved {
                rfc3339(a.ends_at)
            } else {
                ZERO_TIME.into()
            },
            generator_url: a.generator_url.clone(),
            fingerprint: a.fingerprint().to_string(),
        }
    }
}

/// Escalation context of a notification.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EscalationInfo {
    pub policy: String,
    pub step: usize,
    pub steps: usize,
    pub repeat: u32,
}

/// Everything a template can use.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationData {
    pub receiver: String,
    pub status: String,
    pub alerts: Vec<TemplateAlert>,
    pub firing_alerts: Vec<TemplateAlert>,
    pub resolved_alerts: Vec<TemplateAlert>,
    pub group_labels: LabelSet,
    pub common_labels: LabelSet,
    pub common_annotations: LabelSet,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub group_key: String,
    pub truncated_alerts: u64,
    pub tenant: String,
    #[serde(rename = "silenceURL")]
    pub silence_url: String,
    #[serde(rename = "ackURL")]
    pub ack_url: String,
    pub status_upper: String,
    pub firing_count: usize,
    pub resolved_count: usize,
    pub group_label_values: String,
    pub extra_common_label_values: String,
    pub escalation: Option<EscalationInfo>,
    /// When several notifications were folded into one digest: how many.
    pub digest_count: usize,
    pub digest_groups: Vec<String>,
    pub test: bool,
    /// When the notification is rendered (the engine clock): Go templates' `now` and `since`.
    #[serde(skip)]
    pub now: Ts,
}

impl NotificationData {
    /// Builds the data for a group flush. `alerts` are sorted as Alertmanager sorts them.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        receiver: &str,
        group_key: &str,
        group_labels: &LabelSet,
        alerts: &[Alert],
        now: Ts,
        external_url: &str,
        tenant: &str,
        ack_url: &str,
    ) -> Self {
        let talerts: Vec<TemplateAlert> = alerts.iter().map(|a| TemplateAlert::from_alert(a, now)).collect();
        let firing: Vec<TemplateAlert> = talerts.iter().filter(|a| a.status == "firing").cloned().collect();
        let resolved: Vec<TemplateAlert> = talerts
            .iter()
            .filter(|a| a.status == "resolved")
            .cloned()
            .collect();
        let status = if firing.is_empty() { "resolved" } else { "firing" };
        let common_labels = common(alerts.iter().map(|a| &a.labels));
        let common_annotations = common(alerts.iter().map(|a| &a.annotations));
        let group_label_values = group_labels.values().cloned().collect::<Vec<_>>().join(" ");
        let extra_common_label_values = if common_labels.len() > group_labels.len() {
            common_labels
                .iter()
                .filter(|(k, _)| !group_labels.contains_key(*k))
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            String::new()
        };
        let filter: Vec<String> = common_labels
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::model::go_quote(v)))
            .collect();
        let silence_url = format!(
            "{}/#/silences/new?filter={}",
            external_url.trim_end_matches('/'),
            percent_encoding::utf8_percent_encode(
                &format!("{{{}}}", filter.join(",")),
                percent_encoding::NON_ALPHANUMERIC
            )
        );
        NotificationData {
            receiver: receiver.to_string(),
            status: status.into(),
            firing_count: firing.len(),
            resolved_count: resolved.len(),
            alerts: talerts,
            firing_alerts: firing,
            resolved_alerts: resolved,
            group_labels: group_labels.clone(),
            common_labels,
            common_annotations,
            external_url: external_url.to_string(),
            group_key: group_key.to_string(),
            truncated_alerts: 0,
            tenant: tenant.to_string(),
            silence_url,
            ack_url: ack_url.to_string(),
            status_upper: status.to_uppercase(),
            group_label_values,
            extra_common_label_values,
            escalation: None,
            digest_count: 1,
            digest_groups: vec![group_key.to_string()],
            test: false,
            now,
        }
    }

    /// Folds several notifications for the same integration into one digest.
    pub fn digest(items: &[NotificationData]) -> Option<NotificationData> {
        let first = items.first()?;
        let mut d = first.clone();
        if items.len() == 1 {
            return Some(d);
        }
        d.alerts = items.iter().flat_map(|i| i.alerts.clone()).collect();
        d.firing_alerts = items.iter().flat_map(|i| i.firing_alerts.clone()).collect();
        d.resolved_alerts = items.iter().flat_map(|i| i.resolved_alerts.clone()).collect();
        d.firing_count = d.firing_alerts.len();
        d.resolved_count = d.resolved_alerts.len();
        d.status = if d.firing_alerts.is_empty() {
            "resolved".into()
        } else {
            "firing".into()
        };
        d.status_upper = d.status.to_uppercase();
        d.common_labels = common(d.alerts.iter().map(|a| &a.labels));
        d.common_annotations = common(d.alerts.iter().map(|a| &a.annotations));
        d.group_labels = LabelSet::new();
        d.group_label_values = format!("digest of {} notifications", items.len());
        d.extra_common_label_values = String::new();
        d.digest_count = items.iter().map(|i| i.digest_count).sum();
        d.digest_groups = items.iter().flat_map(|i| i.digest_groups.clone()).collect();
        Some(d)
    }
}

/// Labels (or annotations) with the same value in every set.
fn common<'a>(mut sets: impl Iterator<Item = &'a LabelSet>) -> LabelSet {
    let Some(first) = sets.next() else {
        return LabelSet::new();
    };
    let mut out = first.clone();
    for s in sets {
        out.retain(|k, v| s.get(k) == Some(v));
    }
    out
}

handlebars_helper!(upper: |s: str| s.to_uppercase());
handlebars_helper!(lower: |s: str| s.to_lowercase());
handlebars_helper!(join: |v: array, sep: str| v.iter().map(|x| match x {
    serde_json::Value::String(s) => s.clone(),
    other => other.to_string(),
}).collect::<Vec<_>>().join(sep));
handlebars_helper!(values: |m: object| m.values().map(|x| match x {
    serde_json::Value::String(s) => s.clone(),
    other => other.to_string(),
}).collect::<Vec<_>>().join(" "));
handlebars_helper!(json: |v: Json| serde_json::to_string(v).unwrap_or_default());
handlebars_helper!(truncate: |s: str, n: u64| {
    let n = n as usize;
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n).collect::<String>() + "…" }
});
handlebars_helper!(date: |s: str| {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) if s != ZERO_TIME => t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        _ => String::new(),
    }
});

/// Built-in templates, registered under these names in every registry.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("default.title", include_str!("templates/default.title.hbs")),
    ("email.subject", include_str!("templates/default.title.hbs")),
    ("email.html", include_str!("templates/email.html.hbs")),
    ("email.text", include_str!("templates/email.text.hbs")),
    ("im.markdown", include_str!("templates/im.markdown.hbs")),
    ("slack.text", include_str!("templates/slack.text.hbs")),
];

fn json_escape(s: &str) -> String {
    let q = serde_json::to_string(s).unwrap_or_default();
    q[1..q.len().saturating_sub(1)].to_string()
}

/// All templates, compiled once per config load in one registry per escaping mode.
pub struct Templates {
    registries: BTreeMap<Escape, Handlebars<'static>>,
    /// Inline template strings from the config, by generated name.
    inline: BTreeMap<String, String>,
    /// Go template definitions (defaults and files) and compiled Go fields (`go:<hash>`).
    go: GoTemplates,
    go_inline: BTreeMap<String, GoTemplate>,
}

/// Prefix of the names of compiled Go template fields.
const GO_PREFIX: &str = "go:";

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("inline", &self.inline.len())
            .field("go", &self.go)
            .field("go_inline", &self.go_inline.len())
            .finish()
    }
}

fn new_registry(escape: Escape) -> Handlebars<'static> {
    let mut h = Handlebars::new();
    h.set_strict_mode(false);
    match escape {
        Escape::Html => h.register_escape_fn(handlebars::html_escape),
        Escape::Json => h.register_escape_fn(json_escape),
        Escape::None => h.register_escape_fn(handlebars::no_escape),
    }
    h.register_helper("upper", Box::new(upper));
    h.register_helper("lower", Box::new(lower));
    h.register_helper("join", Box::new(join));
    h.register_helper("values", Box::new(values));
    h.register_helper("json", Box::new(json));
    h.register_helper("truncate", Box::new(truncate));
    h.register_helper("date", Box::new(date));
    crate::hbs_guard::register_counted_helpers(&mut h);
    h
}

/// A template error of the limits in [`crate::hbs_guard`].
fn limit_error(name: &str, message: String) -> AlertingError {
    AlertingError::Template {
        name: name.to_string(),
        message,
    }
}

/// Checks a registry's templates together (partials may include each other).
fn check_registry(
    h: &Handlebars<'static>,
    extra: Option<(&str, &handlebars::Template)>,
) -> Result<(), String> {
    crate::hbs_guard::check_partials(
        h.get_templates()
            .iter()
            .map(|(n, t)| (n.as_str(), t))
            .chain(extra),
    )
}

impl Templates {
    /// Compiles the defaults and the user template files matching `globs` (relative to `base`):
    /// `*.hbs` files are handlebars, every other file is a Go template file as in Alertmanager.
    pub fn load(globs: &[String], base: &Path) -> Result<Self, AlertingError> {
        crate::render_guard::guarded(|| Self::load_unguarded(globs, base))
    }

    fn load_unguarded(globs: &[String], base: &Path) -> Result<Self, AlertingError> {
        let mut files: Vec<(String, String)> = Vec::new();
        let mut go = GoTemplates::new().map_err(|e| AlertingError::Template {
            name: "default.tmpl".into(),
            message: e,
        })?;
        for g in globs {
            let pattern = if Path::new(g).is_absolute() {
                g.clone()
            } else {
                base.join(g).display().to_string()
            };
            for path in glob_files(&pattern)? {
                let src = std::fs::read_to_string(&path).map_err(|e| AlertingError::Io {
                    path: path.display().to_string(),
                    source: e,
                })?;
                let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("template");
                match file.strip_suffix(".hbs") {
                    Some(name) => {
                        crate::hbs_guard::check_source(&src)
                            .map_err(|e| limit_error(&path.display().to_string(), e))?;
                        files.push((name.to_string(), src))
                    }
                    None => go.add_file(file, &src).map_err(|e| AlertingError::Template {
                        name: path.display().to_string(),
                        message: e,
                    })?,
                }
            }
        }
        let mut registries = BTreeMap::new();
        for esc in [Escape::Html, Escape::Json, Escape::None] {
            let mut h = new_registry(esc);
            for (name, src) in DEFAULTS
                .iter()
                .map(|(n, s)| (n.to_string(), s.to_string()))
                .chain(files.clone())
            {
                h.register_template_string(&name, src)
                    .map_err(|e| AlertingError::Template {
                        name: name.clone(),
                        message: e.to_string(),
                    })?;
            }
            if esc == Escape::None {
                check_registry(&h, None).map_err(|e| limit_error("templates", e))?;
            }
            registries.insert(esc, h);
        }
        Ok(Templates {
            registries,
            inline: BTreeMap::new(),
            go,
            go_inline: BTreeMap::new(),
        })
    }

    /// Registers a template string from the config in the language it is written in (see
    /// [`crate::amtemplate::is_go_template`]); returns its name. Broken templates fail here.
    pub fn add_field(&mut self, context: &str, src: &str) -> Result<String, AlertingError> {
        if crate::amtemplate::is_go_template(src) {
            return self.add_go(context, src);
        }
        match self.add_inline(context, src) {
            Ok(n) => Ok(n),
            // Neither parser accepts it: report the Go error when it was meant as Go.
            Err(_) if crate::amtemplate::looks_like_go(src) => self.add_go(context, src),
            Err(e) => Err(e),
        }
    }

    /// Compiles a Go template field; returns its name.
    pub fn add_go(&mut self, context: &str, src: &str) -> Result<String, AlertingError> {
        crate::render_guard::guarded(|| self.add_go_unguarded(context, src))
    }

    fn add_go_unguarded(&mut self, context: &str, src: &str) -> Result<String, AlertingError> {
        let name = format!(
            "{GO_PREFIX}{:016x}",
            crate::model::fingerprint(&[("s".to_string(), src.to_string())].into()).0
        );
        if !self.go_inline.contains_key(&name) {
            let t = self.go.compile(src).map_err(|e| AlertingError::Template {
                name: context.to_string(),
                message: e,
            })?;
            self.go_inline.insert(name.clone(), t);
        }
        Ok(name)
    }

    /// The Go template namespace (defaults and files).
    pub fn go(&self) -> &GoTemplates {
        &self.go
    }

    fn render_go(t: &GoTemplate, escape: Escape, data: &NotificationData) -> Result<String, String> {
        let v = crate::amtemplate::data::data_value(data);
        let out = t.render(&v, escape == Escape::Html, data.now)?;
        Ok(if escape == Escape::Json {
            json_escape(&out)
        } else {
            out
        })
    }

    /// Registers an inline template string from the config; returns its name. Broken templates
    /// fail here, at load time.
    pub fn add_inline(&mut self, context: &str, src: &str) -> Result<String, AlertingError> {
        crate::render_guard::guarded(|| self.add_inline_unguarded(context, src))
    }

    fn add_inline_unguarded(&mut self, context: &str, src: &str) -> Result<String, AlertingError> {
        let name = format!(
            "inline:{:016x}",
            crate::model::fingerprint(&[("s".to_string(), src.to_string())].into()).0
        );
        if self.inline.contains_key(&name) {
            return Ok(name);
        }
        crate::hbs_guard::check_source(src).map_err(|e| limit_error(context, e))?;
        let compiled = handlebars::Template::compile(src).map_err(|e| limit_error(context, e.to_string()))?;
        if let Some(h) = self.registries.get(&Escape::None) {
            check_registry(h, Some((&name, &compiled))).map_err(|e| limit_error(context, e))?;
        }
        for h in self.registries.values_mut() {
            h.register_template_string(&name, src)
                .map_err(|e| AlertingError::Template {
                    name: context.to_string(),
                    message: e.to_string(),
                })?;
        }
        self.inline.insert(name.clone(), src.to_string());
        Ok(name)
    }

    /// Whether `name` is a handlebars template, a compiled Go field or a Go definition.
    pub fn has(&self, name: &str) -> bool {
        self.registries
            .get(&Escape::None)
            .is_some_and(|h| h.has_template(name))
            || self.go_inline.contains_key(name)
            || self.go.has(name)
    }

    /// Renders a registered template.
    pub fn render(
        &self,
        name: &str,
        escape: Escape,
        data: &NotificationData,
    ) -> Result<String, AlertingError> {
        crate::render_guard::guarded(|| self.render_unguarded(name, escape, data))
    }

    fn render_unguarded(
        &self,
        name: &str,
        escape: Escape,
        data: &NotificationData,
    ) -> Result<String, AlertingError> {
        let go_err = |message: String| AlertingError::Template {
            name: name.into(),
            message,
        };
        if let Some(t) = self.go_inline.get(name) {
            return Self::render_go(t, escape, data).map_err(go_err);
        }
        let is_hbs = self
            .registries
            .get(&Escape::None)
            .is_some_and(|h| h.has_template(name));
        if !is_hbs && self.go.has(name) {
            let t = self.go.compile_def(name).map_err(go_err)?;
            return Self::render_go(&t, escape, data).map_err(go_err);
        }
        let h = self
            .registries
            .get(&escape)
            .ok_or_else(|| AlertingError::Template {
                name: name.into(),
                message: "no registry".into(),
            })?;
        let mut out = BoundedOutput::default();
        h.render_to_write(name, data, &mut out)
            .map_err(|e| AlertingError::Template {
                name: name.into(),
                message: e.to_string(),
            })?;
        Ok(out.into_string())
    }

    /// Renders an ad-hoc template source (preview API) in its language; handlebars in strict
    /// mode, so missing fields are reported.
    pub fn render_source(
        &self,
        src: &str,
        escape: Escape,
        data: &NotificationData,
    ) -> Result<String, AlertingError> {
        crate::render_guard::guarded(|| self.render_source_unguarded(src, escape, data))
    }

    fn render_source_unguarded(
        &self,
        src: &str,
        escape: Escape,
        data: &NotificationData,
    ) -> Result<String, AlertingError> {
        let go_err = |message: String| AlertingError::Template {
            name: "preview".into(),
            message,
        };
        if crate::amtemplate::is_go_template(src) {
            let t = self.go.compile(src).map_err(go_err)?;
            return Self::render_go(&t, escape, data).map_err(go_err);
        }
        let data = serde_json::to_value(data).unwrap_or_default();
        let mut h = new_registry(escape);
        h.set_strict_mode(true);
        if let Some(base) = self.registries.get(&escape) {
            for (name, t) in base.get_templates() {
                h.register_template(name, t.clone());
            }
        }
        // Not a name a template file can have (`preview.hbs` would be "preview").
        const PREVIEW: &str = "(preview)";
        let compiled = crate::hbs_guard::check_source(src).and_then(|()| {
            let t = handlebars::Template::compile(src).map_err(|e| e.to_string())?;
            check_registry(&h, Some((PREVIEW, &t)))?;
            Ok(t)
        });
        let compiled = match compiled {
            Ok(t) => t,
            Err(message) => {
                return Err(match self.go.compile(src) {
                    Err(g) if crate::amtemplate::looks_like_go(src) => go_err(g),
                    _ => AlertingError::Template {
                        name: PREVIEW.into(),
                        message,
                    },
                });
            }
        };
        h.register_template(PREVIEW, compiled);
        let mut out = BoundedOutput::default();
        h.render_to_write(PREVIEW, &data, &mut out)
            .map(|()| out.into_string())
            .map_err(|e| {
                if crate::amtemplate::looks_like_go(src)
                    && let Err(g) = self.go.compile(src)
                {
                    return go_err(g);
                }
                AlertingError::Template {
                    name: "preview".into(),
                    message: e.to_string(),
                }
            })
    }
}

/// The most a handlebars template may write (as Go templates): nested `#each` over the alerts
/// of a preview request could otherwise render gigabytes from a few kilobytes.
pub const MAX_OUTPUT_BYTES: usize = 4 << 20;

/// Handlebars output that fails the render once it exceeds [`MAX_OUTPUT_BYTES`].
#[derive(Default)]
struct BoundedOutput(Vec<u8>);

impl BoundedOutput {
    fn into_string(self) -> String {
        String::from_utf8(self.0).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

impl std::io::Write for BoundedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_OUTPUT_BYTES {
            return Err(std::io::Error::other(format!(
                "template output exceeds {MAX_OUTPUT_BYTES} bytes"
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Expands a simple glob (`*` and `?` in the last path component only).
fn glob_files(pattern: &str) -> Result<Vec<std::path::PathBuf>, AlertingError> {
    let p = Path::new(pattern);
    let dir = p.parent().unwrap_or(Path::new("."));
    let file_pat = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
    if !file_pat.contains('*') && !file_pat.contains('?') {
        return Ok(if p.exists() { vec![p.to_path_buf()] } else { vec![] });
    }
    let re = regex::Regex::new(&format!(
        "^{}$",
        regex::escape(file_pat).replace("\\*", ".*").replace("\\?", ".")
    ))
    .map_err(|e| AlertingError::Config(format!("bad template glob {pattern:?}: {e}")))?;
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Some(n) = e.file_name().to_str()
                && re.is_match(n)
            {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn t0() -> Ts {
        DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn alert(name: &str, sev: &str, resolved: bool) -> Alert {
        let now = t0();
        Alert {
            labels: [("alertname", name), ("severity", sev), ("job", "api")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: [("summary".to_string(), format!("<b>{name}</b> is \"down\""))].into(),
            starts_at: now - chrono::Duration::minutes(5),
            ends_at: if resolved {
                now - chrono::Duration::minutes(1)
            } else {
                now + chrono::Duration::minutes(5)
            },
            generator_url: "http://prom/graph".into(),
            updated_at: now,
            timeout: false,
        }
    }

    fn data() -> NotificationData {
        let alerts = vec![alert("Down", "critical", false), alert("Down", "warning", true)];
        let gl: LabelSet = [("alertname".to_string(), "Down".to_string())].into();
        NotificationData::build(
            "team",
            "{}:{alertname=\"Down\"}",
            &gl,
            &alerts,
            t0(),
            "http://fh:9093",
            "t1",
            "http://ack",
        )
    }

    #[test]
    fn runaway_handlebars_output_is_an_error() {
        let mut t = Templates::load(&[], Path::new(".")).unwrap_or_else(|_| panic_free());
        let mut d = data();
        let one = d.alerts[0].clone();
        d.alerts = vec![one; 300];
        // 300^3 * 10 bytes = 270 MB without a bound.
        let src =
            "{{#each alerts}}{{#each ../alerts}}{{#each ../../alerts}}xxxxxxxxxx{{/each}}{{/each}}{{/each}}";
        let r = t.render_source(src, Escape::None, &d);
        assert!(
            r.as_ref().is_err_and(|e| e.to_string().contains("exceeds")),
            "{:?}",
            r.map(|s| s.len())
        );
        let name = t.add_inline("nested", src).unwrap_or_default();
        assert!(t.render(&name, Escape::Html, &d).is_err());
        // Ordinary output is unaffected.
        assert_eq!(
            t.render_source("{{#each alerts}}x{{/each}}", Escape::None, &d)
                .map(|s| s.len())
                .ok(),
            Some(300)
        );
    }

    #[test]
    fn data_matches_alertmanager_shapes() {
        let d = data();
        assert_eq!(d.status, "firing");
        assert_eq!(d.firing_count, 1);
        assert_eq!(d.common_labels.get("job").map(String::as_str), Some("api"));
        assert!(!d.common_labels.contains_key("severity"));
        assert_eq!(d.firing_alerts[0].ends_at, ZERO_TIME);
        assert_eq!(d.extra_common_label_values, "api");
    }

    #[test]
    fn escaping_per_channel() {
        let mut t = Templates::load(&[], Path::new(".")).unwrap_or_else(|_| panic_free());
        let name = t
            .add_inline("test", "{{commonAnnotations.summary}}")
            .unwrap_or_default();
        let d = {
            let mut d = data();
            d.common_annotations
                .insert("summary".into(), "<b>x</b> \"q\"".into());
            d
        };
        assert_eq!(
            t.render(&name, Escape::Html, &d).unwrap_or_default(),
            "&lt;b&gt;x&lt;/b&gt; &quot;q&quot;"
        );
        assert_eq!(
            t.render(&name, Escape::Json, &d).unwrap_or_default(),
            "<b>x</b> \\\"q\\\""
        );
        assert_eq!(
            t.render(&name, Escape::None, &d).unwrap_or_default(),
            "<b>x</b> \"q\""
        );
        let title = t.render("default.title", Escape::None, &d).unwrap_or_default();
        assert_eq!(title.trim(), "[FIRING:1] Down (api)");
    }

    #[test]
    fn broken_template_is_an_error() {
        let mut t = Templates::load(&[], Path::new(".")).unwrap_or_else(|_| panic_free());
        assert!(t.add_inline("receiver x", "{{#if}}").is_err());
        assert!(t.render_source("{{nosuchfield}}", Escape::None, &data()).is_err());
    }

    fn panic_free() -> Templates {
        Templates {
            registries: BTreeMap::new(),
            inline: BTreeMap::new(),
            go: GoTemplates::new().unwrap_or_else(|e| panic!("defaults: {e}")),
            go_inline: BTreeMap::new(),
        }
    }
}
