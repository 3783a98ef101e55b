#!/usr/bin/env bash
# Runs the recipes in deploy/recipes (docs/recipes.md) as written, with /run/meshca/ pointed at a temporary
# directory: a meshca serve allowing web the DNS name web.local, two meshca-agents (web, with --dns-name and
# --combined-pem, and client, with --combined-pem) on 20 s certificates, nginx and HAProxy serving mTLS on web's
# files and reloaded by the agent's --on-rotate hook, and curl-client.sh calling both every 0.2 s while the
# certificates renew. Fails on any failed request, or when fewer than two renewals happened.
#
#   scripts/check-recipes.sh [BIN_DIR]     (default: the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$(swift build --show-bin-path)}
for tool in nginx haproxy curl openssl; do
    command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin command -v "$tool" >/dev/null || {
        echo "meshca: skipping the recipe checks: $tool is not installed (apt-get install nginx-light haproxy curl)" >&2
        exit 0
    }
done
export PATH=$PATH:/usr/sbin
. scripts/lib.sh
scratch recipes
run="$work/run/meshca"
mkdir -p "$run"
fail() { echo "check-recipes: FAILED: $*" >&2; exit 1; }
# nginx runs as a daemon of its own (not in $pids): stopped through its pid file.
scratch_stop() { [ -s "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; }
recipe() { sed "s|/run/meshca/|$run/|g; s|/run/nginx.pid|$work/nginx.pid|g; s|/run/haproxy.pid|$work/haproxy.pid|g" "deploy/recipes/$1"; }

state="$work/state"
"$bin/meshca" init --state-dir "$state" >/dev/null
"$bin/meshca" serve --state-dir "$state" --listen 127.0.0.1:0 --monitoring 127.0.0.1:0 \
    --allow-dns-sans 'default/web=web.local' >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
wait_for "meshca serve to listen" grep -q "listening on" "$work/serve.out"
grpc=$(sed -n 's/^meshca serve: listening on \([^ ]*\) (gRPC.*/\1/p' "$work/serve.out")

# The hook from docs/recipes.md: reload whichever server runs; on the first write neither does yet.
recipe on-rotate.sh >"$work/on-rotate.sh"
chmod +x "$work/on-rotate.sh"
for sa in web client; do
    "$bin/meshca" token create --state-dir "$state" --sa "$sa" >"$work/$sa.token" 2>/dev/null
    chmod 0600 "$work/$sa.token"
    extra=()
    [ "$sa" = web ] && extra=(--dns-name web.local --on-rotate "$work/on-rotate.sh; echo >> $work/web-rotations")
    "$bin/meshca-agent" --ca "$grpc" --sa "$sa" --token-file "$work/$sa.token" --out "$run/$sa" --ttl 20s \
        --combined-pem combined.pem --status-addr 127.0.0.1:0 "${extra[@]}" >"$work/agent-$sa.out" 2>"$work/agent-$sa.log" &
    pids+=($!)
done
wait_for "web's files" test -s "$run/web/combined.pem"
wait_for "client's files" test -s "$run/client/combined.pem"

# nginx will not start before the files exist, so it starts now (in systemd: After= the agent, see the page).
recipe nginx-mtls.conf >"$work/nginx-server.conf"
cat >"$work/nginx.conf" <<CONF
pid $work/nginx.pid;
error_log $work/nginx.log warn;
events {}
http {
    access_log off;
    client_body_temp_path $work/nginx-body;
    include $work/nginx-server.conf;
}
CONF
nginx -c "$work/nginx.conf" -g 'daemon on;'
recipe haproxy-mtls.cfg >"$work/haproxy.cfg"
haproxy -W -db -f "$work/haproxy.cfg" -p "$work/haproxy.pid" >"$work/haproxy.log" 2>&1 &
pids+=($!)
recipe curl-client.sh >"$work/curl-client.sh"
chmod +x "$work/curl-client.sh"
wait_for "nginx to answer" "$work/curl-client.sh" https://web.local:8443/
wait_for "HAProxy to answer" "$work/curl-client.sh" https://web.local:8444/
served() { echo | openssl s_client -connect "127.0.0.1:$1" -servername web.local -cert "$run/client/combined.pem" 2>/dev/null | openssl x509 -noout -serial; }
first_nginx=$(served 8443)
first_haproxy=$(served 8444)

# 30 s of requests to both while the 20 s certificates renew (at about half-life) and the servers reload.
requests=0
failures=0
end=$((SECONDS + 30))
while [ $SECONDS -lt $end ]; do
    for url in https://web.local:8443/ https://web.local:8444/; do
        requests=$((requests + 1))
        "$work/curl-client.sh" "$url" >/dev/null 2>>"$work/curl.log" || failures=$((failures + 1))
    done
    sleep 0.2 # pacing between requests, not a wait
done
rotations=$(($(wc -l <"$work/web-rotations") - 1))
[ "$failures" -eq 0 ] || fail "$failures of $requests requests failed across $rotations renewals: $(tail -n 3 "$work/curl.log")"
[ "$rotations" -ge 2 ] || fail "only $rotations renewals of web's certificate in 30 s"
[ "$first_nginx" != "$(served 8443)" ] || fail "nginx still serves the first certificate ($first_nginx) after $rotations renewals"
[ "$first_haproxy" != "$(served 8444)" ] || fail "HAProxy still serves the first certificate ($first_haproxy) after $rotations renewals"
echo "recipes OK: nginx and HAProxy (mTLS on meshca-agent's files) answered all $requests curl requests across $rotations renewals, reloaded by --on-rotate"
