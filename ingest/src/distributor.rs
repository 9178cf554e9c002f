//! The distributor: where a tenant's validated batch goes. On a single node
//! every series lands in the local store; in a cluster the distributor maps
//! each series to its shard (hash of tenant + labels) and forwards to the
//! shard's leader. The HTTP layer only sees this trait.

use std::sync::Arc;

use fenghuo_storage_api::api::{AppendOutcome, Appender};
use fenghuo_storage_api::model::{BorrowedBatch, TenantId};

use crate::error::IngestError;

/// Accepts validated batches.
///
/// Contract: `push` returns `Ok` only when every item counted as written in
/// the outcome is durable; items it refuses are listed in the outcome; an
/// `Err` means the caller must answer with a retryable or client error as
/// [`IngestError::http_status`] says. `push` blocks (it may wait for an
/// fsync); call it from a blocking thread. The batch's label strings
/// borrow from the request; owned copies are storage's business (it makes
/// them only for series it does not hold).
pub trait Distributor: Send + Sync {
    fn push(&self, tenant: &TenantId, batch: BorrowedBatch<'_>) -> Result<AppendOutcome, IngestError>;
}

/// Single-node distributor: everything goes to one local appender.
pub struct LocalDistributor {
    appender: Arc<dyn Appender>,
}

impl LocalDistributor {
    pub fn new(appender: Arc<dyn Appender>) -> Self {
        Self { appender }
    }
}

impl Distributor for LocalDistributor {
    fn push(&self, tenant: &TenantId, batch: BorrowedBatch<'_>) -> Result<AppendOutcome, IngestError> {
        Ok(self.appender.append_borrowed(tenant, batch)?)
    }
}
