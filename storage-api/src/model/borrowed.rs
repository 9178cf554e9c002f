//! A write batch whose label sets borrow from the request they were decoded
//! from. The remote-write path hands this to storage so that owned
//! [`Labels`] (two `String`s per label) are built only for series the store
//! does not already hold; most series of a steady stream are known, and
//! allocating and freeing their labels was most of the decode cost.
//!
//! Every series' label pairs live in one vector ([`BorrowedBatch::pairs`]);
//! a series names its pairs by a range, so a request costs one label vector
//! instead of one per series.

use std::fmt;
use std::ops::Range;

use super::batch::{SeriesWrite, WriteBatch};
use super::labels::{Label, Labels, fmt_pairs, stable_hash_pairs};
use super::sample::{Exemplar, HistogramSample, MetricMetadata, Sample};

/// A validated label set borrowed from a request: sorted by name, names
/// unique, values non-empty (the invariants of [`Labels`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelsRef<'a>(&'a [(&'a str, &'a str)]);

impl<'a> LabelsRef<'a> {
    /// Wraps pairs the caller guarantees are sorted by name, unique and
    /// with non-empty values.
    pub fn from_sorted_unchecked(pairs: &'a [(&'a str, &'a str)]) -> Self {
        debug_assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
        Self(pairs)
    }

    pub fn pairs(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_labels(&self) -> Labels {
        Labels::from_sorted_unchecked(self.0.iter().map(|(n, v)| Label::new(*n, *v)).collect())
    }

    /// Same value as [`Labels::stable_hash`] of the owned form.
    pub fn stable_hash(&self) -> u64 {
        stable_hash_pairs(self.pairs())
    }
}

impl fmt::Display for LabelsRef<'_> {
    /// Same text as the owned form's `Display`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_pairs(f, self.pairs())
    }
}

/// All samples of one series in a [`BorrowedBatch`]; as [`SeriesWrite`]
/// with the label set replaced by a range of [`BorrowedBatch::pairs`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BorrowedSeries {
    pub labels: Range<u32>,
    pub samples: Vec<Sample>,
    pub histograms: Vec<HistogramSample>,
    pub exemplars: Vec<Exemplar>,
    pub created_timestamp: i64,
}

impl BorrowedSeries {
    /// The series as a [`SeriesWrite`] with the given labels, moving the
    /// samples.
    pub fn into_write(self, labels: Labels) -> SeriesWrite {
        SeriesWrite {
            labels,
            samples: self.samples,
            histograms: self.histograms,
            exemplars: self.exemplars,
            created_timestamp: self.created_timestamp,
        }
    }
}

/// A validated batch for one tenant whose label sets borrow from `'a`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BorrowedBatch<'a> {
    /// Label pairs of every series, each series' pairs sorted by name with
    /// unique names and non-empty values.
    pub pairs: Vec<(&'a str, &'a str)>,
    pub series: Vec<BorrowedSeries>,
    pub metadata: Vec<MetricMetadata>,
}

impl<'a> BorrowedBatch<'a> {
    /// The label set of a series of this batch.
    ///
    /// Panics if the range is outside [`BorrowedBatch::pairs`] (a batch
    /// built wrongly).
    pub fn labels(&self, series: &BorrowedSeries) -> LabelsRef<'_> {
        labels_in(&self.pairs, series)
    }

    /// Borrows the label sets of an owned batch (for stores that implement
    /// both entry points with one path).
    pub fn from_write_batch(batch: &'a mut WriteBatch) -> Self {
        let mut pairs = Vec::with_capacity(batch.series.iter().map(|s| s.labels.len()).sum());
        let mut series = Vec::with_capacity(batch.series.len());
        for sw in &mut batch.series {
            let SeriesWrite {
                labels,
                samples,
                histograms,
                exemplars,
                created_timestamp,
            } = sw;
            let start = pairs.len() as u32;
            pairs.extend(labels.pairs());
            series.push(BorrowedSeries {
                labels: start..pairs.len() as u32,
                samples: std::mem::take(samples),
                histograms: std::mem::take(histograms),
                exemplars: std::mem::take(exemplars),
                created_timestamp: *created_timestamp,
            });
        }
        Self {
            pairs,
            series,
            metadata: std::mem::take(&mut batch.metadata),
        }
    }

    /// The owned form (every label set allocated).
    pub fn into_owned(self) -> WriteBatch {
        let pairs = self.pairs;
        WriteBatch {
            series: self
                .series
                .into_iter()
                .map(|s| {
                    let labels = labels_in(&pairs, &s).to_labels();
                    s.into_write(labels)
                })
                .collect(),
            metadata: self.metadata,
        }
    }

    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// The label set of `series` within `pairs` (see [`BorrowedBatch::labels`]).
pub fn labels_in<'p>(pairs: &'p [(&'p str, &'p str)], series: &BorrowedSeries) -> LabelsRef<'p> {
    LabelsRef(&pairs[series.labels.start as usize..series.labels.end as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_owned_form() {
        let mut owned = WriteBatch {
            series: vec![
                SeriesWrite {
                    labels: Labels::from_pairs([("__name__", "up"), ("job", "a b")]),
                    samples: vec![Sample { t: 1, v: 2.0 }],
                    created_timestamp: 3,
                    ..Default::default()
                },
                SeriesWrite {
                    labels: Labels::from_pairs([("__name__", "x"), ("a.b", "1")]),
                    ..Default::default()
                },
            ],
            metadata: vec![],
        };
        let want = owned.clone();
        let borrowed = BorrowedBatch::from_write_batch(&mut owned);
        let l0 = borrowed.labels(&borrowed.series[0]);
        assert_eq!(l0.to_string(), want.series[0].labels.to_string());
        assert_eq!(l0.stable_hash(), want.series[0].labels.stable_hash());
        assert_eq!(
            borrowed.labels(&borrowed.series[1]).to_string(),
            r#"{__name__="x", "a.b"="1"}"#
        );
        assert_eq!(borrowed.sample_count(), 1);
        assert_eq!(borrowed.into_owned(), want);
    }
}
