//! The bounded exemplar store: one ring buffer per tenant, oldest
//! exemplars overwritten first, as Prometheus's circular exemplar storage.
//!
//! Accept rules (Prometheus's): an exemplar identical to its series' newest
//! one is a duplicate (idempotent, counted written, not stored); one older
//! than its series' newest is out of order and dropped silently (remote
//! write does not fail a request over exemplars).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::model::Exemplar;

#[derive(Clone, Debug, PartialEq)]
pub struct StoredExemplar {
    pub seq: u64,
    pub sid: u64,
    pub exemplar: Exemplar,
}

/// What adding an exemplar did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExemplarVerdict {
    Added,
    Duplicate,
    OutOfOrder,
    Disabled,
}

pub struct ExemplarRing {
    cap: usize,
    items: VecDeque<StoredExemplar>,
    /// Sequence number of the next exemplar (dense, deterministic).
    pub next_seq: u64,
    /// Exemplars with `seq < persisted_seq` are on disk.
    pub persisted_seq: u64,
    /// Series -> seq of its newest exemplar still in the ring.
    newest: FxHashMap<u64, u64>,
}

impl ExemplarRing {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            items: VecDeque::new(),
            next_seq: 0,
            persisted_seq: 0,
            newest: FxHashMap::default(),
        }
    }

    fn get(&self, seq: u64) -> Option<&StoredExemplar> {
        let first = self.items.front()?.seq;
        self.items.get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    pub fn add(&mut self, sid: u64, e: Exemplar) -> ExemplarVerdict {
        if self.cap == 0 {
            return ExemplarVerdict::Disabled;
        }
        if let Some(last) = self.newest.get(&sid).and_then(|seq| self.get(*seq)) {
            let l = &last.exemplar;
            if l.t == e.t && l.value.to_bits() == e.value.to_bits() && l.labels == e.labels {
                return ExemplarVerdict::Duplicate;
            }
            if e.t < l.t {
                return ExemplarVerdict::OutOfOrder;
            }
        }
        self.push(StoredExemplar {
            seq: self.next_seq,
            sid,
            exemplar: e,
        });
        ExemplarVerdict::Added
    }

    /// Appends a stored exemplar (also used when loading from disk).
    pub fn push(&mut self, item: StoredExemplar) {
        if self.cap == 0 {
            return;
        }
        while self.items.len() >= self.cap {
            self.pop_oldest();
        }
        self.next_seq = self.next_seq.max(item.seq + 1);
        self.newest.insert(item.sid, item.seq);
        self.items.push_back(item);
    }

    fn pop_oldest(&mut self) {
        if let Some(old) = self.items.pop_front()
            && self.newest.get(&old.sid) == Some(&old.seq)
        {
            self.newest.remove(&old.sid);
        }
    }

    /// Sequence of the oldest exemplar kept (everything older is gone).
    pub fn oldest_seq(&self) -> u64 {
        self.items.front().map_or(self.next_seq, |e| e.seq)
    }

    pub fn iter(&self) -> impl Iterator<Item = &StoredExemplar> {
        self.items.iter()
    }

    /// Exemplars not yet persisted.
    pub fn unpersisted(&self) -> impl Iterator<Item = &StoredExemplar> {
        let from = self.persisted_seq;
        self.items.iter().filter(move |e| e.seq >= from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    fn ex(t: i64, v: f64) -> Exemplar {
        Exemplar {
            labels: Labels::from_pairs([("trace_id", "a")]),
            value: v,
            t,
        }
    }

    #[test]
    fn ring_is_bounded_and_rejects_duplicates_and_old() {
        let mut r = ExemplarRing::new(3);
        assert_eq!(r.add(1, ex(10, 1.0)), ExemplarVerdict::Added);
        assert_eq!(r.add(1, ex(10, 1.0)), ExemplarVerdict::Duplicate);
        assert_eq!(r.add(1, ex(5, 1.0)), ExemplarVerdict::OutOfOrder);
        assert_eq!(r.add(2, ex(5, 1.0)), ExemplarVerdict::Added);
        assert_eq!(r.add(1, ex(11, 2.0)), ExemplarVerdict::Added);
        assert_eq!(r.add(3, ex(1, 2.0)), ExemplarVerdict::Added);
        assert_eq!(r.iter().count(), 3);
        assert_eq!(r.oldest_seq(), 1);
        assert_eq!(r.iter().map(|e| e.sid).collect::<Vec<_>>(), vec![2, 1, 3]);
        // Series 1's first exemplar is gone, so an old one is accepted again.
        assert_eq!(r.add(2, ex(4, 1.0)), ExemplarVerdict::OutOfOrder);
    }
}
