//! The APIC ID layout of a [`Topology`].
//!
//! An x2APIC ID is a packed set of bit fields, thread lowest:
//! `socket | die | cluster | core | thread`. Each field is as wide as the
//! count of its level needs (`ceil(log2(count))`, 0 bits for a count of 1),
//! so IDs have holes when a count is not a power of two. This is QEMU's
//! layout (`hw/i386/topology.h`, clusters being QEMU's modules), and CPUID
//! leaves 0x1, 0x4, 0xB, 0x1F, 0x80000008 and 0x8000001E all describe it.
//!
//! The topology itself is the shared [`Topology`] of `cpumodel-cpudef`;
//! this module adds what only CPUID needs ([`ApicIds`]) and the table's
//! size limit ([`MAX_VCPUS`]). Below that limit every offset is under 16
//! bits and every APIC ID fits in 32 bits.

use cpumodel_cpudef::Topology;

/// The largest vCPU count cpumodel builds a table for (QEMU's q35 limit).
pub const MAX_VCPUS: u32 = 4096;

/// The APIC ID layout of a topology.
pub trait ApicIds {
    /// The APIC ID bit layout.
    fn layout(&self) -> ApicLayout;

    /// The x2APIC ID of vCPU `index` (exact for topologies of at most
    /// [`MAX_VCPUS`]).
    fn apic_id(&self, index: u32) -> u32;
}

impl ApicIds for Topology {
    fn layout(&self) -> ApicLayout {
        let smt = width(self.threads());
        let core = width(self.cores());
        let cluster = width(self.clusters());
        let die = width(self.dies());
        ApicLayout {
            core_offset: smt,
            cluster_offset: smt + core,
            die_offset: smt + core + cluster,
            package_offset: smt + core + cluster + die,
        }
    }

    fn apic_id(&self, index: u32) -> u32 {
        let p = self.position(index);
        let l = self.layout();
        // Each level's number is below its count, so it fits its field.
        // The widths of a topology of at most MAX_VCPUS sum to under 16, so
        // nothing is lost; past that, a field shifted out of 32 bits counts
        // as 0 instead of panicking.
        let at = |n: u32, offset: u32| n.checked_shl(offset).unwrap_or(0);
        at(p.socket, l.package_offset)
            | at(p.die, l.die_offset)
            | at(p.cluster, l.cluster_offset)
            | at(p.core, l.core_offset)
            | p.thread
    }
}

/// Bit offsets of each level's field in an APIC ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApicLayout {
    /// First bit of the core field (= width of the thread field).
    pub core_offset: u32,
    /// First bit of the cluster field.
    pub cluster_offset: u32,
    /// First bit of the die field.
    pub die_offset: u32,
    /// First bit of the socket field.
    pub package_offset: u32,
}

/// Bits needed to number `count` items: `ceil(log2(count))`.
pub fn width(count: u32) -> u32 {
    if count <= 1 {
        0
    } else {
        32 - (count - 1).leading_zeros()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(sockets: u32, dies: u32, cores: u32, threads: u32) -> Topology {
        Topology::new(sockets, dies, 1, cores, threads).unwrap()
    }

    #[test]
    fn widths_round_up_to_powers_of_two() {
        assert_eq!([1, 2, 3, 4, 5, 8, 9].map(width), [0, 1, 2, 2, 3, 3, 4]);
    }

    #[test]
    fn apic_ids_pack_fields_thread_lowest() {
        let t = topo(2, 1, 2, 2);
        let ids: Vec<u32> = (0..8).map(|i| t.apic_id(i)).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4, 5, 6, 7]);
        // Three cores need two bits: IDs skip the fourth core's numbers.
        let t = topo(2, 1, 3, 1);
        let ids: Vec<u32> = (0..6).map(|i| t.apic_id(i)).collect();
        assert_eq!(ids, [0, 1, 2, 4, 5, 6]);
        // Dies sit between cores and sockets.
        let t = topo(2, 2, 1, 2);
        let ids: Vec<u32> = (0..8).map(|i| t.apic_id(i)).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(t.layout().die_offset, 1);
        assert_eq!(t.layout().package_offset, 2);
    }
}
