//! The guest CPUID table of a CPU model.
//!
//! libvirt hands QEMU a model name; Rust VMMs (Firecracker,
//! cloud-hypervisor, anything on `kvm-ioctls`) need the CPUID entries
//! themselves. This crate builds them from a guest CPU — a named model (or
//! a resolved host-model) plus flags and a topology — with QEMU's model
//! definitions as the reference for the identity leaves ([`qemu`]):
//!
//! 1. [`CpuidSpec`] says what the guest is; [`CpuidSpec::from_guest`] takes
//!    the result of `cpumodel_policy::build`.
//! 2. [`CpuidSpec::mask`] removes what the host's KVM cannot provide and
//!    names every dropped feature ([`MaskReport`]).
//! 3. [`build`] produces the [`CpuidTable`]: vCPU 0's entries plus the
//!    per-vCPU APIC ID fields ([`CpuidTable::vcpu_entries`]).
//! 4. [`export`] writes it as KVM JSON or as a Firecracker template; for
//!    `KVM_SET_CPUID2`, `cpumodel_kvm::kvm_cpuid` makes a vCPU's entries a
//!    `kvm_bindings::CpuId` (the conversion lives with the ioctls).
//! 5. [`verify`] checks what a guest's vCPUs read with CPUID against the
//!    table, bit by bit, with the run-time bits at the values the vCPU's
//!    state gives them.
//!
//! The crate is pure: no device, no file, no host CPUID.
//!
//! ```
//! use cpumodel_cpuid::{build, CpuidSpec, Topology};
//! use cpumodel_map::Database;
//!
//! let db = Database::embedded();
//! let model = db.find_model("Skylake-Client-IBRS").unwrap();
//! let topology = Topology::new(2, 1, 1, 2, 2).unwrap();
//! let spec = CpuidSpec::new(&db, model, topology).unwrap();
//! let table = build(&db, &spec).unwrap();
//! // QEMU's Skylake-Client: family 6, model 94, stepping 3.
//! assert_eq!(table.get(1, 0).unwrap().eax, 0x0005_06e3);
//! assert_eq!(table.apic_ids(), [0, 1, 2, 3, 4, 5, 6, 7]);
//! // vCPU 5 is thread 1 of core 0 of socket 1: x2APIC ID 5 in leaf 0xB.
//! let vcpu5 = table.vcpu_entries(5);
//! assert!(vcpu5.iter().any(|e| e.key.leaf == 0xb && e.edx == 5));
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod build;
pub mod cache;
mod document;
mod error;
pub mod export;
pub mod field;
mod mask;
pub mod qemu;
mod table;
pub mod topology;
pub mod verify;
pub mod xsave;

pub use build::{build, CpuidSpec, RUNTIME_FEATURES};
pub use cpumodel_cpudef::{Topology, TopologyError};
pub use document::{KvmDocument, VerifyDocument};
pub use error::{BuildCpuidError, ExportCpuidError};
pub use field::{Field, FieldError};
pub use mask::{DroppedFeature, MaskReport, MissingBits, KVM_IMPLIED};
pub use table::{
    dynamic_mask, kvm_flags, CpuidTable, DynamicBits, DynamicRule, DYNAMIC_BITS,
    FLAG_SIGNIFICANT_INDEX,
};
pub use topology::{ApicIds, MAX_VCPUS};
