//! The ruler service: loads every tenant's rule files, schedules each group at its slotted
//! evaluation times on the injected clock (counting missed iterations), restores `for` state on
//! the first load, swaps groups on reload while keeping alert state (Prometheus's `Manager.Update`)
//! and stale-marks the series of removed groups two intervals later.

use std::collections::{BTreeMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fenghuo_storage_api::model::{Labels, TenantId};
use parking_lot::{Mutex, RwLock};

use crate::clock::Clock;
use crate::ruler::config::RulerConfig;
use crate::ruler::error::RulerError;
use crate::ruler::group::{Backend, Group, GroupOptions, NS_PER_MS, Notifier, panic_message, write_stale};
use crate::ruler::loader::load_groups;
use crate::ruler::metrics;

/// Where a group is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Restore {
    /// No restoration needed (later reloads, or done).
    Done,
    /// Restoration runs after this many more evaluations.
    After(u8),
}

struct Scheduled {
    group: Arc<Group>,
    /// Nanoseconds.
    next_eval: i64,
    restore: Restore,
    running: Arc<AtomicBool>,
}

/// Marks a group's evaluation in flight; clears the mark when dropped, so an evaluation that
/// panics never leaves its group looking busy forever.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Series of a removed group, stale-marked at `at` once `due` (both nanoseconds).
struct Retired {
    due: i64,
    at: i64,
    tenant: TenantId,
    series: Vec<Labels>,
}

/// Options of [`RulerService::start`].
#[derive(Clone)]
pub struct RulerOptions {
    pub config: RulerConfig,
    /// Used when the config has no `external_url`.
    pub default_external_url: String,
    /// Whether to run the background evaluation loop (tests call [`RulerService::tick`]).
    pub run_loop: bool,
}

