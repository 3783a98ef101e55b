#!/usr/bin/env bash
# Checks the container image's runtime stage without a container builder: assembles its root file system from
# the release binaries (scripts/assemble-rootfs.sh, as deploy/container/Containerfile does), checks it holds no
# shell, and runs the binaries inside it with chroot as the image's user (65532) with only its libraries:
# --version of both, then `meshca init`, `meshca issue` and `meshca doctor` on its /var/lib/meshca.
#
#   scripts/check-container.sh [BIN_DIR]      (default: the release bin path; needs root for chroot and /proc)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$(swift build -c release --static-swift-stdlib --show-bin-path)}
grep -q '^FROM scratch' deploy/container/Containerfile || { echo "check-container: the runtime stage is not FROM scratch" >&2; exit 1; }
grep -q 'scripts/assemble-rootfs.sh' deploy/container/Containerfile || { echo "check-container: the Containerfile does not use assemble-rootfs.sh" >&2; exit 1; }
if [ "$(id -u)" != 0 ] || ! command -v chroot >/dev/null; then
    echo "meshca: skipping the container root file system check: it needs root (chroot, mount /proc)" >&2
    exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/meshca-rootfs.XXXXXX")
root="$work/rootfs"
cleanup() { umount "$root/proc" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
scripts/assemble-rootfs.sh "$bin" "$root"
for shell in bin/sh bin/bash usr/bin/sh usr/bin/env; do
    [ ! -e "$root/$shell" ] || { echo "check-container: the image holds /$shell" >&2; exit 1; }
done
mkdir -p "$root/proc"
# CommandLine.arguments reads /proc/self/cmdline; every container runtime mounts /proc.
if ! mount -t proc proc "$root/proc" 2>/dev/null; then
    echo "meshca: skipping the container root file system run: /proc cannot be mounted here (the tree was assembled and has no shell)" >&2
    exit 0
fi
run() { chroot --userspec=65532:65532 "$root" "$@"; }
run /usr/local/bin/meshca --version | grep -q '^meshca ' || { echo "check-container: meshca --version failed in the image" >&2; exit 1; }
run /usr/local/bin/meshca version | grep -q '^openssl  *OpenSSL 3' || { echo "check-container: meshca version finds no OpenSSL in the image (meshca handshake would not run)" >&2; exit 1; }
run /usr/local/bin/meshca-agent --version | grep -q '^meshca-agent ' || { echo "check-container: meshca-agent --version failed" >&2; exit 1; }
run /usr/local/bin/meshca init --state-dir /var/lib/meshca/state >/dev/null
run /usr/local/bin/meshca issue --sa web --state-dir /var/lib/meshca/state --out /var/lib/meshca/web >/dev/null
run /usr/local/bin/meshca doctor --state-dir /var/lib/meshca/state >/dev/null
[ "$(stat -c %a "$root/var/lib/meshca/web/key.pem")" = 600 ] || { echo "check-container: key.pem is not 0600 in the image" >&2; exit 1; }
umount "$root/proc"
echo "container root file system OK: $(du -sh "$root" | cut -f1), $(find "$root" -type f | wc -l) files, no shell; meshca and meshca-agent ran in it as uid 65532"
