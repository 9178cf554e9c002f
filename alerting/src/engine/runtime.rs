//! The compiled form of one loaded config: route tree, inhibition rules, time intervals,
//! receivers' integrations, templates and escalation policies. Swapped atomically on reload.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::Ts;
use crate::config::{EscalationPolicy, LoadedConfig, TimeInterval};
use crate::error::AlertingError;
use crate::inhibit::InhibitRule;
use crate::notify::{BuildContext, Integration, LimiterRegistry, build_receiver};
use crate::route::{Route, RouteTree};
use crate::template::Templates;

pub struct Runtime {
    pub loaded: LoadedConfig,
    pub routes: RouteTree,
    pub inhibit: Vec<InhibitRule>,
    pub intervals: BTreeMap<String, Vec<TimeInterval>>,
    pub receivers: BTreeMap<String, Vec<Integration>>,
    pub templates: Arc<Templates>,
    pub policies: BTreeMap<String, EscalationPolicy>,
    pub external_url: String,
}

impl Runtime {
    pub fn build(
        loaded: LoadedConfig,
        external_url: &str,
        limiters: &LimiterRegistry,
        now: Ts,
    ) -> Result<Self, AlertingError> {
        let c = &loaded.config;
        let route_cfg = c
            .route
            .clone()
            .ok_or_else(|| AlertingError::Config("no routes provided".into()))?;
        let routes = RouteTree::build(&route_cfg)?;
        let inhibit = c
            .inhibit_rules
            .iter()
            .map(InhibitRule::from_config)
            .collect::<Result<Vec<_>, _>>()?;
        let intervals = c
            .mute_time_intervals
            .iter()
            .chain(c.time_intervals.iter())
            .map(|n| (n.name.clone(), n.time_intervals.clone()))
            .collect();
        let mut templates = Templates::load(&c.templates, &loaded.base_dir)?;
        let timeout = c
            .fenghuo
            .delivery
            .timeout
            .as_duration()
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(15));
        let mut receivers = BTreeMap::new();
        {
            let mut ctx = BuildContext {
                config: c,
                base_dir: &loaded.base_dir,
                templates: &mut templates,
                limiters,
                now,
                timeout,
            };
            for r in &c.receivers {
                receivers.insert(r.name.clone(), build_receiver(&mut ctx, r)?);
            }
        }
        let policies = c
            .fenghuo
            .escalation_policies
            .iter()
            .map(|p| (p.name.clone(), p.clone()))
            .collect();
        Ok(Runtime {
            routes,
            inhibit,
            intervals,
            receivers,
            templates: Arc::new(templates),
            policies,
            external_url: external_url.trim_end_matches('/').to_string(),
            loaded,
        })
    }

    /// Whether a route's time intervals mute notifications at `now`; returns the muting names.
    pub fn time_muted(&self, route: &Route, now: Ts) -> Vec<String> {
        let mut out = Vec::new();
        for n in &route.mute_time_intervals {
            if self
                .intervals
                .get(n)
                .is_some_and(|tis| tis.iter().any(|t| t.contains(now)))
            {
                out.push(n.clone());
            }
        }
        if !route.active_time_intervals.is_empty() {
            let active = route.active_time_intervals.iter().any(|n| {
                self.intervals
                    .get(n)
                    .is_some_and(|tis| tis.iter().any(|t| t.contains(now)))
            });
            if !active {
                out.extend(route.active_time_intervals.iter().cloned());
            }
        }
        out
    }
}
