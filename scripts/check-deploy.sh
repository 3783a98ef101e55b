#!/usr/bin/env bash
# Checks the deployment kit in deploy/ offline (docs/deploy.md):
# - that no file sets init-if-missing (the CA is created with meshca init, never by a unit or manifest);
# - the systemd units in deploy/systemd with `systemd-analyze verify` (any message is a failure), and the
#   sandboxing of meshca-serve.service with `systemd-analyze security --offline=yes` (fails above 2.0);
# - the Kubernetes manifests in deploy/kubernetes against the Kubernetes schemas with the kubernetes-validate
#   PyPI package (strict: unknown fields fail), installed into .build/deploy-venv;
# - the ConfigMap `meshca root export --format configmap` prints, against the schemas and read back with PyYAML;
# - `kubectl kustomize deploy/kubernetes/base`, and the rendered objects against the schemas, when kubectl exists.
# The units are verified with ExecStart pointing at $MESHCA_BIN_DIR (default .build/debug) instead of
# /usr/local/bin; when no meshca binary is there, at stand-in executables (verify only checks that the path
# is executable). Exit status 0 when everything passes, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

fail() { echo "check-deploy: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- no implicit CA --------------------------------------------------------------------------------------
# A unit or manifest that lets meshca serve create a CA would replace the mesh's root whenever its volume is lost:
# no file in deploy/ may set init-if-missing (flag, MESHCA_INIT_IF_MISSING or the YAML key) outside a comment.
if found=$(grep -rnIiE '^[^#]*init[-_]if[-_]missing' deploy/); then
    echo "$found" >&2
    fail "the lines above let meshca serve create a CA on an empty state directory; deploy/ must never pass init-if-missing (create the CA with meshca init, docs/deploy.md)."
fi
echo "check-deploy: ok: nothing in deploy/ sets init-if-missing"

# --- systemd ---------------------------------------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null; then
    ensure_system_packages systemd || true
fi
command -v systemd-analyze >/dev/null \
    || fail "systemd-analyze is missing and the Debian package systemd could not be installed; install it and retry."

bin_dir=${MESHCA_BIN_DIR:-$PWD/.build/debug}
if [ ! -x "$bin_dir/meshca" ] || [ ! -x "$bin_dir/meshca-agent" ]; then
    echo "check-deploy: no meshca and meshca-agent in $bin_dir; verifying the units against stand-in executables" >&2
    bin_dir=$work/bin
    mkdir -p "$bin_dir"
    printf '#!/bin/sh\nexit 0\n' > "$bin_dir/meshca"
    cp "$bin_dir/meshca" "$bin_dir/meshca-agent"
    chmod +x "$bin_dir/meshca" "$bin_dir/meshca-agent"
fi
mkdir -p "$work/units"
units=(deploy/systemd/*.service deploy/systemd/*.timer)
for unit in "${units[@]}"; do
    sed "s#/usr/local/bin/#$bin_dir/#g" "$unit" > "$work/units/$(basename "$unit")"
done
if ! output=$(cd "$work/units" && systemd-analyze verify ./*.service ./*.timer 2>&1) || [ -n "$output" ]; then
    echo "$output" | sed "s#$work/units/#deploy/systemd/#g" >&2
    fail "systemd-analyze verify reported the problems above in deploy/systemd."
fi
echo "check-deploy: ok: systemd-analyze verify: ${#units[@]} units in deploy/systemd"

if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
    for unit in meshca-serve.service meshca-agent@.service; do
        line=$(systemd-analyze security --offline=yes "$work/units/$unit" 2>&1 | grep 'Overall exposure level') \
            || fail "systemd-analyze security --offline=yes $unit printed no exposure level."
        score=$(echo "$line" | sed -E 's/.*: ([0-9]+\.[0-9]+) .*/\1/')
        echo "check-deploy: ok: systemd-analyze security: deploy/systemd/$unit exposure $score (${line##* $score })"
        if [ "$unit" = meshca-serve.service ] && awk -v s="$score" 'BEGIN { exit !(s > 2.0) }'; then
            fail "meshca-serve.service's exposure is $score, above 2.0: a sandboxing line was removed or weakened (docs/deploy.md lists them)."
        fi
    done
else
    echo "check-deploy: skipped: systemd-analyze security --offline (needs systemd 250 or newer)" >&2
fi

# --- Kubernetes ------------------------------------------------------------------------------------------
venv=.build/deploy-venv
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    echo "check-deploy: preparing $venv (kubernetes-validate)" >&2
    python3 -m venv "$venv" || fail "cannot create $venv (python3 -m venv; Debian: apt-get install python3-venv)."
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check kubernetes-validate \
        || fail "cannot install kubernetes-validate from PyPI into $venv."
fi
validate() { "$venv/bin/kubernetes-validate" --strict --quiet "$@"; }

# The base's resources as its kustomization.yaml lists them (serve.yaml and kustomization.yaml are no objects).
base=deploy/kubernetes/base
resources=()
while read -r name; do resources+=("$base/$name"); done \
    < <(sed -n '/^resources:/,/^[a-zA-Z]/{s/^- *//p}' "$base/kustomization.yaml")
[ ${#resources[@]} -gt 0 ] || fail "no resources: list found in $base/kustomization.yaml."
examples=(deploy/kubernetes/examples/*.yaml)
validate "${resources[@]}" "${examples[@]}" \
    || fail "the manifests above do not match the Kubernetes schemas (kubernetes-validate --strict)."
echo "check-deploy: ok: kubernetes-validate --strict: ${#resources[@]} files in $base, ${#examples[@]} in deploy/kubernetes/examples"

# What `meshca root export --format configmap` prints must be a valid ConfigMap whose root-cert.pem is the bundle.
if [ "$bin_dir" != "$work/bin" ]; then
    "$bin_dir/meshca" init --state-dir "$work/state" >/dev/null
    "$bin_dir/meshca" root export --format configmap --namespace istio-system --state-dir "$work/state" > "$work/root-configmap.yaml"
    validate "$work/root-configmap.yaml" \
        || fail "meshca root export --format configmap printed an object that does not match the schemas: $(cat "$work/root-configmap.yaml")"
    "$venv/bin/python" - "$work/root-configmap.yaml" "$work/state/root-cert.pem" <<'PY' \
        || fail "meshca root export --format configmap: the YAML does not carry root-cert.pem as it is (message above)."
import sys, yaml
document = yaml.safe_load(open(sys.argv[1]))
assert document["metadata"] == {**document["metadata"], "name": "istio-ca-root-cert", "namespace": "istio-system"}, document["metadata"]
assert document["data"] == {"root-cert.pem": open(sys.argv[2]).read()}, document["data"]
PY
    echo "check-deploy: ok: meshca root export --format configmap: a valid ConfigMap holding root-cert.pem byte for byte"
else
    echo "check-deploy: skipped: meshca root export --format configmap (no meshca binary in \$MESHCA_BIN_DIR)" >&2
fi

if command -v kubectl >/dev/null; then
    kubectl kustomize "$base" > "$work/rendered.yaml" || fail "kubectl kustomize $base failed (message above)."
    validate "$work/rendered.yaml" || fail "the objects kubectl kustomize $base renders do not match the schemas."
    echo "check-deploy: ok: kubectl kustomize $base: $(grep -c '^kind:' "$work/rendered.yaml") objects, valid"
    # The replicas overlay: valid objects, two replicas, the state from the Secret read-only, no volume claim, and
    # the ledger in PostgreSQL with its password from a file.
    overlay=deploy/kubernetes/overlays/replicas
    kubectl kustomize "$overlay" > "$work/replicas.yaml" || fail "kubectl kustomize $overlay failed (message above)."
    validate "$work/replicas.yaml" || fail "the objects kubectl kustomize $overlay renders do not match the schemas."
    "$venv/bin/python" - "$work/replicas.yaml" <<'PY' || fail "the replicas overlay does not render as docs/replicas.md describes (above)."
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = [d["kind"] for d in docs]
assert "PersistentVolumeClaim" not in kinds, "the overlay still has the base's volume claim"
deployment = next(d for d in docs if d["kind"] == "Deployment")
spec = deployment["spec"]
assert spec["replicas"] == 2 and spec["strategy"]["type"] == "RollingUpdate", spec
pod = spec["template"]["spec"]
state = next(v for v in pod["volumes"] if v["name"] == "state")
assert set(state) == {"name", "secret"} and state["secret"]["secretName"] == "meshca-cacerts", state
mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "state")
assert mount.get("readOnly") is True, mount
config = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["serve.yaml"])
assert config["ledger"].startswith("postgres://") and "@" in config["ledger"] and ":" not in config["ledger"].split("@")[0][len("postgres://"):], config["ledger"]
assert config["ledger-password-file"].startswith("/var/run/secrets/meshca/ledger/"), config
PY
    echo "check-deploy: ok: kubectl kustomize $overlay: $(grep -c '^kind:' "$work/replicas.yaml") objects, valid; 2 replicas on PostgreSQL, state read-only from a Secret"
else
    echo "check-deploy: skipped: kubectl kustomize $base (kubectl is not installed)" >&2
fi
echo "check-deploy: all deployment checks passed"
