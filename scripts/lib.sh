# Shared by scripts/quickstart.sh and scripts/test.sh: install what meshca needs when it is missing.
# Debian/Ubuntu: libssl-dev, libsqlite3-dev, libp11-kit-dev (the PKCS#11 header), pkg-config, openssl. Tests also need
# python3 with `cryptography` and softhsm2 (the HSM key tests).

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "meshca: need root (or sudo) to run: $*" >&2; return 1
    fi
}

ensure_system_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "meshca: installing ${missing[*]}" >&2
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

ensure_swift() {
    if ! command -v swift >/dev/null; then
        echo "meshca: the Swift toolchain (6.2 or newer) is not on PATH; install it from swift.org and retry." >&2
        return 1
    fi
}

# The commit `meshca version` reports. Package.swift reads it from the checkout, but SwiftPM keeps its evaluated
# manifest until Package.swift or the environment changes, so after a commit an incremental build would still
# report the previous one (and meshca and meshca-agent could disagree). Passing it in the environment makes a new
# commit a new manifest. An explicit $MESHCA_BUILD_COMMIT is kept; outside a git checkout Package.swift decides.
export_build_commit() {
    [ -n "${MESHCA_BUILD_COMMIT:-}" ] && return 0
    local head
    head=$(git rev-parse --short=12 HEAD 2>/dev/null) || return 0
    [ -z "$(git status --porcelain 2>/dev/null)" ] || head="$head-dirty"
    export MESHCA_BUILD_COMMIT="$head"
}

# For scripts that start processes (smoke-release.sh, check-recipes.sh): `scratch NAME` makes the work directory
# $work, empties the list $pids (add each process started in the background), and on exit stops them (and calls
# scratch_stop when the script defines it), prints the tail of every $work/*.log when the script failed, and
# removes $work. The script defines fail().
scratch() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/meshca-$1.XXXXXX")
    pids=()
    trap scratch_cleanup EXIT
}

scratch_cleanup() {
    local status=$?
    if declare -F scratch_stop >/dev/null; then scratch_stop; fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ $status -ne 0 ]; then
        for log in "$work"/*.log; do [ -f "$log" ] && { echo "--- $log"; tail -n 30 "$log"; }; done >&2
    fi
    rm -rf "$work"
    exit $status
}

# Waits (up to 60 s, a hang guard for a busy machine) until `$@` succeeds; fails at once when a process in $pids
# has died (a crash must not look like a slow start).
wait_for() {
    local what=$1; shift
    for _ in $(seq 1 600); do
        "$@" >/dev/null 2>&1 && return 0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null || fail "a process died (pid $pid, status $(wait "$pid" 2>/dev/null; echo $?)) while waiting for $what"
        done
        sleep 0.1 # hang guard: polling a separate process, no event to wait on
    done
    fail "timed out waiting for $what"
}
