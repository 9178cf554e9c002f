//! The alert engine: per-tenant alert store, aggregation groups, silences, inhibition, acks,
//! escalation and history, driven by an injected clock. Ingest routes alerts into groups; `tick`
//! (see [`tick`]) flushes due groups through the notification pipeline and advances escalations.
//! Every state change is written through the [`AlertStateStore`] before it is acted upon.

pub mod delivery;
pub mod limits;
pub mod runtime;
pub mod state;
pub mod tick;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use hmac::{Hmac, Mac};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use sha2::Sha256;

use crate::clock::{Clock, Ts};
use crate::config::LoadedConfig;
use crate::error::AlertingError;
use crate::history::{EventKind, HistoryEvent, bound_key};
use crate::inhibit::Inhibitor;
use crate::matchers::{Matcher, matches_all};
use crate::metrics;
use crate::model::{Alert, Fingerprint, LabelSet, labels_string};
use crate::notify::LimiterRegistry;
use crate::route::RouteTree;
use crate::silence::Silence;
use crate::store::{AlertStateStore, StateKind, StateOp};
pub use delivery::{FailureNotice, GroupDelivery};
pub use runtime::Runtime;
pub use state::{Ack, AggrGroup, EscalationState, GroupId, StoredAlert, TenantState};
pub use tick::{Delivery, TickReport};

/// The tenant used when a request names none.
pub const DEFAULT_TENANT: &str = "anonymous";
const SYSTEM_TENANT: &str = "__fenghuo";

/// Engine options.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub external_url: String,
    /// Record deliveries instead of sending them (scenario tests).
    pub dry_run: bool,
}

pub struct Engine {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Arc<dyn AlertStateStore>,
    pub(crate) runtime: RwLock<Arc<Runtime>>,
    pub(crate) tenants: Mutex<BTreeMap<String, Arc<Mutex<TenantState>>>>,
    pub(crate) tick_lock: tokio::sync::Mutex<()>,
    pub(crate) limiters: LimiterRegistry,
    pub(crate) opts: EngineOptions,
    ack_secret: Vec<u8>,
    pub started_at: Ts,
    pub(crate) last_history_gc: Mutex<Option<Ts>>,
    /// Tenants whose last state write failed, with the error (see [`Engine::persist`]).
    unpersisted: Mutex<BTreeMap<String, String>>,
    pub(crate) inflight: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// An alert with its computed status, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub alert: Alert,
    pub receivers: Vec<String>,
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
    pub muted_by: Vec<String>,
}

impl AlertView {
    pub fn state(&self) -> &'static str {
        if self.silenced_by.is_empty() && self.inhibited_by.is_empty() && self.muted_by.is_empty() {
            "active"
        } else {
            "suppressed"
        }
    }
}

/// Counts of firing alerts by notification-pipeline state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertStateCounts {
    pub unprocessed: usize,
    pub active: usize,
    pub suppressed: usize,
}

/// A group as the API shows it.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub key: String,
    pub labels: LabelSet,
    pub receiver: String,
    pub alerts: Vec<AlertView>,
    pub muted_by: Vec<String>,
}

/// Validates a tenant id (Mimir's rules: 1-150 safe characters).
/// How long an ack link in a message stays usable.
pub const ACK_LINK_TTL: chrono::Duration = chrono::Duration::days(7);

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn validate_tenant(t: &str) -> Result<(), AlertingError> {
    fenghuo_storage_api::model::TenantId::new(t)
        .map(|_| ())
        .map_err(|e| AlertingError::BadRequest(format!("invalid tenant id: {e}")))
}

