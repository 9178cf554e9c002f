//! fenghuo-proto.
