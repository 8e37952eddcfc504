#!/usr/bin/env bash
# cpumodel baseline versus libvirt's `virsh cpu-baseline`, on the same file
# of 256 host CPUs and the same CPU map (/usr/share/libvirt/cpu_map).
#
# Target: cpumodel at least 10 times faster than virsh (mean wall time of a
# whole process each). Also prints whether both name the same model, and
# times cpumodel with its embedded database (libvirt's upstream map) too.
#
# Needs root: it installs libvirt, QEMU and hyperfine from Debian when they
# are missing, and starts libvirtd itself when it is not running (no systemd
# needed). It leaves libvirtd running.
#
# Usage: scripts/bench-virsh.sh   (from anywhere; runs at the repository root)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=target/release/cpumodel
CPU_MAP=/usr/share/libvirt/cpu_map
URI=qemu:///system
HOSTS=256

# shellcheck source=scripts/lib/libvirtd.sh
source scripts/lib/libvirtd.sh

ensure_packages libvirtd:libvirt-daemon-system virsh:libvirt-clients qemu-system-x86_64:qemu-system-x86 hyperfine:hyperfine
ensure_libvirtd "$URI"

# --- Input: 256 host CPUs, one plain concatenation of <cpu> elements --------
# Written by scripts/fleet-xml.sh (fixed seed, so the file is the same on
# every run). `virsh cpu-baseline` and `cpumodel baseline` both read such a
# file; virsh accepts at most 256 CPUs.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FILE=$TMP/hosts-$HOSTS.xml
scripts/fleet-xml.sh "$HOSTS" >"$FILE"
echo "Input: $(grep -c '<cpu>' "$FILE") host CPUs, $(wc -c <"$FILE") bytes"

# --- Build -----------------------------------------------------------------
cargo build --release --bin cpumodel

# --- Same answer? ----------------------------------------------------------
VIRSH_CMD="virsh -c $URI cpu-baseline $FILE"
CPUMODEL_CMD="$BIN baseline --cpu-map $CPU_MAP $FILE"
EMBEDDED_CMD="$BIN baseline $FILE"
$VIRSH_CMD >"$TMP/virsh.xml"
$CPUMODEL_CMD >"$TMP/cpumodel.xml"
model_of() {
    sed -n 's:.*<model[^>]*>\([^<]*\)</model>.*:\1:p' "$1" | head -n 1
}
virsh_model=$(model_of "$TMP/virsh.xml")
cpumodel_model=$(model_of "$TMP/cpumodel.xml")
echo
echo "virsh cpu-baseline:"
cat "$TMP/virsh.xml"
echo "cpumodel baseline:"
cat "$TMP/cpumodel.xml"
echo
if [ "$virsh_model" = "$cpumodel_model" ]; then
    echo "Same model: yes ($virsh_model)"
else
    echo "Same model: NO (virsh: $virsh_model, cpumodel: $cpumodel_model)"
fi
# virsh ends its output with an empty line; compare without it.
if diff <(sed '/^$/d' "$TMP/virsh.xml") <(sed '/^$/d' "$TMP/cpumodel.xml") >/dev/null; then
    echo "Same <cpu> element: yes"
else
    echo "Same <cpu> element: no"
fi

# --- Timing ----------------------------------------------------------------
# hyperfine 1.15 (Debian 12) cannot export Markdown to stdout ("-"), so the
# table goes through a file. -N runs each command without a shell: both take
# milliseconds, close to the noise in hyperfine's shell start-up correction.
echo
hyperfine -N --warmup 3 \
    --export-markdown "$TMP/result.md" --export-json "$TMP/result.json" \
    "$VIRSH_CMD" "$CPUMODEL_CMD" "$EMBEDDED_CMD"
echo
cat "$TMP/result.md"
echo
# Means and medians from hyperfine's JSON export, in command order (seconds).
json_numbers() {
    grep -o "\"$1\": *[0-9.eE+-]*" "$TMP/result.json" | awk -F': *' '{ print $2 }'
}
mapfile -t means < <(json_numbers mean)
mapfile -t medians < <(json_numbers median)
awk -v vm="${means[0]}" -v cm="${means[1]}" -v em="${means[2]}" \
    -v vd="${medians[0]}" -v cd="${medians[1]}" -v ed="${medians[2]}" 'BEGIN {
    printf "virsh cpu-baseline:                     mean %.2f ms, median %.2f ms\n", vm * 1000, vd * 1000
    printf "cpumodel baseline --cpu-map (same map): mean %.2f ms, median %.2f ms\n", cm * 1000, cd * 1000
    printf "cpumodel baseline (embedded database):  mean %.2f ms, median %.2f ms\n", em * 1000, ed * 1000
    printf "cpumodel --cpu-map is %.1fx faster than virsh by the means, %.1fx by the medians (target: >= 10x)\n",
        vm / cm, vd / cd
    printf "cpumodel (embedded) is %.1fx faster than virsh by the means, %.1fx by the medians\n",
        vm / em, vd / ed
}'
