#!/usr/bin/env bash
# The first command on a fresh machine: installs what is missing, builds meshca (release), and issues a
# first workload certificate with an embedded default CA (trust domain cluster.local) into ./meshca-demo.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_swift
export_build_commit
ensure_system_packages libssl-dev libsqlite3-dev libp11-kit-dev pkg-config openssl
# --static-swift-stdlib: the binaries carry the Swift runtime, so they run on hosts and in images without it.
swift build -c release --static-swift-stdlib --product meshca
swift build -c release --static-swift-stdlib --product meshca-agent
bin="$(swift build -c release --static-swift-stdlib --show-bin-path)/meshca"
export MESHCA_STATE_DIR="${MESHCA_STATE_DIR:-$PWD/meshca-demo/state}"
"$bin" issue --sa was --out meshca-demo/was
"$bin" inspect meshca-demo/was
"$bin" audit list
echo
echo "meshca is at $bin (meshca-agent, the sidecar agent, beside it); the demo CA lives in $MESHCA_STATE_DIR."
