//! Turning rule files into groups (Prometheus's `Manager.LoadGroups`): every file is parsed and
//! validated; a group's interval defaults to the global one; group labels (Prometheus 3.x) are
//! merged under each rule's own labels.

use std::path::{Path, PathBuf};

use fenghuo_storage_api::model::TenantId;

use crate::ruler::group::Group;
use crate::ruler::rule::{AlertingRule, RecordingRule, Rule};
use crate::ruler::rulefmt;

/// Loads every group of `files` for `tenant`. Errors are the files' problems, each prefixed with
/// its file name. `restored` is false when alerting rules must wait for `for`-state restoration.
pub fn load_groups(
    tenant: &TenantId,
    files: &[PathBuf],
    default_interval_ms: i64,
    restored: bool,
) -> Result<Vec<Group>, Vec<String>> {
    load_groups_with(tenant, files, default_interval_ms, restored, false)
}

/// [`load_groups`], optionally ignoring unknown fields in the rule files.
pub fn load_groups_with(
    tenant: &TenantId,
    files: &[PathBuf],
    default_interval_ms: i64,
    restored: bool,
    ignore_unknown_fields: bool,
) -> Result<Vec<Group>, Vec<String>> {
    let mut groups = Vec::new();
    let mut errs = Vec::new();
    for f in files {
        match rulefmt::parse_file_with(f, ignore_unknown_fields) {
            Ok(rgs) => groups.extend(groups_of(tenant, f, &rgs, default_interval_ms, restored)),
            Err(e) => errs.extend(e),
        }
    }
    if errs.is_empty() { Ok(groups) } else { Err(errs) }
}

/// Builds the groups of one parsed file.
pub fn groups_of(
    tenant: &TenantId,
    file: &Path,
    rgs: &rulefmt::RuleGroups,
    default_interval_ms: i64,
    restored: bool,
) -> Vec<Group> {
    let fname = file.display().to_string();
    rgs.groups
        .iter()
        .map(|g| {
            let interval = if g.interval_ms > 0 {
                g.interval_ms
            } else {
                default_interval_ms
            };
            let rules = g
                .rules
                .iter()
                .map(|r| {
                    let mut labels = g.labels.clone();
                    labels.extend(r.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                    if r.is_alerting() {
                        Rule::Alerting(std::sync::Arc::new(AlertingRule::new(
                            &r.alert,
                            &r.expr,
                            r.for_ms,
                            r.keep_firing_for_ms,
                            &labels,
                            &r.annotations,
                            restored,
                        )))
                    } else {
                        Rule::Recording(std::sync::Arc::new(RecordingRule::new(
                            &r.record, &r.expr, &labels,
                        )))
                    }
                })
                .collect();
            Group::new(
                tenant.clone(),
                &fname,
                &g.name,
                interval,
                g.limit,
                g.query_offset_ms,
                g.labels.clone(),
                rules,
            )
        })
        .collect()
}
