//! The write path: Prometheus remote write 1.0 and 2.0 over HTTP.
//!
//! ```text
//! POST /api/v1/write ─► http (tenant, content negotiation, body limit)
//!                    ─► decode (snappy, protobuf 1.0 | 2.0 ─► BorrowedBatch)
//!                    ─► validate (labels, timestamps, histograms, limits)
//!                    ─► Distributor (series ─► shard ─► Appender) ─► response
//! ```
//! Ingest depends only on the storage seam [`fenghuo_storage_api::api::Appender`]; in-process
//! producers (the ruler) write through [`IngestAppender`], the same validation and distributor
//! behind that seam.

pub mod appender;
pub mod decode;
pub mod distributor;
pub mod error;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod validate;
pub mod wire;

pub use appender::IngestAppender;
pub use distributor::{Distributor, LocalDistributor, ShardedDistributor};
pub use error::IngestError;
pub use http::{IngestState, router};
pub use limits::IngestLimits;
