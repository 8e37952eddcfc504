//! The vCPU topology and the APIC ID layout derived from it.
//!
//! An x2APIC ID is a packed set of bit fields, thread lowest:
//! `socket | die | cluster | core | thread`. Each field is as wide as the
//! count of its level needs (`ceil(log2(count))`, 0 bits for a count of 1),
//! so IDs have holes when a count is not a power of two. This is QEMU's
//! layout (`hw/i386/topology.h`, clusters being QEMU's modules), and CPUID
//! leaves 0x1, 0x4, 0xB, 0x1F, 0x80000008 and 0x8000001E all describe it.

/// sockets × dies × clusters × cores × threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CpuTopology {
    /// Sockets (packages).
    pub sockets: u32,
    /// Dies per socket.
    pub dies: u32,
    /// Clusters (QEMU: modules) per die.
    pub clusters: u32,
    /// Cores per cluster.
    pub cores: u32,
    /// Threads per core.
    pub threads: u32,
}

/// The largest vCPU count cpumodel builds a table for (QEMU's q35 limit).
pub const MAX_VCPUS: u64 = 4096;

/// A topology that cannot describe a guest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// A count is zero.
    #[error("topology {topology}: every count must be at least 1, {level} is 0")]
    Zero {
        /// The topology as written.
        topology: String,
        /// The level that is zero.
        level: &'static str,
    },
    /// Too many vCPUs.
    #[error("topology {topology} holds {vcpus} vCPUs; at most {max} are supported")]
    TooMany {
        /// The topology as written.
        topology: String,
        /// Its vCPU count.
        vcpus: u64,
        /// The limit.
        max: u64,
    },
    /// More threads per core than CPUID.8000001E.EBX\[15:8\] can count.
    #[error("topology {topology}: {threads} threads per core; CPUID can describe at most 256")]
    TooManyThreads {
        /// The topology as written.
        topology: String,
        /// Threads per core.
        threads: u32,
    },
}

impl CpuTopology {
    /// One vCPU.
    pub const SINGLE: CpuTopology = CpuTopology {
        sockets: 1,
        dies: 1,
        clusters: 1,
        cores: 1,
        threads: 1,
    };

    /// Checks that the topology can be described by CPUID.
    ///
    /// # Errors
    /// [`TopologyError`] for a zero count, more than [`MAX_VCPUS`] vCPUs or
    /// more than 256 threads per core.
    pub fn validate(&self) -> Result<(), TopologyError> {
        let levels = [
            ("sockets", self.sockets),
            ("dies", self.dies),
            ("clusters", self.clusters),
            ("cores", self.cores),
            ("threads", self.threads),
        ];
        if let Some((level, _)) = levels.iter().find(|(_, n)| *n == 0) {
            return Err(TopologyError::Zero {
                topology: self.to_string(),
                level,
            });
        }
        if self.vcpus() > MAX_VCPUS {
            return Err(TopologyError::TooMany {
                topology: self.to_string(),
                vcpus: self.vcpus(),
                max: MAX_VCPUS,
            });
        }
        if self.threads > 256 {
            return Err(TopologyError::TooManyThreads {
                topology: self.to_string(),
                threads: self.threads,
            });
        }
        Ok(())
    }

    /// The number of vCPUs.
    pub fn vcpus(&self) -> u64 {
        [
            self.sockets,
            self.dies,
            self.clusters,
            self.cores,
            self.threads,
        ]
        .iter()
        .map(|n| u64::from(*n))
        .product()
    }

    /// Logical processors per package.
    pub fn threads_per_package(&self) -> u32 {
        self.threads * self.cores * self.clusters * self.dies
    }

    /// The APIC ID bit layout.
    pub fn layout(&self) -> ApicLayout {
        let smt = width(self.threads);
        let core = width(self.cores);
        let cluster = width(self.clusters);
        let die = width(self.dies);
        ApicLayout {
            core_offset: smt,
            cluster_offset: smt + core,
            die_offset: smt + core + cluster,
            package_offset: smt + core + cluster + die,
        }
    }

    /// Where vCPU `index` sits (threads vary fastest, as QEMU numbers CPUs).
    pub fn position(&self, index: u32) -> CpuPosition {
        let mut i = index;
        let thread = i % self.threads;
        i /= self.threads;
        let core = i % self.cores;
        i /= self.cores;
        let cluster = i % self.clusters;
        i /= self.clusters;
        let die = i % self.dies;
        let socket = i / self.dies;
        CpuPosition {
            socket,
            die,
            cluster,
            core,
            thread,
        }
    }

    /// The x2APIC ID of vCPU `index`.
    pub fn apic_id(&self, index: u32) -> u32 {
        let p = self.position(index);
        let l = self.layout();
        (p.socket << l.package_offset)
            | (p.die << l.die_offset)
            | (p.cluster << l.cluster_offset)
            | (p.core << l.core_offset)
            | p.thread
    }
}

impl std::fmt::Display for CpuTopology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sockets × {} dies × {} clusters × {} cores × {} threads",
            self.sockets, self.dies, self.clusters, self.cores, self.threads
        )
    }
}

/// A vCPU's place in the topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuPosition {
    /// Socket.
    pub socket: u32,
    /// Die within the socket.
    pub die: u32,
    /// Cluster within the die.
    pub cluster: u32,
    /// Core within the cluster.
    pub core: u32,
    /// Thread within the core.
    pub thread: u32,
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

    fn topo(sockets: u32, dies: u32, cores: u32, threads: u32) -> CpuTopology {
        CpuTopology {
            sockets,
            dies,
            clusters: 1,
            cores,
            threads,
        }
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

    #[test]
    fn impossible_topologies_are_rejected() {
        assert_eq!(
            topo(1, 1, 0, 2).validate().unwrap_err().to_string(),
            "topology 1 sockets × 1 dies × 1 clusters × 0 cores × 2 threads: every count must be at least 1, cores is 0"
        );
        assert_eq!(
            topo(64, 1, 64, 2).validate().unwrap_err().to_string(),
            "topology 64 sockets × 1 dies × 1 clusters × 64 cores × 2 threads holds 8192 vCPUs; at most 4096 are supported"
        );
    }
}
