//! Wire types of the protocols fenghuo speaks, as `prost` messages written by
//! hand (no `protoc` needed): Prometheus remote write 1.0
//! (`prometheus.WriteRequest`, [`rw1`]) and 2.0 (`io.prometheus.write.v2.Request`,
//! [`rw2`]). Field numbers and types follow the published `.proto` files
//! exactly; gogoproto options there only affect Go code and have no wire
//! effect.

pub mod rw1;
pub mod rw2;

pub use prost::Message;
