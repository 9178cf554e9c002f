#!/usr/bin/env bash
# Coverage-guided fuzzing with AFL++ on stable Rust (cargo-afl): builds the
# targets in fuzz/ with instrumentation and runs each for SECONDS (default
# 300) at once, one core each. Crashes land in fuzz/out/<target>/default/crashes;
# reproduce one with `fuzz/target/release/<target> < FILE`. Not part of CI
# (open-ended, and it needs an instrumented build); SECURITY.md has the runs.
set -euo pipefail
cd "$(dirname "$0")"
. ../scripts/env.sh
fenghuo_install_packages afl++
command -v cargo-afl >/dev/null || cargo install cargo-afl
export CARGO_TARGET_DIR="$PWD/target" RUSTC_WRAPPER=
cargo afl build --release
seconds="${SECONDS_PER_TARGET:-${1:-300}}"
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
pids=()
for t in remote_write promql; do
    mkdir -p out
    timeout "$seconds" cargo afl fuzz -i "seeds/$t" -o "out/$t" -- "target/release/$t" >"out/$t.log" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}" || true
for t in remote_write promql; do
    execs=$(awk '$1 == "execs_done" {print $3}' "out/$t/default/fuzzer_stats" 2>/dev/null || echo 0)
    crashes=$(find "out/$t/default/crashes" -name 'id:*' 2>/dev/null | wc -l)
    echo "$t: $execs executions in ${seconds}s, $crashes crashing inputs"
done
