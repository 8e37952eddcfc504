#!/usr/bin/env bash
# cpumodel baseline versus libvirt's `virsh cpu-baseline`, on the same file
# of 256 host CPUs and the same CPU map (/usr/share/libvirt/cpu_map).
#
# Target: cpumodel at least 10 times faster than virsh (mean wall time of a
# whole process each). Also prints whether both name the same model.
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
# Models and features are ones libvirt 9.0's CPU map knows. Every host has
# vmx, pdcm, ssbd and md-clear on top of its model, plus 2 to 8 features
# drawn at random (fixed seed, so the file is the same on every run).
# `virsh cpu-baseline` and `cpumodel baseline` both read such a file.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FILE=$TMP/hosts-$HOSTS.xml
awk -v n="$HOSTS" 'BEGIN {
    srand(20240601)
    nm = split("Haswell-noTSX-IBRS Broadwell-noTSX-IBRS Skylake-Client-noTSX-IBRS " \
               "Skylake-Server-noTSX-IBRS Cascadelake-Server-noTSX Icelake-Server-noTSX", models, " ")
    nf = split("ss hypervisor tsc_adjust umip stibp arch-capabilities xsaves invtsc " \
               "ds ht tm tm2 est monitor dtes64 ds_cpl smx xtpr pbe acpi pdpe1gb", pool, " ")
    for (i = 0; i < n; i++) {
        print "<cpu>"
        print "  <arch>x86_64</arch>"
        print "  <model>" models[1 + int(rand() * nm)] "</model>"
        print "  <vendor>Intel</vendor>"
        print "  <feature name=\x27vmx\x27/>"
        print "  <feature name=\x27pdcm\x27/>"
        print "  <feature name=\x27ssbd\x27/>"
        print "  <feature name=\x27md-clear\x27/>"
        split("", used)
        extra = 2 + int(rand() * 7)
        while (extra > 0) {
            f = pool[1 + int(rand() * nf)]
            if (f in used) continue
            used[f] = 1
            print "  <feature name=\x27" f "\x27/>"
            extra--
        }
        print "</cpu>"
    }
}' >"$FILE"
echo "Input: $(grep -c '<cpu>' "$FILE") host CPUs, $(wc -c <"$FILE") bytes"

# --- Build -----------------------------------------------------------------
cargo build --release --bin cpumodel

# --- Same answer? ----------------------------------------------------------
VIRSH_CMD="virsh -c $URI cpu-baseline $FILE"
CPUMODEL_CMD="$BIN baseline --cpu-map $CPU_MAP $FILE"
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
    "$VIRSH_CMD" "$CPUMODEL_CMD"
echo
cat "$TMP/result.md"
echo
# Means and medians from hyperfine's JSON export, in command order (seconds).
json_numbers() {
    grep -o "\"$1\": *[0-9.eE+-]*" "$TMP/result.json" | awk -F': *' '{ print $2 }'
}
mapfile -t means < <(json_numbers mean)
mapfile -t medians < <(json_numbers median)
awk -v vm="${means[0]}" -v cm="${means[1]}" -v vd="${medians[0]}" -v cd="${medians[1]}" 'BEGIN {
    printf "virsh cpu-baseline: mean %.2f ms, median %.2f ms\n", vm * 1000, vd * 1000
    printf "cpumodel baseline:  mean %.2f ms, median %.2f ms\n", cm * 1000, cd * 1000
    printf "cpumodel is %.1fx faster than virsh by the means, %.1fx by the medians (target: >= 10x)\n",
        vm / cm, vd / cd
}'
