"""Differential test of `cpumodel --libvirt 9.0` against a real libvirt 9.0.

Run by scripts/libvirt-9.0-diff.sh, which installs and starts libvirtd and
builds cpumodel; see that script for the set-up. This file builds the cases,
asks both sides, compares the answers and prints the counts.

Cases (all inputs are generated under a temporary directory with a fixed
seed, so a run is reproducible):
  - every real CPU of the conformance corpus (a <cpudata> dump), decoded by
    `cpumodel --libvirt 9.0 decode` into a host <cpu> and by `decode --guest`
    into a guest <cpu>, and both decoded with the newest map (names libvirt
    9.0 may not know);
  - perturbed copies: a feature dropped, a feature of libvirt 9.0's map
    added, the model swapped for its neighbour in the map; in guest CPUs
    also a model feature disabled, forbidden, optional or forced, no
    <vendor>, and the 'minimum' and 'strict' match modes;
  - pairs and groups of host CPUs (same vendor and mixed vendors) in one file;
  - guest CPUs the compared-with CPUs can run (see generate_runnable), so
    that identical and superset verdicts are compared too.

Commands compared, per case:
  baseline           virsh cpu-baseline FILE
                     cpumodel --libvirt 9.0 baseline FILE
  baseline-features  virsh cpu-baseline --features FILE
                     cpumodel --libvirt 9.0 baseline --expand-features FILE
  cpu-compare        virsh cpu-compare --error FILE (libvirt's host CPU)
                     cpumodel --libvirt 9.0 compare HOST FILE, HOST being
                     /capabilities/host/cpu of the same libvirtd
  baseline-migratable  virsh cpu-baseline --migratable FILE
                     cpumodel --libvirt 9.0 baseline --migratable FILE
  hv-compare         virsh hypervisor-cpu-compare --error --virttype qemu FILE
                     cpumodel --libvirt 9.0 compare DOMCAPS FILE, DOMCAPS
                     being `virsh domcapabilities --virttype qemu`: libvirt
                     compares with the host-model CPU it reports there
                     (qemuConnectCompareHypervisorCPU takes
                     VIR_QEMU_CAPS_HOST_CPU_REPORTED, the CPU domcapabilities
                     shows as host-model)

What is compared (nothing is normalised but what XML itself ignores):
  - XML answers are compared parsed: the <cpu> attributes, model and its
    fallback, vendor, and the features as (policy, name) in document order
    (cpumodel writes them in libvirt's order). Whitespace, quoting and
    attribute order are not significant in XML.
  - A comparison: the verdict (identical, superset, incompatible), and where
    libvirt names the features behind an incompatible verdict (required
    features missing, forbidden features present, extra features for a
    'strict' match) the same features in the same order as cpumodel's
    blocking features. Where libvirt names none (another vendor or
    architecture), only the verdict.
  - Both sides refusing a case is agreement (an unknown feature or model for
    libvirt 9.0, CPUs of different vendors); the messages are not compared.
  - cpumodel's exit code must fit its answer (0 with a <cpu> or identical/
    superset, 1 exactly with incompatible, 2 with nothing on stdout), as
    virsh fails exactly on an incompatible verdict (--error) or an error;
    a case where it does not never agrees.

Every disagreement is either matched by one of the narrow rules in EXPLAINED
(each documented in README.md, "Differences from libvirt 9.0", with the
libvirt commit behind it) or counted as unexplained.
"""

import argparse
import concurrent.futures
import os
import random
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

SEED = 90
URI = "qemu:///system"
RELEASE = "9.0"


# --- Inputs -----------------------------------------------------------------


def run(argv, check=True):
    """Runs argv; returns (exit code, stdout, stderr)."""
    p = subprocess.run(argv, capture_output=True, text=True)
    if check and p.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.returncode, p.stdout, p.stderr


