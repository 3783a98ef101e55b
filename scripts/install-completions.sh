#!/usr/bin/env bash
# Installs shell completion (bash, zsh, fish) and man pages for `meshca` and `meshca-agent`, all generated from
# the commands themselves: completion by ArgumentParser's --generate-completion-script, man pages by
# ArgumentParser's generate-manual tool (the one behind `swift package generate-manual`) run on the binaries.
#
#   scripts/install-completions.sh [--no-man] [BIN_DIR]
#
#   BIN_DIR   holds meshca and meshca-agent (default: this checkout's release build if present, else its debug
#             build, else the ones on PATH).
#   PREFIX    where to install (default /usr/local):
#               $PREFIX/share/bash-completion/completions/{meshca,meshca-agent}
#               $PREFIX/share/zsh/site-functions/{_meshca,_meshca-agent}
#               $PREFIX/share/fish/vendor_completions.d/{meshca,meshca-agent}.fish
#               $PREFIX/share/man/man1/meshca.1, meshca.issue.1, ..., meshca-agent.1, ... (`man meshca.issue`)
#   DESTDIR   prepended to every path, for packaging (default empty).
#   GENERATE_MANUAL  an already built generate-manual; otherwise it is built once (offline, from the
#             swift-argument-parser checkout SwiftPM already fetched) into .build/tools/argument-parser.
#   --no-man  installs only the completion scripts (no Swift toolchain needed).
set -euo pipefail
cd "$(dirname "$0")/.."

man=1
if [ "${1:-}" = "--no-man" ]; then man=0; shift; fi
prefix=${PREFIX:-/usr/local}
root="${DESTDIR:-}$prefix"

if [ $# -ge 1 ]; then
    bin=$1
elif [ -x .build/release/meshca ] && [ -x .build/release/meshca-agent ]; then
    bin=.build/release
elif [ -x .build/debug/meshca ] && [ -x .build/debug/meshca-agent ]; then
    bin=.build/debug
elif command -v meshca >/dev/null && command -v meshca-agent >/dev/null; then
    bin=$(dirname "$(command -v meshca)")
else
    echo "install-completions: no meshca and meshca-agent found; build them (scripts/quickstart.sh) or give BIN_DIR" >&2
    exit 1
fi
for tool in meshca meshca-agent; do
    [ -x "$bin/$tool" ] || { echo "install-completions: $bin/$tool is missing or not executable" >&2; exit 1; }
done

bash_dir="$root/share/bash-completion/completions"
zsh_dir="$root/share/zsh/site-functions"
fish_dir="$root/share/fish/vendor_completions.d"
man_dir="$root/share/man/man1"
mkdir -p "$bash_dir" "$zsh_dir" "$fish_dir"

for tool in meshca meshca-agent; do
    "$bin/$tool" --generate-completion-script bash >"$bash_dir/$tool"
    "$bin/$tool" --generate-completion-script zsh >"$zsh_dir/_$tool"
    "$bin/$tool" --generate-completion-script fish >"$fish_dir/$tool.fish"
done
echo "installed completion for meshca and meshca-agent in $bash_dir, $zsh_dir and $fish_dir"

[ $man -eq 1 ] || exit 0

generator=${GENERATE_MANUAL:-}
if [ -z "$generator" ]; then
    source=.build/checkouts/swift-argument-parser
    if [ ! -d "$source" ]; then
        echo "install-completions: $source is missing; run swift build once (or set GENERATE_MANUAL, or pass --no-man)" >&2
        exit 1
    fi
    scratch=.build/tools/argument-parser
    swift build -c release --package-path "$source" --scratch-path "$scratch" --product generate-manual >&2
    generator="$(swift build -c release --package-path "$source" --scratch-path "$scratch" --show-bin-path)/generate-manual"
fi
pages=$(mktemp -d "${TMPDIR:-/tmp}/meshca-man.XXXXXX")
trap 'rm -rf "$pages"' EXIT
for tool in meshca meshca-agent; do
    "$generator" "$bin/$tool" --multi-page --output-directory "$pages"
done
mkdir -p "$man_dir"
install -m 0644 "$pages"/*.1 "$man_dir/"
echo "installed $(ls "$pages" | wc -l) man pages in $man_dir (man meshca, man meshca.issue, man meshca-agent, ...)"
