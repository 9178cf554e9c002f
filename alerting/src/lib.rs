//! fenghuo-alerting.
