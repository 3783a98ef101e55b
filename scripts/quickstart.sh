#!/usr/bin/env bash
# The first command on a fresh machine: installs what is missing, builds meshca (release), and issues a
# first workload certificate with an embedded default CA (trust domain cluster.local) into ./meshca-demo.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_swift
ensure_system_packages libssl-dev libsqlite3-dev pkg-config openssl
swift build -c release --product meshca
bin="$(swift build -c release --show-bin-path)/meshca"
export MESHCA_STATE_DIR="${MESHCA_STATE_DIR:-$PWD/meshca-demo/state}"
"$bin" issue --sa was --out meshca-demo/was
"$bin" inspect meshca-demo/was
"$bin" audit list
echo
echo "meshca is at $bin; the demo CA lives in $MESHCA_STATE_DIR."
