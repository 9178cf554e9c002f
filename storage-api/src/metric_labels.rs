//! Label values that come from outside (tenants, alert names) in a crate's own
//! metrics: bounded, so `/metrics` cannot grow without limit.

/// Bounds how many distinct values a metric label whose values come from
/// outside (tenants, alert names) takes in `/metrics`: the first `cap`
/// values seen are kept, later ones are reported as [`OTHER_LABEL_VALUE`].
/// Every crate with such a label uses one of these.
pub struct LabelValueCap {
    cap: usize,
    seen: parking_lot::Mutex<std::collections::HashSet<String>>,
}

/// The label value that stands for every value past a [`LabelValueCap`].
pub const OTHER_LABEL_VALUE: &str = "__other__";

impl LabelValueCap {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            seen: parking_lot::Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// `value`, or [`OTHER_LABEL_VALUE`] once `cap` other values are in use.
    pub fn label<'a>(&self, value: &'a str) -> &'a str {
        let mut seen = self.seen.lock();
        if seen.contains(value) {
            return value;
        }
        if seen.len() < self.cap {
            seen.insert(value.to_string());
            return value;
        }
        OTHER_LABEL_VALUE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_cap_share_one_label() {
        let cap = LabelValueCap::new(2);
        assert_eq!(cap.label("a"), "a");
        assert_eq!(cap.label("b"), "b");
        assert_eq!(cap.label("c"), OTHER_LABEL_VALUE);
        assert_eq!(cap.label("a"), "a");
    }
}
