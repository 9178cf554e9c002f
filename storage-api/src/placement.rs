//! Where a tenant's series and metadata live: the frozen hash of tenant
//! and labels over a fixed number of shards (virtual shards in a cluster).
//! The store places data with it, and a distributor routes writes and
//! queries with it, so both must agree forever: changing it would misplace
//! every series already stored.

use crate::model::{Labels, METRIC_NAME};

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

#[cfg(test)]
mod tests {
    use super::*;

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