def map_vocabulary(cpu_map):
    """Features and models (by vendor, in map order) of libvirt's own map."""
    features = [
        f.get("name")
        for f in ET.parse(os.path.join(cpu_map, "x86_features.xml")).getroot().iter("feature")
    ]
    index = ET.parse(os.path.join(cpu_map, "index.xml")).getroot()
    models = []
    for inc in index.iter("include"):
        name = inc.get("filename")
        if not name.startswith("x86_") or name in ("x86_features.xml", "x86_vendors.xml"):
            continue
        for m in ET.parse(os.path.join(cpu_map, name)).getroot().findall("model"):
            vendor = m.find("vendor")
            models.append((m.get("name"), vendor.get("name") if vendor is not None else None))
    return features, models


def cpu_xml(root):
    return ET.tostring(root, encoding="unicode") + "\n"


@dataclass
class Input:
    """One generated input file."""

    label: str
    path: str
    kind: str  # "host" or "guest"
    commands: list = field(default_factory=list)


class Generator:
    """Writes the input files (one <cpu>, or several for a baseline) and
    records which commands run on each."""

    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.rng = random.Random(SEED)
        self.features, self.models = map_vocabulary(args.cpu_map)
        self.inputs = []
        self.hosts = []  # (name, vendor, host <cpu> text)
        self.newest_guests = []  # (name, guest <cpu> text decoded with the newest map)
        self.skipped = []

    def write(self, label, kind, text, commands):
        path = os.path.join(self.workdir, f"{len(self.inputs):04d}.xml")
        with open(path, "w") as f:
            f.write(text)
        self.inputs.append(Input(label, path, kind, commands))

    def cpumodel(self, *argv, release=True):
        base = [self.args.cpumodel] + (["--libvirt", RELEASE] if release else [])
        return run(base + list(argv), check=False)

    def neighbour(self, model):
        """The next model of the same vendor in the map, else the previous."""
        names = [m for m in self.models if m[1] is not None]
        for i, (name, vendor) in enumerate(names):
            if name == model:
                later = [n for n, v in names[i + 1:] if v == vendor]
                earlier = [n for n, v in names[:i] if v == vendor]
                return later[0] if later else (earlier[-1] if earlier else None)
        return None

    def perturb(self, text, kind, what, release=True):
        """A copy of the <cpu> text changed by `what`; None when not possible.
        `release`: the CPU is written for libvirt 9.0 (else the newest map)."""
        cpu = ET.fromstring(text)
        feats = cpu.findall("feature")
        present = {f.get("name") for f in feats}
        rng = self.rng
        if what == "drop":
            if not feats:
                return None, None
            f = rng.choice(feats)
            cpu.remove(f)
            return cpu_xml(cpu), f"drop:{f.get('name')}"
        if what == "add":
            name = rng.choice([n for n in self.features if n not in present])
            el = ET.SubElement(cpu, "feature")
            if kind == "guest":
                el.set("policy", "require")
            el.set("name", name)
            return cpu_xml(cpu), f"add:{name}"
        if what == "swap":
            model = cpu.find("model")
            other = self.neighbour(model.text)
            if other is None:
                return None, None
            label = f"swap:{model.text}->{other}"
            model.text = other
            return cpu_xml(cpu), label
        if what in ("disable", "forbid", "optional", "force"):
            # a feature of the model itself or one the CPU lists
            code, out, _ = self.cpumodel("expand", self.path_of(text), release=release)
            if code != 0:
                return None, None
            names = [f.get("name") for f in ET.fromstring(out).findall("feature")
                     if f.get("policy") == "require"]
            if not names:
                return None, None
            name = rng.choice(names)
            for f in feats:
                if f.get("name") == name:
                    cpu.remove(f)
            el = ET.SubElement(cpu, "feature")
            el.set("policy", what)
            el.set("name", name)
            return cpu_xml(cpu), f"{what}:{name}"
        if what == "novendor":
            vendor = cpu.find("vendor")
            if vendor is None:
                return None, None
            cpu.remove(vendor)
            return cpu_xml(cpu), "novendor"
        if what in ("minimum", "strict"):
            cpu.set("match", what)
            return cpu_xml(cpu), f"match:{what}"
        raise ValueError(what)

    def path_of(self, text):
        path = os.path.join(self.workdir, "scratch.xml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def generate(self, dumps):
        host_cmds = ["baseline", "baseline-features", "baseline-migratable", "cpu-compare", "hv-compare"]
        guest_cmds = ["cpu-compare", "hv-compare"]
        for dump in dumps:
            name = os.path.basename(dump)[len("x86_64-cpuid-"):-len(".xml")]
            code, host, err = self.cpumodel("decode", dump)
            if code != 0:
                self.skipped.append(f"{name}: {err.strip()}")
                continue
            _, guest, _ = self.cpumodel("decode", "--guest", dump)
            _, newest, _ = self.cpumodel("decode", "--guest", dump, release=False)
            _, newest_host, _ = self.cpumodel("decode", dump, release=False)
            vendor = ET.fromstring(host).findtext("vendor")
            self.hosts.append((name, vendor, host))
            self.write(f"{name} host", "host", host, host_cmds)
            self.write(f"{name} guest", "guest", guest, guest_cmds + ["baseline"])
            self.write(f"{name} guest(newest map)", "guest", newest, guest_cmds)
            self.newest_guests.append((name, newest))
            self.write(f"{name} host(newest map)", "host", newest_host, host_cmds)
            for what in ("drop", "add", "swap"):
                text, label = self.perturb(host, "host", what)
                if text:
                    self.write(f"{name} host {label}", "host", text, host_cmds[:-1])
            for what in ("drop", "add", "swap", "disable", "forbid", "optional", "force",
                         "novendor", "minimum", "strict"):
                text, label = self.perturb(guest, "guest", what)
                if text:
                    self.write(f"{name} guest {label}", "guest", text, guest_cmds)
        # Pairs and groups of host CPUs in one file.
        rng = self.rng
        by_vendor = {}
        for h in self.hosts:
            by_vendor.setdefault(h[1], []).append(h)
        for i in range(self.args.pairs):
            if i % 3 == 2:
                group = rng.sample(self.hosts, 2)  # any vendors
            else:
                vendor = rng.choice(sorted(by_vendor))
                if len(by_vendor[vendor]) < 2:
                    continue
                group = rng.sample(by_vendor[vendor], 2)
            self.write_group(group)
        for i in range(self.args.groups):
            size = rng.randint(3, 6)
            if i % 4 == 3:
                group = rng.sample(self.hosts, size)
            else:
                vendor = rng.choice(sorted(by_vendor))
                pool = by_vendor[vendor]
                group = rng.sample(pool, min(size, len(pool)))
            self.write_group(group)

    def generate_runnable(self, host_text, hostmodel):
        """Guest CPUs that libvirt's host CPU or the TCG host-model can run
        (the corpus CPUs mostly cannot), so that identical and superset
        verdicts are compared as well: every model of libvirt 9.0's map
        alone and with a model feature disabled; the host CPU itself, as a
        guest, and with features dropped (match exact, minimum, strict),
        forbidden, optional or forced; the host-model CPU as a guest and
        with features dropped; and the baseline of each corpus CPU of the
        host's vendor with the host CPU."""
        cmds = ["cpu-compare", "hv-compare"]
        rng = self.rng
        for name, _ in self.models:
            text = f"<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>{name}</model>\n</cpu>\n"
            self.write(f"model {name}", "guest", text, cmds)
            changed, label = self.perturb(text, "guest", "disable")
            if changed:
                self.write(f"model {name} {label}", "guest", changed, cmds)

        def guest(model, vendor, features, match="exact"):
            cpu = ET.Element("cpu", {"mode": "custom", "match": match})
            ET.SubElement(cpu, "model", {"fallback": "forbid"}).text = model
            if vendor:
                ET.SubElement(cpu, "vendor").text = vendor
            for policy, name in features:
                ET.SubElement(cpu, "feature", {"policy": policy, "name": name})
            return cpu_xml(cpu)

        host = ET.fromstring(host_text)
        self.write("libvirt's host CPU", "host", host_text, cmds)
        model, vendor = host.findtext("model"), host.findtext("vendor")
        names = [f.get("name") for f in host.findall("feature")]
        self.write("libvirt's host CPU as a guest", "guest",
                   guest(model, vendor, [("require", n) for n in names]), cmds)
        lacking = [n for n in self.features if n not in names]
        for k in range(24):
            dropped = sorted(rng.sample(names, rng.randint(1, 5)))
            kept = [("require", n) for n in names if n not in dropped]
            match = ("exact", "minimum", "strict", "exact", "strict", "exact")[k % 6]
            label = f"drop:{','.join(dropped)} match:{match}"
            if k % 6 == 3:  # a feature the host has, forbidden
                kept.append(("forbid", dropped[0]))
                label += f" forbid:{dropped[0]}"
            if k % 6 == 4:  # the dropped ones optional
                kept += [("optional", n) for n in dropped]
                label += " optional"
            if k % 6 == 5:  # a feature the host may lack, forced
                forced = rng.choice(lacking)
                kept.append(("force", forced))
                label += f" force:{forced}"
            self.write(f"libvirt's host CPU as a guest {label}", "guest",
                       guest(model, vendor, kept, match), cmds)

        hm_model = hostmodel.findtext("model")
        hm_vendor = hostmodel.findtext("vendor")
        hm_features = [(f.get("policy"), f.get("name")) for f in hostmodel.findall("feature")]
        self.write("TCG host-model as a guest", "guest", guest(hm_model, hm_vendor, hm_features), cmds)
        required = [f for f in hm_features if f[0] == "require"]
        for k in range(8):
            dropped = set(rng.sample(required, rng.randint(1, 3)))
            kept = [f for f in hm_features if f not in dropped]
            label = "drop:" + ",".join(sorted(n for _, n in dropped))
            self.write(f"TCG host-model as a guest {label}", "guest",
                       guest(hm_model, hm_vendor, kept), cmds)

        for name, cpu_vendor, text in self.hosts:
            if cpu_vendor != vendor:
                continue
            code, out, _ = self.cpumodel("baseline", self.path_of(text + host_text))
            if code == 0:
                self.write(f"baseline of {name} and libvirt's host CPU", "guest", out, cmds)

    def write_group(self, group):
        vendors = sorted({g[1] for g in group})
        label = "+".join(g[0] for g in group) + ("" if len(vendors) == 1 else " (mixed vendors)")
        self.write(label, "host", "".join(g[2] for g in group), ["baseline", "baseline-features", "baseline-migratable"])


@dataclass
class Case:
    """One command on one input."""

    input: Input
    command: str


# --- Asking libvirt ---------------------------------------------------------

VIRSH = {
    "baseline": "cpu-baseline {f}",
    "baseline-features": "cpu-baseline --features {f}",
    "baseline-migratable": "cpu-baseline --migratable {f}",
    "cpu-compare": "cpu-compare --error {f}",
    "hv-compare": "hypervisor-cpu-compare --error --virttype qemu {f}",
}
MARK = "@@case-{}@@"
MARK_RE = re.compile(r"@@case-(\d+)@@")


def ask_libvirt(cases):
    """Runs every case's virsh command, many per virsh process (commands
    separated by ';', each preceded by an `echo` marker; virsh goes on after
    a failing command). stdout and stderr go unbuffered to one pipe so each
    answer stays next to its marker."""
    answers = {}
    chunk = 300
    for start in range(0, len(cases), chunk):
        script = []
        for i in range(start, min(start + chunk, len(cases))):
            c = cases[i]
            script.append(f"echo {MARK.format(i)}")
            script.append(VIRSH[c.command].format(f=c.input.path))
        script.append(f"echo {MARK.format(len(cases))}")
        p = subprocess.run(
            ["stdbuf", "-o0", "-e0", "virsh", "-q", "-c", URI, "; ".join(script)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        parts = MARK_RE.split(p.stdout)
        # parts: [before, id, text, id, text, ...]
        for k in range(1, len(parts) - 1, 2):
            idx = int(parts[k])
            if idx < len(cases):
                answers[idx] = parts[k + 1]
    return answers


# --- Asking cpumodel --------------------------------------------------------


def ask_cpumodel(args, case, host, domcaps):
    base = [args.cpumodel, "--libvirt", RELEASE]
    f = case.input.path
    argv = {
        "baseline": base + ["baseline", f],
        "baseline-features": base + ["baseline", "--expand-features", f],
        "baseline-migratable": base + ["baseline", "--migratable", f],
        "cpu-compare": base + ["compare", host, f],
        "hv-compare": base + ["compare", domcaps, f],
    }[case.command]
    p = subprocess.run(argv, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


# --- Answers ----------------------------------------------------------------


@dataclass
class Answer:
    """One side's answer, reduced to what is compared."""

    kind: str  # "cpu", "verdict", "error" or (cpumodel only) "invalid"
    cpu: tuple = None  # (attributes, model, fallback, vendor, ((policy, name), ...))
    verdict: str = None  # identical, superset, incompatible
    blocking: tuple = None  # features named, when named, in order
    reason: str = ""  # libvirt's reason text or cpumodel's error

    def show(self):
        if self.kind == "cpu":
            attrs, model, fallback, vendor, feats = self.cpu
            return f"{model} ({fallback}) {vendor} {attrs} {len(feats)} features"
        if self.kind == "verdict":
            b = " " + ",".join(self.blocking) if self.blocking else ""
            return f"{self.verdict}{b}"
        return f"{self.kind}: {self.reason}"


def parse_cpu(text):
    cpu = ET.fromstring(text)
    model = cpu.find("model")
    attrs = tuple(sorted(cpu.attrib.items()))
    return (
        attrs,
        model.text if model is not None else None,
        model.get("fallback") if model is not None else None,
        cpu.findtext("vendor"),
        tuple((f.get("policy"), f.get("name")) for f in cpu.findall("feature")),
    )


# Reasons after which libvirt names the features (x86Compute's messages).
NAMED_FEATURES = (
    "Host CPU does not provide required features: ",
    "Host CPU provides forbidden features: ",
    "Host CPU does not strictly match guest CPU: Extra features: ",
)
INCOMPATIBLE = "error: the CPU is incompatible with host CPU"


def libvirt_answer(command, text):
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    if command.startswith("baseline"):
        if errors:
            return Answer("error", reason=errors[-1][len("error: "):])
        return Answer("cpu", cpu=parse_cpu(text))
    for line in errors:
        if line.startswith(INCOMPATIBLE):
            reason = line[len(INCOMPATIBLE):].lstrip(": ")
            blocking = None
            for prefix in NAMED_FEATURES:
                if reason.startswith(prefix):
                    blocking = tuple(reason[len(prefix):].split(", "))
            return Answer("verdict", verdict="incompatible", blocking=blocking, reason=reason)
    if errors:
        return Answer("error", reason=errors[-1][len("error: "):])
    if "identical" in text:
        return Answer("verdict", verdict="identical")
    if "superset" in text:
        return Answer("verdict", verdict="superset")
    return Answer("error", reason=f"unrecognised virsh output: {text.strip()!r}")


def cpumodel_answer(command, result):
    """cpumodel's answer; "invalid" (never agreeing) when it breaks its own
    contract: output on a failure, or exit 1 other than for incompatible."""
    code, out, err = result
    if code != 0 and command.startswith("baseline") or code == 2:
        if out:
            return Answer("invalid", reason=f"exit {code} with output on stdout")
        return Answer("error", reason=err.strip())
    if command.startswith("baseline"):
        return Answer("cpu", cpu=parse_cpu(out))
    lines = out.splitlines()
    verdict = lines[0].strip() if lines else ""
    if (code == 1) != (verdict == "incompatible"):
        return Answer("invalid", reason=f"exit {code} with the verdict {verdict!r}")
    return Answer("verdict", verdict=verdict, blocking=tuple(l.strip() for l in lines[1:] if l.strip()))


def agree(lv, cm):
    if lv.kind != cm.kind:
        return False
    if lv.kind == "error":
        return True
    if lv.kind == "cpu":
        return lv.cpu == cm.cpu
    if lv.verdict != cm.verdict:
        return False
    # the blocking features, where libvirt names them
    return lv.blocking is None or lv.blocking == cm.blocking


# --- Explained differences ----------------------------------------------------
#
# Each rule: (what, predicate(case, libvirt answer, cpumodel answer)). A rule
# must match only the difference README.md documents, on both sides' answers.



def guest_cpu_in_baseline(case, lv, cm):
    """README, "A guest <cpu> as a baseline input". virsh cpu-baseline
    parses every input as a host CPU and refuses a guest <cpu>'s mode
    attribute; cpumodel reads the guest CPU's features and answers."""
    return (
        case.command.startswith("baseline")
        and case.input.kind == "guest"
        and lv.kind == "error"
        and lv.reason.endswith("Attribute mode is only allowed for guest CPU")
        and cm.kind == "cpu"
    )


EXPLAINED = [
    ("a guest <cpu> as a baseline input: libvirt refuses it as a host CPU "
     "(README, Differences from libvirt 9.0)", guest_cpu_in_baseline),
]


# --- convert --to-libvirt 9.0 -------------------------------------------------
#
# Guest CPUs written for the newest map (each corpus CPU's `decode --guest`,
# and a copy with a model feature disabled) are rewritten for libvirt 9.0
# with `cpumodel convert --to-libvirt 9.0` (exit 0: the same features, 1:
# not exactly, with each lost feature named on stderr). Checked:
#   - libvirt 9.0 accepts the converted CPU: `virsh cpu-compare --error` of
#     a copy without <vendor> answers a verdict, not an error. Without the
#     vendor libvirt looks up every model and feature name (with a vendor
#     the host lacks it would answer "incompatible" before any lookup). The
#     same check of the original CPU shows how many libvirt 9.0 refuses.
#   - the guest gets the same features: the CPUID/MSR bits of every enabled
#     feature of `cpumodel expand` of the original (newest map) and of
#     `cpumodel --libvirt 9.0 expand` of the converted CPU, each name read
#     as bits from its own map's x86_features.xml, are equal after exit 0;
#     after exit 1 the bits lost are exactly those of the features named on
#     stderr, and none are gained.

LOST_RE = re.compile(r"dropped feature '([^']+)'")


def feature_bits(cpu_map):
    """Every feature of a cpu_map directory as the set of its CPUID and MSR
    bits."""
    bits = {}
    root = ET.parse(os.path.join(cpu_map, "x86_features.xml")).getroot()
    for feature in root.iter("feature"):
        found = set()
        for item in feature:
            if item.tag == "cpuid":
                key = ("cpuid", int(item.get("eax_in"), 16), int(item.get("ecx_in", "0"), 16))
                regs = ("eax", "ebx", "ecx", "edx")
            elif item.tag == "msr":
                key = ("msr", int(item.get("index"), 16), 0)
                regs = ("eax", "edx")
            else:
                continue
            for reg in regs:
                value = int(item.get(reg, "0"), 16)
                found.update(key + (reg, b) for b in range(32) if value >> b & 1)
        bits[feature.get("name")] = frozenset(found)
    return bits


def enabled_bits(expanded, bits):
    """The bits of every required or forced feature of an expanded <cpu>."""
    out = set()
    for f in ET.fromstring(expanded).findall("feature"):
        if f.get("policy", "require") in ("require", "force"):
            out |= bits[f.get("name")]
    return out


def without_vendor(text):
    cpu = ET.fromstring(text)
    vendor = cpu.find("vendor")
    if vendor is not None:
        cpu.remove(vendor)
    return cpu_xml(cpu)


def check_convert(args, gen, workdir):
    """Runs the convert checks; returns (summary line, failures)."""
    newest_bits = feature_bits(args.newest_map)
    old_bits = feature_bits(args.cpu_map)
    os.makedirs(workdir, exist_ok=True)
    items = []
    for name, text in gen.newest_guests:
        items.append((f"{name} guest(newest map)", text))
        changed, label = gen.perturb(text, "guest", "disable", release=False)
        if changed:
            items.append((f"{name} guest(newest map) {label}", changed))

    def path(i, what):
        return os.path.join(workdir, f"{i:03d}-{what}.xml")

    converted, failures, checks = {}, [], []
    for i, (label, text) in enumerate(items):
        with open(path(i, "original"), "w") as f:
            f.write(text)
        p = subprocess.run(
            [args.cpumodel, "convert", "--to-libvirt", RELEASE, path(i, "original")],
            capture_output=True, text=True,
        )
        if p.returncode not in (0, 1):
            failures.append(f"{label}: convert refused it: {p.stderr.strip()}")
            continue
        converted[i] = (p.returncode, p.stdout, LOST_RE.findall(p.stderr))
        with open(path(i, "converted"), "w") as f:
            f.write(p.stdout)
        for what, body in (("original", text), ("converted", p.stdout)):
            with open(path(i, f"{what}-novendor"), "w") as f:
                f.write(without_vendor(body))
            checks.append(Case(Input(f"{label} {what}", path(i, f"{what}-novendor"), "guest"), "cpu-compare"))
    answers = ask_libvirt(checks)
    accepted = {}
    refused_originals = 0
    for k, case in enumerate(checks):
        i = int(os.path.basename(case.input.path)[:3])
        answer = libvirt_answer("cpu-compare", answers.get(k, ""))
        if case.input.label.endswith(" converted"):
            accepted[i] = answer.kind == "verdict"
            if not accepted[i]:
                failures.append(f"{items[i][0]}: libvirt 9.0 refuses the converted CPU: {answer.reason}")
        elif answer.kind == "error":
            refused_originals += 1

    same = named = 0
    for i, (code, out, lost) in sorted(converted.items()):
        label = items[i][0]
        _, orig, err1 = run([args.cpumodel, "expand", path(i, "original")], check=False)
        _, conv, err2 = run([args.cpumodel, "--libvirt", RELEASE, "expand", path(i, "converted")], check=False)
        if not orig or not conv:
            failures.append(f"{label}: expand failed: {err1.strip()} {err2.strip()}")
            continue
        before = enabled_bits(orig, newest_bits)
        after = enabled_bits(conv, old_bits)
        named_bits = set().union(*(newest_bits[n] for n in lost)) if lost else set()
        if code == 0 and before == after:
            same += 1
        elif code == 1 and after <= before and before - after == named_bits:
            named += 1
        else:
            failures.append(
                f"{label}: convert exit {code}, named lost {lost}, but "
                f"{len(before - after)} bits lost and {len(after - before)} gained"
            )
    line = (
        f"libvirt-9.0-convert: {len(converted)} converted, {sum(accepted.values())} accepted by "
        f"libvirt 9.0, {same} same features (exit 0), {named} lost exactly the features named "
        f"(exit 1), {len(failures)} failed; {refused_originals} of the {len(items)} originals are "
        f"refused by libvirt 9.0"
    )
    return line, failures


# --- Main -------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpumodel", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--cpu-map", required=True, help="libvirt 9.0's own cpu_map directory")
    ap.add_argument("--newest-map", required=True, help="the cpu_map of cpumodel's newest release")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--pairs", type=int, default=80)
    ap.add_argument("--groups", type=int, default=25)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    dumps = []
    for name in sorted(os.listdir(args.corpus)):
        path = os.path.join(args.corpus, name)
        if name.startswith("x86_64-cpuid-") and name.endswith(".xml"):
            try:
                if ET.parse(path).getroot().tag == "cpudata":
                    dumps.append(path)
            except ET.ParseError:
                pass
    # libvirt's host CPU (what cpu-compare compares with) and the host-model
    # CPU of domcapabilities (what hypervisor-cpu-compare compares with).
    _, caps, _ = run(["virsh", "-q", "-c", URI, "capabilities"])
    host_text = cpu_xml(ET.fromstring(caps).find("host/cpu"))
    host = os.path.join(args.workdir, "host-cpu.xml")
    with open(host, "w") as f:
        f.write(host_text)
    _, domcaps_text, _ = run(["virsh", "-q", "-c", URI, "domcapabilities", "--virttype", "qemu"])
    domcaps = os.path.join(args.workdir, "domcaps-qemu.xml")
    with open(domcaps, "w") as f:
        f.write(domcaps_text)
    hostmodel = ET.fromstring(domcaps_text).find("cpu/mode[@name='host-model']")

    gen = Generator(args, os.path.join(args.workdir, "inputs"))
    os.makedirs(gen.workdir, exist_ok=True)
    gen.generate(dumps)
    gen.generate_runnable(host_text, hostmodel)
    for line in gen.skipped:
        print(f"skipped dump: {line}")

    cases = [Case(i, c) for i in gen.inputs for c in i.commands]
    print(f"{len(dumps)} dumps, {len(gen.hosts)} CPUs, {len(gen.inputs)} inputs, {len(cases)} cases")
    lv_text = ask_libvirt(cases)
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        cm_results = list(pool.map(lambda c: ask_cpumodel(args, c, host, domcaps), cases))

    agreed = explained = 0
    unexplained = []
    why = {}
    tally = {}  # (command, how) -> agreeing cases
    for i, case in enumerate(cases):
        if i not in lv_text:
            unexplained.append((case, "no answer from virsh", None))
            continue
        lv = libvirt_answer(case.command, lv_text[i])
        cm = cpumodel_answer(case.command, cm_results[i])
        if agree(lv, cm):
            agreed += 1
            how = {"error": "both refuse", "cpu": "same <cpu>"}.get(lv.kind, lv.verdict)
            key = (case.command, how)
            tally[key] = tally.get(key, 0) + 1
            continue
        rule = next((r for r in EXPLAINED if r[1](case, lv, cm)), None)
        if rule:
            explained += 1
            why[rule[0]] = why.get(rule[0], 0) + 1
        else:
            unexplained.append((case, lv, cm))

    for command in VIRSH:
        hows = ("same <cpu>", "identical", "superset", "incompatible", "both refuse")
        counts = [f"{tally[(command, h)]} {h}" for h in hows if (command, h) in tally]
        print(f"agree: {command}: {', '.join(counts)}")
    for name, count in sorted(why.items()):
        print(f"explained: {count} × {name}")
    for case, lv, cm in unexplained:
        print(f"UNEXPLAINED {case.command} {case.input.label} [{case.input.path}]")
        if cm is None:
            print(f"  {lv}")
            continue
        print(f"  libvirt:  {lv.show()}")
        print(f"  cpumodel: {cm.show()}")
        if args.verbose and lv.kind == cm.kind == "cpu":
            a, b = set(lv.cpu[4]), set(cm.cpu[4])
            print(f"  only libvirt: {sorted(a - b)}; only cpumodel: {sorted(b - a)}")
            if a == b:
                print("  (same features, different order)")
    convert_line, convert_failures = check_convert(args, gen, os.path.join(args.workdir, "convert"))
    for line in convert_failures:
        print(f"CONVERT FAILED: {line}")
    print(convert_line)
    n = len(cases)
    print(f"libvirt-9.0-diff: {n} cases: {agreed} agree, {explained} explained, {len(unexplained)} unexplained")
    return 1 if unexplained or convert_failures else 0


if __name__ == "__main__":
    sys.exit(main())
