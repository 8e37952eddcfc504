#!/usr/bin/env bash
# Differential test: `cpumodel domcaps` against a real libvirt on this machine.
#
# Compares the CPU part of `virsh domcapabilities --virttype kvm` with
# `cpumodel domcaps --cpu-map /usr/share/libvirt/cpu_map` (the same CPU map
# libvirt uses):
#   - the host-model: the same model name, vendor and features (with policy);
#   - the custom models: the same usable='yes|no' verdict for every model
#     both list (libvirt lists only the models its QEMU also knows).
# Every disagreement must be explained in the tables below, with the reason;
# an unexplained one makes the script exit 1.
#
# Needs root and a usable /dev/kvm. It installs Debian's libvirt and QEMU
# when they are missing, creates what libvirtd expects, and starts
# `libvirtd -d` itself when no libvirtd answers (no systemd needed). A
# libvirtd that is already running is used as it is, and libvirtd is left
# running afterwards (other jobs may be using it).
#
# Usage: scripts/libvirt-domcaps-diff.sh   (from anywhere)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=target/release/cpumodel
CPU_MAP=/usr/share/libvirt/cpu_map
URI=qemu:///system

# shellcheck source=scripts/lib/libvirtd.sh
source scripts/lib/libvirtd.sh

if [ ! -w /dev/kvm ]; then
    echo "libvirt-domcaps-diff: /dev/kvm is not usable here; nothing to compare" >&2
    exit 2
fi

ensure_packages libvirtd:libvirt-daemon-system virsh:libvirt-clients qemu-system-x86_64:qemu-system-x86 python3:python3
ensure_libvirtd "$URI"

# --- Both answers ----------------------------------------------------------
cargo build --release --locked --bin cpumodel
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
virsh -c "$URI" domcapabilities --virttype kvm >"$TMP/libvirt.xml"
"$BIN" domcaps --cpu-map "$CPU_MAP" >"$TMP/cpumodel.xml"

# --- Compare ---------------------------------------------------------------
python3 - "$TMP/libvirt.xml" "$TMP/cpumodel.xml" "$CPU_MAP/x86_features.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

libvirt_file, cpumodel_file, features_file = sys.argv[1:4]

# Host-model features that one side has and the other lacks, with the
# reason. Key: (feature, side that has it, policy).
EXPLAINED_FEATURES = {
    ("topoext", "cpumodel", "require"):
        "KVM_GET_SUPPORTED_CPUID offers topoext, but QEMU never turns it on by "
        "itself for the 'host' CPU (its no_autoenable_flags: topoext needs a "
        "cache topology QEMU must be told), so libvirt's host-model, built "
        "from QEMU's expansion of 'host', lacks it",
}

# Custom models whose usable verdict differs, with the reason. None are
# known; add one here only with the reason (for example QEMU's definition
# of the model differing from the CPU map's).
EXPLAINED_MODELS = {}

# Features the CPU map marks migratable='no': cpumodel's host-model keeps
# only migratable features (issue 5), while libvirt's domcapabilities shows
# the host-model from QEMU's non-migratable expansion of 'host' (its
# "reported" host CPU), which keeps them.
non_migratable = {
    f.get("name")
    for f in ET.parse(features_file).getroot().iter("feature")
    if f.get("migratable") == "no"
}


def cpu_caps(path):
    root = ET.parse(path).getroot()
    cpu = root.find("cpu")
    if cpu is None:
        sys.exit(f"{path}: no <cpu> element")
    host = cpu.find("mode[@name='host-model']")
    if host is None or host.find("model") is None:
        sys.exit(f"{path}: no host-model <model>")
    features = {f.get("name"): f.get("policy") for f in host.findall("feature")}
    custom = {
        m.text: m.get("usable")
        for m in cpu.findall("mode[@name='custom']/model")
    }
    vendor = host.find("vendor")
    return {
        "model": host.find("model").text,
        "fallback": host.find("model").get("fallback"),
        "vendor": vendor.text if vendor is not None else None,
        "features": features,
        "custom": custom,
    }


lv = cpu_caps(libvirt_file)
cm = cpu_caps(cpumodel_file)
unexplained = []
explained = []

# Host-model: name, fallback, vendor.
for key in ("model", "fallback", "vendor"):
    if lv[key] == cm[key]:
        print(f"host-model {key}: {lv[key]} (both)")
    else:
        unexplained.append(f"host-model {key}: libvirt {lv[key]}, cpumodel {cm[key]}")

# Host-model features.
agree = 0
for name in sorted(set(lv["features"]) | set(cm["features"])):
    a, b = lv["features"].get(name), cm["features"].get(name)
    if a == b:
        agree += 1
        continue
    for side, policy, other in (("libvirt", a, b), ("cpumodel", b, a)):
        if policy is None or policy == other:
            continue
        what = f"host-model feature {name} ({policy}) only in {side}'s answer"
        reason = EXPLAINED_FEATURES.get((name, side, policy))
        if reason is None and side == "libvirt" and name in non_migratable and b is None:
            reason = (
                "migratable='no' in the CPU map: cpumodel's host-model keeps only "
                "migratable features, libvirt's domcapabilities shows QEMU's "
                "non-migratable expansion of 'host'"
            )
        if reason is None:
            unexplained.append(what)
        else:
            explained.append(f"{what}: {reason}")
print(f"host-model features: {agree} agree")

# Custom models: the verdict for every model both list.
both = sorted(set(lv["custom"]) & set(cm["custom"]), key=str.lower)
same = 0
for name in both:
    if lv["custom"][name] == cm["custom"][name]:
        same += 1
        continue
    what = f"model {name}: libvirt usable='{lv['custom'][name]}', cpumodel usable='{cm['custom'][name]}'"
    reason = EXPLAINED_MODELS.get(name)
    if reason is None:
        unexplained.append(what)
    else:
        explained.append(f"{what}: {reason}")
print(f"custom models: {same}/{len(both)} usable verdicts agree")
only_cm = sorted(set(cm["custom"]) - set(lv["custom"]), key=str.lower)
if only_cm:
    print(
        f"not compared: {len(only_cm)} map models this QEMU does not offer "
        f"(libvirt lists only QEMU's): {' '.join(only_cm)}"
    )
for name in sorted(set(lv["custom"]) - set(cm["custom"]), key=str.lower):
    unexplained.append(f"model {name}: listed by libvirt, not by cpumodel")

for line in explained:
    print(f"explained: {line}")
for line in unexplained:
    print(f"UNEXPLAINED: {line}")
print(
    f"libvirt-domcaps-diff: {len(unexplained)} unexplained, "
    f"{len(explained)} explained disagreements"
)
sys.exit(1 if unexplained else 0)
PY
