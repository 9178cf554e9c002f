//! Label sets: the identity of a series.
//!
//! A [`Labels`] is kept sorted by label name with unique names, which is the
//! canonical form Prometheus uses for hashing, comparison and printing.

use std::fmt;

/// The label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One `name="value"` pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A label set sorted by name. Ordering is Prometheus's `labels.Compare`:
/// pairwise by (name, value), then the shorter set first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<Label>);

impl Labels {
    pub const fn empty() -> Self {
        Self(Vec::new())
    }

    /// Builds a label set, sorting by name. Later duplicates of a name replace
    /// earlier ones; empty values are dropped (an empty value means "absent"
    /// in Prometheus).
    pub fn new(mut labels: Vec<Label>) -> Self {
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(labels.len());
        for l in labels {
            if let Some(last) = out.last_mut()
                && last.name == l.name
            {
                *last = l;
                continue;
            }
            out.push(l);
        }
        out.retain(|l| !l.value.is_empty());
        Self(out)
    }

    /// Wraps labels that the caller guarantees are sorted by name, unique and
    /// with non-empty values (e.g. validated remote-write input).
    pub fn from_sorted_unchecked(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Self(labels)
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self::new(pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// Sets `name` to `value`, removing it when `value` is empty.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].value = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, Label::new(name, value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            self.0.remove(i);
        }
    }

    /// A copy without the metric name.
    pub fn without_metric_name(&self) -> Self {
        self.without(&[METRIC_NAME])
    }

    /// A copy keeping only the named labels.
    pub fn keep_only(&self, names: &[impl AsRef<str>]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|l| names.iter().any(|n| n.as_ref() == l.name))
                .cloned()
                .collect(),
        )
    }

    /// A copy without the named labels.
    pub fn without(&self, names: &[impl AsRef<str>]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|l| !names.iter().any(|n| n.as_ref() == l.name))
                .cloned()
                .collect(),
        )
    }

    /// A stable 64-bit hash (FNV-1a over names and values with separators),
    /// used for sharding; it must never change between releases because
    /// shard placement depends on it.
    pub fn stable_hash(&self) -> u64 {
        stable_hash_pairs(self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// The pairs as borrowed strings.
    pub fn pairs(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|l| (l.name.as_str(), l.value.as_str()))
    }
}

/// [`Labels::stable_hash`] of a sorted label set given as pairs (so
/// borrowed label sets hash to the same shard as owned ones).
pub fn stable_hash_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = Fnv1a::new();
    for (name, value) in pairs {
        h.write(name.as_bytes());
        h.write(&[0xff]);
        h.write(value.as_bytes());
        h.write(&[0xff]);
    }
    h.finish()
}

/// Prometheus's `labels.String()` of a sorted label set given as pairs:
/// `{a="1", b="2"}` with Go-style quoting.
pub fn fmt_pairs<'a>(
    f: &mut impl fmt::Write,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> fmt::Result {
    f.write_str("{")?;
    for (i, (name, value)) in pairs.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        if is_legacy_name(name) {
            f.write_str(name)?;
        } else {
            write_go_quoted(f, name)?;
        }
        f.write_str("=")?;
        write_go_quoted(f, value)?;
    }
    f.write_str("}")
}

impl fmt::Display for Labels {
    /// Prometheus's `labels.String()`: `{a="1", b="2"}` with Go-style quoting.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_pairs(f, self.pairs())
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// True for names matching `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_legacy_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// True for metric names matching `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_legacy_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Writes `s` as a Go `strconv.Quote` string literal.
pub use fenghuo_gofmt::write_quoted as write_go_quoted;

/// FNV-1a, 64 bit: tiny, fast and frozen (unlike std's `DefaultHasher`).
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sorts_dedups_and_drops_empty_values() {
        let ls = Labels::new(vec![
            Label::new("b", "2"),
            Label::new("a", "1"),
            Label::new("b", "3"),
            Label::new("c", ""),
        ]);
        assert_eq!(ls, Labels::from_pairs([("a", "1"), ("b", "3")]));
        assert_eq!(ls.get("b"), Some("3"));
        assert_eq!(ls.get("c"), None);
    }

    #[test]
    fn display_matches_prometheus() {
        let ls = Labels::from_pairs([("__name__", "up"), ("job", "a\"b\n"), ("x.y", "1")]);
        assert_eq!(ls.to_string(), r#"{__name__="up", job="a\"b\n", "x.y"="1"}"#);
    }

    #[test]
    fn ordering_is_pairwise_then_length() {
        let a = Labels::from_pairs([("a", "1")]);
        let b = Labels::from_pairs([("a", "1"), ("b", "1")]);
        let c = Labels::from_pairs([("a", "2")]);
        assert!(a < b && b < c);
    }

    #[test]
    fn stable_hash_is_frozen() {
        let ls = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        assert_eq!(
            ls.stable_hash(),
            0x7bfe_d626_35f6_4858_u64,
            "shard placement depends on this value"
        );
    }
}
