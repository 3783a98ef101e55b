#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds everything including the tests, then runs
# them (build and run are separate steps so SwiftPM does not rebuild SwiftProtobuf between them).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_swift
export_build_commit
# postgresql: the server the PostgreSQL ledger tests start (initdb and pg_ctl from /usr/lib/postgresql/*/bin).
ensure_system_packages libssl-dev libsqlite3-dev libp11-kit-dev pkg-config openssl python3 python3-pip softhsm2 postgresql
if ! python3 -c "import cryptography" 2>/dev/null; then
    echo "meshca: installing the Python cryptography package (used as an independent checker)" >&2
    python3 -m pip install --quiet cryptography || python3 -m pip install --quiet --break-system-packages cryptography
fi
# Python grpcio is the independent gRPC client of the interoperability test.
venv=.build/interop-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import grpc, grpc_tools, grpc_health.v1, cryptography, spiffe" 2>/dev/null; then
    echo "meshca: preparing $venv (grpcio, grpcio-tools, grpcio-health-checking, cryptography, spiffe)" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check grpcio grpcio-tools grpcio-health-checking cryptography spiffe
fi
export MESHCA_INTEROP_PYTHON="$PWD/$venv/bin/python"
# The Prometheus alert rules in deploy/monitoring: promtool comes with Debian's prometheus package.
if ensure_system_packages prometheus && command -v promtool >/dev/null; then
    promtool check rules deploy/monitoring/meshca-alerts.yml
    (cd deploy/monitoring && promtool test rules meshca-alerts.test.yml)
else
    echo "meshca: skipping the alert-rule checks: promtool (Debian package prometheus) could not be installed" >&2
fi
swift build --build-tests
# ArgumentParser's generate-manual, which the completion and man page test runs through
# scripts/install-completions.sh: built here with the rest, not inside the test run (a minute of the test phase).
tools=.build/tools/argument-parser
swift build -c release --package-path .build/checkouts/swift-argument-parser --scratch-path "$tools" --product generate-manual
export GENERATE_MANUAL="$(swift build -c release --package-path .build/checkouts/swift-argument-parser --scratch-path "$tools" --show-bin-path)/generate-manual"
# Keep the benchmark from rotting: a few issuances through the debug build (no timing claims).
"$(swift build --show-bin-path)/meshca-bench" --requests 10 --concurrency 1,4 --agent-renewals 1
# The tests run the binaries users run: the release builds scripts/quickstart.sh makes (static Swift runtime, no
# ICU data, so some Foundation calls behave differently from the debug build). They also start in a quarter of
# the debug binary's time, and the suite starts some 600 meshca processes (docs/development.md). With a test
# filter, the debug binaries built above stand in, so a focused run needs no release build.
if [ $# -eq 0 ]; then
    swift build -c release --static-swift-stdlib --product meshca
    swift build -c release --static-swift-stdlib --product meshca-agent
    release="$(swift build -c release --static-swift-stdlib --show-bin-path)"
    export MESHCA_BIN="${MESHCA_BIN:-$release/meshca}"
fi
# Test files on tmpfs when it has room (4 GiB free): PostgreSQL's per-test databases and the SQLite ledgers'
# fsyncs then cost no disk work. An explicit TMPDIR is kept.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt 4194304 ]; then
    export TMPDIR=/dev/shm
fi
# At most 4 tests per core at once: all 440-odd starting together starve each other's set-up on a small, busy
# machine (docs/development.md, "The test kit"). Swift Testing reads this variable.
export SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH="${SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH:-$((4 * $(nproc)))}"
swift test --skip-build "$@"
scripts/check-deploy.sh
# The nginx, HAProxy and curl recipes of docs/recipes.md, across certificate renewals.
ensure_system_packages nginx-light haproxy curl || true
scripts/check-recipes.sh "${release:-$(swift build --show-bin-path)}"
if [ $# -eq 0 ]; then
    scripts/smoke-release.sh "$release"
    scripts/check-container.sh "$release"
fi
