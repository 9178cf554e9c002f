//! One evaluation step of the engine at the clock's current time, in three phases:
//! 1. prepare (under each tenant's lock): housekeeping (resolve timeouts, ack expiry, GC), flush
//!    every due group through the stages mute (silences, inhibition, time intervals) → dedup
//!    (notification log) → jobs per integration, and advance escalations;
//! 2. dispatch (no locks held): send jobs concurrently, honouring each robot's rate budget by
//!    folding surplus notifications into one digest instead of dropping them;
//! 3. apply: on confirmed delivery write the notification log and history; on failure retry with
//!    backoff and, after `max_attempts`, escalate the failure to `delivery.failure_receiver`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Duration;
use serde::Serialize;

use super::state::{EscalationState, GroupId, TenantState};
use super::{Engine, Runtime};
use crate::clock::Ts;
use crate::history::{EventKind, HistoryEvent};
use crate::inhibit::Inhibitor;
use crate::metrics;
use crate::model::{Alert, Fingerprint};
use crate::nflog::{NflogEntry, entry_key, needs_update, with_interrupted};
use crate::notify::{Integration, NotifyError, SendContext};
use crate::template::{EscalationInfo, NotificationData};

/// Alertmanager's default notification log / silence retention.
const RETENTION_HOURS: i64 = 120;

/// One delivery attempt, as reported to callers (tests, scenario runner).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Delivery {
    pub tenant: String,
    pub receiver: String,
    pub integration: String,
    pub group_key: String,
    /// `group`, `escalation` or `delivery_failure`.
    pub kind: String,
    pub step: Option<usize>,
    /// `sent`, `failed` or `deferred`.
    pub outcome: String,
    pub status: String,
    pub firing: Vec<String>,
    pub resolved: Vec<String>,
    pub digest_of: usize,
    pub error: Option<String>,
    /// Labels of the alerts in the message.
    pub alerts: Vec<crate::model::LabelSet>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct TickReport {
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Clone, PartialEq)]
enum JobKind {
    Group,
    Escalation(usize),
    FailureNotice,
}

struct Job {
    tenant: String,
    group_key: String,
    integration: Integration,
    data: NotificationData,
    kind: JobKind,
    nflog: Option<(String, NflogEntry)>,
    firing: Vec<String>,
    resolved: Vec<String>,
}

#[derive(Debug, Clone)]
enum Outcome {
    Sent { digest_of: usize },
    Failed(NotifyError),
    Deferred(Ts),
}

/// The prepare phase's result.
struct Prepared {
    rt: Arc<Runtime>,
    now: Ts,
    batch: Batch,
    escs: Vec<EscFlush>,
    notices: Vec<NoticeFlush>,
    /// Tenants whose state (with the intents of their jobs) the store refused: their jobs are
    /// held back, retried after [`HELD_BACK`].
    not_durable: BTreeSet<String>,
}

/// How long jobs wait when their intents could not be made durable.
const HELD_BACK: i64 = 5;

/// What the prepare phase produced for the dispatch phase.
#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    flushes: Vec<GroupFlush>,
}

struct GroupFlush {
    tenant: String,
    gid: GroupId,
    resolved: Vec<(Fingerprint, Ts)>,
    jobs: Vec<usize>,
}

struct EscFlush {
    tenant: String,
    group_key: String,
    jobs: Vec<usize>,
    receivers: Vec<String>,
}

/// A failure notice being sent to the failure receiver.
struct NoticeFlush {
    tenant: String,
    group_key: String,
    jobs: Vec<usize>,
}

