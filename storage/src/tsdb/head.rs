//! The in-memory head of one shard: series with their open chunks, chunks
//! cut but not yet checkpointed, out-of-order buffers, and the per-tenant
//! index (labels -> series, postings) of every series held in memory.
//!
//! Memory per series is kept small: labels are interned `u32` symbol pairs,
//! the open float chunk is a Gorilla bit stream, and optional parts
//! (histograms, out-of-order buffer) are boxed and absent when unused.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::exemplars::ExemplarRing;
use super::symbols::{Sym, Symbols};
use crate::chunk::histogram::HistogramAppender;
use crate::chunk::xor::XorAppender;
use crate::chunk::{self, ChunkKind};
use crate::error::StorageError;
use crate::model::{HistogramSample, Label, Labels, MetricMetadata, Sample, TenantId};

/// Series record not yet persisted.
pub const F_NEW: u8 = 1;
/// Head state changed since the last checkpoint.
pub const F_DIRTY: u8 = 2;
/// Evicted (idle): leaves memory once the next checkpoint has flushed it.
pub const F_CLOSING: u8 = 4;
/// The open float chunk was cut: its persisted segments are obsolete.
pub const F_HEAD_CUT: u8 = 8;
/// The open histogram chunk was cut.
pub const F_HHEAD_CUT: u8 = 16;

/// A cut chunk waiting for the next checkpoint.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Unique within the shard, to remove exactly this chunk once written.
    pub id: u64,
    pub kind: ChunkKind,
    pub min_t: i64,
    pub max_t: i64,
    pub bytes: Arc<[u8]>,
}

/// Out-of-order samples accepted since the last checkpoint, sorted by time.
#[derive(Clone, Debug, Default)]
pub struct OooBuffer {
    pub floats: Vec<Sample>,
    pub histograms: Vec<HistogramSample>,
}

/// One series in the head.
pub struct MemSeries {
    pub sid: u64,
    pub tenant: u32,
    /// Interned `name, value, name, value, ...`, sorted by name.
    pub labels: Box<[Sym]>,
    /// The head's identity of the label set (see [`LabelsHasher`]).
    pub hash: u128,
    /// Newest sample time of any kind (`i64::MIN` when unknown/none).
    pub max_t: i64,
    /// `now_ms` of the last log entry that wrote to the series.
    pub last_write: i64,
    /// Newest sample time that may be on disk (`i64::MIN`: nothing is).
    pub flushed_max_t: i64,
    /// Newest partition whose postings are written or queued.
    pub postings_partition: i32,
    pub flags: u8,
    /// Bytes of the open float / histogram chunk already in the head
    /// column family (checkpoints write only what follows).
    pub head_persisted: u32,
    pub hhead_persisted: u32,
    pub head: Option<XorAppender>,
    pub hhead: Option<Box<HistogramAppender>>,
    pub pending: Vec<Pending>,
    pub ooo: Option<Box<OooBuffer>>,
}

impl MemSeries {
    pub fn is_closing(&self) -> bool {
        self.flags & F_CLOSING != 0
    }

    /// Oldest sample time held in memory (`i64::MAX` when none).
    pub fn mem_min_t(&self) -> i64 {
        let mut m = i64::MAX;
        if let Some(h) = self.head.as_ref().filter(|h| !h.is_empty()) {
            m = m.min(h.first_t());
        }
        if let Some(t) = self.hhead.as_ref().and_then(|h| h.first_t()) {
            m = m.min(t);
        }
        for p in &self.pending {
            m = m.min(p.min_t);
        }
        if let Some(o) = &self.ooo {
            if let Some(s) = o.floats.first() {
                m = m.min(s.t);
            }
            if let Some(s) = o.histograms.first() {
                m = m.min(s.t);
            }
        }
        m
    }

    /// Chunks held in memory (open + pending).
    pub fn chunk_count(&self) -> usize {
        self.pending.len()
            + usize::from(self.head.as_ref().is_some_and(|h| !h.is_empty()))
            + usize::from(self.hhead.as_ref().is_some_and(|h| !h.is_empty()))
    }

    /// Approximate heap + inline bytes (for capacity planning).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.labels.len() * 4
            + self.head.as_ref().map_or(0, |h| h.heap_bytes())
            + self.hhead.as_ref().map_or(0, |h| h.heap_bytes() + 64)
            + self.pending.iter().map(|p| p.bytes.len() + 48).sum::<usize>()
            + self
                .ooo
                .as_ref()
                .map_or(0, |o| o.floats.capacity() * 16 + o.histograms.capacity() * 64)
    }
}

