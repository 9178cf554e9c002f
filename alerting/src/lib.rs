//! fenghuo-alerting: an Alertmanager-compatible alert engine with escalation, acknowledgement,
//! history and templated mail / IM delivery.
//!
//! Layout: [`config`] loads `alertmanager.yml` (+ fenghuo's section); [`route`], [`inhibit`],
//! [`silence`], [`nflog`] carry Alertmanager's semantics; [`engine`] holds per-tenant state and
//! runs the notification pipeline on an injected [`clock`]; [`notify`] has the integrations and
//! [`template`] the handlebars templates; [`store`] is the persistence seam; [`api`] serves the
//! Alertmanager v2 API and fenghuo's own; [`service`] wires it all; [`cli`] and [`scenario`] back
//! the command line.

pub mod amtemplate;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod duration;
pub mod engine;
pub mod error;
pub mod hbs_guard;
pub mod history;
pub mod inhibit;
pub mod matchers;
pub mod metrics;
pub mod model;
pub mod nflog;
pub mod notify;
pub mod render_guard;
pub mod route;
pub mod ruler;
pub mod scenario;
pub mod service;
pub mod silence;
pub mod store;
pub mod template;

pub use api::PostableAlert;
pub use clock::{Clock, ManualClock, SystemClock, Ts};
pub use error::AlertingError;
pub use service::{AlertingOptions, AlertingService};
