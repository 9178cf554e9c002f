#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the PromQL conformance files,
# end-to-end tests with real processes (fenghuo, Prometheus, Alertmanager's
# amtool, an SMTP listener). Installs the packages those need.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/env.sh
fenghuo_install_packages libclang-dev sccache prometheus prometheus-alertmanager python3-aiosmtpd
. scripts/env.sh
exec cargo test --workspace "$@"
