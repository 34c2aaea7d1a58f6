#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo-fuzz) of every parser of outside
# input: builds every target in fuzz/ and runs each for SECONDS (default 30) on top
# of its committed seeds (fuzz/corpus/<target>/seed-*), then prints the executions
# per target. A target that fails a property or crashes stops the script with its
# reproducer in fuzz/artifacts/<target>/; replay it with
#   cargo +nightly fuzz run --sanitizer none <target> <file>
# and turn it into a regression test in the normal test suite before fixing.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (CI: FUZZ_DEV=1 scripts/fuzz.sh 10)
# RUNS=N stops each target after N executions (libFuzzer's -runs, the committed seeds
# included), or after SECONDS if that comes first: the long run is
#   RUNS=10000000 nice -n 19 scripts/fuzz.sh 3600
# Every target's executions, seconds and executions a second are printed as it ends
# and in the table at the end.
# FUZZ_DEV=1 builds the targets without optimisation: a build of a few minutes instead
# of about ten on 2 cores, for far fewer executions a second — right for CI's smoke
# run over the seeds, wrong for a long run.
#
# Installs cargo-fuzz from crates.io when missing; needs the nightly toolchain.
# Built without a sanitizer: the broker forbids unsafe code, so AddressSanitizer
# would only slow every execution down; overflow checks and debug assertions stay on.
# What a run learns is kept in fuzz/target/corpus/<target> (not committed) and
# reused by the next run on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -lt 1 ]]; then
    echo "fuzz.sh: SECONDS must be a positive integer, not '$seconds'" >&2
    exit 2
fi
runs="${RUNS:--1}"
if ! [[ "$runs" =~ ^(-1|[1-9][0-9]*)$ ]]; then
    echo "fuzz.sh: RUNS must be a positive integer, not '$runs'" >&2
    exit 2
fi

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz from crates.io" >&2
    cargo install --locked cargo-fuzz
fi

cd fuzz
mapfile -t all < <(cargo +nightly fuzz list)
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${all[@]}")
fi

flags=(--sanitizer none)
if [[ "${FUZZ_DEV:-0}" == 1 ]]; then
    flags+=(--dev)
fi

build_start=$SECONDS
if [[ $# -eq 0 ]]; then
    cargo +nightly fuzz build "${flags[@]}"
else
    for target in "${targets[@]}"; do
        cargo +nightly fuzz build "${flags[@]}" "$target"
    done
fi
echo "fuzz.sh: built ${#targets[@]} targets in $((SECONDS - build_start)) s"

declare -A executions elapsed
# final_stat LOG NAME: one of libFuzzer's final statistics (-print_final_stats=1).
final_stat() { grep -o "stat::$2: *[0-9]*" "$1" | grep -o '[0-9]*$' || echo '?'; }
per_second() { awk -v n="$1" -v s="$2" 'BEGIN { if (n ~ /^[0-9]+$/ && s > 0) printf "%.0f", n / s; else print "?" }'; }
limit="${seconds} s"
[[ "$runs" == -1 ]] || limit="$runs executions or ${seconds} s"
for target in "${targets[@]}"; do
    corpus="target/corpus/$target"
    mkdir -p "$corpus" "artifacts/$target"
    log="target/fuzz-$target.log"
    echo "fuzz.sh: $target for $limit"
    start=$(date +%s.%N)
    if ! cargo +nightly fuzz run "${flags[@]}" "$target" "$corpus" "corpus/$target" -- \
        -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz.sh: $target FAILED; reproducer in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    # Fuzzing time only: cargo's check that the build is fresh is under a second.
    elapsed[$target]=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
    executions[$target]="$(final_stat "$log" number_of_executed_units)"
    echo "fuzz.sh: $target: ${executions[$target]} executions in ${elapsed[$target]} s" \
        "($(per_second "${executions[$target]}" "${elapsed[$target]}")/s), no finding"
done

printf '%-20s %15s %9s %9s\n' target executions seconds 'exec/s'
for target in "${targets[@]}"; do
    printf '%-20s %15s %9s %9s\n' "$target" "${executions[$target]}" "${elapsed[$target]}" \
        "$(per_second "${executions[$target]}" "${elapsed[$target]}")"
done
