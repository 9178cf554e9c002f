//! File globbing for rule-file patterns (Go's `filepath.Glob`: `*`, `?`, `[...]` within a path
//! segment, matches sorted); a pattern without glob characters matches the file if it exists.

use std::path::PathBuf;

/// The files matching `pattern`, sorted. Invalid patterns match nothing.
pub fn glob(pattern: &str) -> Vec<PathBuf> {
    if !pattern.contains(['*', '?', '[']) {
        let p = PathBuf::from(pattern);
        return if p.exists() { vec![p] } else { Vec::new() };
    }
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let mut out: Vec<PathBuf> = match glob::glob_with(pattern, opts) {
        Ok(paths) => paths.filter_map(Result::ok).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}