/// The head's series, in a slab: the append path reaches a series by its
/// slot (from the labels-hash index) with one memory access; series ids map
/// to slots for everything else (queries, checkpoints).
#[derive(Default)]
pub struct SeriesTable {
    slots: Vec<Option<MemSeries>>,
    free: Vec<u32>,
    index: FxHashMap<u64, u32>,
}

impl SeriesTable {
    pub fn insert(&mut self, s: MemSeries) -> u32 {
        let sid = s.sid;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(s);
                slot
            }
            None => {
                self.slots.push(Some(s));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(sid, slot);
        slot
    }

    pub fn remove(&mut self, sid: &u64) -> Option<MemSeries> {
        let slot = self.index.remove(sid)?;
        let s = self.slots.get_mut(slot as usize)?.take();
        self.free.push(slot);
        s
    }

    pub fn get(&self, sid: &u64) -> Option<&MemSeries> {
        self.slot(*self.index.get(sid)?)
    }

    pub fn get_mut(&mut self, sid: &u64) -> Option<&mut MemSeries> {
        let slot = *self.index.get(sid)?;
        self.slot_mut(slot)
    }

    pub fn slot(&self, slot: u32) -> Option<&MemSeries> {
        self.slots.get(slot as usize)?.as_ref()
    }

    pub fn slot_mut(&mut self, slot: u32) -> Option<&mut MemSeries> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    pub fn slot_of(&self, sid: &u64) -> Option<u32> {
        self.index.get(sid).copied()
    }

