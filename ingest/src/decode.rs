//! From HTTP body to a [`BorrowedBatch`]: content negotiation, snappy block
//! decompression, protobuf decoding of remote write 1.0 and 2.0, and
//! conversion to the storage model with validation. Label strings stay in
//! the decompressed message; storage copies only those of new series.

use std::ops::Range;

use fenghuo_proto::{rw1, rw2};
use fenghuo_storage_api::model::{
    BorrowedBatch, BorrowedSeries, Exemplar, HistogramSample, Label, Labels, LabelsRef, METRIC_NAME,
    MetricMetadata, MetricType, Sample,
};

use crate::error::IngestError;
use crate::limits::IngestLimits;
use crate::wire::Pair;
use crate::{validate, wire};

/// Which remote-write message a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    V1,
    V2,
}

/// Picks the protocol from `Content-Type` and checks `Content-Encoding`, as
/// the remote write 2.0 spec says: no Content-Type or a bare
/// `application/x-protobuf` means 1.0; `proto=` selects the message.
pub fn negotiate(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<Protocol, IngestError> {
    match content_encoding.map(str::trim) {
        None | Some("") => {}
        Some(enc) if enc.eq_ignore_ascii_case("snappy") => {}
        Some(enc) => return Err(IngestError::UnsupportedEncoding(enc.to_string())),
    }
    let Some(ct) = content_type.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(Protocol::V1);
    };
    let mut parts = ct.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(IngestError::UnsupportedContentType(ct.to_string()));
    }
    let mut protocol = Protocol::V1;
    for param in parts {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("proto") {
            protocol = match value.trim().trim_matches('"') {
                rw1::PROTO_MESSAGE => Protocol::V1,
                rw2::PROTO_MESSAGE => Protocol::V2,
                _ => return Err(IngestError::UnsupportedContentType(ct.to_string())),
            };
        }
    }
    Ok(protocol)
}

/// The decompressed length a snappy block declares, refused when it exceeds
/// the limit.
pub fn decompressed_len(body: &[u8], limits: &IngestLimits) -> Result<usize, IngestError> {
    let len = snap::raw::decompress_len(body).map_err(|e| IngestError::Snappy(e.to_string()))?;
    if len > limits.max_decompressed_bytes {
        return Err(IngestError::DecompressedTooLarge {
            size: len,
            limit: limits.max_decompressed_bytes,
        });
    }
    Ok(len)
}

/// Decompresses a snappy block, refusing before allocation when the
/// declared length exceeds the limit.
pub fn decompress(body: &[u8], limits: &IngestLimits) -> Result<Vec<u8>, IngestError> {
    decompressed_len(body, limits)?;
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| IngestError::Snappy(e.to_string()))
}

/// Decodes and validates a decompressed message. Label strings of the batch
/// borrow from `message`.
pub fn decode<'a>(
    protocol: Protocol,
    message: &'a [u8],
    now_ms: i64,
    limits: &IngestLimits,
) -> Result<BorrowedBatch<'a>, IngestError> {
    match protocol {
        Protocol::V1 => {
            let req = wire::decode_write_request(message).map_err(|e| IngestError::Protobuf(e.0))?;
            from_v1(req, now_ms, limits)
        }
        Protocol::V2 => {
            let req = wire::decode_request_v2(message).map_err(|e| IngestError::Protobuf(e.0))?;
            from_v2(req, now_ms, limits)
        }
    }
}

fn check_series_count(count: usize, limits: &IngestLimits) -> Result<(), IngestError> {
    if count > limits.max_series_per_request {
        return Err(IngestError::TooManySeries {
            count,
            limit: limits.max_series_per_request,
        });
    }
    Ok(())
}

