#!/usr/bin/env bash
# Single-node ingest cost on the two replicators: the same pre-encoded
# payload (see compare-vm.sh) goes to fenghuo with `storage.replicator:
# local`, then `raft`, alternating RUNS times, each on a fresh data
# directory. Reports each run's samples per server CPU-second, peak RSS and
# disk, as fenghuo-load prints them.
#
#   benches/compare-replicator.sh HOSTS PODS_PER_HOST ROUNDS RUNS
#
# Build first: cargo build --release --bin fenghuo --bin fenghuo-load
set -euo pipefail
H=${1:-100}; P=${2:-10}; R=${3:-240}; N=${4:-2}
TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/fenghuo-target}/release
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
run() {
    local replicator=$1 n=$2 dir="$WORK/$1-$2"
    mkdir -p "$dir"
    cat > "$dir/fenghuo.yml" <<EOC
storage:
  replicator: $replicator
  checkpoint_interval: 5s
  compaction_interval: 5s
EOC
    "$TARGET/fenghuo" serve --config.file "$dir/fenghuo.yml" --listen 127.0.0.1:19801 \
        --data-dir "$dir/data" > "$dir/fenghuo.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 100); do
        curl -sf http://127.0.0.1:19801/-/ready > /dev/null && break
        sleep 0.1
    done
    echo "== run $n, replicator $replicator"
    "$TARGET/fenghuo-load" --url http://127.0.0.1:19801/api/v1/write --hosts "$H" --pods-per-host "$P" \
        --rounds "$R" --pid "$pid" --data-dir "$dir/data" --stop-server --name "fenghuo-$replicator"
    wait "$pid" || true
}
for i in $(seq 1 "$N"); do
    run local "$i"
    run raft "$i"
done
