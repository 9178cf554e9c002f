//! The command line: `fenghuo check-rules FILES` (like `promtool check rules`) and
//! `fenghuo test rules FILES` (like `promtool test rules`). Each returns what to print on stdout
//! and stderr and the exit code promtool would use.

use std::path::PathBuf;

use crate::ruler::{rulefmt, unittest};

/// What a command printed and its exit code.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// `promtool check rules`: 0 when every file is valid (duplicate-rule lint findings are reported
/// but do not fail), 1 otherwise.
pub fn check_rules(files: &[PathBuf]) -> Outcome {
    let mut o = Outcome::default();
    for f in files {
        let r = rulefmt::check_file(f);
        o.stdout.push_str(&r.stdout);
        o.stderr.push_str(&r.stderr);
        if r.failed {
            o.code = 1;
        }
    }
    o
}

/// `promtool test rules`: 0 when every test file passes, 1 otherwise.
pub fn test_rules(files: &[PathBuf]) -> Outcome {
    let r = unittest::run(files);
    Outcome {
        stdout: r.stdout,
        stderr: r.stderr,
        code: if r.passed { 0 } else { 1 },
    }
}

/// Prints an outcome the way promtool does and returns its exit code.
pub fn print(o: &Outcome) -> i32 {
    use std::io::Write;
    let _ = std::io::stdout().write_all(o.stdout.as_bytes());
    let _ = std::io::stderr().write_all(o.stderr.as_bytes());
    o.code
}
