//! The ruler's section of fenghuo's configuration (`ruler:`): which rule files belong to which
//! tenant, evaluation defaults, external labels and URL, external Alertmanagers, and
//! Prometheus's `--rules.*` knobs (outage tolerance, grace period, resend delay, query offset).

use std::collections::BTreeMap;
use std::path::PathBuf;

use fenghuo_storage_api::model::{PromDuration, TenantId};
use serde::Deserialize;

use crate::ruler::error::RulerError;

/// `ruler:` in fenghuo's YAML.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RulerConfig {
    /// Rule file globs of the default tenant (`anonymous`), like Prometheus's `rule_files`.
    pub rule_files: Vec<String>,
    /// Rule file globs per tenant id.
    pub tenant_rule_files: BTreeMap<String, Vec<String>>,
    /// A directory with one subdirectory per tenant holding its `*.yml`/`*.yaml` rule files.
    pub tenant_rules_dir: Option<PathBuf>,
    /// Default group evaluation interval (Prometheus's `global.evaluation_interval`).
    pub evaluation_interval: PromDuration,
    /// Labels added to alerts sent out (and visible as `$externalLabels` in templates).
    pub external_labels: BTreeMap<String, String>,
    /// The URL in alerts' `generatorURL` and templates' `externalURL`; empty means the server's.
    pub external_url: String,
    /// Whether alerts go to fenghuo's own alert engine.
    pub send_to_local_alertmanager: bool,
    /// External Alertmanagers receiving the same alerts over their v2 API.
    pub alertmanagers: Vec<AlertmanagerConfig>,
    /// `--rules.alert.for-outage-tolerance`.
    pub for_outage_tolerance: PromDuration,
    /// `--rules.alert.for-grace-period`.
    pub for_grace_period: PromDuration,
    /// `--rules.alert.resend-delay`.
    pub resend_delay: PromDuration,
    /// `--rules.query-offset`: default for groups without `query_offset`.
    pub query_offset: PromDuration,
    /// Alerts queued for external Alertmanagers before the oldest are dropped.
    pub notification_queue_capacity: usize,
}

impl Default for RulerConfig {
    fn default() -> Self {
        RulerConfig {
            rule_files: Vec::new(),
            tenant_rule_files: BTreeMap::new(),
            tenant_rules_dir: None,
            evaluation_interval: PromDuration::from_secs(60),
            external_labels: BTreeMap::new(),
            external_url: String::new(),
            send_to_local_alertmanager: true,
            alertmanagers: Vec::new(),
            for_outage_tolerance: PromDuration::from_secs(3600),
            for_grace_period: PromDuration::from_secs(600),
            resend_delay: PromDuration::from_secs(60),
            query_offset: PromDuration::from_secs(0),
            notification_queue_capacity: 10_000,
        }
    }
}

/// One external Alertmanager (or a set of replicas, each sent every alert).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URLs (`http://am:9093`, or with a path prefix); alerts are POSTed to
    /// `<url>/api/v2/alerts`.
    pub urls: Vec<String>,
    /// Per-request timeout.
    pub timeout: PromDuration,
    /// Whether to send the tenant as `X-Scope-OrgID` (for multi-tenant Alertmanagers).
    pub send_tenant_header: bool,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            urls: Vec::new(),
            timeout: PromDuration::from_secs(10),
            send_tenant_header: false,
        }
    }
}

impl RulerConfig {
    pub fn validate(&self) -> Result<(), RulerError> {
        if self.evaluation_interval.is_zero() {
            return Err(RulerError::Config(
                "evaluation_interval must be greater than 0".into(),
            ));
        }
        for t in self.tenant_rule_files.keys() {
            TenantId::new(t.clone()).map_err(|e| RulerError::Config(format!("tenant_rule_files: {e}")))?;
        }
        for k in self.external_labels.keys() {
            if k.is_empty() || k == "__name__" {
                return Err(RulerError::Config(format!("invalid external label name {k:?}")));
            }
        }
        for am in &self.alertmanagers {
            for u in &am.urls {
                let parsed = url::Url::parse(u)
                    .map_err(|e| RulerError::Config(format!("alertmanager url {u:?}: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(RulerError::Config(format!(
                        "alertmanager url {u:?}: scheme must be http or https"
                    )));
                }
            }
        }
        if self.notification_queue_capacity == 0 {
            return Err(RulerError::Config(
                "notification_queue_capacity must be greater than 0".into(),
            ));
        }
        Ok(())
    }

    /// Every tenant's rule files, globs expanded (sorted, unique per tenant).
    pub fn tenant_files(&self) -> BTreeMap<TenantId, Vec<PathBuf>> {
        let mut out: BTreeMap<TenantId, Vec<PathBuf>> = BTreeMap::new();
        let mut add = |t: TenantId, globs: &[String]| {
            let e = out.entry(t).or_default();
            for g in globs {
                e.extend(crate::ruler::files::glob(g));
            }
        };
        add(TenantId::default_tenant(), &self.rule_files);
        for (t, globs) in &self.tenant_rule_files {
            if let Ok(t) = TenantId::new(t.clone()) {
                add(t, globs);
            }
        }
        if let Some(dir) = &self.tenant_rules_dir
            && let Ok(rd) = std::fs::read_dir(dir)
        {
            for entry in rd.flatten() {
                let path = entry.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let Ok(t) = TenantId::new(name.to_string()) else {
                    continue;
                };
                if !path.is_dir() {
                    continue;
                }
                let d = path.display().to_string();
                add(t, &[format!("{d}/*.yml"), format!("{d}/*.yaml")]);
            }
        }
        for files in out.values_mut() {
            files.sort();
            files.dedup();
        }
        out.retain(|_, f| !f.is_empty());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_files_from_globs_and_directories() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path();
        for p in [
            "a.yml",
            "b.yml",
            "per/t1/x.yml",
            "per/t1/y.yaml",
            "per/t2/z.yml",
            "per/bad tenant/w.yml",
        ] {
            let path = d.join(p);
            std::fs::create_dir_all(path.parent().unwrap_or(d)).unwrap_or_default();
            std::fs::write(&path, "groups: []\n").unwrap_or_default();
        }
        let cfg: RulerConfig = serde_yaml::from_str(&format!(
            "rule_files: ['{0}/*.yml']\ntenant_rule_files:\n  t2: ['{0}/a.yml']\ntenant_rules_dir: '{0}/per'\n",
            d.display()
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(cfg.validate().is_ok());
        let files = cfg.tenant_files();
        let names = |t: &str| -> Vec<String> {
            files
                .get(&TenantId::new(t).unwrap_or_else(|_| TenantId::default_tenant()))
                .map(|v| {
                    v.iter()
                        .filter_map(|p| p.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(names("anonymous"), vec!["a.yml", "b.yml"]);
        assert_eq!(names("t1"), vec!["x.yml", "y.yaml"]);
        assert_eq!(names("t2"), vec!["a.yml", "z.yml"]);
        assert_eq!(files.len(), 3, "a directory that is not a tenant id is skipped");
    }

    #[test]
    fn bad_settings_are_rejected() {
        for (text, needle) in [
            ("evaluation_interval: 0s\n", "evaluation_interval"),
            ("tenant_rule_files:\n  'a b': []\n", "tenant"),
            ("alertmanagers:\n- urls: ['ftp://x']\n", "scheme"),
            ("notification_queue_capacity: 0\n", "capacity"),
        ] {
            let cfg: RulerConfig = serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
            let err = cfg.validate().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(needle), "{text}: {err}");
        }
        assert!(serde_yaml::from_str::<RulerConfig>("rule_file: []\n").is_err());
    }
}
