//! Sending alerts: to fenghuo's own alert engine in-process (`AlertingService::ingest`) and to
//! external Alertmanagers over `POST /api/v2/alerts`, through a bounded queue that drops the
//! oldest alerts when full (Prometheus's notifier). External labels are added to every alert that
//! does not carry them already.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use fenghuo_storage_api::model::{Labels, TenantId};
use parking_lot::Mutex;

use crate::api::PostableAlert;
use crate::ruler::config::AlertmanagerConfig;
use crate::ruler::group::{Notifier, OutgoingAlert};
use crate::ruler::metrics;
use crate::service::AlertingService;

/// Prometheus's notifier batch size.
const MAX_BATCH: usize = 256;

fn ts(ns: Option<i64>) -> Option<crate::clock::Ts> {
    ns.map(chrono::DateTime::from_timestamp_nanos)
}

fn label_set(l: &Labels) -> BTreeMap<String, String> {
    l.iter().map(|l| (l.name.clone(), l.value.clone())).collect()
}

/// Converts an outgoing alert into Alertmanager's postable form with external labels added.
pub fn to_postable(a: &OutgoingAlert, external_labels: &BTreeMap<String, String>) -> PostableAlert {
    let mut labels = label_set(&a.labels);
    for (k, v) in external_labels {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    PostableAlert {
        labels,
        annotations: label_set(&a.annotations),
        starts_at: ts(a.starts_at),
        ends_at: ts(a.ends_at),
        generator_url: a.generator_url.clone(),
    }
}

/// Hands alerts to fenghuo's alert engine.
pub struct LocalNotifier {
    pub service: Arc<AlertingService>,
    /// Whether alerts go there at all, and the external labels they get (both reloadable).
    settings: parking_lot::RwLock<(bool, BTreeMap<String, String>)>,
}

impl LocalNotifier {
    pub fn new(
        service: Arc<AlertingService>,
        enabled: bool,
        external_labels: BTreeMap<String, String>,
    ) -> Self {
        LocalNotifier {
            service,
            settings: parking_lot::RwLock::new((enabled, external_labels)),
        }
    }

    /// Applies a reloaded `send_to_local_alertmanager` and `external_labels`.
    pub fn configure(&self, enabled: bool, external_labels: BTreeMap<String, String>) {
        *self.settings.write() = (enabled, external_labels);
    }
}

impl Notifier for LocalNotifier {
    fn send(&self, tenant: &TenantId, alerts: Vec<OutgoingAlert>) {
        let (enabled, external_labels) = self.settings.read().clone();
        if !enabled {
            return;
        }
        let n = alerts.len() as u64;
        let posted = alerts.iter().map(|a| to_postable(a, &external_labels)).collect();
        match self.service.ingest(tenant.as_str(), posted) {
            Ok(rejected) => {
                metrics::NOTIFICATIONS_SENT
                    .with_label_values(&["local"])
                    .inc_by(n);
                for r in rejected {
                    metrics::NOTIFICATIONS_ERRORS.with_label_values(&["local"]).inc();
                    tracing::warn!(tenant = %tenant, error = %r, "Alert engine rejected an alert.");
                }
            }
            Err(e) => {
                metrics::NOTIFICATIONS_ERRORS
                    .with_label_values(&["local"])
                    .inc_by(n);
                tracing::error!(tenant = %tenant, error = %e, "Handing alerts to the alert engine failed.");
            }
        }
    }
}

/// Sends to every configured notifier.
pub struct Fanout(pub Vec<Arc<dyn Notifier>>);

impl Notifier for Fanout {
    fn send(&self, tenant: &TenantId, alerts: Vec<OutgoingAlert>) {
        for n in &self.0 {
            n.send(tenant, alerts.clone());
        }
    }
}

/// The reloadable settings of [`AlertmanagerNotifier`].
#[derive(Clone, Debug, Default)]
struct AmSettings {
    ams: Vec<AlertmanagerConfig>,
    capacity: usize,
    external_labels: BTreeMap<String, String>,
}

/// Queues alerts for external Alertmanagers and sends them from a background task. Its
/// Alertmanagers, queue capacity and external labels can change on reload; queued alerts stay.
pub struct AlertmanagerNotifier {
    queue: Mutex<VecDeque<(TenantId, PostableAlert)>>,
    settings: parking_lot::RwLock<AmSettings>,
    wake: tokio::sync::Notify,
}

impl AlertmanagerNotifier {
    /// Starts the sender task on the current Tokio runtime.
    pub fn start(
        ams: Vec<AlertmanagerConfig>,
        capacity: usize,
        external_labels: BTreeMap<String, String>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Arc<Self> {
        let me = Arc::new(AlertmanagerNotifier {
            queue: Mutex::new(VecDeque::new()),
            settings: parking_lot::RwLock::new(AmSettings {
                ams,
                capacity: capacity.max(1),
                external_labels,
            }),
            wake: tokio::sync::Notify::new(),
        });
        let worker = me.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let batch = worker.next_batch();
                if batch.is_empty() {
                    tokio::select! {
                        _ = worker.wake.notified() => continue,
                        _ = stop.changed() => return,
                    }
                }
                // One request per tenant, to every Alertmanager configured now.
                let ams = worker.settings.read().ams.clone();
                let mut by_tenant: BTreeMap<TenantId, Vec<PostableAlert>> = BTreeMap::new();
                for (t, a) in batch {
                    by_tenant.entry(t).or_default().push(a);
                }
                for (tenant, alerts) in by_tenant {
                    for am in &ams {
                        for url in &am.urls {
                            send_one(&client, am, url, &tenant, &alerts).await;
                        }
                    }
                }
            }
        });
        me
    }

    /// Applies reloaded Alertmanagers, queue capacity and external labels.
    pub fn configure(
        &self,
        ams: Vec<AlertmanagerConfig>,
        capacity: usize,
        external_labels: BTreeMap<String, String>,
    ) {
        *self.settings.write() = AmSettings {
            ams,
            capacity: capacity.max(1),
            external_labels,
        };
    }

    fn next_batch(&self) -> Vec<(TenantId, PostableAlert)> {
        let mut q = self.queue.lock();
        let n = q.len().min(MAX_BATCH);
        let out: Vec<_> = q.drain(..n).collect();
        metrics::NOTIFICATIONS_QUEUE
            .with_label_values(&["external"])
            .set(q.len() as i64);
        out
    }
}