/// The ruler: every tenant's groups and their schedule.
pub struct RulerService {
    backend: Backend,
    clock: Arc<dyn Clock>,
    notifier: Arc<dyn Notifier>,
    config: RwLock<RulerConfig>,
    opts: RwLock<GroupOptions>,
    default_external_url: String,
    groups: RwLock<BTreeMap<(TenantId, String), Scheduled>>,
    retired: Mutex<Vec<Retired>>,
    restored_once: AtomicBool,
    /// Serializes reloads (SIGHUP and `/-/reload` may race); evaluation never takes it.
    reloading: Mutex<()>,
    stop: tokio::sync::watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn group_options(c: &RulerConfig, default_url: &str) -> GroupOptions {
    let url = if c.external_url.is_empty() {
        default_url.to_string()
    } else {
        c.external_url.clone()
    };
    GroupOptions {
        external_labels: c.external_labels.clone(),
        external_url: url.clone(),
        template_url: Some(url),
        resend_delay_ms: c.resend_delay.as_millis_i64(),
        outage_tolerance_ms: c.for_outage_tolerance.as_millis_i64(),
        for_grace_period_ms: c.for_grace_period.as_millis_i64(),
        default_query_offset_ms: c.query_offset.as_millis_i64(),
    }
}

/// The clock's time in nanoseconds (schedules are kept in nanoseconds, as Prometheus's are).
fn now_ns(clock: &dyn Clock) -> i64 {
    let t = clock.now();
    t.timestamp_nanos_opt()
        .unwrap_or_else(|| t.timestamp_millis().saturating_mul(NS_PER_MS))
}

/// Waits for a group's evaluation in flight, if any. Called without the groups lock, so other
/// groups keep being scheduled and the API keeps answering meanwhile.
fn wait_until_idle(group: &str, running: &AtomicBool) {
    let started = std::time::Instant::now();
    let mut warned = false;
    while running.load(Ordering::SeqCst) {
        if !warned && started.elapsed() > std::time::Duration::from_secs(10) {
            tracing::warn!(group, "Reload waits for a long rule group evaluation.");
            warned = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

impl RulerService {
    /// Loads the rule files and, with `run_loop`, starts evaluating. A rule file with errors
    /// fails the start (as Prometheus refuses to start with bad rules).
    pub fn start(
        opts: RulerOptions,
        backend: Backend,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, RulerError> {
        opts.config.validate()?;
        let (stop, _) = tokio::sync::watch::channel(false);
        let svc = Arc::new(RulerService {
            backend,
            clock,
            notifier,
            opts: RwLock::new(group_options(&opts.config, &opts.default_external_url)),
            config: RwLock::new(opts.config.clone()),
            default_external_url: opts.default_external_url.clone(),
            groups: RwLock::new(BTreeMap::new()),
            retired: Mutex::new(Vec::new()),
            restored_once: AtomicBool::new(false),
            reloading: Mutex::new(()),
            stop,
            task: Mutex::new(None),
        });
        svc.apply(&opts.config)?;
        // The initial load counts as a successful reload, as in Prometheus.
        metrics::CONFIG_LAST_RELOAD_SUCCESS.set(1.0);
        if opts.run_loop {
            let me = svc.clone();
            let mut stop_rx = svc.stop.subscribe();
            let handle = tokio::spawn(async move {
                loop {
                    let wait = me.until_next_due();
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop_rx.changed() => break,
                    }
                    me.spawn_due();
                }
            });
            *svc.task.lock() = Some(handle);
        }
        Ok(svc)
    }

    /// The configuration in force.
    pub fn config(&self) -> RulerConfig {
        self.config.read().clone()
    }

    /// Re-reads the rule files of `config` (or the current config); on error nothing changes.
    pub fn reload(&self, config: Option<RulerConfig>) -> Result<(), RulerError> {
        let cfg = config.unwrap_or_else(|| self.config.read().clone());
        let res = cfg.validate().and_then(|()| self.apply(&cfg));
        match &res {
            Ok(()) => {
                *self.opts.write() = group_options(&cfg, &self.default_external_url);
                *self.config.write() = cfg;
                metrics::CONFIG_LAST_RELOAD_SUCCESS.set(1.0);
                tracing::info!("Rules reloaded.");
            }
            Err(e) => {
                metrics::CONFIG_LAST_RELOAD_SUCCESS.set(0.0);
                tracing::error!(error = %e, "Rule reload failed; keeping the old rules.");
            }
        }
        res
    }

    fn apply(&self, cfg: &RulerConfig) -> Result<(), RulerError> {
        let _serial = self.reloading.lock();
        let first = !self.restored_once.load(Ordering::SeqCst);
        let interval = cfg.evaluation_interval.as_millis_i64();
        let mut loaded: Vec<Group> = Vec::new();
        let mut errors = Vec::new();
        for (tenant, files) in cfg.tenant_files() {
            match load_groups(&tenant, &files, interval, !first) {
                Ok(g) => loaded.extend(g),
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(RulerError::RuleFile {
                file: String::new(),
                errors,
            });
        }
        // First stop the groups this reload replaces or removes and let their evaluations in
        // flight finish, outside the lock; then swap in one short critical section, where
        // no evaluation of a stopped group can be running.
        let stopped: Vec<(String, Arc<AtomicBool>)> = {
            // A read lock is enough: `take_due` needs the write lock, so no evaluation of a
            // group starts between its stop and the collection of its running flag.
            let groups = self.groups.read();
            let mut kept: HashSet<(TenantId, String)> = HashSet::new();
            for g in &loaded {
                let key = (g.tenant.clone(), g.key());
                if groups.get(&key).is_some_and(|s| s.group.same_definition(g)) {
                    kept.insert(key);
                }
            }
            groups
                .iter()
                .filter(|(k, _)| !kept.contains(*k))
                .map(|((_, k), s)| {
                    // Prometheus's `Group.stop`: no new evaluation starts, the one in flight
                    // ends after its current rule.
                    s.group.stop();
                    (k.clone(), s.running.clone())
                })
                .collect()
        };
        for (key, running) in &stopped {
            wait_until_idle(key, running);
        }
        let now = now_ns(&*self.clock);
        let mut groups = self.groups.write();
        let mut old = std::mem::take(&mut *groups);
        for g in loaded {
            let key = (g.tenant.clone(), g.key());
            let sched = match old.remove(&key) {
                Some(prev) if prev.group.same_definition(&g) => prev,
                Some(prev) => {
                    // The old definition was stopped above and its evaluation in flight has
                    // finished, so its state is final and the group never runs twice at once.
                    g.copy_state(&prev.group);
                    let g = Arc::new(g);
                    Scheduled {
                        next_eval: g.eval_timestamp_ns(now) + g.interval_ns(),
                        restore: Restore::Done,
                        group: g,
                        running: Arc::new(AtomicBool::new(false)),
                    }
                }
                None => {
                    let g = Arc::new(g);
                    Scheduled {
                        next_eval: g.eval_timestamp_ns(now) + g.interval_ns(),
                        restore: if first { Restore::After(2) } else { Restore::Done },
                        group: g,
                        running: Arc::new(AtomicBool::new(false)),
                    }
                }
            };
            let (t, k) = (sched.group.tenant.as_str().to_string(), sched.group.key());
            metrics::GROUP_INTERVAL
                .with_label_values(&[&t, &k])
                .set(sched.group.interval_ms as f64 / 1000.0);
            metrics::GROUP_RULES
                .with_label_values(&[&t, &k])
                .set(sched.group.rules.len() as i64);
            // Counters exist (at 0) from the group's start, as Prometheus's do.
            for c in [
                &metrics::ITERATIONS_MISSED,
                &metrics::ITERATIONS,
                &metrics::EVALUATIONS,
                &metrics::EVALUATION_FAILURES,
            ] {
                c.with_label_values(&[&t, &k]);
            }
            groups.insert(key, sched);
        }
        // Groups no longer configured: their series go stale two intervals from now (after an
        // evaluation in flight, whose series are then known).
        let mut retired = self.retired.lock();
        for ((tenant, key), s) in old {
            let series = s.group.current_series();
            metrics::remove_group(tenant.as_str(), &key);
            if !series.is_empty() {
                retired.push(Retired {
                    due: now + 2 * s.group.interval_ns(),
                    at: now,
                    tenant,
                    series,
                });
            }
        }
        self.restored_once.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Groups due at the clock's time: advances their schedule and returns what to evaluate.
    fn take_due(&self, now: i64) -> Vec<(Arc<Group>, i64, bool, Running)> {
        let mut out = Vec::new();
        for s in self.groups.write().values_mut() {
            if now < s.next_eval || s.group.is_stopped() || s.running.load(Ordering::SeqCst) {
                continue;
            }
            let g = &s.group;
            let missed = (now - s.next_eval) / g.interval_ns();
            let (t, k) = (g.tenant.as_str(), g.key());
            if missed > 0 {
                metrics::ITERATIONS_MISSED
                    .with_label_values(&[t, &k])
                    .inc_by(missed as u64);
                metrics::ITERATIONS
                    .with_label_values(&[t, &k])
                    .inc_by(missed as u64);
            }
            metrics::ITERATIONS.with_label_values(&[t, &k]).inc();
            let ts = s.next_eval + missed * g.interval_ns();
            s.next_eval = ts + g.interval_ns();
            let restore = match s.restore {
                Restore::After(1) => {
                    s.restore = Restore::Done;
                    true
                }
                Restore::After(n) => {
                    s.restore = Restore::After(n - 1);
                    false
                }
                Restore::Done => false,
            };
            s.running.store(true, Ordering::SeqCst);
            out.push((g.clone(), ts, restore, Running(s.running.clone())));
        }
        out
    }

    /// Evaluates one group; `_running` is released when done, even after a panic.
    fn eval_one(&self, g: &Group, ts: i64, restore: bool, _running: Running) {
        let opts = self.opts.read().clone();
        // Rules catch their own panics; this catches the group's bookkeeping and restoration,
        // so a panic never takes down the evaluation loop or `tick`'s caller.
        let res = std::panic::catch_unwind(AssertUnwindSafe(|| {
            g.eval(ts, now_ns(&*self.clock), &self.backend, &opts, &*self.notifier);
            // As in Prometheus, a group stopped during its second evaluation skips restoring.
            if restore && !g.is_stopped() {
                g.restore_for_state(now_ns(&*self.clock), &self.backend, &opts);
            }
        }));
        if let Err(panic) = res {
            tracing::error!(tenant = %g.tenant, group = %g.key(), error = %panic_message(&*panic), "Rule group evaluation panicked.");
        }
    }

    fn write_retired(&self, now: i64) {
        let due: Vec<Retired> = {
            let mut r = self.retired.lock();
            let (due, keep): (Vec<_>, Vec<_>) = r.drain(..).partition(|x| x.due <= now);
            *r = keep;
            due
        };
        for r in due {
            if let Err(e) = write_stale(&self.backend, &r.tenant, &r.series, r.at.div_euclid(NS_PER_MS)) {
                tracing::warn!(tenant = %r.tenant, error = %e, "Stale markers for removed rules failed.");
            }
        }
    }

    /// Evaluates every due group now, one after another (tests drive this with a manual clock).
    /// Returns how many groups were evaluated.
    pub fn tick(&self) -> usize {
        let now = now_ns(&*self.clock);
        self.write_retired(now);
        let due = self.take_due(now);
        let n = due.len();
        for (g, ts, restore, running) in due {
            self.eval_one(&g, ts, restore, running);
        }
        n
    }

    fn spawn_due(self: &Arc<Self>) {
        let now = now_ns(&*self.clock);
        self.write_retired(now);
        for (g, ts, restore, running) in self.take_due(now) {
            let me = self.clone();
            tokio::task::spawn_blocking(move || me.eval_one(&g, ts, restore, running));
        }
    }

    fn until_next_due(&self) -> std::time::Duration {
        let now = now_ns(&*self.clock);
        let next = self
            .groups
            .read()
            .values()
            .map(|s| s.next_eval)
            .chain(self.retired.lock().iter().map(|r| r.due))
            .min()
            .unwrap_or(now + NS_PER_MS * 1000);
        std::time::Duration::from_nanos((next - now).clamp(NS_PER_MS, NS_PER_MS * 1000) as u64)
    }

    /// The groups of one tenant, in file then name order.
    pub fn tenant_groups(&self, tenant: &TenantId) -> Vec<Arc<Group>> {
        self.groups
            .read()
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, s)| s.group.clone())
            .collect()
    }

    /// Every group of every tenant.
    pub fn all_groups(&self) -> Vec<Arc<Group>> {
        self.groups.read().values().map(|s| s.group.clone()).collect()
    }

    /// The next scheduled evaluation of a group in milliseconds (its samples' timestamp).
    pub fn next_eval(&self, tenant: &TenantId, file: &str, name: &str) -> Option<i64> {
        self.next_eval_ns(tenant, file, name)
            .map(|t| t.div_euclid(NS_PER_MS))
    }

    /// The next scheduled evaluation of a group in nanoseconds, for tests and debugging.
    pub fn next_eval_ns(&self, tenant: &TenantId, file: &str, name: &str) -> Option<i64> {
        self.groups
            .read()
            .get(&(tenant.clone(), crate::ruler::group::group_key(file, name)))
            .map(|s| s.next_eval)
    }

    /// The rule files loaded per tenant.
    pub fn files(&self) -> BTreeMap<TenantId, Vec<PathBuf>> {
        self.config.read().tenant_files()
    }

    /// Stops the evaluation loop.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let handle = self.task.lock().take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }
}
