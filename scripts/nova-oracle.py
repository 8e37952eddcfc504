#!/usr/bin/env python3
"""Nova's own answers for guest CPU cases, for cpumodel's differential test.

Reads a JSON list of cases on standard input:

    {"conf": "<nova.conf text>", "vcpus": 4,
     "flavor": {"hw:cpu_sockets": "2", ...}, "image": {"hw_cpu_cores": "2", ...}}

and prints one JSON object per case (a list, in order):

    {"error": null | "<exception class>: <message>",
     "cpu": null | {"mode": ..., "model": ..., "features": [[name, policy], ...]},
     "topology": null | [sockets, cores, threads]}

It runs Nova's real code: oslo.config reads the file with Nova's registered
options, `LibvirtDriver._check_cpu_compatibility` checks the configuration
(with `[workarounds] skip_cpu_compare_at_startup`, since no libvirt runs
here), `LibvirtDriver._get_guest_cpu_model_config` builds the guest CPU and
`nova.virt.hardware.get_best_cpu_topology` chooses the topology, on real
`Flavor` and `ImageMeta` objects. The model names libvirt would know are
given as arguments (cpumodel's model list), since no libvirt is asked.

Usage: nova-oracle.py MODEL... < cases.json > answers.json
"""

import json
import os
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("OS_NOVA_DISABLE_EVENTLET_PATCHING", "1")

from oslo_config import cfg  # noqa: E402

import nova.conf  # noqa: E402
from nova import objects  # noqa: E402
from nova.virt import hardware  # noqa: E402
from nova.virt.libvirt import driver as libvirt_driver  # noqa: E402

objects.register_all()
CONF = nova.conf.CONF


class FakeHost:
    def __init__(self, models):
        self._models = models

    def get_cpu_model_names(self):
        return self._models


def new_driver(models):
    drv = libvirt_driver.LibvirtDriver.__new__(libvirt_driver.LibvirtDriver)
    drv._host = FakeHost(models)
    drv.cpu_models_mapping = {}
    drv.cpu_model_flag_mapping = {}
    drv._get_cpu_info = lambda: {"arch": "x86_64"}
    return drv


def error(e):
    return f"{type(e).__name__}: {e}".splitlines()[0]


def run(case, models, tmp):
    path = os.path.join(tmp, "nova.conf")
    with open(path, "w") as f:
        f.write(case["conf"])
    out = {"error": None, "cpu": None, "topology": None}
    try:
        CONF.reset()
        CONF.clear()
        CONF(args=[], project="nova", default_config_files=[path])
        CONF.set_override("skip_cpu_compare_at_startup", True, group="workarounds")
        # Reading every option turns value errors into exceptions here.
        libvirt = CONF.libvirt
        _ = (libvirt.cpu_mode, libvirt.cpu_models, libvirt.cpu_model_extra_flags,
             libvirt.virt_type)
        drv = new_driver(models)
        drv._check_cpu_compatibility()
        flavor = objects.Flavor(vcpus=case["vcpus"], memory_mb=512, root_gb=1,
                                ephemeral_gb=0, swap=0, name="f",
                                extra_specs=dict(case["flavor"]))
        image = objects.ImageMeta.from_dict({"properties": dict(case["image"])})
        cpu = drv._get_guest_cpu_model_config(flavor, "x86_64")
        if cpu is not None:
            out["cpu"] = {
                "mode": cpu.mode,
                "model": cpu.model,
                "features": sorted([f.name, f.policy] for f in cpu.features),
            }
            t = hardware.get_best_cpu_topology(flavor, image)
            out["topology"] = [t.sockets, t.cores, t.threads]
    except Exception as e:  # every refusal, whatever Nova raises
        out = {"error": error(e), "cpu": None, "topology": None}
    return out


def main():
    models = sys.argv[1:]
    cases = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as tmp:
        answers = [run(c, models, tmp) for c in cases]
    json.dump(answers, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