impl Engine {
    /// Builds the engine, loading persisted state for every tenant.
    pub fn new(
        clock: Arc<dyn Clock>,
        store: Arc<dyn AlertStateStore>,
        loaded: LoadedConfig,
        opts: EngineOptions,
    ) -> Result<Arc<Self>, AlertingError> {
        let now = clock.now();
        let limiters = LimiterRegistry::default();
        // Rate budgets survive restarts: a restart must not refill a spent budget.
        limiters.preload(
            store
                .scan(SYSTEM_TENANT, StateKind::RateBudget)?
                .into_iter()
                .filter_map(|(k, v)| serde_json::from_slice(&v).ok().map(|b| (k, b))),
        );
        let runtime = Arc::new(Runtime::build(loaded, &opts.external_url, &limiters, now)?);
        let ack_secret = match store
            .scan(SYSTEM_TENANT, StateKind::Meta)?
            .into_iter()
            .find(|(k, _)| k == "ack_secret")
        {
            Some((_, v)) => v,
            None => {
                let s = format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                )
                .into_bytes();
                store.apply(&[StateOp::Put {
                    tenant: SYSTEM_TENANT.into(),
                    kind: StateKind::Meta,
                    key: "ack_secret".into(),
                    value: s.clone(),
                }])?;
                s
            }
        };
        let engine = Arc::new(Engine {
            clock,
            store,
            runtime: RwLock::new(runtime),
            tenants: Mutex::new(BTreeMap::new()),
            tick_lock: tokio::sync::Mutex::new(()),
            limiters,
            opts,
            ack_secret,
            started_at: now,
            last_history_gc: Mutex::new(None),
            unpersisted: Mutex::new(BTreeMap::new()),
            inflight: Mutex::new(Vec::new()),
        });
        for t in engine.store.tenants()? {
            if t.starts_with("__") {
                continue;
            }
            engine.tenant(&t)?;
        }
        Ok(engine)
    }

    pub fn now(&self) -> Ts {
        self.clock.now()
    }

    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.read().clone()
    }

    /// Swaps in a new config; alerts, silences, the notification log, acks, escalation progress and
    /// history are kept; groups are rebuilt from the alerts (Alertmanager does the same).
    pub fn reload(&self, loaded: LoadedConfig) -> Result<(), AlertingError> {
        let rt = Arc::new(Runtime::build(
            loaded,
            &self.opts.external_url,
            &self.limiters,
            self.now(),
        )?);
        *self.runtime.write() = rt.clone();
        let tenants: Vec<Arc<Mutex<TenantState>>> = self.tenants.lock().values().cloned().collect();
        let now = self.now();
        for t in tenants {
            let mut st = t.lock();
            // Groups that exist under the new config keep their timers and their in-flight
            // marker: a delivery still under way must not be started again by the rebuilt group
            // (its completion clears the marker on the group with the same id).
            let before: BTreeMap<GroupId, (Ts, bool, bool)> = st
                .groups
                .iter()
                .map(|(id, g)| (id.clone(), (g.next_flush, g.has_flushed, g.in_flight)))
                .collect();
            st.groups.clear();
            rebuild_groups(&rt, &mut st, now);
            for (id, g) in st.groups.iter_mut() {
                if let Some(&(next_flush, has_flushed, in_flight)) = before.get(id) {
                    g.next_flush = next_flush;
                    g.has_flushed = has_flushed;
                    g.in_flight = in_flight;
                }
            }
            let _ = self.persist(&mut st);
        }
        Ok(())
    }

    /// The state of a tenant if it has any (reads never create tenant state: every tenant with
    /// stored state is loaded at start-up).
    pub fn existing_tenant(&self, tenant: &str) -> Option<Arc<Mutex<TenantState>>> {
        self.tenants.lock().get(tenant).cloned()
    }

    /// The state of a tenant, created (or loaded from the store) on first write.
    pub fn tenant(&self, tenant: &str) -> Result<Arc<Mutex<TenantState>>, AlertingError> {
        let mut map = self.tenants.lock();
        if let Some(t) = map.get(tenant) {
            return Ok(t.clone());
        }
        let mut st = TenantState::load(self.store.as_ref(), tenant)?;
        rebuild_groups(&self.runtime(), &mut st, self.now());
        let t = Arc::new(Mutex::new(st));
        map.insert(tenant.to_string(), t.clone());
        Ok(t)
    }

    pub fn tenant_names(&self) -> Vec<String> {
        self.tenants.lock().keys().cloned().collect()
    }

    /// Writes the tenant's pending state changes. When the store refuses them they stay
    /// pending, in order, and the next persist (the next tick at the latest) writes them again;
    /// until one succeeds the engine reports its state as not durable ([`Engine::state_error`],
    /// `/-/ready`, `fenghuo_alerting_state_unpersisted_tenants`).
    pub(crate) fn persist(&self, st: &mut TenantState) -> Result<(), AlertingError> {
        let ops = st.take_ops();
        if ops.is_empty() {
            return Ok(());
        }
        match self.store.apply(&ops) {
            Ok(()) => {
                self.mark_persisted(&st.tenant, None);
                Ok(())
            }
            Err(e) => {
                metrics::STATE_WRITE_ERRORS.inc();
                tracing::error!(tenant = %st.tenant, error = %e, pending = ops.len(),
                    "Failed to persist alerting state; will retry.");
                st.restore_ops(ops);
                self.mark_persisted(&st.tenant, Some(e.to_string()));
                Err(e)
            }
        }
    }

    fn mark_persisted(&self, tenant: &str, error: Option<String>) {
        let mut failing = self.unpersisted.lock();
        match error {
            Some(e) => {
                failing.insert(tenant.to_string(), e);
            }
            None => {
                failing.remove(tenant);
            }
        }
        metrics::STATE_UNPERSISTED_TENANTS.set(failing.len() as i64);
    }

    /// Why some alerting state is not durable yet (the store refused a write and it has not
    /// been written since), or `None` when everything is.
    pub fn state_error(&self) -> Option<String> {
        self.unpersisted
            .lock()
            .iter()
            .next()
            .map(|(tenant, e)| format!("alerting state of tenant {tenant:?} is not persisted: {e}"))
    }

    /// Accepts alerts as posted to `/api/v2/alerts` (already defaulted and validated), with
    /// Alertmanager's merge rule, routing into groups, and history. Alerts over a tenant limit are
    /// refused; their messages (naming the limit) are returned, the others are accepted.
    pub fn ingest(&self, tenant: &str, alerts: Vec<Alert>) -> Result<Vec<String>, AlertingError> {
        let rt = self.runtime();
        let now = self.now();
        let t = self.tenant(tenant)?;
        let mut st = t.lock();
        let mut budget = limits::AlertBudget::new(rt.loaded.config.fenghuo.limits.for_tenant(tenant), &st);
        let mut rejected = Vec::new();
        for mut alert in alerts {
            if let Err(msg) = budget.admit(&rt, &st, &alert) {
                tracing::warn!(tenant = %tenant, reason = %msg, "Alert refused by a limit.");
                rejected.push(msg);
                continue;
            }
            let fp = alert.fingerprint();
            let old = st.alerts.get(&fp).cloned();
            let mut prev_firing_noted = false;
            let mut prev_resolved_noted = false;
            if let Some(old) = &old {
                let o = &old.alert;
                if (alert.ends_at > o.starts_at && alert.ends_at < o.ends_at)
                    || (alert.starts_at > o.starts_at && alert.starts_at < o.ends_at)
                {
                    alert = o.merge(&alert, now);
                }
                prev_firing_noted = old.fired_noted && !old.resolved_noted;
                prev_resolved_noted = old.resolved_noted;
            }
            let (fired_noted, resolved_noted);
            if !alert.resolved_at(now) {
                if !prev_firing_noted {
                    st.record(HistoryEvent::new(now, EventKind::Fired).with_labels(&alert.labels));
                    metrics::alert_fired(alert.name());
                }
                fired_noted = true;
                resolved_noted = false;
            } else {
                if prev_firing_noted {
                    let mut e =
                        HistoryEvent::new(alert.ends_at, EventKind::Resolved).with_labels(&alert.labels);
                    e.started_at = Some(alert.starts_at);
                    st.record(e);
                }
                fired_noted = prev_firing_noted || old.as_ref().is_some_and(|o| o.fired_noted);
                resolved_noted = prev_firing_noted || prev_resolved_noted;
            }
            st.alerts.insert(
                fp,
                StoredAlert {
                    alert: alert.clone(),
                    fired_noted,
                    resolved_noted,
                },
            );
            st.save_alert(fp);
            insert_into_groups(&rt, &mut st, &alert, now);
        }
        self.persist(&mut st)?;
        drop(st);
        self.update_alert_gauges();
        Ok(rejected)
    }

    /// Accepts alerts in the API's shape with Alertmanager's defaults; returns the validation errors
    /// of rejected alerts (the valid ones are ingested regardless).
    pub fn ingest_posted(
        &self,
        tenant: &str,
        posted: Vec<crate::api::PostableAlert>,
    ) -> Result<Vec<String>, AlertingError> {
        let resolve_timeout = self.runtime().loaded.config.global.resolve_timeout.as_duration();
        let (ok, mut errs) = crate::api::convert_alerts(posted, self.now(), resolve_timeout);
        if !ok.is_empty() {
            errs.extend(self.ingest(tenant, ok)?);
        }
        Ok(errs)
    }

    /// Template data for previews and test messages: the given alerts, or one sample alert.
    pub fn sample_data(
        &self,
        tenant: &str,
        receiver: &str,
        alerts: Vec<crate::api::PostableAlert>,
    ) -> Result<crate::template::NotificationData, AlertingError> {
        let now = self.now();
        let posted = if alerts.is_empty() {
            vec![crate::api::PostableAlert {
                labels: [
                    ("alertname", "TestAlert"),
                    ("severity", "warning"),
                    ("instance", "example:9100"),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                annotations: [(
                    "summary".to_string(),
                    "This is a test alert from fenghuo.".to_string(),
                )]
                .into(),
                starts_at: Some(now - Duration::minutes(5)),
                ends_at: None,
                generator_url: String::new(),
            }]
        } else {
            alerts
        };
        let rt = self.runtime();
        let (ok, errs) =
            crate::api::convert_alerts(posted, now, rt.loaded.config.global.resolve_timeout.as_duration());
        if !errs.is_empty() {
            return Err(AlertingError::BadRequest(errs.join("; ")));
        }
        let gl: LabelSet = ok
            .first()
            .and_then(|a| a.labels.get("alertname"))
            .map(|n| [("alertname".to_string(), n.clone())].into())
            .unwrap_or_default();
        let key = format!("{{}}:{}", labels_string(&gl));
        let mut d = crate::template::NotificationData::build(
            receiver,
            &key,
            &gl,
            &ok,
            now,
            &rt.external_url,
            tenant,
            &self.ack_url(tenant, &key),
        );
        d.test = true;
        Ok(d)
    }

    /// Sends a test message through every integration of a receiver; one result per integration.
    pub async fn test_receiver(
        &self,
        tenant: &str,
        receiver: &str,
        alerts: Vec<crate::api::PostableAlert>,
    ) -> Result<Vec<serde_json::Value>, AlertingError> {
        let rt = self.runtime();
        let integrations = rt
            .receivers
            .get(receiver)
            .cloned()
            .ok_or_else(|| AlertingError::NotFound(format!("receiver {receiver:?} not found")))?;
        let data = self.sample_data(tenant, receiver, alerts)?;
        let ctx = crate::notify::SendContext {
            templates: rt.templates.clone(),
            now: self.now(),
        };
        let mut out = Vec::new();
        for i in integrations {
            let r = if self.opts.dry_run {
                Ok(())
            } else {
                i.notifier.notify(&data, &ctx).await
            };
            out.push(serde_json::json!({
                "integration": i.id(),
                "error": r.err().map(|e| e.to_string()),
            }));
        }
        Ok(out)
    }

    /// All alerts of a tenant with computed status.
    pub fn alert_views(&self, tenant: &str) -> Result<Vec<AlertView>, AlertingError> {
        let rt = self.runtime();
        let now = self.now();
        let Some(t) = self.existing_tenant(tenant) else {
            return Ok(Vec::new());
        };
        let st = t.lock();
        let inhibitor = Inhibitor::new(&rt.inhibit, st.alerts.values().map(|s| &s.alert), now);
        let mut out: Vec<AlertView> = st
            .alerts
            .values()
            .map(|s| view(&rt, &st, &inhibitor, &s.alert, now))
            .collect();
        out.sort_by_key(|v| v.alert.fingerprint());
        Ok(out)
    }

    /// Aggregation groups with their alerts' status.
    pub fn group_views(&self, tenant: &str) -> Result<Vec<GroupView>, AlertingError> {
        let rt = self.runtime();
        let now = self.now();
        let Some(t) = self.existing_tenant(tenant) else {
            return Ok(Vec::new());
        };
        let st = t.lock();
        let inhibitor = Inhibitor::new(&rt.inhibit, st.alerts.values().map(|s| &s.alert), now);
        let mut out = Vec::new();
        for g in st.groups.values() {
            let Some(route) = rt.routes.get(g.route_idx) else {
                continue;
            };
            let muted = rt.time_muted(route, now);
            out.push(GroupView {
                key: g.key.clone(),
                labels: g.labels.clone(),
                receiver: route.receiver.clone(),
                alerts: {
                    let mut alerts: Vec<&Alert> = g.alerts.values().collect();
                    alerts.sort_by(|a, b| tick::alert_sort(a, b));
                    alerts
                        .into_iter()
                        .map(|a| view(&rt, &st, &inhibitor, a, now))
                        .collect()
                },
                muted_by: muted,
            });
        }
        // Alertmanager orders groups by their labels, then by receiver.
        out.sort_by(|a, b| a.labels.cmp(&b.labels).then_with(|| a.receiver.cmp(&b.receiver)));
        Ok(out)
    }

    // --- silences ---

    pub fn silences(&self, tenant: &str) -> Result<Vec<Silence>, AlertingError> {
        let Some(t) = self.existing_tenant(tenant) else {
            return Ok(Vec::new());
        };
        let st = t.lock();
        Ok(st.silences.all().cloned().collect())
    }

    pub fn silence(&self, tenant: &str, id: &str) -> Result<Option<Silence>, AlertingError> {
        let Some(t) = self.existing_tenant(tenant) else {
            return Ok(None);
        };
        let st = t.lock();
        Ok(st.silences.get(id).cloned())
    }

    /// Creates or updates a silence; returns its id. A silence over the tenant's silence limits
    /// is refused with a message naming the limit.
    pub fn set_silence(&self, tenant: &str, s: Silence) -> Result<String, AlertingError> {
        let now = self.now();
        let limits = self.runtime().loaded.config.fenghuo.limits.for_tenant(tenant);
        let t = self.tenant(tenant)?;
        let mut st = t.lock();
        limits::admit_silence(&limits, &st, &s, now).map_err(AlertingError::Limit)?;
        let out = st.silences.set(s, now)?;
        for c in &out.changed {
            st.save_silence(c);
        }
        self.persist(&mut st)?;
        Ok(out.id)
    }

    pub fn expire_silence(&self, tenant: &str, id: &str) -> Result<(), AlertingError> {
        let now = self.now();
        let t = self
            .existing_tenant(tenant)
            .ok_or_else(|| AlertingError::NotFound(format!("silence {id} not found")))?;
        let mut st = t.lock();
        if let Some(s) = st.silences.expire(id, now)? {
            st.save_silence(&s);
        }
        self.persist(&mut st)
    }

    // --- acknowledgements ---

    /// The token that authorises the ack link of a group.
    fn ack_mac(&self, tenant: &str, group_key: &str, expires: i64) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.ack_secret).ok()?;
        mac.update(tenant.as_bytes());
        mac.update(b"\n");
        mac.update(group_key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        Some(mac)
    }

    /// The signature of an ack link for a group, valid until `expires` (Unix seconds).
    pub fn ack_token(&self, tenant: &str, group_key: &str, expires: i64) -> String {
        let Some(mac) = self.ack_mac(tenant, group_key, expires) else {
            return String::new();
        };
        let bytes = mac.finalize().into_bytes();
        bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// Checks an ack link's signature (in constant time) and its expiry (on the engine's
    /// clock); the error says which failed.
    pub fn verify_ack_link(
        &self,
        tenant: &str,
        group_key: &str,
        expires: &str,
        token: &str,
    ) -> Result<(), &'static str> {
        let expires: i64 = expires.parse().map_err(|_| "invalid acknowledgement link")?;
        let token = decode_hex(token)
            .filter(|t| t.len() == 16)
            .ok_or("invalid acknowledgement link")?;
        let mac = self
            .ack_mac(tenant, group_key, expires)
            .ok_or("invalid acknowledgement link")?;
        mac.verify_truncated_left(&token)
            .map_err(|_| "invalid acknowledgement link")?;
        if self.clock.now().timestamp() > expires {
            return Err("this acknowledgement link has expired");
        }
        Ok(())
    }

    /// The ack link put in messages: signed, and valid for [`ACK_LINK_TTL`].
    pub fn ack_url(&self, tenant: &str, group_key: &str) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let expires = (self.clock.now() + ACK_LINK_TTL).timestamp();
        format!(
            "{}/api/v1/alerting/ack?tenant={}&group={}&expires={expires}&token={}",
            self.opts.external_url.trim_end_matches('/'),
            enc(tenant),
            enc(group_key),
            self.ack_token(tenant, group_key, expires)
        )
    }

    /// Acknowledges a group for `ttl` (default and cap from config).
    pub fn ack_group(
        &self,
        tenant: &str,
        group_key: &str,
        by: &str,
        comment: &str,
        ttl: Option<Duration>,
    ) -> Result<Ack, AlertingError> {
        let rt = self.runtime();
        let now = self.now();
        let ackc = &rt.loaded.config.fenghuo.ack;
        let ttl = ttl.unwrap_or(ackc.default_ttl.as_duration());
        if ttl <= Duration::zero() {
            return Err(AlertingError::BadRequest("ack ttl must be positive".into()));
        }
        let ttl = ttl.min(ackc.max_ttl.as_duration());
        if by.trim().is_empty() {
            return Err(AlertingError::BadRequest("ack needs a non-empty 'by'".into()));
        }
        let t = self
            .existing_tenant(tenant)
            .ok_or_else(|| AlertingError::NotFound(format!("alert group {group_key:?} not found")))?;
        let mut st = t.lock();
        let group = st
            .groups
            .values()
            .find(|g| g.key == group_key)
            .ok_or_else(|| AlertingError::NotFound(format!("alert group {group_key:?} not found")))?;
        let started = group
            .alerts
            .values()
            .filter(|a| !a.resolved_at(now))
            .map(|a| a.starts_at)
            .min();
        let labels = group.labels.clone();
        let ack = Ack {
            id: uuid::Uuid::new_v4().to_string(),
            group_key: group_key.to_string(),
            by: by.to_string(),
            comment: comment.to_string(),
            at: now,
            expires_at: now + ttl,
        };
        st.set_ack(ack.clone());
        let mut e = HistoryEvent::new(now, EventKind::Acked);
        e.group_key = group_key.to_string();
        e.by = by.to_string();
        e.detail = comment.to_string();
        e.started_at = started;
        e.alertname = labels.get("alertname").cloned().unwrap_or_default();
        e.labels = labels;
        st.record(e);
        metrics::ACKS.inc();
        self.persist(&mut st)?;
        Ok(ack)
    }

    /// Acknowledges every group containing the alert with this fingerprint.
    pub fn ack_alert(
        &self,
        tenant: &str,
        fp: Fingerprint,
        by: &str,
        comment: &str,
        ttl: Option<Duration>,
    ) -> Result<Vec<Ack>, AlertingError> {
        let keys: Vec<String> = {
            let t = self
                .existing_tenant(tenant)
                .ok_or_else(|| AlertingError::NotFound(format!("no alert group contains alert {fp}")))?;
            let st = t.lock();
            st.groups
                .values()
                .filter(|g| g.alerts.contains_key(&fp))
                .map(|g| g.key.clone())
                .collect()
        };
        if keys.is_empty() {
            return Err(AlertingError::NotFound(format!(
                "no alert group contains alert {fp}"
            )));
        }
        keys.iter()
            .map(|k| self.ack_group(tenant, k, by, comment, ttl))
            .collect()
    }

    /// Withdraws an ack; escalation resumes from now.
    pub fn unack(&self, tenant: &str, group_key: &str, by: &str) -> Result<(), AlertingError> {
        let now = self.now();
        let t = self
            .existing_tenant(tenant)
            .ok_or_else(|| AlertingError::NotFound(format!("no ack for group {group_key:?}")))?;
        let mut st = t.lock();
        if st.remove_ack(group_key).is_none() {
            return Err(AlertingError::NotFound(format!("no ack for group {group_key:?}")));
        }
        if let Some(mut e) = st.escalations.get(group_key).cloned() {
            e.last_at = now;
            st.set_escalation(e);
        }
        let mut e = HistoryEvent::new(now, EventKind::Unacked);
        e.group_key = group_key.to_string();
        e.by = by.to_string();
        st.record(e);
        self.persist(&mut st)
    }

    pub fn acks(&self, tenant: &str) -> Result<Vec<Ack>, AlertingError> {
        let Some(t) = self.existing_tenant(tenant) else {
            return Ok(Vec::new());
        };
        let st = t.lock();
        Ok(st.acks.values().cloned().collect())
    }

    pub fn escalations(&self, tenant: &str) -> Result<Vec<EscalationState>, AlertingError> {
        let Some(t) = self.existing_tenant(tenant) else {
            return Ok(Vec::new());
        };
        let st = t.lock();
        Ok(st.escalations.values().cloned().collect())
    }

    /// History events of a tenant in `[start, end)`, filtered by matchers on the event labels.
    pub fn history(
        &self,
        tenant: &str,
        start: Ts,
        end: Ts,
        filter: &[Matcher],
        kinds: &[EventKind],
        limit: usize,
    ) -> Result<Vec<HistoryEvent>, AlertingError> {
        let raw = self
            .store
            .scan_range(tenant, StateKind::History, &bound_key(start), &bound_key(end))?;
        let mut out = Vec::new();
        for (_, v) in raw {
            let Ok(e) = serde_json::from_slice::<HistoryEvent>(&v) else {
                continue;
            };
            if !kinds.is_empty() && !kinds.contains(&e.kind) {
                continue;
            }
            if !filter.is_empty() && !matches_all(filter, &e.labels) {
                continue;
            }
            out.push(e);
            if limit > 0 && out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Drops history older than the retention.
    pub(crate) fn gc_history(&self, tenant: &str, now: Ts) -> Result<(), AlertingError> {
        let retention = self
            .runtime()
            .loaded
            .config
            .fenghuo
            .history
            .retention
            .as_duration();
        let old = self.store.scan_range(
            tenant,
            StateKind::History,
            &bound_key(Ts::default()),
            &bound_key(now - retention),
        )?;
        if old.is_empty() {
            return Ok(());
        }
        let ops: Vec<StateOp> = old
            .into_iter()
            .map(|(k, _)| StateOp::Delete {
                tenant: tenant.into(),
                kind: StateKind::History,
                key: k,
            })
            .collect();
        // Nothing is lost when this fails: the next collection finds the same entries.
        self.store.apply(&ops).inspect_err(|e| {
            metrics::STATE_WRITE_ERRORS.inc();
            tracing::warn!(tenant, error = %e, "Failed to delete expired alert history.");
        })
    }

    /// Sets `fenghuo_alerting_alerts{state}` from the firing alerts held: `unprocessed` until a
    /// group holding the alert has been through the notification pipeline, then `active` or
    /// `suppressed` as the pipeline found it — where and how Alertmanager reports
    /// `alertmanager_alerts{state}` (its API computes the state at query time and never shows
    /// `unprocessed`, and neither does fenghuo's).
    pub(crate) fn update_alert_gauges(&self) {
        let c = self.alert_state_counts();
        metrics::ALERTS
            .with_label_values(&["unprocessed"])
            .set(c.unprocessed as i64);
        metrics::ALERTS
            .with_label_values(&["active"])
            .set(c.active as i64);
        metrics::ALERTS
            .with_label_values(&["suppressed"])
            .set(c.suppressed as i64);
    }

    /// Firing alerts held by every tenant, by pipeline state (see `update_alert_gauges`).
    pub fn alert_state_counts(&self) -> AlertStateCounts {
        let now = self.now();
        let mut c = AlertStateCounts::default();
        let tenants: Vec<Arc<Mutex<TenantState>>> = self.tenants.lock().values().cloned().collect();
        for t in tenants {
            let st = t.lock();
            for (fp, s) in &st.alerts {
                if s.alert.resolved_at(now) {
                    continue;
                }
                match st.processed.get(fp) {
                    None => c.unprocessed += 1,
                    Some(true) => c.suppressed += 1,
                    Some(false) => c.active += 1,
                }
            }
        }
        c
    }

    /// Flushes the store (shutdown).
    pub fn flush_state(&self) -> Result<(), AlertingError> {
        self.store.flush()
    }
}

/// Computes the status of one alert.
pub(crate) fn view(rt: &Runtime, st: &TenantState, inhibitor: &Inhibitor, a: &Alert, now: Ts) -> AlertView {
    let routes = rt.routes.matching(&a.labels);
    let receivers: Vec<String> = routes.iter().map(|r| r.receiver.clone()).collect();
    let silenced_by = st.silences.muting(&a.labels, now);
    let inhibited_by: Vec<String> = inhibitor
        .inhibited_by(&a.labels, now)
        .iter()
        .map(|f| f.to_string())
        .collect();
    let mut muted_by: Vec<String> = routes.iter().flat_map(|r| rt.time_muted(r, now)).collect();
    muted_by.sort();
    muted_by.dedup();
    AlertView {
        alert: a.clone(),
        receivers,
        silenced_by,
        inhibited_by,
        muted_by,
    }
}

/// Puts an alert into the group of every route it matches (creating groups as needed).
pub(crate) fn insert_into_groups(rt: &Runtime, st: &mut TenantState, alert: &Alert, now: Ts) {
    let fp = alert.fingerprint();
    for route in rt.routes.matching(&alert.labels) {
        let labels = RouteTree::group_labels(route, &alert.labels);
        let key = format!("{}:{}", route.key, labels_string(&labels));
        let gid = (route.idx, key.clone());
        match st.groups.get_mut(&gid) {
            Some(g) => {
                g.alerts.insert(fp, alert.clone());
            }
            None => {
                // Alertmanager flushes a new group at once if its first alert is older than group_wait.
                let next_flush = if alert.starts_at + route.group_wait < now {
                    now
                } else {
                    now + route.group_wait
                };
                let mut alerts = BTreeMap::new();
                alerts.insert(fp, alert.clone());
                st.groups.insert(
                    gid,
                    AggrGroup {
                        route_idx: route.idx,
                        key,
                        labels,
                        alerts,
                        next_flush,
                        has_flushed: false,
                        attempts: 0,
                        failure_reported: false,
                        in_flight: false,
                    },
                );
            }
        }
    }
}

/// Rebuilds all groups from the stored alerts (start-up and reload), with their persisted
/// delivery retry state.
pub(crate) fn rebuild_groups(rt: &Runtime, st: &mut TenantState, now: Ts) {
    let alerts: Vec<Alert> = st.alerts.values().map(|s| s.alert.clone()).collect();
    for a in alerts {
        insert_into_groups(rt, st, &a, now);
    }
    st.restore_group_delivery();
}
