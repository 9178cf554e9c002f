//! A write batch: what the ingest path hands to storage, and what one entry
//! of a shard's log carries.

use super::labels::Labels;
use super::sample::{Exemplar, HistogramSample, MetricMetadata, Sample};

/// A tenant id as `X-Scope-OrgID` carries it: 1–150 bytes of
/// `[A-Za-z0-9!._*'()-]`, not `.` or `..` (Mimir's rules), and not starting
/// with `__` (reserved for fenghuo's own tenants). Every API (ingest, query,
/// rules, alerting, auth) reads the header through [`TenantId::from_header`],
/// so one rule holds everywhere.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// The tenant used when a request carries no `X-Scope-OrgID`.
    pub const DEFAULT: &'static str = "anonymous";
    /// The HTTP header that selects the tenant.
    pub const HEADER: &'static str = "X-Scope-OrgID";

    pub fn new(id: impl Into<String>) -> Result<Self, String> {
        let id = id.into();
        if id.is_empty() || id.len() > 150 {
            return Err(format!("tenant ID must be 1-150 characters, got {}", id.len()));
        }
        if id == "." || id == ".." {
            return Err(format!("tenant ID {id:?} is not allowed"));
        }
        if id.starts_with("__") {
            return Err(format!(
                "tenant ID {id:?} is reserved: IDs starting with __ are fenghuo's own"
            ));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c)))
        {
            return Err(format!("tenant ID {id:?} contains unsupported character {c:?}"));
        }
        Ok(Self(id))
    }

    /// The tenant an `X-Scope-OrgID` header value selects: the default
    /// tenant when the header is absent, otherwise the value exactly as sent
    /// (no trimming), validated by [`TenantId::new`].
    pub fn from_header(value: Option<&[u8]>) -> Result<Self, String> {
        match value {
            None => Ok(Self::default_tenant()),
            Some(v) => {
                let s = std::str::from_utf8(v).map_err(|_| "tenant ID is not valid ASCII".to_string())?;
                Self::new(s)
            }
        }
    }

    pub fn default_tenant() -> Self {
        Self(Self::DEFAULT.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// All samples of one series in a batch, sorted by timestamp is NOT
/// required: storage orders and deduplicates them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesWrite {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    pub histograms: Vec<HistogramSample>,
    pub exemplars: Vec<Exemplar>,
    /// Created/start timestamp (remote write 2.0), 0 when unknown.
    pub created_timestamp: i64,
}

impl SeriesWrite {
    /// Where remote write 2.0's created timestamp puts a zero sample, if anywhere: as
    /// Prometheus's created-timestamp zero ingestion does, only strictly before the write's first
    /// sample and strictly after everything the series already holds (`series_max_t`), so it is
    /// never out of order, and not before the store's lower bound `min_valid`. Ingest sets
    /// `created_timestamp` only when the operator enabled this.
    pub fn created_zero_at(&self, series_max_t: i64, min_valid: i64) -> Option<i64> {
        let ct = self.created_timestamp;
        let first = self
            .samples
            .iter()
            .map(|s| s.t)
            .chain(self.histograms.iter().map(|h| h.t))
            .min()?;
        (ct > 0 && ct < first && ct > series_max_t && ct >= min_valid).then_some(ct)
    }
}

/// A validated batch for one tenant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteBatch {
    pub series: Vec<SeriesWrite>,
    pub metadata: Vec<MetricMetadata>,
}

impl WriteBatch {
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
    pub fn histogram_count(&self) -> usize {
        self.series.iter().map(|s| s.histograms.len()).sum()
    }
    pub fn exemplar_count(&self) -> usize {
        self.series.iter().map(|s| s.exemplars.len()).sum()
    }
}
