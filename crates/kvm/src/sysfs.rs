//! The host's CPU topology as Linux shows it in sysfs: how many NUMA
//! cells, sockets, cores and threads, counted the way libvirt's
//! capabilities count them (sockets per cell, cores per socket, threads per
//! core). Nova stores these counts in a compute node's `cpu_info`.
//!
//! The reading is a thin edge over [`topology_from_places`], which is pure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// CPU topology counts of a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostTopology {
    /// NUMA cells (at least 1).
    pub cells: u32,
    /// Sockets per cell (at least 1).
    pub sockets: u32,
    /// Cores per socket (the most of any socket).
    pub cores: u32,
    /// Threads per core (the most of any core).
    pub threads: u32,
}

/// Where one logical CPU sits: its package (socket) and core IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuPlace {
    /// `physical_package_id`.
    pub package: u32,
    /// `core_id`.
    pub core: u32,
}

/// The counts of a host whose online logical CPUs sit at `places`, with
/// `cells` NUMA cells. No CPU gives one socket of one core of one thread.
pub fn topology_from_places(places: &[CpuPlace], cells: u32) -> HostTopology {
    let mut threads: BTreeMap<(u32, u32), u32> = BTreeMap::new();
    let mut cores: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    for p in places {
        *threads.entry((p.package, p.core)).or_default() += 1;
        cores.entry(p.package).or_default().insert(p.core);
    }
    let cells = cells.max(1);
    let packages = u32::try_from(cores.len()).unwrap_or(u32::MAX).max(1);
    HostTopology {
        cells,
        sockets: (packages / cells).max(1),
        cores: cores
            .values()
            .map(|c| u32::try_from(c.len()).unwrap_or(u32::MAX))
            .max()
            .unwrap_or(1),
        threads: threads.values().copied().max().unwrap_or(1),
    }
}

/// Reads a number from a sysfs file.
fn read_u32(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// This machine's topology from `/sys/devices/system` (CPUs whose topology
/// is not readable, such as offline ones, are left out; no sysfs gives one
/// socket of one core of one thread).
pub fn host_topology() -> HostTopology {
    host_topology_at(Path::new("/sys/devices/system"))
}

/// [`host_topology`] from a sysfs `devices/system` directory at `root`.
pub fn host_topology_at(root: &Path) -> HostTopology {
    let numbered = |dir: &Path, prefix: &str| -> Vec<std::path::PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name().to_str().is_some_and(|n| {
                    n.strip_prefix(prefix)
                        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                })
            })
            .map(|e| e.path())
            .collect()
    };
    let places: Vec<CpuPlace> = numbered(&root.join("cpu"), "cpu")
        .iter()
        .filter_map(|cpu| {
            Some(CpuPlace {
                package: read_u32(&cpu.join("topology/physical_package_id"))?,
                core: read_u32(&cpu.join("topology/core_id"))?,
            })
        })
        .collect();
    let cells = u32::try_from(numbered(&root.join("node"), "node").len()).unwrap_or(u32::MAX);
    topology_from_places(&places, cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_libvirt() {
        let place = |package, core| CpuPlace { package, core };
        // 2 sockets × 4 cores × 2 threads on 2 cells.
        let mut places = Vec::new();
        for package in 0..2 {
            for core in 0..4 {
                places.extend([place(package, core), place(package, core)]);
            }
        }
        let t = topology_from_places(&places, 2);
        assert_eq!((t.cells, t.sockets, t.cores, t.threads), (2, 1, 4, 2));
        let t = topology_from_places(&places, 1);
        assert_eq!((t.cells, t.sockets, t.cores, t.threads), (1, 2, 4, 2));
        let t = topology_from_places(&[], 0);
        assert_eq!((t.cells, t.sockets, t.cores, t.threads), (1, 1, 1, 1));
    }

    #[test]
    fn reads_a_sysfs_tree() {
        let root = std::env::temp_dir().join(format!("cpumodel-sysfs-{}", std::process::id()));
        for (cpu, core) in [(0, 0), (1, 1), (2, 0), (3, 1)] {
            let dir = root.join(format!("cpu/cpu{cpu}/topology"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("physical_package_id"), "0\n").unwrap();
            std::fs::write(dir.join("core_id"), format!("{core}\n")).unwrap();
        }
        std::fs::create_dir_all(root.join("cpu/cpufreq")).unwrap();
        std::fs::create_dir_all(root.join("node/node0")).unwrap();
        let t = host_topology_at(&root);
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!((t.cells, t.sockets, t.cores, t.threads), (1, 1, 2, 2));
    }
}