fn from_v1<'a>(
    req: wire::RawRequest<'a>,
    now_ms: i64,
    limits: &IngestLimits,
) -> Result<BorrowedBatch<'a>, IngestError> {
    check_series_count(req.series.len(), limits)?;
    let wire::RawRequest {
        labels: pairs,
        series,
        metadata,
    } = req;
    let mut batch = BorrowedBatch {
        pairs,
        series: Vec::with_capacity(series.len()),
        metadata: Vec::with_capacity(metadata.len()),
    };
    // Valid pairs are compacted towards the front of the request's own
    // vector (dropping absent labels never moves a pair backwards).
    let mut kept = 0usize;
    for ts in series {
        let (start, end) = (ts.labels.start as usize, ts.labels.end as usize);
        validate::series_labels(&batch.pairs[start..end], limits)?;
        let first = kept;
        for i in start..end {
            if validate::keep_pair(&batch.pairs[i]) {
                batch.pairs[kept] = batch.pairs[i];
                kept += 1;
            }
        }
        let range = first as u32..kept as u32;
        let labels = labels_at(&batch.pairs, &range);
        let exemplars = ts
            .exemplars
            .iter()
            .map(|e| exemplar(&labels, &e.labels, e.value, e.timestamp, now_ms, limits))
            .collect::<Result<_, _>>()?;
        let series = series_write(
            labels,
            range,
            ts.samples,
            &ts.histograms,
            exemplars,
            0,
            now_ms,
            limits,
        )?;
        batch.series.push(series);
    }
    batch.pairs.truncate(kept);
    for m in metadata {
        let metric_type = match rw1::MetricType::try_from(m.r#type) {
            Ok(rw1::MetricType::Counter) => MetricType::Counter,
            Ok(rw1::MetricType::Gauge) => MetricType::Gauge,
            Ok(rw1::MetricType::Histogram) => MetricType::Histogram,
            Ok(rw1::MetricType::Gaugehistogram) => MetricType::GaugeHistogram,
            Ok(rw1::MetricType::Summary) => MetricType::Summary,
            Ok(rw1::MetricType::Info) => MetricType::Info,
            Ok(rw1::MetricType::Stateset) => MetricType::StateSet,
            _ => MetricType::Unknown,
        };
        if m.metric_family_name.is_empty() {
            continue;
        }
        batch.metadata.push(MetricMetadata {
            metric_family: m.metric_family_name,
            metric_type,
            help: m.help,
            unit: m.unit,
        });
    }
    Ok(batch)
}

fn from_v2<'a>(
    req: wire::RawRequestV2<'a>,
    now_ms: i64,
    limits: &IngestLimits,
) -> Result<BorrowedBatch<'a>, IngestError> {
    check_series_count(req.timeseries.len(), limits)?;
    if req.symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(IngestError::Protobuf(
            "symbols table must start with the empty string".to_string(),
        ));
    }
    let symbols = &req.symbols;
    let symbol = |r: u32| -> Result<&'a str, String> {
        symbols.get(r as usize).copied().ok_or_else(|| {
            format!(
                "symbol reference {r} is out of range (table has {} symbols)",
                symbols.len()
            )
        })
    };
    let resolve_pairs = |refs: &[u32], out: &mut Vec<Pair<'a>>| -> Result<(), String> {
        out.clear();
        if !refs.len().is_multiple_of(2) {
            return Err(format!("odd number of label references ({})", refs.len()));
        }
        for p in refs.chunks_exact(2) {
            out.push((symbol(p[0])?, symbol(p[1])?));
        }
        Ok(())
    };
    let mut batch = BorrowedBatch {
        pairs: Vec::with_capacity(req.timeseries.len() * 8),
        series: Vec::with_capacity(req.timeseries.len()),
        metadata: Vec::new(),
    };
    let mut raw = Vec::new();
    let mut exemplar_pairs = Vec::new();
    for (i, ts) in req.timeseries.iter().enumerate() {
        resolve_pairs(&ts.labels_refs, &mut raw).map_err(|reason| IngestError::InvalidSeries {
            series: format!("#{i} of the request"),
            reason,
        })?;
        validate::series_labels(&raw, limits)?;
        let start = batch.pairs.len() as u32;
        batch.pairs.extend(raw.iter().filter(|p| validate::keep_pair(p)));
        let range = start..batch.pairs.len() as u32;
        let labels = labels_at(&batch.pairs, &range);
        if !ts.samples.is_empty() && !ts.histograms.is_empty() {
            return Err(IngestError::InvalidSeries {
                series: labels.to_string(),
                reason: "series carries both float samples and histograms".into(),
            });
        }
        let mut exemplars = Vec::with_capacity(ts.exemplars.len());
        for e in &ts.exemplars {
            resolve_pairs(&e.labels_refs, &mut exemplar_pairs).map_err(|reason| {
                IngestError::InvalidSeries {
                    series: labels.to_string(),
                    reason: format!("exemplar: {reason}"),
                }
            })?;
            exemplars.push(exemplar(
                &labels,
                &exemplar_pairs,
                e.value,
                e.timestamp,
                now_ms,
                limits,
            )?);
        }
        if let Some(md) = ts
            .metadata
            .filter(|m| m.r#type != 0 || m.help_ref != 0 || m.unit_ref != 0)
        {
            let bad = |reason: String| IngestError::InvalidSeries {
                series: labels.to_string(),
                reason: format!("metadata: {reason}"),
            };
            let metric_type = match rw2::MetricType::try_from(md.r#type) {
                Ok(rw2::MetricType::Counter) => MetricType::Counter,
                Ok(rw2::MetricType::Gauge) => MetricType::Gauge,
                Ok(rw2::MetricType::Histogram) => MetricType::Histogram,
                Ok(rw2::MetricType::Gaugehistogram) => MetricType::GaugeHistogram,
                Ok(rw2::MetricType::Summary) => MetricType::Summary,
                Ok(rw2::MetricType::Info) => MetricType::Info,
                Ok(rw2::MetricType::Stateset) => MetricType::StateSet,
                _ => MetricType::Unknown,
            };
            let metric_family = labels
                .pairs()
                .find(|(n, _)| *n == METRIC_NAME)
                .map(|(_, v)| v)
                .unwrap_or_default()
                .to_string();
            batch.metadata.push(MetricMetadata {
                metric_family,
                metric_type,
                help: symbol(md.help_ref).map_err(bad)?.to_string(),
                unit: symbol(md.unit_ref).map_err(bad)?.to_string(),
            });
        }
        let mut samples = Vec::with_capacity(ts.samples.len());
        samples.extend(ts.samples.iter().map(|s| Sample {
            t: s.timestamp,
            v: s.value,
        }));
        let series = series_write(
            labels,
            range,
            samples,
            &ts.histograms,
            exemplars,
            ts.created_timestamp,
            now_ms,
            limits,
        )?;
        batch.series.push(series);
    }
    Ok(batch)
}

