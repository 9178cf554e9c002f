//! fenghuo-query.
