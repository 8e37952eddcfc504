#!/usr/bin/env bash
# Differential test: `cpumodel --libvirt 9.0` against Debian 12's real
# libvirt 9.0 (virsh cpu-baseline, cpu-compare and hypervisor-cpu-compare).
#
# The cases, the commands and the rules that compare the answers are in
# scripts/lib/libvirt-9.0-diff.py (read its header); this script prepares
# the peer and the binary. Every disagreement must be matched by a narrow
# rule there that names a difference documented in README.md ("Differences
# from libvirt 9.0"); the last line is
#   libvirt-9.0-diff: N cases: A agree, E explained, U unexplained
# and the exit code is 1 when U > 0 (2 when the test cannot run).
#
# It needs root (or sudo) and Debian 12's libvirt 9.0 and QEMU: it installs
# them when missing and starts `libvirtd -d` when no libvirtd answers at
# qemu:///system (see scripts/lib/libvirtd.sh). It needs no KVM: every
# command it sends is answered by libvirt's CPU driver, and
# hypervisor-cpu-compare uses the TCG (--virttype qemu) host-model.
#
# Usage: scripts/libvirt-9.0-diff.sh [--verbose]    (from anywhere)
#   CPUMODEL_BIN=PATH   use this cpumodel binary instead of target/debug/cpumodel
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

URI=qemu:///system
CORPUS=../shared/conformance/libvirt-10.7/cputestdata

# shellcheck source=scripts/lib/libvirtd.sh
source scripts/lib/libvirtd.sh

if [ ! -d "$CORPUS" ]; then
    echo "libvirt-9.0-diff: $CORPUS is missing (../shared beside the repository)" >&2
    exit 2
fi

ensure_packages libvirtd:libvirt-daemon-system virsh:libvirt-clients \
    qemu-system-x86_64:qemu-system-x86 python3:python3 stdbuf:coreutils

# libvirtd checks, at every use of its QEMU capabilities, that KVM is as
# usable for the user it runs QEMU as (libvirt-qemu, group kvm) as when it
# probed QEMU. Where /dev/kvm exists but only root may open it (a container
# without udev), the probe sees KVM and the check does not, so libvirtd
# probes QEMU again on every hypervisor-cpu-compare (seconds each). Give
# /dev/kvm the group and mode Debian's udev rules give it.
if [ -c /dev/kvm ] && getent group kvm >/dev/null &&
    [ "$(stat -c %G /dev/kvm)" != kvm ]; then
    echo "libvirt-9.0-diff: /dev/kvm to group kvm, mode 0660 (as udev sets it on Debian)" >&2
    as_root chgrp kvm /dev/kvm
    as_root chmod 0660 /dev/kvm
fi

ensure_libvirtd "$URI" >/dev/null

# The peer must be libvirt 9.0: its CPU map is what `--libvirt 9.0` embeds.
library=$(virsh -c "$URI" version | sed -n 's/^Using library: libvirt //p')
case "$library" in
9.0.*) ;;
*)
    echo "libvirt-9.0-diff: the local libvirt is '$library', not 9.0 (Debian 12's)" >&2
    exit 2
    ;;
esac

# The debug binary: CI's `cargo test` has built it already, and the cases
# take seconds either way.
if [ -z "${CPUMODEL_BIN:-}" ]; then
    cargo build --locked --bin cpumodel
    CPUMODEL_BIN=target/debug/cpumodel
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 scripts/lib/libvirt-9.0-diff.py \
    --cpumodel "$CPUMODEL_BIN" \
    --corpus "$CORPUS" \
    --cpu-map /usr/share/libvirt/cpu_map \
    --newest-map ../shared/cpu_map/libvirt-upstream \
    --workdir "$TMP" "$@"