    pub fn contains_key(&self, sid: &u64) -> bool {
        self.index.contains_key(sid)
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn values(&self) -> impl Iterator<Item = &MemSeries> {
        self.slots.iter().flatten()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut MemSeries> {
        self.slots.iter_mut().flatten()
    }
}

/// Time-sorted copies of a series' in-memory samples, for queries.
#[derive(Clone, Debug, Default)]
pub struct MemData {
    pub head: Option<Vec<u8>>,
    pub hhead: Option<Vec<u8>>,
    pub pending: Vec<Pending>,
    pub ooo_floats: Vec<Sample>,
    pub ooo_histograms: Vec<HistogramSample>,
}

impl MemData {
    pub fn capture(s: &MemSeries, start: i64, end: i64) -> Self {
        let overlaps = |lo: i64, hi: i64| lo <= end && hi >= start;
        let head = s
            .head
            .as_ref()
            .filter(|h| !h.is_empty() && overlaps(h.first_t(), h.last_t()))
            .map(|h| h.bytes().to_vec());
        let hhead = s
            .hhead
            .as_ref()
            .filter(|h| !h.is_empty() && h.last_t() >= start)
            .map(|h| h.bytes().to_vec());
        let pending = s
            .pending
            .iter()
            .filter(|p| overlaps(p.min_t, p.max_t))
            .cloned()
            .collect();
        let (ooo_floats, ooo_histograms) = match &s.ooo {
            Some(o) => (
                o.floats
                    .iter()
                    .filter(|x| x.t >= start && x.t <= end)
                    .copied()
                    .collect(),
                o.histograms
                    .iter()
                    .filter(|x| x.t >= start && x.t <= end)
                    .cloned()
                    .collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        Self {
            head,
            hhead,
            pending,
            ooo_floats,
            ooo_histograms,
        }
    }

    /// Decodes everything into the two vectors (unsorted across sources).
    pub fn decode_into(
        &self,
        floats: &mut Vec<Sample>,
        hists: &mut Vec<HistogramSample>,
    ) -> Result<(), StorageError> {
        for p in &self.pending {
            match p.kind {
                ChunkKind::Float => chunk::decode_floats(&p.bytes, floats)?,
                ChunkKind::Histogram => chunk::decode_histograms(&p.bytes, hists)?,
            }
        }
        if let Some(h) = &self.head {
            chunk::decode_floats(h, floats)?;
        }
        if let Some(h) = &self.hhead {
            chunk::decode_histograms(h, hists)?;
        }
        floats.extend_from_slice(&self.ooo_floats);
        hists.extend(self.ooo_histograms.iter().cloned());
        Ok(())
    }
}

/// Per-tenant part of the head.
pub struct TenantHead {
    pub id: TenantId,
    /// Low 64 bits of the labels hash -> series slot (other series with
    /// the same low bits spill into `collisions`).
    pub by_hash: FxHashMap<u64, u32>,
    pub collisions: FxHashMap<u64, Vec<u32>>,
    /// Label name -> label value -> sorted series ids.
    pub postings: FxHashMap<Sym, FxHashMap<Sym, Vec<u64>>>,
    /// Every series of the tenant in memory, sorted.
    pub all: Vec<u64>,
    /// Series counted against the limit (in memory and not closing).
    pub active: u64,
    pub metadata: BTreeMap<String, MetricMetadata>,
    pub metadata_dirty: HashSet<String>,
    pub exemplars: ExemplarRing,
}

impl TenantHead {
    pub fn new(id: TenantId, max_exemplars: usize) -> Self {
        Self {
            id,
            by_hash: FxHashMap::default(),
            collisions: FxHashMap::default(),
            postings: FxHashMap::default(),
            all: Vec::new(),
            active: 0,
            metadata: BTreeMap::new(),
            metadata_dirty: HashSet::new(),
            exemplars: ExemplarRing::new(max_exemplars),
        }
    }
}

/// Inserts `sid` into a sorted list (appending in the common case).
pub fn insert_sorted(list: &mut Vec<u64>, sid: u64) {
    match list.last() {
        None => list.push(sid),
        Some(&last) if last < sid => list.push(sid),
        _ => {
            if let Err(i) = list.binary_search(&sid) {
                list.insert(i, sid);
            }
        }
    }
}

/// The head identifies a series by a 128-bit XXH3 hash of its label set
/// with a per-process random seed, instead of comparing label strings on
/// every sample: comparing means chasing a symbol and a string per label,
/// cache misses that dominated the append path. A random seed keeps
/// collisions unpredictable to clients; at 2^-128 per pair they do not
/// happen. The hash is never persisted (on-disk identity is the labels).
pub struct LabelsHasher {
    seed: u64,
    buf: Vec<u8>,
}

impl Default for LabelsHasher {
    fn default() -> Self {
        use std::hash::BuildHasher;
        Self {
            seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
            buf: Vec::with_capacity(512),
        }
    }
}

impl LabelsHasher {
    /// Another hasher producing the same hashes (its own scratch buffer).
    pub fn fork(&self) -> Self {
        Self {
            seed: self.seed,
            buf: Vec::with_capacity(512),
        }
    }

    pub fn hash<'a>(&mut self, pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u128 {
        self.buf.clear();
        for (n, v) in pairs {
            self.buf.extend_from_slice(n.as_bytes());
            self.buf.push(0xff);
            self.buf.extend_from_slice(v.as_bytes());
            self.buf.push(0xff);
        }
        xxhash_rust::xxh3::xxh3_128_with_seed(&self.buf, self.seed)
    }

    pub fn hash_labels(&mut self, labels: &Labels) -> u128 {
        self.hash(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }
}

/// The symbol pairs of `labels`, interned (taking references).
pub fn intern_labels(symbols: &mut Symbols, labels: &Labels) -> Box<[Sym]> {
    let mut out = Vec::with_capacity(labels.len() * 2);
    for l in labels {
        out.push(symbols.intern(&l.name));
        out.push(symbols.intern(&l.value));
    }
    out.into_boxed_slice()
}

/// Resolves symbol pairs to an owned label set.
pub fn resolve_labels(symbols: &Symbols, syms: &[Sym]) -> Labels {
    Labels::from_sorted_unchecked(
        syms.chunks_exact(2)
            .map(|p| Label {
                name: symbols.get(p[0]).to_string(),
                value: symbols.get(p[1]).to_string(),
            })
            .collect(),
    )
}

/// Iterates symbol pairs as strings.
pub fn label_pairs<'a>(
    symbols: &'a Symbols,
    syms: &'a [Sym],
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    syms.chunks_exact(2)
        .map(|p| (symbols.get(p[0]), symbols.get(p[1])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sorted_keeps_order_and_uniqueness() {
        let mut l = vec![];
        for x in [5, 7, 6, 1, 7, 9] {
            insert_sorted(&mut l, x);
        }
        assert_eq!(l, vec![1, 5, 6, 7, 9]);
    }

    #[test]
    fn interned_labels_resolve_and_hash_alike() {
        let mut s = Symbols::new();
        let ls = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        let syms = intern_labels(&mut s, &ls);
        assert_eq!(resolve_labels(&s, &syms), ls);
        let mut h = LabelsHasher::default();
        let h1 = h.hash_labels(&ls);
        assert_eq!(h1, h.hash(label_pairs(&s, &syms)));
        // Boundaries between names and values matter.
        let a = h.hash_labels(&Labels::from_pairs([("a", "bc")]));
        let b = h.hash_labels(&Labels::from_pairs([("ab", "c")]));
        assert_ne!(a, b);
    }
}
