//! fenghuo-ingest.
