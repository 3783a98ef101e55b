#!/usr/bin/env bash
# The issuance benchmark: release build, then meshca-bench measures the crypto bound, drives a real
# `meshca serve` over gRPC/TLS and `cfssl serve` over HTTP with the same CSRs, times one-shot issuance and
# an audit query over a million-row ledger, issues again with the CA key in SoftHSM (PKCS#11) and with the ledger in
# PostgreSQL (one replica, then two on one database), has h2load
# (nghttp2) drive both servers with one connection per client, and prints one table (also written as JSON).
# Arguments go to meshca-bench, e.g. `scripts/bench.sh --requests 5000 --json results.json`; without --json
# the results go to .build/bench-results.json. Set MESHCA_SCRATCH_PATH to build somewhere other than .build.
# Run it on an otherwise idle machine: the benchmark and the servers it drives share the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_swift
export_build_commit
# sqlite3: the shell that creates cfssl's certificate database and bulk-fills the large ledger.
# nghttp2-client: h2load, the independent load generator that drives both servers with one connection per client.
# postgresql: the server the PostgreSQL-ledger phase starts (initdb and pg_ctl from /usr/lib/postgresql/*/bin, and psql).
# (golang-cfssl itself is installed by meshca-bench when it is missing.)
ensure_system_packages libssl-dev libsqlite3-dev libp11-kit-dev pkg-config openssl sqlite3 softhsm2 nghttp2-client postgresql
scratch="${MESHCA_SCRATCH_PATH:-.build}"
# The same release build as scripts/quickstart.sh: the Swift runtime linked in (--static-swift-stdlib), as
# meshca is meant to be shipped (see docs/install.md).
for product in meshca meshca-agent meshca-bench; do
    swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product "$product"
done
json=()
case " $* " in *" --json "*|*" --json="*) ;; *) mkdir -p .build && json=(--json .build/bench-results.json) ;; esac
exec "$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)/meshca-bench" "${json[@]}" "$@"
