//! Remote write 2.0: `io.prometheus.write.v2.Request`
//! (`prompb/io/prometheus/write/v2/types.proto`). Strings are interned in
//! `symbols` and referenced by index; `symbols[0]` must be the empty string.

pub use crate::rw1::{BucketSpan, Histogram};

/// Content-Type protobuf message name of remote write 2.0.
pub const PROTO_MESSAGE: &str = "io.prometheus.write.v2.Request";

#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(string, repeated, tag = "4")]
    pub symbols: Vec<String>,
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<Histogram>,
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<Exemplar>,
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<Metadata>,
    #[prost(int64, tag = "6")]
    pub created_timestamp: i64,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Metadata {
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    Unspecified = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    Gaugehistogram = 4,
    Summary = 5,
    Info = 6,
    Stateset = 7,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// The 2.0 message reserves fields 1-3 so that a 1.0 body decoded as 2.0
    /// yields an empty request rather than garbage.
    #[test]
    fn v1_body_decodes_as_empty_v2_request() {
        let v1 = crate::rw1::WriteRequest {
            timeseries: vec![crate::rw1::TimeSeries {
                labels: vec![crate::rw1::Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![crate::rw1::Sample {
                    value: 1.0,
                    timestamp: 1,
                }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let v2 = Request::decode(v1.encode_to_vec().as_slice()).unwrap();
        assert!(v2.timeseries.is_empty() && v2.symbols.is_empty());
    }
}
