#!/usr/bin/env bash
# Builds and starts a single fenghuo node with defaults: data in ./data,
# HTTP on :9800. Extra arguments go to `fenghuo serve`.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/env.sh
fenghuo_install_packages libclang-dev sccache
. scripts/env.sh
exec cargo run --release --bin fenghuo -- serve "$@"
