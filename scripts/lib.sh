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
