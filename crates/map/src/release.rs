//! The libvirt releases cpumodel answers as: each one's map and behaviour.
//!
//! Operators run several libvirt releases at once, and each release has its
//! own CPU map and a few differences in what it does with it. A [`Release`]
//! pairs the map compiled into cpumodel for that release with a
//! [`Behaviour`] that records, as data, the differences in libvirt's code
//! between releases that change an answer. With `--cpu-map DIR` the map
//! comes from the directory and the behaviour still from the release.
//!
//! What changed, by release (each item names the libvirt code involved):
//! - QEMU's feature names: from 10.8 on, libvirt translates the names QEMU
//!   reports (query-cpu-model-expansion) through the map's
//!   `<alias source='qemu'>` entries, so a QEMU spelling such as
//!   `vmx-invept-single-context-noglobals` reaches the map's feature. Up to
//!   10.7 only the fixed translation table of `qemu_capabilities.c` is used.
//! - The QEMU driver's feature filter (`virQEMUCapsCPUFilterFeatures`),
//!   which `virsh cpu-baseline` and host-model apply on a QEMU connection,
//!   drops `cmt`, `mbm_total`, `mbm_local`, `osxsave` and `ospke` in 9.0
//!   and 10.7; later releases (11.3.0's `qemu_capabilities.c` has it) also
//!   drop `vmx-ept-uc`, `vmx-ept-wb` and `vmx-invvpid-single-context`,
//!   which QEMU never supported.
//!
//! What did not change, read in the sources of 9.0.0, 10.7.0 and 11.3.0:
//! `cpu_x86.c`'s decode, compare and baseline (10.7 skips a model's
//! `added='yes'` features, which the 9.0 map does not have; 11.x also
//! subtracts an ancestor's `removed` features from a model derived from
//! it, which changes no model of the embedded maps, as a test checks), and
//! the QEMU driver's `virsh cpu-baseline` steps.

use std::fmt;

use crate::db::Database;
use crate::embedded::{MapData, MAPS};

/// What differs in libvirt's code between releases, as data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Behaviour {
    /// QEMU feature names are also translated through the map's
    /// `<alias source='qemu'>` entries (libvirt 10.8 and later).
    pub qemu_aliases: bool,
    /// Features the QEMU driver drops from the CPUs it hands back
    /// (`virsh cpu-baseline`, host-model): `virQEMUCapsCPUFilterFeatures`.
    pub hypervisor_filter: &'static [&'static str],
}

/// The QEMU driver's filter up to libvirt 10.7.
const QEMU_DRIVER_FILTER: &[&str] = &["cmt", "mbm_total", "mbm_local", "osxsave", "ospke"];

/// The QEMU driver's filter of later releases: also the VMX features QEMU
/// never supported.
const QEMU_DRIVER_FILTER_VMX: &[&str] = &[
    "cmt",
    "mbm_total",
    "mbm_local",
    "osxsave",
    "ospke",
    "vmx-ept-uc",
    "vmx-ept-wb",
    "vmx-invvpid-single-context",
];

/// A libvirt release cpumodel can answer as.
#[derive(Debug)]
pub struct Release {
    /// The name used on the command line (`9.0`, `10.7`, `upstream`).
    pub name: &'static str,
    /// What this release's code does differently.
    pub behaviour: Behaviour,
    /// Where this release's map came from.
    map: &'static MapData,
}

impl fmt::Debug for MapData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.source)
    }
}

/// The release of generated map `index` in [`MAPS`]; `newer` for the
/// releases after 10.7.
const fn release(index: usize, newer: bool) -> Release {
    Release {
        name: MAPS[index].0,
        behaviour: Behaviour {
            qemu_aliases: newer,
            hypervisor_filter: if newer {
                QEMU_DRIVER_FILTER_VMX
            } else {
                QEMU_DRIVER_FILTER
            },
        },
        map: MAPS[index].1,
    }
}

/// Every embedded release, oldest first; the last is the default.
static RELEASES: [Release; 3] = [release(0, false), release(1, false), release(2, true)];

/// A release name cpumodel does not embed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown libvirt release '{name}'; known: {}", known_names())]
pub struct UnknownRelease {
    /// The name asked for.
    pub name: String,
}

fn known_names() -> String {
    RELEASES
        .iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Release {
    /// Every embedded release, oldest first.
    pub fn all() -> &'static [Release] {
        &RELEASES
    }

    /// The newest release, the default.
    pub fn newest() -> &'static Release {
        &RELEASES[RELEASES.len() - 1]
    }

    /// The release called `name`: `9.0`, `10.7` or `upstream`, also
    /// written with a patch level (`9.0.0`) or a `v` (`v10.7.0`), and
    /// `newest` for the newest.
    ///
    /// # Errors
    /// [`UnknownRelease`], whose message lists the known names.
    pub fn find(name: &str) -> Result<&'static Release, UnknownRelease> {
        let wanted = name.trim();
        if wanted.eq_ignore_ascii_case("newest") {
            return Ok(Self::newest());
        }
        let bare = wanted.strip_prefix('v').unwrap_or(wanted);
        let bare = bare
            .strip_suffix(".0")
            .filter(|b| b.contains('.'))
            .unwrap_or(bare);
        RELEASES
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(bare))
            .ok_or_else(|| UnknownRelease {
                name: name.to_string(),
            })
    }

    /// The release's map as a database.
    pub fn database(&self) -> Database {
        self.map.database()
    }

    /// The libvirt the map was taken from (`libvirt 9.0.0`, `libvirt
    /// upstream commit <hash>`), as the importer recorded it.
    pub fn origin(&self) -> &'static str {
        self.map.origin
    }

    /// The map directory and its size, as the importer described it.
    pub fn source(&self) -> &'static str {
        self.map.source
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cpu_map from {}", self.name, self.map.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::Release;

    #[test]
    fn names_are_found_with_or_without_patch_level() {
        assert_eq!(Release::find("9.0").unwrap().name, "9.0");
        assert_eq!(Release::find("9.0.0").unwrap().name, "9.0");
        assert_eq!(Release::find("v10.7.0").unwrap().name, "10.7");
        assert_eq!(Release::find("Upstream").unwrap().name, "upstream");
        assert_eq!(Release::find("newest").unwrap().name, "upstream");
        assert_eq!(
            Release::find("9.1").unwrap_err().to_string(),
            "unknown libvirt release '9.1'; known: 9.0, 10.7, upstream"
        );
        assert!(Release::find("10").is_err());
    }

    #[test]
    fn only_releases_after_10_7_translate_qemu_aliases() {
        let aliases: Vec<bool> = Release::all()
            .iter()
            .map(|r| r.behaviour.qemu_aliases)
            .collect();
        assert_eq!(aliases, [false, false, true]);
    }
}