async fn send_one(
    client: &reqwest::Client,
    am: &AlertmanagerConfig,
    base: &str,
    tenant: &TenantId,
    alerts: &[PostableAlert],
) {
    let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
    let mut req = client.post(&url).timeout(am.timeout.0).json(alerts);
    // Logs and metric labels show the URL without credentials
    // (`http://user:pass@am:9093` is a valid Alertmanager URL).
    let (url, base) = (without_credentials(&url), without_credentials(base));
    let base = base.as_str();
    if am.send_tenant_header {
        req = req.header(TenantId::HEADER, tenant.as_str());
    }
    let n = alerts.len() as u64;
    match req.send().await {
        Ok(r) if r.status().is_success() => {
            metrics::NOTIFICATIONS_SENT.with_label_values(&[base]).inc_by(n);
        }
        Ok(r) => {
            metrics::NOTIFICATIONS_ERRORS.with_label_values(&[base]).inc_by(n);
            tracing::error!(alertmanager = %url, status = %r.status(), count = n, "Error sending alerts.");
        }
        Err(e) => {
            metrics::NOTIFICATIONS_ERRORS.with_label_values(&[base]).inc_by(n);
            tracing::error!(alertmanager = %url, error = %e.without_url(), count = n, "Error sending alerts.");
        }
    }
}

impl Notifier for AlertmanagerNotifier {
    fn send(&self, tenant: &TenantId, alerts: Vec<OutgoingAlert>) {
        let settings = self.settings.read().clone();
        if settings.ams.iter().all(|a| a.urls.is_empty()) {
            return;
        }
        let mut q = self.queue.lock();
        for a in &alerts {
            q.push_back((tenant.clone(), to_postable(a, &settings.external_labels)));
        }
        let over = q.len().saturating_sub(settings.capacity);
        if over > 0 {
            q.drain(..over);
            metrics::NOTIFICATIONS_DROPPED
                .with_label_values(&["external"])
                .inc_by(over as u64);
            tracing::warn!(dropped = over, "Alert notification queue full, dropping alerts.");
        }
        metrics::NOTIFICATIONS_QUEUE
            .with_label_values(&["external"])
            .set(q.len() as i64);
        drop(q);
        self.wake.notify_one();
    }
}

/// `url` with any `user:password@` removed.
pub fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string().trim_end_matches('/').to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alertmanager_urls_lose_their_credentials_in_logs_and_labels() {
        assert_eq!(without_credentials("http://u:pw@am:9093/x"), "http://am:9093/x");
        assert_eq!(without_credentials("https://token@am"), "https://am");
        assert_eq!(without_credentials("http://am:9093"), "http://am:9093");
    }
}
