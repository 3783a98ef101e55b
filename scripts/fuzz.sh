#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/Targets, declared only when MESHCA_FUZZ=1) with AddressSanitizer in
# .build-fuzz and runs them; see "Fuzzing" in docs/development.md.
#
# Usage: scripts/fuzz.sh [TARGET|all] [RUNS]
#   TARGET: csr, chain, crl, token, jwt, request, config, or all (the default); RUNS: default 1000000.
# Each target starts from Fuzz/Corpus/TARGET, works in .build-fuzz/corpus/TARGET, and at the end merges the inputs
# that reach new code back into Fuzz/Corpus/TARGET (commit them). A crash or leak stops the run and leaves its
# input in Fuzz/Crashes/TARGET/crash-* (or leak-*, oom-*, timeout-*): fix the parser, rename the file after what
# it tests, and commit it; MeshCAFuzzReplayTests replays it in every `swift test`.
# Extra libFuzzer flags can be passed in MESHCA_FUZZ_FLAGS (e.g. "-max_total_time=600").
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_swift
ensure_system_packages libssl-dev libsqlite3-dev libp11-kit-dev pkg-config

all=(csr chain crl token jwt request config)
target=${1:-all}
runs=${2:-1000000}
if [ "$target" = all ]; then targets=("${all[@]}"); else targets=("$target"); fi
for t in "${targets[@]}"; do
    [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz: unknown target $t (known: ${all[*]})" >&2; exit 64; }
done

# Swift takes only the last -sanitize= flag, so the combined one comes last (C targets get both from --sanitize).
build=(swift build -c release --scratch-path .build-fuzz --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address)
export MESHCA_FUZZ=1
# The config target writes each input to a temporary file: on tmpfs that is twice as fast.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
# With MESHCA_FUZZ=1 the package holds only the fuzz executables and the libraries they use: this builds them all.
"${build[@]}"
bin=$("${build[@]}" --show-bin-path)
summary=()
for t in "${targets[@]}"; do
    work=.build-fuzz/corpus/$t
    mkdir -p "$work" "Fuzz/Corpus/$t" "Fuzz/Crashes/$t"
    log=.build-fuzz/fuzz-$t.log
    before=$(find "Fuzz/Corpus/$t" -type f | wc -l)
    echo "fuzz: $t, $runs runs (log: $log)" >&2
    status=0
    # shellcheck disable=SC2086
    "$bin/fuzz-$t" -runs="$runs" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="Fuzz/Crashes/$t/" ${MESHCA_FUZZ_FLAGS:-} "$work" "Fuzz/Corpus/$t" >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        tail -40 "$log" >&2
        echo "fuzz: $t FAILED (exit $status); the input is in Fuzz/Crashes/$t/, the full report in $log" >&2
        exit 1
    fi
    done_runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    seconds=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo "?")
    "$bin/fuzz-$t" -merge=1 "Fuzz/Corpus/$t" "$work" >>"$log" 2>&1
    after=$(find "Fuzz/Corpus/$t" -type f | wc -l)
    summary+=("$t: $done_runs runs in ${seconds}s, no crash or leak; corpus $after files ($((after - before)) added by the merge)")
done
printf 'fuzz: %s\n' "${summary[@]}"
