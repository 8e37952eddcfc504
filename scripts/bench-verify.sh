#!/usr/bin/env bash
# Whole-process benchmark of `cpumodel verify` with 4 vCPUs: probe KVM, mask
# and build the table, run the CPUID guest on every vCPU of a real KVM VM,
# compare and print.
#
# Target: median wall time of one `cpumodel verify --model X --vcpus 4`
# process <= 200 ms. Needs a usable /dev/kvm.
#
# Usage: scripts/bench-verify.sh   (from anywhere; runs at the repository root)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=target/release/cpumodel

if ! command -v hyperfine >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine
    fi
fi

cargo build --release

if ! "$BIN" dump --kvm >/dev/null; then
    echo "bench-verify: /dev/kvm is not usable here; nothing to measure" >&2
    exit 1
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The first value of "KEY": NUMBER in hyperfine's JSON export (seconds).
json_number() {
    grep -o "\"$1\": *[0-9.eE+-]*" "$2" | head -n 1 | awk -F': *' '{ print $2 }'
}

# -N: no intermediate shell (a run takes milliseconds, near the noise of
# hyperfine's shell correction). -i: verify exits 1 when the guest saw
# something else than the intended table, which is a result, not a failure
# of the run.
echo "| Command | Median | Mean | Min … max | Exit code |"
echo "|---|---|---|---|---|"
for model in Westmere Skylake-Client-IBRS Cascadelake-Server EPYC-Rome; do
    cmd="$BIN verify --model $model --vcpus 4"
    if ! hyperfine -N -i --warmup 3 --runs 30 --export-json "$TMP/result.json" "$cmd" \
        >"$TMP/log" 2>&1; then
        cat "$TMP/log" >&2
        exit 1
    fi
    code=0
    $cmd >/dev/null || code=$?
    awk -v cmd="$cmd" -v code="$code" \
        -v median="$(json_number median "$TMP/result.json")" \
        -v mean="$(json_number mean "$TMP/result.json")" \
        -v min="$(json_number min "$TMP/result.json")" \
        -v max="$(json_number max "$TMP/result.json")" 'BEGIN {
        printf "| `%s` | %.2f ms | %.2f ms | %.2f … %.2f ms | %d |\n",
            cmd, median * 1000, mean * 1000, min * 1000, max * 1000, code
    }'
done