/// Alertmanager's `AlertSlice` order: by `job`, then `instance` (present before absent), then labels.
pub(crate) fn alert_sort(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    for k in ["job", "instance"] {
        match (a.labels.get(k), b.labels.get(k)) {
            (None, None) => continue,
            (None, Some(_)) => return std::cmp::Ordering::Greater,
            (Some(_), None) => return std::cmp::Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    a.labels.cmp(&b.labels)
}

impl Engine {
    /// Runs one step at the clock's current time and reports every delivery attempted, waiting
    /// for all of them (tests, scenarios).
    pub async fn tick(&self) -> TickReport {
        let p = self.prepare().await;
        self.finish(p).await
    }

    /// Runs one step without waiting for the deliveries: they complete in a task of their own,
    /// so a slow receiver never delays other groups' notifications. Groups and escalations with a
    /// delivery in flight are skipped until it completes.
    pub async fn tick_detached(self: &Arc<Self>) {
        let p = self.prepare().await;
        if p.batch.jobs.is_empty() && p.batch.flushes.is_empty() && p.escs.is_empty() && p.notices.is_empty()
        {
            return;
        }
        let engine = self.clone();
        let handle = tokio::spawn(async move {
            engine.finish(p).await;
        });
        let mut inflight = self.inflight.lock();
        inflight.retain(|h| !h.is_finished());
        inflight.push(handle);
    }

    /// Waits for every delivery started by [`Engine::tick_detached`] (shutdown), so their outcomes
    /// are recorded and nothing is re-sent after a restart.
    pub async fn drain(&self) {
        let handles: Vec<_> = std::mem::take(&mut *self.inflight.lock());
        for h in handles {
            let _ = h.await;
        }
    }

    /// Phase 1, under the tick lock: everything due at `now`, marked in flight.
    async fn prepare(&self) -> Prepared {
        let _guard = self.tick_lock.lock().await;
        let now = self.now();
        let rt = self.runtime();
        let mut batch = Batch::default();
        let mut escs: Vec<EscFlush> = Vec::new();
        let mut notices: Vec<NoticeFlush> = Vec::new();
        let mut not_durable = BTreeSet::new();
        let gc_history = self.should_gc_history(now);
        let tenants: Vec<(String, Arc<parking_lot::Mutex<TenantState>>)> = self
            .tenants
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (tenant, t) in &tenants {
            let mut st = t.lock();
            housekeeping(&rt, &mut st, now);
            let inhibitor = Inhibitor::new(&rt.inhibit, st.alerts.values().map(|s| &s.alert), now);
            let due: Vec<GroupId> = st
                .groups
                .iter()
                .filter(|(_, g)| g.next_flush <= now && !g.in_flight)
                .map(|(k, _)| k.clone())
                .collect();
            for gid in due {
                self.prepare_flush(&rt, &mut st, &gid, now, &inhibitor, &mut batch);
            }
            self.prepare_escalations(&rt, &mut st, now, &inhibitor, &mut batch.jobs, &mut escs);
            self.prepare_notices(&rt, &mut st, now, &mut batch.jobs, &mut notices);
            if self.persist(&mut st).is_err() {
                // Nothing is sent for a tenant whose intents are not durable: a crash during
                // the send would forget that it may have happened.
                not_durable.insert(tenant.clone());
            }
            if gc_history {
                let _ = self.gc_history(tenant, now);
            }
        }
        self.update_alert_gauges();
        Prepared {
            rt,
            now,
            batch,
            escs,
            notices,
            not_durable,
        }
    }

    /// Phases 2 and 3: send, then record the outcomes.
    async fn finish(&self, p: Prepared) -> TickReport {
        let Prepared {
            rt,
            now,
            batch,
            escs,
            notices,
            not_durable,
        } = p;
        let Batch { jobs, flushes } = batch;
        let outcomes = self.dispatch(&rt, &jobs, now, &not_durable).await;
        self.persist_rate_budgets(&jobs);
        let mut report = TickReport::default();
        for (job, out) in jobs.iter().zip(outcomes.iter()) {
            report.deliveries.push(delivery(job, out));
        }
        self.apply(&rt, &jobs, &outcomes, flushes, escs, now, &not_durable);
        self.apply_notices(&rt, &jobs, &outcomes, notices, now);
        report
    }

    fn should_gc_history(&self, now: Ts) -> bool {
        let mut last = self.last_history_gc.lock();
        if last.is_none_or(|l| now - l >= Duration::hours(1)) {
            *last = Some(now);
            true
        } else {
            false
        }
    }

    fn prepare_flush(
        &self,
        rt: &Runtime,
        st: &mut TenantState,
        gid: &GroupId,
        now: Ts,
        inhibitor: &Inhibitor,
        out: &mut Batch,
    ) {
        let Some(route) = rt.routes.get(gid.0) else { return };
        let Some(g) = st.groups.get_mut(gid) else { return };
        g.next_flush = now + route.group_interval;
        g.has_flushed = true;
        g.in_flight = true;
        let mut alerts: Vec<Alert> = g.alerts.values().cloned().collect();
        alerts.sort_by(alert_sort);
        let resolved_snapshot: Vec<(Fingerprint, Ts)> = alerts
            .iter()
            .filter(|a| a.resolved_at(now))
            .map(|a| (a.fingerprint(), a.updated_at))
            .collect();
        let group_key = g.key.clone();
        let group_labels = g.labels.clone();
        let mut flush = GroupFlush {
            tenant: st.tenant.clone(),
            gid: gid.clone(),
            resolved: resolved_snapshot,
            jobs: vec![],
        };
        // Alertmanager's marker: the pipeline has now seen these alerts.
        let time_muted = !rt.time_muted(route, now).is_empty();
        for a in &alerts {
            let suppressed = time_muted
                || !st.silences.muting(&a.labels, now).is_empty()
                || inhibitor.is_inhibited(&a.labels, now);
            st.processed.insert(a.fingerprint(), suppressed);
        }
        // Time intervals mute the whole group.
        if time_muted {
            out.flushes.push(flush);
            return;
        }
        // Inhibition and silences drop individual alerts.
        let kept: Vec<Alert> = alerts
            .into_iter()
            .filter(|a| {
                st.silences.muting(&a.labels, now).is_empty() && !inhibitor.is_inhibited(&a.labels, now)
            })
            .collect();
        if kept.is_empty() {
            out.flushes.push(flush);
            return;
        }
        let firing: BTreeSet<u64> = kept
            .iter()
            .filter(|a| !a.resolved_at(now))
            .map(|a| a.fingerprint().0)
            .collect();
        let resolved: BTreeSet<u64> = kept
            .iter()
            .filter(|a| a.resolved_at(now))
            .map(|a| a.fingerprint().0)
            .collect();
        let acked = st.acked(&group_key, now).is_some();
        let repeat_allowed = !(acked && rt.loaded.config.fenghuo.ack.suppress_repeats);
        let ack_url = self.ack_url(&st.tenant, &group_key);
        let integrations = rt.receivers.get(&route.receiver).cloned().unwrap_or_default();
        for integ in integrations {
            let key = entry_key(&group_key, &integ.receiver, integ.kind, integ.idx);
            let prev = with_interrupted(st.nflog.get(&key), st.intents.get(&key), &firing);
            let reason = needs_update(
                prev.as_ref(),
                &firing,
                &resolved,
                integ.send_resolved,
                route.repeat_interval,
                now,
                repeat_allowed,
            );
            if !reason.should_notify() {
                // An interrupted notification with nothing left to tell needs no recovery.
                st.clear_intent(&key);
                continue;
            }
            let entry = NflogEntry {
                group_key: group_key.clone(),
                receiver: integ.receiver.clone(),
                integration: integ.kind.to_string(),
                idx: integ.idx,
                firing: firing.clone(),
                resolved: resolved.clone(),
                timestamp: now,
                expires_at: now + Duration::hours(RETENTION_HOURS),
            };
            let to_send: Vec<Alert> = if integ.send_resolved {
                kept.clone()
            } else {
                kept.iter().filter(|a| !a.resolved_at(now)).cloned().collect()
            };
            if to_send.is_empty() {
                // Nothing to tell this integration, but the log must learn that all resolved.
                st.clear_intent(&key);
                st.set_nflog(key, entry);
                continue;
            }
            // Durable before the send (the tick persists the tenant before dispatching).
            st.set_intent(&key, &entry);
            let data = NotificationData::build(
                &route.receiver,
                &group_key,
                &group_labels,
                &to_send,
                now,
                &rt.external_url,
                &st.tenant,
                &ack_url,
            );
            flush.jobs.push(out.jobs.len());
            out.jobs.push(Job {
                tenant: st.tenant.clone(),
                group_key: group_key.clone(),
                firing: to_send
                    .iter()
                    .filter(|a| !a.resolved_at(now))
                    .map(|a| a.fingerprint().to_string())
                    .collect(),
                resolved: to_send
                    .iter()
                    .filter(|a| a.resolved_at(now))
                    .map(|a| a.fingerprint().to_string())
                    .collect(),
                integration: integ,
                data,
                kind: JobKind::Group,
                nflog: Some((key, entry)),
            });
        }
        out.flushes.push(flush);
    }

    fn prepare_escalations(
        &self,
        rt: &Runtime,
        st: &mut TenantState,
        now: Ts,
        inhibitor: &Inhibitor,
        jobs: &mut Vec<Job>,
        escs: &mut Vec<EscFlush>,
    ) {
        let mut seen = BTreeSet::new();
        // Only groups on routes with an escalation policy (cloned: the loop mutates `st`).
        let groups: Vec<_> = st
            .groups
            .values()
            .filter(|g| rt.routes.get(g.route_idx).is_some_and(|r| r.escalation.is_some()))
            .cloned()
            .collect();
        for g in groups {
            let Some(route) = rt.routes.get(g.route_idx) else {
                continue;
            };
            let Some(pname) = &route.escalation else { continue };
            let Some(policy) = rt.policies.get(pname) else {
                continue;
            };
            if !seen.insert(g.key.clone()) || st.escalations_in_flight.contains(&g.key) {
                continue;
            }
            let firing: Vec<Alert> = g
                .alerts
                .values()
                .filter(|a| !a.resolved_at(now))
                .filter(|a| st.silences.muting(&a.labels, now).is_empty())
                .filter(|a| !inhibitor.is_inhibited(&a.labels, now))
                .cloned()
                .collect();
            if firing.is_empty() {
                let any_firing = g.alerts.values().any(|a| !a.resolved_at(now));
                if st.remove_escalation(&g.key).is_some() {
                    let mut e = HistoryEvent::new(now, EventKind::EscalationStopped);
                    e.group_key = g.key.clone();
                    e.detail = if any_firing {
                        "silenced or inhibited".into()
                    } else {
                        "resolved".into()
                    };
                    st.record(e);
                }
                continue;
            }
            if !rt.time_muted(route, now).is_empty() {
                continue;
            }
            let notified = st
                .nflog
                .values()
                .any(|e| e.group_key == g.key && !e.firing.is_empty());
            let mut state = match st.escalations.get(&g.key) {
                Some(s) => s.clone(),
                None => {
                    if !notified {
                        continue;
                    }
                    let s = EscalationState {
                        group_key: g.key.clone(),
                        policy: pname.clone(),
                        next_step: 0,
                        repeats_done: 0,
                        last_at: now,
                        started_at: now,
                        failures: 0,
                        retry_at: None,
                        exhausted: false,
                        log: vec![],
                    };
                    st.set_escalation(s.clone());
                    s
                }
            };
            if state.policy != *pname {
                // The route now uses another policy: start it from its first step.
                state.policy = pname.clone();
                state.next_step = 0;
                state.repeats_done = 0;
                state.exhausted = false;
                st.set_escalation(state.clone());
            }
            if state.exhausted || st.acked(&g.key, now).is_some() {
                continue;
            }
            if state.retry_at.is_some_and(|r| r > now) {
                continue;
            }
            let Some(step) = policy.steps.get(state.next_step) else {
                continue;
            };
            if now < state.last_at + step.wait.as_duration() {
                continue;
            }
            let mut flush = EscFlush {
                tenant: st.tenant.clone(),
                group_key: g.key.clone(),
                jobs: vec![],
                receivers: step.receivers.clone(),
            };
            let ack_url = self.ack_url(&st.tenant, &g.key);
            for rname in &step.receivers {
                let mut data = NotificationData::build(
                    rname,
                    &g.key,
                    &g.labels,
                    &firing,
                    now,
                    &rt.external_url,
                    &st.tenant,
                    &ack_url,
                );
                data.escalation = Some(EscalationInfo {
                    policy: pname.clone(),
                    step: state.next_step + 1,
                    steps: policy.steps.len(),
                    repeat: state.repeats_done + 1,
                });
                for integ in rt.receivers.get(rname).cloned().unwrap_or_default() {
                    flush.jobs.push(jobs.len());
                    jobs.push(Job {
                        tenant: st.tenant.clone(),
                        group_key: g.key.clone(),
                        integration: integ,
                        data: data.clone(),
                        kind: JobKind::Escalation(state.next_step + 1),
                        nflog: None,
                        firing: firing.iter().map(|a| a.fingerprint().to_string()).collect(),
                        resolved: vec![],
                    });
                }
            }
            st.escalations_in_flight.insert(g.key.clone());
            escs.push(flush);
        }
    }

    /// Queued failure notices due for (another) attempt at the failure receiver.
    fn prepare_notices(
        &self,
        rt: &Runtime,
        st: &mut TenantState,
        now: Ts,
        jobs: &mut Vec<Job>,
        out: &mut Vec<NoticeFlush>,
    ) {
        let Some(rname) = rt.loaded.config.fenghuo.delivery.failure_receiver.clone() else {
            return;
        };
        let due: Vec<_> = st
            .notices
            .values()
            .filter(|n| n.notified_at.is_none() && n.next_notify_at.is_none_or(|t| t <= now))
            .filter(|n| !st.notices_in_flight.contains(&n.group_key))
            .cloned()
            .collect();
        for n in due {
            let ack_url = self.ack_url(&st.tenant, &n.group_key);
            let mut data = NotificationData::build(
                &rname,
                &n.group_key,
                &n.group_labels,
                &n.alerts,
                now,
                &rt.external_url,
                &st.tenant,
                &ack_url,
            );
            data.common_annotations.insert(
                "fenghuo_delivery_failure".into(),
                format!("{}: {}", n.integration, n.error),
            );
            let mut flush = NoticeFlush {
                tenant: st.tenant.clone(),
                group_key: n.group_key.clone(),
                jobs: vec![],
            };
            for integ in rt.receivers.get(&rname).cloned().unwrap_or_default() {
                // Never through the integration that is failing.
                if integ.id() == n.integration {
                    continue;
                }
                flush.jobs.push(jobs.len());
                jobs.push(Job {
                    tenant: st.tenant.clone(),
                    group_key: n.group_key.clone(),
                    integration: integ,
                    data: data.clone(),
                    kind: JobKind::FailureNotice,
                    nflog: None,
                    firing: n.alerts.iter().map(|a| a.fingerprint().to_string()).collect(),
                    resolved: vec![],
                });
            }
            if !flush.jobs.is_empty() {
                st.notices_in_flight.insert(n.group_key.clone());
                out.push(flush);
            }
        }
    }

    /// Records the failure receiver's answers: a confirmed delivery marks the notice as sent;
    /// otherwise it is retried with backoff (or when the rate budget allows).
    fn apply_notices(
        &self,
        rt: &Runtime,
        jobs: &[Job],
        outcomes: &[Outcome],
        flushes: Vec<NoticeFlush>,
        now: Ts,
    ) {
        let cfg = &rt.loaded.config.fenghuo.delivery;
        for f in flushes {
            let Some(t) = self.existing_tenant(&f.tenant) else {
                continue;
            };
            let mut st = t.lock();
            st.notices_in_flight.remove(&f.group_key);
            let Some(mut n) = st.notices.get(&f.group_key).cloned() else {
                continue;
            };
            let outs: Vec<&Outcome> = f.jobs.iter().map(|&i| &outcomes[i]).collect();
            if outs.iter().any(|o| matches!(o, Outcome::Sent { .. })) {
                n.notified_at = Some(now);
                n.next_notify_at = None;
            } else if let Some(at) = outs
                .iter()
                .filter_map(|o| {
                    if let Outcome::Deferred(t) = o {
                        Some(*t)
                    } else {
                        None
                    }
                })
                .min()
            {
                n.next_notify_at = Some(at);
            } else {
                n.notify_attempts += 1;
                n.next_notify_at = Some(
                    now + super::delivery::backoff(
                        n.notify_attempts,
                        cfg.initial_backoff.as_duration(),
                        cfg.max_backoff.as_duration(),
                    ),
                );
                n.last_notify_error = f
                    .jobs
                    .iter()
                    .find_map(|&i| match &outcomes[i] {
                        Outcome::Failed(e) => Some(format!("{}: {e}", jobs[i].integration.id())),
                        _ => None,
                    })
                    .unwrap_or_default();
            }
            st.set_notice(n);
            let _ = self.persist(&mut st);
        }
    }

    /// Writes the rate budgets the dispatch used (system state), so a restart does not refill them.
    fn persist_rate_budgets(&self, jobs: &[Job]) {
        let mut seen = BTreeSet::new();
        let mut ops = Vec::new();
        for j in jobs {
            let (Some(key), Some(lim)) = (&j.integration.limiter_key, &j.integration.limiter) else {
                continue;
            };
            if !seen.insert(key.clone()) {
                continue;
            }
            let state = lim.lock().state();
            ops.push(crate::store::StateOp::Put {
                tenant: super::SYSTEM_TENANT.into(),
                kind: crate::store::StateKind::RateBudget,
                key: key.clone(),
                value: serde_json::to_vec(&state).unwrap_or_default(),
            });
        }
        if !ops.is_empty()
            && let Err(e) = self.store.apply(&ops)
        {
            metrics::STATE_WRITE_ERRORS.inc();
            tracing::error!(error = %e, "Failed to persist rate budgets.");
        }
    }

    /// Sends all jobs; rate-limited integrations fold surplus jobs into one digest.
    async fn dispatch(
        &self,
        rt: &Runtime,
        jobs: &[Job],
        now: Ts,
        not_durable: &BTreeSet<String>,
    ) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
        for (i, j) in jobs.iter().enumerate() {
            if not_durable.contains(&j.tenant) {
                outcomes[i] = Some(Outcome::Deferred(now + Duration::seconds(HELD_BACK)));
            }
        }
        // (indices of jobs covered, data to send, integration)
        let mut sends: Vec<(Vec<usize>, NotificationData, Integration)> = Vec::new();
        let ctx = SendContext {
            templates: rt.templates.clone(),
            now,
        };
        let mut buckets: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, j) in jobs.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            match &j.integration.limiter {
                Some(_) => buckets.entry(j.integration.id()).or_default().push(i),
                None => sends.push((vec![i], j.data.clone(), j.integration.clone())),
            }
        }
        for (_, idxs) in buckets {
            let integ = jobs[idxs[0]].integration.clone();
            let Some(lim) = integ.limiter.clone() else {
                continue;
            };
            let mut lim = lim.lock();
            let avail = lim.available(now) as usize;
            if avail == 0 {
                let at = lim.next_token_at(now);
                for i in idxs {
                    outcomes[i] = Some(Outcome::Deferred(at));
                }
                continue;
            }
            let first_of_bucket = sends.len();
            let singles = if idxs.len() <= avail {
                idxs.len()
            } else {
                avail - 1
            };
            for &i in &idxs[..singles] {
                lim.take(now);
                sends.push((vec![i], jobs[i].data.clone(), integ.clone()));
            }
            let rest = &idxs[singles..];
            if !rest.is_empty() {
                lim.take(now);
                let items: Vec<NotificationData> = rest.iter().map(|&i| jobs[i].data.clone()).collect();
                if let Some(d) = NotificationData::digest(&items) {
                    metrics::DIGESTS.with_label_values(&[integ.kind]).inc();
                    sends.push((rest.to_vec(), d, integ.clone()));
                }
            }
            // A message split into parts posts each part: the parts past the first are charged
            // too, so the next messages to this robot wait until the budget has recovered.
            let extra: usize = sends[first_of_bucket..]
                .iter()
                .map(|(_, data, integ)| integ.notifier.messages(data, &ctx).saturating_sub(1))
                .sum();
            if extra > 0 {
                lim.charge(u32::try_from(extra).unwrap_or(u32::MAX), now);
            }
        }
        let dry = self.opts.dry_run;
        let send_timeout = rt
            .loaded
            .config
            .fenghuo
            .delivery
            .timeout
            .as_duration()
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(15));
        let futs = sends.iter().map(|(_, data, integ)| {
            let ctx = &ctx;
            async move {
                if dry {
                    return Ok(());
                }
                let timer = metrics::NOTIFY_LATENCY
                    .with_label_values(&[integ.kind])
                    .start_timer();
                // A hard deadline per delivery, whatever the transport's own timeouts do.
                let r = match tokio::time::timeout(send_timeout, integ.notifier.notify(data, ctx)).await {
                    Ok(r) => r,
                    Err(_) => Err(NotifyError::new(
                        "timeout",
                        true,
                        format!("no answer within {send_timeout:?}"),
                    )),
                };
                timer.observe_duration();
                r
            }
        });
        let results = futures::future::join_all(futs).await;
        for ((idxs, _, integ), r) in sends.iter().zip(results) {
            let n = idxs.len();
            for &i in idxs {
                outcomes[i] = Some(match &r {
                    Ok(()) => {
                        metrics::NOTIFICATIONS
                            .with_label_values(&[&integ.receiver, integ.kind])
                            .inc();
                        Outcome::Sent { digest_of: n }
                    }
                    Err(e) => {
                        metrics::NOTIFICATIONS_FAILED
                            .with_label_values(&[&integ.receiver, integ.kind, e.reason])
                            .inc();
                        tracing::warn!(
                            receiver = %integ.receiver, integration = integ.kind, error = %e,
                            "Notification delivery failed."
                        );
                        Outcome::Failed(e.clone())
                    }
                });
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Failed(NotifyError::new("internal", true, "not sent"))))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        rt: &Runtime,
        jobs: &[Job],
        outcomes: &[Outcome],
        flushes: Vec<GroupFlush>,
        escs: Vec<EscFlush>,
        now: Ts,
        not_durable: &BTreeSet<String>,
    ) {
        let delivery_cfg = &rt.loaded.config.fenghuo.delivery;
        // Every tenant's changes are written in one batch at the end.
        let mut touched: BTreeSet<String> = BTreeSet::new();
        // History and the notification log for every delivered job.
        for (j, o) in jobs.iter().zip(outcomes) {
            let Ok(t) = self.tenant(&j.tenant) else { continue };
            let mut st = t.lock();
            match o {
                Outcome::Sent { digest_of } => {
                    if let Some((k, e)) = &j.nflog {
                        st.set_nflog(k.clone(), e.clone());
                        st.clear_intent(k);
                    }
                    let mut e = HistoryEvent::new(now, EventKind::Notified);
                    e.group_key = j.group_key.clone();
                    e.receiver = j.integration.receiver.clone();
                    e.integration = j.integration.kind.to_string();
                    e.alertname = j.data.common_labels.get("alertname").cloned().unwrap_or_default();
                    e.severity = j.data.common_labels.get("severity").cloned().unwrap_or_default();
                    e.labels = j.data.group_labels.clone();
                    e.fingerprints = j.firing.iter().chain(j.resolved.iter()).cloned().collect();
                    e.detail = match (&j.kind, digest_of) {
                        (JobKind::Escalation(s), _) => format!("escalation step {s}"),
                        (JobKind::FailureNotice, _) => "delivery failure notice".into(),
                        (_, n) if *n > 1 => format!("{} (digest of {n})", j.data.status),
                        _ => j.data.status.clone(),
                    };
                    st.record(e);
                }
                Outcome::Failed(err) => {
                    let mut e = HistoryEvent::new(now, EventKind::NotifyFailed);
                    e.group_key = j.group_key.clone();
                    e.receiver = j.integration.receiver.clone();
                    e.integration = j.integration.kind.to_string();
                    e.alertname = j.data.common_labels.get("alertname").cloned().unwrap_or_default();
                    e.fingerprints = j.firing.clone();
                    e.detail = err.to_string();
                    st.record(e);
                }
                Outcome::Deferred(at) => {
                    metrics::DEFERRED.with_label_values(&[j.integration.kind]).inc();
                    let mut e = HistoryEvent::new(now, EventKind::Deferred);
                    e.group_key = j.group_key.clone();
                    e.receiver = j.integration.receiver.clone();
                    e.integration = j.integration.kind.to_string();
                    e.detail = if not_durable.contains(&j.tenant) {
                        format!("state not persisted; held back until {}", at.to_rfc3339())
                    } else {
                        format!("rate budget spent; next attempt at {}", at.to_rfc3339())
                    };
                    st.record(e);
                }
            }
            touched.insert(st.tenant.clone());
        }
        for f in flushes {
            let Ok(t) = self.tenant(&f.tenant) else { continue };
            let mut st = t.lock();
            let outs: Vec<&Outcome> = f.jobs.iter().map(|&i| &outcomes[i]).collect();
            let all_sent = outs.iter().all(|o| matches!(o, Outcome::Sent { .. }));
            let failures: Vec<(usize, &NotifyError)> = f
                .jobs
                .iter()
                .filter_map(|&i| {
                    if let Outcome::Failed(e) = &outcomes[i] {
                        Some((i, e))
                    } else {
                        None
                    }
                })
                .collect();
            let defer_at = outs
                .iter()
                .filter_map(|o| {
                    if let Outcome::Deferred(t) = o {
                        Some(*t)
                    } else {
                        None
                    }
                })
                .min();
            // A group whose route has an escalation policy starts escalating with its first
            // delivered firing notification.
            let first_firing = f
                .jobs
                .iter()
                .any(|&i| matches!(outcomes[i], Outcome::Sent { .. }) && !jobs[i].firing.is_empty());
            if first_firing
                && let Some(g) = st.groups.get(&f.gid)
                && let Some(policy) = rt.routes.get(g.route_idx).and_then(|r| r.escalation.clone())
                && !st.escalations.contains_key(&g.key)
            {
                let key = g.key.clone();
                st.set_escalation(EscalationState {
                    group_key: key,
                    policy,
                    next_step: 0,
                    repeats_done: 0,
                    last_at: now,
                    started_at: now,
                    failures: 0,
                    retry_at: None,
                    exhausted: false,
                    log: vec![],
                });
            }
            let Some(g) = st.groups.get_mut(&f.gid) else {
                continue;
            };
            g.in_flight = false;
            if all_sent {
                let recovered = g.attempts > 0 || g.failure_reported;
                g.attempts = 0;
                g.failure_reported = false;
                for (fp, updated) in &f.resolved {
                    if g.alerts
                        .get(fp)
                        .is_some_and(|a| a.updated_at == *updated && a.resolved_at(now))
                    {
                        g.alerts.remove(fp);
                    }
                }
                let key = g.key.clone();
                let empty = g.alerts.is_empty();
                if recovered {
                    if let Some(g) = st.groups.get(&f.gid).cloned() {
                        st.save_group_delivery(&f.gid, &g);
                    }
                    st.delivery_recovered(&key, now);
                }
                if empty {
                    st.groups.remove(&f.gid);
                    st.remove_group_delivery(&f.gid);
                    if !st.groups.values().any(|g| g.key == key) {
                        st.remove_ack(&key);
                        if st.remove_escalation(&key).is_some() {
                            let mut e = HistoryEvent::new(now, EventKind::EscalationStopped);
                            e.group_key = key.clone();
                            e.detail = "resolved".into();
                            st.record(e);
                        }
                    }
                }
            } else if failures.is_empty() {
                if let Some(at) = defer_at {
                    g.next_flush = g.next_flush.min(at);
                }
            } else {
                g.attempts += 1;
                let retryable = failures.iter().any(|(_, e)| e.retryable);
                if retryable {
                    let b = super::delivery::backoff(
                        g.attempts,
                        delivery_cfg.initial_backoff.as_duration(),
                        delivery_cfg.max_backoff.as_duration(),
                    );
                    g.next_flush = g.next_flush.min(now + b);
                }
                if let Some(at) = defer_at {
                    g.next_flush = g.next_flush.min(at);
                }
                let report = (g.attempts >= delivery_cfg.max_attempts || !retryable) && !g.failure_reported;
                if report {
                    g.failure_reported = true;
                }
                let snapshot = g.clone();
                st.save_group_delivery(&f.gid, &snapshot);
                if report {
                    let (i, err) = failures[0];
                    let job = &jobs[i];
                    let mut alerts: Vec<Alert> = snapshot.alerts.values().cloned().collect();
                    alerts.sort_by(alert_sort);
                    let notice = super::delivery::FailureNotice {
                        id: uuid::Uuid::new_v4().to_string(),
                        group_key: snapshot.key.clone(),
                        group_labels: snapshot.labels.clone(),
                        alerts,
                        integration: job.integration.id(),
                        error: err.to_string(),
                        attempts: snapshot.attempts,
                        failed_at: now,
                        notified_at: None,
                        notify_attempts: 0,
                        next_notify_at: None,
                        last_notify_error: String::new(),
                    };
                    metrics::DELIVERY_FAILURES_ESCALATED
                        .with_label_values(&[&job.integration.receiver, job.integration.kind])
                        .inc();
                    tracing::error!(
                        tenant = %f.tenant, group = %notice.group_key, integration = %notice.integration,
                        attempts = snapshot.attempts, error = %err, "Delivery keeps failing; escalating."
                    );
                    let mut e = HistoryEvent::new(now, EventKind::DeliveryFailed);
                    e.group_key = notice.group_key.clone();
                    e.receiver = job.integration.receiver.clone();
                    e.integration = job.integration.kind.to_string();
                    e.detail = format!("after {} attempts: {}", snapshot.attempts, err);
                    st.record(e);
                    st.set_notice(notice);
                }
            }
            touched.insert(st.tenant.clone());
        }
        for f in escs {
            let Ok(t) = self.tenant(&f.tenant) else { continue };
            let mut st = t.lock();
            st.escalations_in_flight.remove(&f.group_key);
            let Some(mut state) = st.escalations.get(&f.group_key).cloned() else {
                continue;
            };
            let Some(policy) = rt.policies.get(&state.policy) else {
                continue;
            };
            let sent = f
                .jobs
                .iter()
                .any(|&i| matches!(outcomes[i], Outcome::Sent { .. }));
            let deferred = f
                .jobs
                .iter()
                .all(|&i| matches!(outcomes[i], Outcome::Deferred(_)));
            if f.jobs.is_empty() || sent {
                let step_no = state.next_step + 1;
                state.log.push((step_no, now, f.receivers.clone()));
                state.repeats_done += 1;
                state.last_at = now;
                state.failures = 0;
                state.retry_at = None;
                let step_repeat = policy.steps.get(state.next_step).map(|s| s.repeat).unwrap_or(1);
                if state.repeats_done >= step_repeat {
                    state.next_step += 1;
                    state.repeats_done = 0;
                }
                metrics::ESCALATIONS.with_label_values(&[&state.policy]).inc();
                let mut e = HistoryEvent::new(now, EventKind::Escalated);
                e.group_key = f.group_key.clone();
                e.receiver = f.receivers.join(",");
                e.detail = format!("policy {} step {step_no}/{}", state.policy, policy.steps.len());
                st.record(e);
                if state.next_step >= policy.steps.len() {
                    state.exhausted = true;
                    let mut e = HistoryEvent::new(now, EventKind::EscalationExhausted);
                    e.group_key = f.group_key.clone();
                    e.detail = format!("policy {} has no further steps", state.policy);
                    st.record(e);
                }
            } else if deferred {
                if let Some(at) = f
                    .jobs
                    .iter()
                    .filter_map(|&i| {
                        if let Outcome::Deferred(t) = outcomes[i] {
                            Some(t)
                        } else {
                            None
                        }
                    })
                    .min()
                {
                    state.retry_at = Some(at);
                }
            } else {
                state.failures += 1;
                let shift = state.failures.saturating_sub(1).min(20);
                let backoff = (delivery_cfg.initial_backoff.as_duration() * (1i32 << shift))
                    .min(delivery_cfg.max_backoff.as_duration());
                state.retry_at = Some(now + backoff);
            }
            st.set_escalation(state);
            touched.insert(st.tenant.clone());
        }
        for tenant in touched {
            if let Ok(t) = self.tenant(&tenant) {
                let mut st = t.lock();
                let _ = self.persist(&mut st);
            }
        }
    }
}

