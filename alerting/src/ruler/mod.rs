//! The ruler: users' Prometheus rule files evaluated against fenghuo's store.
//!
//! Flow: [`rulefmt`] loads and validates rule files (as `promtool check rules` does);
//! [`template`] expands alert labels and annotations with Go template semantics
//! ([`gotemplate`]).
//! Time comes from an injected [`crate::clock::Clock`], so tests drive evaluation without sleeping.

pub mod duration;
pub mod error;
pub mod gotemplate;
pub mod rulefmt;
pub mod template;
pub mod yaml;

pub use error::RulerError;
