#!/usr/bin/env bash
# Side-by-side remote-write benchmark: the same pre-encoded payload from
# fenghuo-load goes to VictoriaMetrics (Debian package `victoria-metrics`)
# and to fenghuo, one after the other, on this machine.
#
#   benches/compare-vm.sh HOSTS PODS_PER_HOST ROUNDS SETTLE_SECONDS
#
# HOSTS x (~140 node_exporter + PODS_PER_HOST x ~37 cAdvisor) series, ROUNDS
# scrapes 15s apart. After the run each server gets SETTLE_SECONDS to flush
# and compact (VictoriaMetrics is also asked to force a flush and a merge),
# then a graceful stop; disk is measured after that. Reports samples per
# server CPU-second, peak RSS per active series and bytes on disk per sample,
# then where each server's bytes are (by kind of file) and fenghuo's final
# per-column-family sizes from its "Storage closed." log line.
# Build first: cargo build --release --bin fenghuo --bin fenghuo-load
set -euo pipefail
H=${1:-100}; P=${2:-10}; R=${3:-240}; S=${4:-0}
TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/fenghuo-target}/release
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Where the bytes are, per kind of file (after the graceful stop).
breakdown() {
    find "$1" -type f -printf '%s %p\n' | awk '
        { n=$2; sub(".*/", "", n); k="other";
          if ($2 ~ /\/log\//) k="shard-log"; else if (n ~ /\.sst$/) k="sst";
          else if (n ~ /^LOG/) k="rocksdb-info-log"; else if (n ~ /^MANIFEST/) k="manifest";
          else if (n ~ /\.log$/) k="rocksdb-wal"; else if (n ~ /^OPTIONS/) k="options";
          b[k]+=$1 }
        END { for (k in b) printf "  %-18s %12d\n", k, b[k] }' | sort
}
mkdir -p "$WORK/vm" "$WORK/fh"

victoria-metrics -storageDataPath="$WORK/vm" -httpListenAddr=127.0.0.1:18428 -retentionPeriod=100y \
    > "$WORK/vm.log" 2>&1 &
VMPID=$!
sleep 2
"$TARGET/fenghuo-load" --url http://127.0.0.1:18428/api/v1/write --hosts "$H" --pods-per-host "$P" \
    --rounds "$R" --pid "$VMPID" --data-dir "$WORK/vm" --stop-server --name victoria-metrics \
    --settle-url http://127.0.0.1:18428/internal/force_flush \
    --settle-url http://127.0.0.1:18428/internal/force_merge --settle-seconds "$S"

# Short background intervals so the settle time sees checkpoints and
# compaction (defaults: 1m and 5m).
cat > "$WORK/fenghuo.yml" <<EOC
storage:
  checkpoint_interval: 5s
  compaction_interval: 5s
EOC
"$TARGET/fenghuo" serve --config.file "$WORK/fenghuo.yml" --listen 127.0.0.1:19800 --data-dir "$WORK/fh" \
    > "$WORK/fh.log" 2>&1 &
FHPID=$!
sleep 2
"$TARGET/fenghuo-load" --url http://127.0.0.1:19800/api/v1/write --hosts "$H" --pods-per-host "$P" \
    --rounds "$R" --pid "$FHPID" --data-dir "$WORK/fh" --stop-server --name fenghuo --settle-seconds "$S"
echo "victoria-metrics files:"; breakdown "$WORK/vm"
echo "fenghuo files:"; breakdown "$WORK/fh"
grep -E "Storage closed" "$WORK/fh.log" | tail -1 || true
