//! The ruler: users' Prometheus rule files evaluated against fenghuo's store.
//!
//! Flow: [`rulefmt`] loads and validates rule files (as `promtool check rules` does); [`rule`]
//! holds recording and alerting rules and the alert state machine; [`group`] evaluates a group
//! at a timestamp, writes results back through the appender and restores `for` state;
//! [`manager`] schedules groups per tenant on an injected [`crate::clock::Clock`], so tests drive
//! evaluation without sleeping; [`notifier`] hands alerts to fenghuo's alert engine and external
//! Alertmanagers; [`api`] serves `/api/v1/rules` and `/api/v1/alerts`; [`template`] expands alert
//! labels and annotations with Go template semantics ([`gotemplate`]); [`unittest`] and [`cli`]
//! back `fenghuo test rules` and `fenghuo check-rules`.

pub mod api;
pub mod cli;
pub mod config;
pub mod duration;
pub mod error;
pub mod files;
pub mod gotemplate;
pub mod group;
pub mod jsondiff;
pub mod junit;
pub mod loader;
pub mod manager;
pub mod metrics;
pub mod notifier;
pub mod rule;
pub mod rulefmt;
pub mod server;
pub mod template;
pub mod titlecase;
pub mod unittest;
pub mod yaml;

pub use config::{AlertmanagerConfig, RulerConfig};
pub use error::RulerError;
pub use group::{Backend, Notifier, OutgoingAlert};
pub use manager::{RulerOptions, RulerService};
pub use server::ServerRuler;
