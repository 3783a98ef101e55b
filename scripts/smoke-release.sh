#!/usr/bin/env bash
# Smoke suite for the release binaries scripts/quickstart.sh builds (static Swift runtime, no ICU data):
# a daemon, a join token, a remote issue, meshca-agent with --crl-url and the Workload API, a handshake,
# root status, doctor and audit verify, each through the real executables on loopback.
#
#   scripts/smoke-release.sh [BIN_DIR]
#
# BIN_DIR holds `meshca` and `meshca-agent` (default: the release bin path of this checkout). The debug
# build links Foundation's ICU-backed parts and survives calls the static release binaries trap on, so
# this catches what `swift test` cannot. Needs python3 with the `spiffe` package for the Workload API
# check (MESHCA_INTEROP_PYTHON, as scripts/test.sh prepares it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$(swift build -c release --static-swift-stdlib --show-bin-path)}
meshca="$bin/meshca"
agent="$bin/meshca-agent"
python=${MESHCA_INTEROP_PYTHON:-python3}
for exe in "$meshca" "$agent"; do
    [ -x "$exe" ] || { echo "smoke: $exe is missing; build it with scripts/quickstart.sh" >&2; exit 1; }
done

. scripts/lib.sh
scratch smoke
state="$work/state"
step() { echo "smoke: $*"; }
fail() { echo "smoke: FAILED: $*" >&2; exit 1; }
alive() { kill -0 "$1" 2>/dev/null || fail "$2 exited (status $(wait "$1"; echo $?)); see its log"; }

step "init and serve ($meshca)"
"$meshca" init --state-dir "$state" --trust-domain smoke.test >/dev/null
"$meshca" serve --state-dir "$state" --listen 127.0.0.1:0 --monitoring 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!); serve_pid=$!
wait_for "meshca serve to listen" grep -q "listening on" "$work/serve.out"
grpc=$(sed -n 's/^meshca serve: listening on \([^ ]*\) (gRPC.*/\1/p' "$work/serve.out")
monitoring=$(sed -n 's|.*metrics and health on http://\([^ ]*\).*|\1|p' "$work/serve.out")
[ -n "$grpc" ] && [ -n "$monitoring" ] || fail "could not read the addresses from: $(cat "$work/serve.out")"

step "token and remote issue"
token=$("$meshca" token create --state-dir "$state" --sa was)
"$meshca" issue --sa was --server "$grpc" --token "$token" --trust-domain smoke.test --out "$work/was" >/dev/null
openssl verify -CAfile "$work/was/root-cert.pem" "$work/was/cert-chain.pem" >/dev/null || fail "issued chain does not verify"

step "meshca-agent with --crl-url and the Workload API"
install -m 0600 /dev/null "$work/api.token"
"$meshca" token create --state-dir "$state" --sa api >"$work/api.token"
mkdir -m 0700 "$work/run"
"$agent" --ca "$grpc" --sa api --trust-domain smoke.test --token-file "$work/api.token" --out "$work/api" \
    --workload-api-socket "$work/run/agent.sock" --status-addr 127.0.0.1:0 \
    --crl-url "http://$monitoring/crl" --crl-refresh 1s >"$work/agent.out" 2>"$work/agent.log" &
pids+=($!); agent_pid=$!
wait_for "the agent's files" test -s "$work/api/cert-chain.pem"
wait_for "the agent's CRL" test -s "$work/api/crl.pem"
status_addr=$(sed -n 's|.*status on http://\([^ ]*\).*|\1|p' "$work/agent.out")
"$agent" status --status-addr "$status_addr" >"$work/agent-status.txt" || fail "meshca-agent status failed"
alive "$agent_pid" "meshca-agent"
openssl crl -in "$work/api/crl.pem" -noout -CAfile "$work/api/root-cert.pem" 2>/dev/null || fail "the agent's crl.pem does not verify"
"$python" - "$work/run/agent.sock" <<'EOF' || fail "the Workload API did not hand out the SVID"
import sys
from spiffe import WorkloadApiClient
with WorkloadApiClient(socket_path="unix://" + sys.argv[1]) as client:
    svid = client.fetch_x509_svid()
    assert str(svid.spiffe_id) == "spiffe://smoke.test/ns/default/sa/api", svid.spiffe_id
EOF

step "revoke, CRL refresh, handshake"
serial=$(openssl x509 -in "$work/was/cert-chain.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
"$meshca" revoke --state-dir "$state" "$serial" --reason keyCompromise >/dev/null
wait_for "the revocation to reach the agent's CRL" \
    sh -c "openssl crl -in '$work/api/crl.pem' -noout -text | tr 'A-F' 'a-f' | tr -d ':' | grep -q '$serial'"
alive "$agent_pid" "meshca-agent"
"$meshca" handshake --server "$work/api" --client "$work/api" >/dev/null || fail "handshake between two api identities failed"
if "$meshca" handshake --server "$work/api" --client "$work/was" --crl "$work/api/crl.pem" >"$work/handshake.txt" 2>&1; then
    fail "a handshake with a revoked client certificate succeeded"
fi
grep -qi "revoked" "$work/handshake.txt" || fail "the handshake did not explain the revocation: $(cat "$work/handshake.txt")"

step "root status, doctor, audit"
"$meshca" root status --state-dir "$state" >/dev/null
"$meshca" doctor --state-dir "$state" >"$work/doctor.txt" || fail "doctor: $(cat "$work/doctor.txt")"
"$meshca" audit list --state-dir "$state" | grep -q "spiffe://smoke.test/ns/default/sa/api" || fail "audit list misses the agent's certificate"
"$meshca" audit verify --state-dir "$state" >/dev/null || fail "audit verify"

step "graceful stop"
kill -TERM "$agent_pid" "$serve_pid"
wait "$agent_pid" || fail "meshca-agent did not exit 0 on SIGTERM"
wait "$serve_pid" || fail "meshca serve did not exit 0 on SIGTERM"
pids=()
[ ! -e "$work/run/agent.sock" ] || fail "the agent left its socket behind"
echo "smoke: release binaries OK"
