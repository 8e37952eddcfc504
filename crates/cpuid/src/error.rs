//! What can fail while building or exporting a CPUID table.

use cpumodel_cpudef::Topology;

use crate::field::FieldError;
use crate::qemu::QemuModelError;

/// A guest CPU cannot be turned into a CPUID table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildCpuidError {
    /// The model has no QEMU definition (or an unknown version).
    #[error(transparent)]
    Qemu(#[from] QemuModelError),
    /// More vCPUs than a table is built for.
    #[error("topology {topology} holds {vcpus} vCPUs; at most {max} are supported")]
    TooManyVcpus {
        /// The topology.
        topology: Topology,
        /// Its vCPU count.
        vcpus: u32,
        /// The limit ([`crate::topology::MAX_VCPUS`]).
        max: u32,
    },
    /// A topology count does not fit the CPUID field that describes it
    /// (where QEMU has no rule to clamp it).
    #[error("topology {topology}: {source}")]
    Field {
        /// The topology.
        topology: Topology,
        /// The field and the value.
        #[source]
        source: FieldError,
    },
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
