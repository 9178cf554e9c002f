//! The compiled routing tree: inheritance of route options resolved, matchers compiled, and
//! Alertmanager's matching (depth-first; the first matching child wins unless it has `continue`;
//! a node with no matching child matches itself). Route keys equal Alertmanager's `Route.Key()`,
//! so group keys (`{route key}:{group labels}`) look the same as Alertmanager's.

use std::collections::BTreeSet;

use chrono::Duration;

use crate::config::RouteConfig;
use crate::error::AlertingError;
use crate::matchers::{Matcher, matchers_string, matches_all};
use crate::model::LabelSet;

/// One route with its effective options.
#[derive(Debug, Clone)]
pub struct Route {
    pub idx: usize,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub matchers: Vec<Matcher>,
    pub receiver: String,
    pub group_by: BTreeSet<String>,
    pub group_by_all: bool,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub continue_: bool,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub escalation: Option<String>,
    /// Alertmanager's `Route.Key()`.
    pub key: String,
    /// Alertmanager's `Route.ID()` (key plus sibling index).
    pub id: String,
}

/// The whole tree; index 0 is the root.
#[derive(Debug, Clone)]
pub struct RouteTree {
    pub routes: Vec<Route>,
}

impl RouteTree {
    /// Compiles the root route config (already validated).
    pub fn build(root: &RouteConfig) -> Result<Self, AlertingError> {
        let mut routes = Vec::new();
        let defaults = Route {
            idx: 0,
            parent: None,
            children: vec![],
            matchers: vec![],
            receiver: String::new(),
            group_by: BTreeSet::new(),
            group_by_all: false,
            group_wait: Duration::seconds(30),
            group_interval: Duration::minutes(5),
            repeat_interval: Duration::hours(4),
            continue_: false,
            mute_time_intervals: vec![],
            active_time_intervals: vec![],
            escalation: None,
            key: String::new(),
            id: String::new(),
        };
        add(&mut routes, root, &defaults, None, 0)?;
        Ok(RouteTree { routes })
    }

    pub fn root(&self) -> &Route {
        &self.routes[0]
    }

    pub fn get(&self, idx: usize) -> Option<&Route> {
        self.routes.get(idx)
    }

    /// All routes an alert with these labels goes to, in tree order.
    pub fn matching(&self, labels: &LabelSet) -> Vec<&Route> {
        let mut out = Vec::new();
        self.match_node(0, labels, &mut out);
        out
    }

    fn match_node<'a>(&'a self, idx: usize, labels: &LabelSet, out: &mut Vec<&'a Route>) -> bool {
        let r = &self.routes[idx];
        if !matches_all(&r.matchers, labels) {
            return false;
        }
        let before = out.len();
        for &c in &r.children {
            let matched = self.match_node(c, labels, out);
            if matched && !self.routes[c].continue_ {
                break;
            }
        }
        if out.len() == before {
            out.push(r);
        }
        true
    }

    /// The group labels of an alert on a route.
    pub fn group_labels(route: &Route, labels: &LabelSet) -> LabelSet {
        labels
            .iter()
            .filter(|(k, _)| route.group_by_all || route.group_by.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

fn add(
    routes: &mut Vec<Route>,
    cfg: &RouteConfig,
    parent_opts: &Route,
    parent: Option<usize>,
    sibling_idx: usize,
) -> Result<usize, AlertingError> {
    let idx = routes.len();
    let mut r = parent_opts.clone();
    r.idx = idx;
    r.parent = parent;
    r.children = vec![];
    r.matchers = cfg.all_matchers()?;
    if let Some(rc) = &cfg.receiver {
        r.receiver = rc.clone();
    }
    if let Some(gb) = &cfg.group_by {
        r.group_by_all = gb.iter().any(|l| l == "...");
        r.group_by = gb.iter().filter(|l| *l != "...").cloned().collect();
    }
    if let Some(d) = cfg.group_wait {
        r.group_wait = d.as_duration();
    }
    if let Some(d) = cfg.group_interval {
        r.group_interval = d.as_duration();
    }
    if let Some(d) = cfg.repeat_interval {
        r.repeat_interval = d.as_duration();
    }
    if cfg.escalation.is_some() {
        r.escalation = cfg.escalation.clone();
    }
    // Time intervals are not inherited in Alertmanager.
    r.mute_time_intervals = cfg.mute_time_intervals.clone();
    r.active_time_intervals = cfg.active_time_intervals.clone();
    r.continue_ = cfg.continue_;
    let ms = matchers_string(&r.matchers);
    match parent {
        Some(p) => {
            r.key = format!("{}/{}", routes[p].key, ms);
            r.id = format!("{}/{}/{}", routes[p].id, ms, sibling_idx);
        }
        None => {
            r.key = ms.clone();
            r.id = ms;
        }
    }
    routes.push(r);
    let snapshot = routes[idx].clone();
    for (i, child) in cfg.routes.iter().enumerate() {
        let c = add(routes, child, &snapshot, Some(idx), i)?;
        routes[idx].children.push(c);
    }
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    const CFG: &str = r#"
route:
  receiver: default
  group_by: [alertname]
  routes:
  - matchers: ['team="db"']
    receiver: db
    group_wait: 10s
    routes:
    - matchers: ['severity="critical"']
      receiver: db-pager
  - match: {team: web}
    receiver: web
    continue: true
    group_by: ['...']
  - match_re: {team: "web|api"}
    receiver: api
receivers:
- name: default
- name: db
- name: db-pager
- name: web
- name: api
"#;

    fn tree() -> RouteTree {
        let c = load_str(CFG, std::path::Path::new("."))
            .ok()
            .and_then(|c| c.config.route);
        RouteTree::build(&c.unwrap_or_default()).unwrap_or(RouteTree { routes: vec![] })
    }

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matching_and_inheritance() {
        let t = tree();
        let m = t.matching(&ls(&[("team", "db"), ("severity", "critical")]));
        assert_eq!(
            m.iter().map(|r| r.receiver.as_str()).collect::<Vec<_>>(),
            vec!["db-pager"]
        );
        assert_eq!(m[0].group_wait, Duration::seconds(10), "inherited from parent");
        assert!(m[0].group_by.contains("alertname"));

        let m = t.matching(&ls(&[("team", "web")]));
        assert_eq!(
            m.iter().map(|r| r.receiver.as_str()).collect::<Vec<_>>(),
            vec!["web", "api"]
        );
        assert!(m[0].group_by_all);

        let m = t.matching(&ls(&[("team", "other")]));
        assert_eq!(
            m.iter().map(|r| r.receiver.as_str()).collect::<Vec<_>>(),
            vec!["default"]
        );
    }

    #[test]
    fn keys_like_alertmanager() {
        let t = tree();
        assert_eq!(t.routes[0].key, "{}");
        assert_eq!(t.routes[1].key, "{}/{team=\"db\"}");
        assert_eq!(t.routes[2].key, "{}/{team=\"db\"}/{severity=\"critical\"}");
        assert_eq!(t.routes[2].id, "{}/{team=\"db\"}/0/{severity=\"critical\"}/0");
    }
}
