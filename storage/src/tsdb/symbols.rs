//! Interned label strings of the in-memory head. A series stores its
//! labels as `u32` symbol pairs; each distinct string lives once, with a
//! reference count so strings of evicted series are freed (churn would
//! otherwise grow memory without bound).

use std::sync::Arc;

use rustc_hash::FxHashMap;

pub type Sym = u32;

#[derive(Default)]
pub struct Symbols {
    strings: Vec<Option<Arc<str>>>,
    refs: Vec<u32>,
    map: FxHashMap<Arc<str>, Sym>,
    free: Vec<Sym>,
}

impl Symbols {
    pub fn new() -> Self {
        Self::default()
    }

    /// Interns `s` and takes a reference.
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&sym) = self.map.get(s) {
            self.refs[sym as usize] += 1;
            return sym;
        }
        let arc: Arc<str> = Arc::from(s);
        let sym = match self.free.pop() {
            Some(sym) => {
                self.strings[sym as usize] = Some(arc.clone());
                self.refs[sym as usize] = 1;
                sym
            }
            None => {
                self.strings.push(Some(arc.clone()));
                self.refs.push(1);
                (self.strings.len() - 1) as Sym
            }
        };
        self.map.insert(arc, sym);
        sym
    }

    /// Looks `s` up without taking a reference.
    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.map.get(s).copied()
    }

    /// Drops a reference, freeing the string when it was the last.
    pub fn release(&mut self, sym: Sym) {
        let i = sym as usize;
        let Some(r) = self.refs.get_mut(i) else { return };
        if *r == 0 {
            return;
        }
        *r -= 1;
        if *r == 0 {
            if let Some(s) = self.strings[i].take() {
                self.map.remove(&s);
            }
            self.free.push(sym);
        }
    }

    /// The string of a live symbol ("" for a dead one, which a consistent
    /// head never references).
    pub fn get(&self, sym: Sym) -> &str {
        self.strings
            .get(sym as usize)
            .and_then(|s| s.as_deref())
            .unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.map.keys().map(|s| s.len() + 16).sum::<usize>()
            + self.strings.capacity() * 16
            + self.refs.capacity() * 4
            + self.map.capacity() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refcounts_free_and_reuse_slots() {
        let mut s = Symbols::new();
        let a = s.intern("job");
        assert_eq!(s.intern("job"), a);
        let b = s.intern("node");
        s.release(a);
        assert_eq!(s.get(a), "job");
        s.release(a);
        assert_eq!(s.lookup("job"), None);
        let c = s.intern("other");
        assert_eq!(c, a, "freed slot is reused");
        assert_eq!(s.get(b), "node");
        assert_eq!(s.len(), 2);
    }
}
