//! What can fail while building or exporting a CPUID table.

use crate::qemu::QemuModelError;
use crate::topology::TopologyError;

/// A guest CPU cannot be turned into a CPUID table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildCpuidError {
    /// The model has no QEMU definition (or an unknown version).
    #[error(transparent)]
    Qemu(#[from] QemuModelError),
    /// The topology is impossible.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The guest CPU has no named model (host-passthrough, maximum, none).
    #[error("CPU mode '{0}' has no fixed CPUID table; use a named model (custom mode or a resolved host-model)")]
    NoModel(String),
}

/// A CPUID table cannot be exported in the asked form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExportCpuidError {
    /// The vCPU index is past the topology.
    #[error("vCPU {vcpu} does not exist: the table describes {vcpus} vCPUs")]
    NoSuchVcpu {
        /// The index asked for.
        vcpu: u32,
        /// vCPUs in the table.
        vcpus: u32,
    },
}
