//! The guest CPU topology: sockets × dies × clusters × cores × threads.
//!
//! One type serves every crate: libvirt's `<topology>` element, the
//! topology a guest policy chooses (explicitly or by Nova's rules), and the
//! topology a CPUID table describes. A [`Topology`] can only be built by
//! [`Topology::new`], which checks that every count is at least 1 and that
//! every product the others compute with — logical CPUs per cluster, per
//! die, per package, and the vCPU total — fits in a `u32`. The check uses
//! checked arithmetic, so an impossible topology is a [`TopologyError`]
//! naming its values in release and debug builds alike, and code holding a
//! `Topology` multiplies its counts without overflow.
//!
//! Each level counts instances per instance of the level above: dies per
//! socket, clusters per die, cores per cluster, threads per core. Without
//! clusters (one per die), cores per cluster are cores per die.

use std::fmt;

/// sockets × dies × clusters × cores × threads, every count at least 1 and
/// every product within `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Topology {
    sockets: u32,
    dies: u32,
    clusters: u32,
    cores: u32,
    threads: u32,
}

/// A topology that cannot exist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// A count is zero.
    #[error("topology {topology}: every count must be at least 1, {level} is 0")]
    Zero {
        /// The counts as given (`2 sockets × 1 dies × ...`).
        topology: String,
        /// The level that is zero (`cores`).
        level: &'static str,
    },
    /// A product of the counts does not fit in 32 bits.
    #[error("topology {topology} holds {count} {what}; at most 4294967295 fit in 32 bits")]
    Overflow {
        /// The counts as given.
        topology: String,
        /// The first product that overflows.
        count: u64,
        /// What it counts (`vCPUs`, `logical CPUs per package`, ...).
        what: &'static str,
    },
}

/// The counts as a topology's messages write them.
fn describe(counts: [u32; 5]) -> String {
    let [s, d, c, k, t] = counts;
    format!("{s} sockets × {d} dies × {c} clusters × {k} cores × {t} threads")
}

impl Topology {
    /// One vCPU.
    pub const SINGLE: Topology = Topology {
        sockets: 1,
        dies: 1,
        clusters: 1,
        cores: 1,
        threads: 1,
    };

    /// A topology of `sockets` sockets, `dies` dies per socket, `clusters`
    /// clusters per die, `cores` cores per cluster and `threads` threads per
    /// core.
    ///
    /// # Errors
    /// [`TopologyError::Zero`] when a count is 0, and
    /// [`TopologyError::Overflow`] when the logical CPUs of a cluster, a
    /// die, a package or the whole guest do not fit in a `u32`.
    pub fn new(
        sockets: u32,
        dies: u32,
        clusters: u32,
        cores: u32,
        threads: u32,
    ) -> Result<Topology, TopologyError> {
        let counts = [sockets, dies, clusters, cores, threads];
        let levels = ["sockets", "dies", "clusters", "cores", "threads"];
        if let Some(i) = counts.iter().position(|n| *n == 0) {
            return Err(TopologyError::Zero {
                topology: describe(counts),
                level: levels[i],
            });
        }
        // Innermost first: each product is the one before times the next
        // level's count.
        let steps = [
            (cores, "logical CPUs per cluster"),
            (clusters, "logical CPUs per die"),
            (dies, "logical CPUs per package"),
            (sockets, "vCPUs"),
        ];
        let mut product = threads;
        for (count, what) in steps {
            product = product
                .checked_mul(count)
                .ok_or_else(|| TopologyError::Overflow {
                    topology: describe(counts),
                    count: u64::from(product) * u64::from(count),
                    what,
                })?;
        }
        Ok(Topology {
            sockets,
            dies,
            clusters,
            cores,
            threads,
        })
    }

    /// Sockets (packages).
    pub fn sockets(&self) -> u32 {
        self.sockets
    }

    /// Dies per socket.
    pub fn dies(&self) -> u32 {
        self.dies
    }

    /// Clusters per die (QEMU's modules).
    pub fn clusters(&self) -> u32 {
        self.clusters
    }

    /// Cores per cluster (per die when there is one cluster per die).
    pub fn cores(&self) -> u32 {
        self.cores
    }

    /// Threads per core.
    pub fn threads(&self) -> u32 {
        self.threads
    }

    /// Logical CPUs per cluster (threads × cores).
    pub fn threads_per_cluster(&self) -> u32 {
        // Within u32: checked by `new`.
        self.threads * self.cores
    }

