#!/usr/bin/env bash
# The issuance benchmark: release build, then meshca-bench drives a real `meshca serve` over gRPC/TLS.
# Arguments go to meshca-bench, e.g. `scripts/bench.sh --requests 5000 --concurrency 1,8,64 --json results.json`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_swift
ensure_system_packages libssl-dev libsqlite3-dev pkg-config openssl
swift build -c release --product meshca
swift build -c release --product meshca-bench
exec "$(swift build -c release --show-bin-path)/meshca-bench" "$@"
