#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds everything including the tests, then runs
# them (build and run are separate steps so SwiftPM does not rebuild SwiftProtobuf between them).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_swift
ensure_system_packages libssl-dev libsqlite3-dev pkg-config openssl python3 python3-pip
if ! python3 -c "import cryptography" 2>/dev/null; then
    echo "meshca: installing the Python cryptography package (used as an independent checker)" >&2
    python3 -m pip install --quiet cryptography || python3 -m pip install --quiet --break-system-packages cryptography
fi
swift build --build-tests
swift test --skip-build "$@"
