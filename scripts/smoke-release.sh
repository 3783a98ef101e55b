#!/usr/bin/env bash
# Smoke suite for the release binaries scripts/quickstart.sh builds (static Swift runtime, no ICU data):
# a daemon, a join token, a remote issue, meshca-agent with --crl-url and the Workload API, a handshake,
# root status, doctor and audit verify, each through the real executables on loopback; then two replicas on one
# PostgreSQL ledger (a throwaway server from the distribution's postgresql package, skipped when it is not
# installed) with `issue --server` and an agent failing over from a stopped replica (docs/replicas.md).
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

# Two replicas on one PostgreSQL ledger, as docs/replicas.md's steps do it: a database and a password user, the CA
# and a token with MESHCA_LEDGER exported, two `meshca serve` on the same state directory, `issue --server` through
# each, then an agent given a stopped replica first and the live one second.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    echo "smoke: skipping the PostgreSQL replicas: the postgresql package is not installed (scripts/test.sh installs it)"
    echo "smoke: release binaries OK"
    exit 0
fi
step "PostgreSQL ledger: a throwaway server ($pg_bin)"
# PostgreSQL refuses to run as root: then its tools run as the postgres user, in a directory that user owns.
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/meshca-smoke-pg.XXXXXX")
as_pg=()
if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); chown postgres "$pg_dir"; fi
scratch_stop() {
    "${as_pg[@]}" "$pg_bin/pg_ctl" stop -m immediate -D "$pg_dir/data" >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
}
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync >"$work/initdb.log"
printf 'host all meshca 127.0.0.1/32 scram-sha-256\nlocal all postgres trust\n' >"$pg_dir/data/pg_hba.conf"
"${as_pg[@]}" "$pg_bin/pg_ctl" start -w -D "$pg_dir/data" -l "$pg_dir/server.log" \
    -o "-p $pg_port -k $pg_dir/data -c listen_addresses=127.0.0.1" >"$work/pg_ctl.log" || fail "PostgreSQL did not start: $(tail -n 5 "$pg_dir/server.log")"
password=$(openssl rand -hex 16)
"$pg_bin/psql" -h "$pg_dir/data" -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -c "CREATE ROLE meshca LOGIN PASSWORD '$password'" -c "CREATE DATABASE meshca OWNER meshca" >/dev/null
install -m 0600 /dev/null "$work/ledger-password"
echo "$password" >"$work/ledger-password"
export MESHCA_LEDGER="postgres://meshca@127.0.0.1:$pg_port/meshca?sslmode=disable"
export MESHCA_LEDGER_PASSWORD_FILE="$work/ledger-password"

step "two replicas on one ledger"
shared="$work/shared-state"
"$meshca" init --state-dir "$shared" --trust-domain smoke.test >/dev/null
[ ! -e "$shared/ledger.db" ] || fail "init made an SQLite ledger although MESHCA_LEDGER names PostgreSQL"
"$meshca" token create --state-dir "$shared" --sa web --uses 2 >"$work/web.token"
for replica in 1 2; do
    "$meshca" serve --state-dir "$shared" --listen 127.0.0.1:0 --monitoring 127.0.0.1:0 >"$work/replica$replica.out" 2>"$work/replica$replica.log" &
    pids+=($!); eval "replica${replica}_pid=$!"
done
for replica in 1 2; do
    wait_for "replica $replica to listen" grep -q "listening on" "$work/replica$replica.out"
    eval "replica${replica}=\$(sed -n 's/^meshca serve: listening on \([^ ]*\) (gRPC.*/\1/p' \"$work/replica$replica.out\")"
done
"$meshca" issue --sa db --server "$replica1" --token "$("$meshca" token create --state-dir "$shared" --sa db)" \
    --trust-domain smoke.test --out "$work/db" >/dev/null || fail "issue through replica 1"
"$meshca" issue --sa cache --server "$replica2" --token "$("$meshca" token create --state-dir "$shared" --sa cache)" \
    --trust-domain smoke.test --out "$work/cache" >/dev/null || fail "issue through replica 2"

step "failover: replica 1 stopped, issue --server and an agent move to replica 2"
kill -TERM "$replica1_pid"
wait "$replica1_pid" || fail "replica 1 did not exit 0 on SIGTERM"
pids=("$replica2_pid")
"$meshca" issue --sa web --server "$replica1" --server "$replica2" --token "$(cat "$work/web.token")" \
    --trust-domain smoke.test --out "$work/web" >/dev/null || fail "issue --server did not fail over to replica 2"
"$agent" --ca "$replica1" --ca "$replica2" --sa web --trust-domain smoke.test --token-file "$work/web.token" \
    --out "$work/web-agent" --status-addr 127.0.0.1:0 >"$work/replica-agent.out" 2>"$work/replica-agent.log" &
pids+=($!); replica_agent_pid=$!
wait_for "the agent's files from replica 2" test -s "$work/web-agent/cert-chain.pem"
status_addr=$(sed -n 's|.*status on http://\([^ ]*\).*|\1|p' "$work/replica-agent.out")
"$agent" status --status-addr "$status_addr" | grep -q "^ca  *$replica2 " || fail "the agent's status does not name replica 2"

step "the shared ledger: audit list and verify"
"$meshca" audit list --state-dir "$shared" >"$work/replica-audit.txt"
for sa in db cache web; do
    grep -q "spiffe://smoke.test/ns/default/sa/$sa" "$work/replica-audit.txt" || fail "audit list misses sa $sa"
done
"$meshca" audit verify --state-dir "$shared" >/dev/null || fail "audit verify of the PostgreSQL ledger"
kill -TERM "$replica_agent_pid" "$replica2_pid"
wait "$replica_agent_pid" || fail "the replicas' agent did not exit 0 on SIGTERM"
wait "$replica2_pid" || fail "replica 2 did not exit 0 on SIGTERM"
pids=()
echo "smoke: release binaries OK"
