#!/usr/bin/env bash
# Whole-process benchmark of `cpumodel decode` on the benchmark fixture.
#
# Target: median wall time of one `cpumodel decode` process <= 5 ms, host and
# guest. Also prints the peak resident set size of one decode run.
#
# Usage: scripts/bench-cli.sh   (from anywhere; runs at the repository root)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FIXTURE=crates/cpudef/benches/data/this-host.xml
BIN=target/release/cpumodel

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

apt_install() {
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

if ! command -v hyperfine >/dev/null 2>&1; then
    apt_install hyperfine
fi
if [ ! -x /usr/bin/time ]; then
    apt_install time
fi

cargo build --release

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The first value of "KEY": NUMBER in hyperfine's JSON export (seconds).
json_number() {
    grep -o "\"$1\": *[0-9.eE+-]*" "$2" | head -n 1 | awk -F': *' '{ print $2 }'
}

# hyperfine before 1.16 cannot export to stdout ("-"), so export to files.
# The Markdown table has mean, min and max; the median comes from the JSON.
#
# -N (--shell=none) runs the command without an intermediate shell. A decode
# takes about a millisecond, less than the noise in hyperfine's estimate of
# the shell's start-up time, so subtracting that estimate can yield 0 ms or
# fail outright; without the shell nothing is subtracted and the figure is
# the whole cpumodel process: exec, loading the database, reading, decoding
# and printing.
bench() {
    local title=$1 cmd=$2
    echo "## $title"
    echo
    hyperfine -N --warmup 20 --runs 200 \
        --export-markdown "$TMP/result.md" --export-json "$TMP/result.json" \
        "$cmd"
    echo
    cat "$TMP/result.md"
    echo
    local mean median
    mean=$(json_number mean "$TMP/result.json")
    median=$(json_number median "$TMP/result.json")
    awk -v mean="$mean" -v median="$median" 'BEGIN {
        printf "Median: %.3f ms, mean: %.3f ms (target: median <= 5 ms)\n\n",
            median * 1000, mean * 1000
    }'
}

bench "cpumodel decode (host)" "$BIN decode $FIXTURE"
bench "cpumodel decode --guest" "$BIN decode --guest $FIXTURE"

for args in "decode" "decode --guest"; do
    # shellcheck disable=SC2086 # $args is deliberately split into words.
    rss_kb=$(/usr/bin/time -v "$BIN" $args "$FIXTURE" 2>&1 >/dev/null |
        awk -F': *' '/Maximum resident set size/ { print $2 }')
    echo "Peak RSS, cpumodel $args $FIXTURE: ${rss_kb} KiB"
done