fn labels_at<'p>(pairs: &'p [Pair<'p>], range: &Range<u32>) -> LabelsRef<'p> {
    LabelsRef::from_sorted_unchecked(&pairs[range.start as usize..range.end as usize])
}

/// Checks a series' samples and histograms and assembles it; `range` is
/// where `labels` are in the batch's pairs.
#[allow(clippy::too_many_arguments)]
fn series_write(
    labels: LabelsRef<'_>,
    range: Range<u32>,
    samples: Vec<Sample>,
    histograms: &[rw1::Histogram],
    exemplars: Vec<Exemplar>,
    created_timestamp: i64,
    now_ms: i64,
    limits: &IngestLimits,
) -> Result<BorrowedSeries, IngestError> {
    for s in &samples {
        validate::sample_timestamp(&labels, s.t, now_ms, limits)?;
    }
    let mut out_histograms = Vec::with_capacity(histograms.len());
    for h in histograms {
        validate::sample_timestamp(&labels, h.timestamp, now_ms, limits)?;
        out_histograms.push(HistogramSample {
            t: h.timestamp,
            h: std::sync::Arc::new(validate::histogram(&labels, h)?),
        });
    }
    Ok(BorrowedSeries {
        labels: range,
        samples,
        histograms: out_histograms,
        exemplars,
        // Storage turns it into a zero sample where that is in order (see
        // `SeriesWrite::created_zero_at`); without the option it is ignored, as in Prometheus.
        created_timestamp: if limits.created_timestamp_zero_ingestion {
            created_timestamp.max(0)
        } else {
            0
        },
    })
}

/// OpenMetrics caps an exemplar's label set at 128 UTF-8 characters.
const MAX_EXEMPLAR_LABEL_RUNES: usize = 128;

fn exemplar(
    series: &LabelsRef<'_>,
    pairs: &[Pair<'_>],
    value: f64,
    t: i64,
    now_ms: i64,
    limits: &IngestLimits,
) -> Result<Exemplar, IngestError> {
    let bad = |reason: String| IngestError::InvalidSeries {
        series: series.to_string(),
        reason: format!("exemplar: {reason}"),
    };
    let runes: usize = pairs
        .iter()
        .map(|(n, v)| n.chars().count() + v.chars().count())
        .sum();
    if runes > MAX_EXEMPLAR_LABEL_RUNES {
        return Err(bad(format!(
            "label set has {runes} characters, more than the limit of {MAX_EXEMPLAR_LABEL_RUNES}"
        )));
    }
    if pairs.iter().any(|(n, _)| n.is_empty()) {
        return Err(bad("empty label name".into()));
    }
    validate::sample_timestamp(series, t, now_ms, limits)?;
    Ok(Exemplar {
        labels: Labels::new(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()),
        value,
        t,
    })
}

#[cfg(test)]
mod tests {
    use fenghuo_proto::Message;

    use super::*;

    #[test]
    fn content_type_negotiation_follows_the_spec() {
        assert_eq!(negotiate(None, None).unwrap(), Protocol::V1);
        assert_eq!(
            negotiate(Some("application/x-protobuf"), Some("snappy")).unwrap(),
            Protocol::V1
        );
        assert_eq!(
            negotiate(Some("application/x-protobuf;proto=prometheus.WriteRequest"), None).unwrap(),
            Protocol::V1
        );
        assert_eq!(
            negotiate(
                Some("application/x-protobuf; proto=io.prometheus.write.v2.Request"),
                None
            )
            .unwrap(),
            Protocol::V2
        );
        assert_eq!(
            negotiate(Some("application/json"), None)
                .unwrap_err()
                .http_status(),
            415
        );
        assert_eq!(
            negotiate(Some("application/x-protobuf;proto=foo.Bar"), None)
                .unwrap_err()
                .http_status(),
            415
        );
        assert_eq!(negotiate(None, Some("gzip")).unwrap_err().http_status(), 415);
    }

    #[test]
    fn declared_length_over_limit_is_refused_before_decoding() {
        let big = vec![0u8; 1 << 20];
        let body = snap::raw::Encoder::new().compress_vec(&big).unwrap();
        let limits = IngestLimits {
            max_decompressed_bytes: 1000,
            ..Default::default()
        };
        assert_eq!(decompress(&body, &limits).unwrap_err().http_status(), 413);
    }

    #[test]
    fn v2_symbols_resolve_and_metadata_is_kept() {
        let req = rw2::Request {
            symbols: vec![
                "".into(),
                "__name__".into(),
                "up".into(),
                "job".into(),
                "x".into(),
                "help".into(),
            ],
            timeseries: vec![rw2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![rw2::Sample {
                    value: 1.0,
                    timestamp: 10,
                }],
                metadata: Some(rw2::Metadata {
                    r#type: rw2::MetricType::Gauge as i32,
                    help_ref: 5,
                    unit_ref: 0,
                }),
                ..Default::default()
            }],
        };
        let message = req.encode_to_vec();
        let batch = decode(Protocol::V2, &message, 100, &IngestLimits::default()).unwrap();
        assert_eq!(
            batch.labels(&batch.series[0]).to_labels(),
            Labels::from_pairs([("__name__", "up"), ("job", "x")])
        );
        assert_eq!(batch.metadata[0].help, "help");
        assert_eq!(batch.metadata[0].metric_type, MetricType::Gauge);
    }

    #[test]
    fn v2_bad_symbol_reference_is_named() {
        let req = rw2::Request {
            symbols: vec!["".into(), "__name__".into()],
            timeseries: vec![rw2::TimeSeries {
                labels_refs: vec![1, 7],
                ..Default::default()
            }],
        };
        let e = decode(Protocol::V2, &req.encode_to_vec(), 0, &IngestLimits::default()).unwrap_err();
        assert!(
            e.to_string().contains("symbol reference 7 is out of range"),
            "{e}"
        );
    }

    #[test]
    fn v1_absent_labels_are_dropped_without_disturbing_later_series() {
        let label = |n: &str, v: &str| rw1::Label {
            name: n.into(),
            value: v.into(),
        };
        let series = |labels| rw1::TimeSeries {
            labels,
            samples: vec![rw1::Sample {
                value: 1.0,
                timestamp: 10,
            }],
            ..Default::default()
        };
        let req = rw1::WriteRequest {
            timeseries: vec![
                series(vec![
                    label("__name__", "a"),
                    label("empty", ""),
                    label("job", "x"),
                ]),
                series(vec![label("__name__", "b"), label("job", "y")]),
                series(vec![label("", ""), label("__name__", "c")]),
            ],
            metadata: vec![],
        };
        let message = req.encode_to_vec();
        let limits = IngestLimits::default();
        let e = decode(Protocol::V1, &message, 100, &limits).unwrap_err();
        assert!(e.to_string().contains("empty label name"), "{e}");
        let req = rw1::WriteRequest {
            timeseries: req.timeseries[..2].to_vec(),
            metadata: vec![],
        };
        let message = req.encode_to_vec();
        let batch = decode(Protocol::V1, &message, 100, &limits).unwrap();
        let got: Vec<_> = batch.series.iter().map(|s| batch.labels(s).to_labels()).collect();
        assert_eq!(
            got,
            vec![
                Labels::from_pairs([("__name__", "a"), ("job", "x")]),
                Labels::from_pairs([("__name__", "b"), ("job", "y")]),
            ]
        );
        assert_eq!(batch.pairs.len(), 4);
    }

    #[test]
    fn future_timestamps_are_rejected() {
        let req = rw1::WriteRequest {
            timeseries: vec![rw1::TimeSeries {
                labels: vec![rw1::Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![rw1::Sample {
                    value: 1.0,
                    timestamp: 10_000_000,
                }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let e = decode(Protocol::V1, &req.encode_to_vec(), 0, &IngestLimits::default()).unwrap_err();
        assert!(e.to_string().contains("in the future"), "{e}");
    }
}