/// Time-driven bookkeeping of one tenant.
fn housekeeping(rt: &Runtime, st: &mut TenantState, now: Ts) {
    // Alerts that resolved by timeout (or by their given endsAt passing).
    let newly: Vec<Fingerprint> = st
        .alerts
        .iter()
        .filter(|(_, s)| s.fired_noted && !s.resolved_noted && s.alert.resolved_at(now))
        .map(|(fp, _)| *fp)
        .collect();
    for fp in newly {
        if let Some(s) = st.alerts.get_mut(&fp) {
            s.resolved_noted = true;
            let mut e = HistoryEvent::new(s.alert.ends_at, EventKind::Resolved).with_labels(&s.alert.labels);
            e.started_at = Some(s.alert.starts_at);
            st.record(e);
            st.save_alert(fp);
        }
    }
    // Resolved alerts no group holds any more are dropped (Alertmanager's alert GC).
    let in_groups: BTreeSet<Fingerprint> = st
        .groups
        .values()
        .flat_map(|g| g.alerts.keys().copied())
        .collect();
    let dead: Vec<Fingerprint> = st
        .alerts
        .iter()
        .filter(|(fp, s)| s.alert.resolved_at(now) && !in_groups.contains(fp))
        .map(|(fp, _)| *fp)
        .collect();
    for fp in dead {
        st.remove_alert(fp);
    }
    // Expired acks: escalation resumes, waiting a full step again from the expiry.
    let expired: Vec<String> = st
        .acks
        .values()
        .filter(|a| a.expires_at <= now)
        .map(|a| a.group_key.clone())
        .collect();
    for k in expired {
        if let Some(a) = st.remove_ack(&k) {
            let mut e = HistoryEvent::new(a.expires_at, EventKind::AckExpired);
            e.group_key = k.clone();
            e.by = a.by.clone();
            st.record(e);
            if let Some(mut es) = st.escalations.get(&k).cloned() {
                es.last_at = a.expires_at;
                st.set_escalation(es);
            }
        }
    }
    // Notification log and silence retention.
    let old: Vec<String> = st
        .nflog
        .iter()
        .filter(|(_, e)| e.expires_at < now)
        .map(|(k, _)| k.clone())
        .collect();
    for k in old {
        st.remove_nflog(&k);
    }
    let stale: Vec<String> = st
        .intents
        .iter()
        .filter(|(_, e)| e.expires_at < now)
        .map(|(k, _)| k.clone())
        .collect();
    for k in stale {
        st.clear_intent(&k);
    }
    for id in st.silences.gc(now, Duration::hours(RETENTION_HOURS)) {
        st.remove_silence(&id);
    }
    let _ = rt;
}

fn delivery(j: &Job, o: &Outcome) -> Delivery {
    let (outcome, digest_of, error) = match o {
        Outcome::Sent { digest_of } => ("sent", *digest_of, None),
        Outcome::Failed(e) => ("failed", 1, Some(e.to_string())),
        Outcome::Deferred(_) => ("deferred", 1, None),
    };
    let (kind, step) = match j.kind {
        JobKind::Group => ("group", None),
        JobKind::Escalation(s) => ("escalation", Some(s)),
        JobKind::FailureNotice => ("delivery_failure", None),
    };
    Delivery {
        tenant: j.tenant.clone(),
        receiver: j.integration.receiver.clone(),
        integration: j.integration.kind.to_string(),
        group_key: j.group_key.clone(),
        kind: kind.into(),
        step,
        outcome: outcome.into(),
        status: j.data.status.clone(),
        firing: j.firing.clone(),
        resolved: j.resolved.clone(),
        digest_of,
        error,
        alerts: j.data.alerts.iter().map(|a| a.labels.clone()).collect(),
    }
}
