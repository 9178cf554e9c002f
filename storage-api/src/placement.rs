//! Where a tenant's series and metadata live: the frozen hash of tenant
//! and labels over a fixed number of shards (virtual shards in a cluster).
//! The store places data with it, and a distributor routes writes and
//! queries with it, so both must agree forever: changing it would misplace
//! every series already stored.

use crate::model::borrowed::{BorrowedSeries, labels_in};
use crate::model::{Labels, METRIC_NAME, MetricMetadata};

/// The shard, of `shards`, that holds the series of `tenant` whose labels
/// hash to `labels_hash` (`Labels::stable_hash`). Frozen: FNV-1a-64 of the
/// tenant, mixed with the labels hash and multiplied by a 64-bit odd
/// constant; the high 32 bits modulo the shard count.
pub fn shard_of(tenant: &str, labels_hash: u64, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let mut th: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant.as_bytes() {
        th ^= u64::from(*b);
        th = th.wrapping_mul(0x0100_0000_01b3);
    }
    let h = (labels_hash ^ th.rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h >> 32) % u64::from(shards)) as u32
}

/// The labels hash metadata of a metric family is placed by: that of the
/// label set `{__name__=<family>}`, so it lives with the family's series of
/// that name alone.
pub fn metadata_hash(family: &str) -> u64 {
    Labels::from_pairs([(METRIC_NAME, family)]).stable_hash()
}

/// One shard's part of a write: its series (label ranges into the batch's
/// shared label pairs, which stay with the caller) and its metadata.
#[derive(Debug, Default)]
pub struct ShardPart {
    pub shard: u32,
    pub series: Vec<BorrowedSeries>,
    pub metadata: Vec<MetricMetadata>,
}

/// Splits a write's series and metadata over `shards` by [`shard_of`]: the
/// parts in shard order, empty ones left out. With one shard everything is
/// one part, moved, not copied.
pub fn split(
    tenant: &str,
    pairs: &[(&str, &str)],
    series: Vec<BorrowedSeries>,
    metadata: Vec<MetricMetadata>,
    shards: u32,
) -> Vec<ShardPart> {
    if shards <= 1 {
        return vec![ShardPart {
            shard: 0,
            series,
            metadata,
        }];
    }
    let mut parts: Vec<ShardPart> = (0..shards)
        .map(|shard| ShardPart {
            shard,
            ..ShardPart::default()
        })
        .collect();
    for m in metadata {
        let i = shard_of(tenant, metadata_hash(&m.metric_family), shards);
        parts[i as usize].metadata.push(m);
    }
    for s in series {
        let i = shard_of(tenant, labels_in(pairs, &s).stable_hash(), shards);
        parts[i as usize].series.push(s);
    }
    parts.retain(|p| !p.series.is_empty() || !p.metadata.is_empty());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_puts_every_series_on_its_shard_once() {
        let names: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
        let mut pairs = Vec::new();
        let mut series = Vec::new();
        for n in &names {
            let start = pairs.len() as u32;
            pairs.push(("__name__", "m"));
            pairs.push(("id", n.as_str()));
            series.push(BorrowedSeries {
                labels: start..start + 2,
                samples: Vec::new(),
                histograms: Vec::new(),
                exemplars: Vec::new(),
                created_timestamp: 0,
            });
        }
        let parts = split("t", &pairs, series, Vec::new(), 8);
        assert_eq!(parts.iter().map(|p| p.series.len()).sum::<usize>(), 200);
        for p in &parts {
            assert!(!p.series.is_empty());
            for s in &p.series {
                assert_eq!(shard_of("t", labels_in(&pairs, s).stable_hash(), 8), p.shard);
            }
        }
        assert_eq!(split("t", &pairs, Vec::new(), Vec::new(), 8).len(), 0);
        assert_eq!(split("t", &pairs, Vec::new(), Vec::new(), 1).len(), 1);
    }

    #[test]
    fn shard_placement_is_frozen_and_spreads() {
        let ls = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        assert_eq!(shard_of("anonymous", ls.stable_hash(), 1), 0);
        let placed: Vec<u32> = (0..8)
            .map(|n| shard_of("anonymous", ls.stable_hash(), 16 + n))
            .collect();
        assert_eq!(
            placed,
            vec![15, 6, 11, 1, 19, 17, 1, 12],
            "shard placement must never change"
        );
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            let l = Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]);
            counts[shard_of("t", l.stable_hash(), 4) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    }
}
