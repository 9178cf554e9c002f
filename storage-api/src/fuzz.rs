//! Seeded mutation fuzzing for the test suites: every crate runs its parsers
//! of outside bytes (remote write, PromQL, the Alertmanager API and config,
//! rule files, templates, matchers, the shard log) through [`run`] for a
//! bounded time, starting from valid inputs and mutating them.
//!
//! The toolchain here is stable Rust only, so libFuzzer (`cargo fuzz`) is
//! out; this is the property-based fallback: deterministic for a given seed
//! (a failure prints the input as hex), bounded by [`budget`]
//! (`FENGHUO_FUZZ_SECONDS`, 2 s per target by default) so the suite stays
//! fast, and long runs are one environment variable away.

use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// `input` with one to eight edits: a byte replaced or its bits
    /// flipped, bytes removed, random bytes or a token of `dictionary`
    /// inserted, a slice repeated.
    pub fn mutate(&mut self, input: &[u8], dictionary: &[&[u8]]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..1 + self.below(8) {
            let at = self.below(out.len() + 1);
            match self.below(6) {
                0 if at < out.len() => out[at] = self.next_u64() as u8,
                1 if at < out.len() => {
                    let bit = self.below(8);
                    out[at] ^= 1 << bit;
                }
                2 if at < out.len() => {
                    let most = 16.min(out.len() - at);
                    let n = 1 + self.below(most);
                    out.drain(at..at + n);
                }
                3 if !dictionary.is_empty() => {
                    let pick = self.below(dictionary.len());
                    let token = dictionary[pick];
                    out.splice(at..at, token.iter().copied());
                }
                4 if at < out.len() => {
                    let most = 32.min(out.len() - at);
                    let n = 1 + self.below(most);
                    let slice = out[at..at + n].to_vec();
                    let times = 1 + self.below(4);
                    for _ in 0..times {
                        out.splice(at..at, slice.iter().copied());
                    }
                }
                _ => {
                    let n = 1 + self.below(8);
                    let insert = self.bytes(n);
                    out.splice(at..at, insert);
                }
            }
        }
        out
    }
}

/// How long one target runs: `FENGHUO_FUZZ_SECONDS`, or 2 seconds.
pub fn budget() -> Duration {
    let secs = std::env::var("FENGHUO_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs.max(0.0))
}

/// Feeds `target` mutations of `seeds` (and the seeds themselves first)
/// until the [`budget`] is spent; returns how many inputs ran. A panic in
/// `target` names the input (as hex) and re-raises.
pub fn run(
    name: &str,
    seed: u64,
    seeds: &[Vec<u8>],
    dictionary: &[&[u8]],
    mut target: impl FnMut(&[u8]),
) -> usize {
    assert!(!seeds.is_empty(), "{name}: no seed inputs");
    let mut rng = Rng::new(seed);
    let deadline = Instant::now() + budget();
    let mut runs = 0;
    let mut corpus: Vec<Vec<u8>> = seeds.to_vec();
    loop {
        let input = if runs < seeds.len() {
            seeds[runs].clone()
        } else {
            let base = &corpus[rng.below(corpus.len())];
            rng.mutate(base, dictionary)
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&input)));
        if let Err(p) = outcome {
            let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
            eprintln!("{name}: input #{runs} (seed {seed:#x}) panicked; input as hex:\n{hex}");
            std::panic::resume_unwind(p);
        }
        runs += 1;
        // Keep some mutants as bases, so edits accumulate.
        if runs % 16 == 0 && corpus.len() < 256 {
            corpus.push(input);
        }
        if runs >= seeds.len() && Instant::now() >= deadline {
            // Shown with --nocapture: how much a run covered.
            eprintln!(
                "fuzz {name}: {runs} inputs in {:.1} s (seed {seed:#x})",
                budget().as_secs_f64()
            );
            return runs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutants() {
        let a: Vec<Vec<u8>> = {
            let mut r = Rng::new(7);
            (0..20).map(|_| r.mutate(b"hello world", &[b"{{"])).collect()
        };
        let mut r = Rng::new(7);
        let b: Vec<Vec<u8>> = (0..20).map(|_| r.mutate(b"hello world", &[b"{{"])).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|m| m != b"hello world"));
    }

    #[test]
    fn a_panicking_target_is_reported() {
        let r = std::panic::catch_unwind(|| {
            run("t", 1, &[b"ok".to_vec(), b"boom".to_vec()], &[], |i| {
                assert_ne!(i, b"boom")
            })
        });
        assert!(r.is_err());
    }
}
