#!/usr/bin/env bash
# Assembles the container image's root file system: `meshca` and `meshca-agent` (stripped) under /usr/local/bin,
# exactly the shared libraries they load (as ldd resolves them here, and the libssl `meshca` opens itself) and the
# dynamic loader, an /etc/passwd and /etc/group naming the unprivileged user meshca (65532), and an empty, writable
# /var/lib/meshca. No shell, no package manager: nothing else. deploy/container/Containerfile runs this in its build
# stage and copies the result into a `FROM scratch` image; scripts/check-container.sh runs the binaries inside it
# with chroot.
#
#   scripts/assemble-rootfs.sh BIN_DIR OUT_DIR
set -euo pipefail
bin=${1:?usage: scripts/assemble-rootfs.sh BIN_DIR OUT_DIR}
out=${2:?usage: scripts/assemble-rootfs.sh BIN_DIR OUT_DIR}
for exe in meshca meshca-agent; do
    [ -x "$bin/$exe" ] || { echo "assemble-rootfs: $bin/$exe is missing; build it first (scripts/quickstart.sh)" >&2; exit 1; }
done
mkdir -p "$out/usr/local/bin" "$out/etc" "$out/tmp" "$out/var/lib/meshca" "$out/var/run/meshca"
chmod 1777 "$out/tmp"
# Copies every library FILE loads (as ldd resolves them here) and the loader itself into the tree, each at the path
# the loader looks for it.
copy_libraries_of() {
    ldd "$1" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | while read -r lib; do
        mkdir -p "$out$(dirname "$lib")"
        cp -L "$lib" "$out$lib"
    done
}
for exe in meshca meshca-agent; do
    cp "$bin/$exe" "$out/usr/local/bin/$exe"
    strip "$out/usr/local/bin/$exe" 2>/dev/null || true
    copy_libraries_of "$bin/$exe"
done
# The system OpenSSL that `meshca handshake` (and `meshca version`, for its version) opens on first use rather than
# at start-up, so ldd does not list it: libssl.so.3 and what it loads.
libssl=$(ldconfig -p | awk '$1 == "libssl.so.3" { print $NF; exit }')
[ -n "$libssl" ] || { echo "assemble-rootfs: libssl.so.3 not found (apt-get install libssl3)" >&2; exit 1; }
mkdir -p "$out$(dirname "$libssl")"
cp -L "$libssl" "$out$libssl"
copy_libraries_of "$libssl"
printf 'root:x:0:0:root:/:/nonexistent\nmeshca:x:65532:65532:meshca:/var/lib/meshca:/nonexistent\n' > "$out/etc/passwd"
printf 'root:x:0:\nmeshca:x:65532:\n' > "$out/etc/group"
chown -R 65532:65532 "$out/var/lib/meshca" "$out/var/run/meshca" 2>/dev/null || true
chmod 0700 "$out/var/lib/meshca"