    /// Logical CPUs per die.
    pub fn threads_per_die(&self) -> u32 {
        self.threads_per_cluster() * self.clusters
    }

    /// Logical CPUs per package (socket).
    pub fn threads_per_package(&self) -> u32 {
        self.threads_per_die() * self.dies
    }

    /// The number of vCPUs.
    pub fn vcpus(&self) -> u32 {
        self.threads_per_package() * self.sockets
    }

    /// Where vCPU `index` sits, threads varying fastest (as QEMU and libvirt
    /// number CPUs). An index past [`Topology::vcpus`] lands in a socket
    /// past the last.
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
}

impl Default for Topology {
    /// [`Topology::SINGLE`].
    fn default() -> Self {
        Topology::SINGLE
    }
}

/// `2 sockets × 1 dies × 1 clusters × 2 cores × 2 threads`.
impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe([
            self.sockets,
            self.dies,
            self.clusters,
            self.cores,
            self.threads,
        ]))
    }
}

/// A vCPU's place in a [`Topology`].
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_products() {
        let t = Topology::new(2, 3, 1, 4, 2).unwrap();
        assert_eq!(
            [t.sockets(), t.dies(), t.clusters(), t.cores(), t.threads()],
            [2, 3, 1, 4, 2]
        );
        assert_eq!(t.threads_per_cluster(), 8);
        assert_eq!(t.threads_per_die(), 8);
        assert_eq!(t.threads_per_package(), 24);
        assert_eq!(t.vcpus(), 48);
        assert_eq!(
            t.to_string(),
            "2 sockets × 3 dies × 1 clusters × 4 cores × 2 threads"
        );
        assert_eq!(Topology::new(1, 1, 1, 1, 1).unwrap(), Topology::SINGLE);
        // The largest total that fits.
        assert_eq!(
            Topology::new(65535, 1, 1, 65537, 1).unwrap().vcpus(),
            u32::MAX
        );
    }

    #[test]
    fn zero_counts_are_errors() {
        assert_eq!(
            Topology::new(1, 1, 1, 0, 2).unwrap_err().to_string(),
            "topology 1 sockets × 1 dies × 1 clusters × 0 cores × 2 threads: every count must be at least 1, cores is 0"
        );
        assert_eq!(
            Topology::new(0, 0, 1, 1, 1).unwrap_err(),
            TopologyError::Zero {
                topology: "0 sockets × 0 dies × 1 clusters × 1 cores × 1 threads".into(),
                level: "sockets",
            }
        );
    }

    #[test]
    fn overflowing_products_are_errors_naming_the_values() {
        assert_eq!(
            Topology::new(65536, 1, 1, 65536, 1).unwrap_err().to_string(),
            "topology 65536 sockets × 1 dies × 1 clusters × 65536 cores × 1 threads holds 4294967296 vCPUs; at most 4294967295 fit in 32 bits"
        );
        assert_eq!(
            Topology::new(1, 65536, 1, 1, 65536).unwrap_err().to_string(),
            "topology 1 sockets × 65536 dies × 1 clusters × 1 cores × 65536 threads holds 4294967296 logical CPUs per package; at most 4294967295 fit in 32 bits"
        );
        assert_eq!(
            Topology::new(1, 1, u32::MAX, u32::MAX, 1).unwrap_err(),
            TopologyError::Overflow {
                topology: "1 sockets × 1 dies × 4294967295 clusters × 4294967295 cores × 1 threads"
                    .into(),
                count: u64::from(u32::MAX) * u64::from(u32::MAX),
                what: "logical CPUs per die",
            }
        );
        assert!(matches!(
            Topology::new(1, 1, 1, u32::MAX, 2),
            Err(TopologyError::Overflow {
                what: "logical CPUs per cluster",
                ..
            })
        ));
    }

    #[test]
    fn positions_vary_threads_fastest() {
        let t = Topology::new(2, 1, 2, 3, 2).unwrap();
        assert_eq!(
            t.position(0),
            CpuPosition {
                socket: 0,
                die: 0,
                cluster: 0,
                core: 0,
                thread: 0
            }
        );
        assert_eq!(
            t.position(23),
            CpuPosition {
                socket: 1,
                die: 0,
                cluster: 1,
                core: 2,
                thread: 1
            }
        );
    }
}
