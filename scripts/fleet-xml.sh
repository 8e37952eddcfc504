#!/usr/bin/env bash
# Writes a file of N host CPUs (default 256) to standard output: a plain
# concatenation of top-level <cpu> elements, as fleet tools collect them.
#
# Models and features are ones libvirt 9.0's CPU map knows. Every host has
# vmx, pdcm, ssbd and md-clear on top of its model, plus 2 to 8 features
# drawn at random (fixed seed, so the file is the same on every run, and the
# first N hosts of a bigger file are the N hosts of a smaller one).
#
# Usage: scripts/fleet-xml.sh [N] >hosts.xml
set -euo pipefail

HOSTS=${1:-256}
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
}'
