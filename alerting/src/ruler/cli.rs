//! The command line: `fenghuo check-rules FILES` (like `promtool check rules`) and
//! `fenghuo test rules FILES` (like `promtool test rules`). Each returns what to print on stdout
//! and stderr and the exit code promtool would use.

use std::path::{Path, PathBuf};

use crate::ruler::{junit, rulefmt, unittest};

/// What a command printed and its exit code.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
    /// The output in the order promtool interleaves it: (is stderr, text).
    pub chunks: Vec<(bool, String)>,
}

impl Outcome {
    /// Adds one file's output: its header line, then its stderr, then the rest of its stdout.
    fn push_file(&mut self, stdout: &str, stderr: &str) {
        let (head, rest) = match stdout.find('\n') {
            Some(i) => stdout.split_at(i + 1),
            None => (stdout, ""),
        };
        self.chunks.push((false, head.to_string()));
        self.chunks.push((true, stderr.to_string()));
        self.chunks.push((false, rest.to_string()));
        self.stdout.push_str(stdout);
        self.stderr.push_str(stderr);
    }
}

/// `promtool check rules`: 0 when every file is valid (duplicate-rule lint findings are reported
/// but do not fail), 1 otherwise.
pub fn check_rules(files: &[PathBuf]) -> Outcome {
    let mut o = Outcome::default();
    for f in files {
        let r = rulefmt::check_file(f);
        o.push_file(&r.stdout, &r.stderr);
        if r.failed {
            o.code = 1;
        }
    }
    o
}

/// `promtool test rules`: 0 when every test file passes, 1 otherwise.
pub fn test_rules(files: &[PathBuf]) -> Outcome {
    test_rules_with(files, &unittest::Options::default(), None)
}

/// `promtool test rules` with its flags (`--run`, `--diff`, `--debug`); with `junit`, the JUnit
/// XML results are written there (`promtool test --junit FILE rules ...`).
pub fn test_rules_with(files: &[PathBuf], opts: &unittest::Options, junit: Option<&Path>) -> Outcome {
    let mut o = Outcome::default();
    if let Some(bad) = opts.run.iter().find(|p| regex::Regex::new(p).is_err()) {
        let msg = format!("invalid --run pattern {bad:?}\n");
        o.chunks.push((true, msg.clone()));
        o.stderr = msg;
        o.code = 1;
        return o;
    }
    let mut suites = Vec::new();
    for f in files {
        let r = unittest::run_with(std::slice::from_ref(f), opts);
        o.push_file(&r.stdout, &r.stderr);
        suites.extend(r.suites);
        if !r.passed {
            o.code = 1;
        }
    }
    if let Some(path) = junit
        && let Err(e) = std::fs::write(path, junit::to_xml(&suites))
    {
        let msg = format!(
            "failed to write JUnit XML: {}\n",
            rulefmt::go_io_error(&path.display().to_string(), &e)
        );
        o.chunks.push((true, msg.clone()));
        o.stderr.push_str(&msg);
    }
    o
}

/// Prints an outcome the way promtool does and returns its exit code.
pub fn print(o: &Outcome) -> i32 {
    use std::io::Write;
    for (is_err, text) in &o.chunks {
        if *is_err {
            let _ = std::io::stderr().write_all(text.as_bytes());
            let _ = std::io::stderr().flush();
        } else {
            let _ = std::io::stdout().write_all(text.as_bytes());
            let _ = std::io::stdout().flush();
        }
    }
    o.code
}
