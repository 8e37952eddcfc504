//! The hypervisor's CPU view: what `/dev/kvm` can give a guest.
//!
//! A host's own CPUID is not what its guests can get: KVM hides some
//! features and emulates others. KVM says what it can offer through two
//! system ioctls, and this crate turns their answers into the same
//! [`CpuData`] a `<cpudata>` dump holds, so every decoder works on it:
//!
//! - `KVM_GET_SUPPORTED_CPUID`: every CPUID leaf and subleaf KVM can expose;
//! - `KVM_GET_MSR_FEATURE_INDEX_LIST`, then `KVM_GET_MSRS` on the system
//!   file descriptor: the feature MSRs (such as `IA32_ARCH_CAPABILITIES`,
//!   0x10a) and their values.
//!
//! This is the only cpumodel crate that touches the machine: the KVM
//! device, the CPUID instruction and the msr device ([`machine`]). The
//! conversions between KVM's structures and cpumodel's types
//! ([`cpudata_from_kvm`], [`kvm_entry`], [`entry_from_kvm`], [`kvm_cpuid`])
//! are pure functions; the probe ([`probe_at`]) is a thin edge on top of
//! them, and its failures are a typed [`KvmProbeError`] whose message says
//! how to fix the environment.
//!
//! Commands that show "this machine" read it through [`MachineView`]: KVM's
//! view when the device is usable, the raw CPUID otherwise, with the reason
//! KVM was not used ([`ViewSource`]).
//!
//! ```no_run
//! # #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
//! # fn main() -> Result<(), cpumodel_kvm::KvmProbeError> {
//! let data = cpumodel_kvm::probe_at(std::path::Path::new(cpumodel_kvm::DEFAULT_DEVICE))?;
//! println!("{}", cpumodel_cpudata::format_cpudata(&data));
//! # Ok(())
//! # }
//! # #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
//! # fn main() {}
//! ```
//!
//! It also runs guests, for `cpumodel verify`: [`CpuidGuest`] creates a VM,
//! gives each vCPU its own CPUID table with `KVM_SET_CPUID2`, and runs the
//! small real-mode program of [`guest`] on every vCPU, which executes CPUID
//! for each `(leaf, subleaf)` asked and leaves the registers in guest
//! memory. vCPU limits are checked first ([`VmLimits`]), and failures are a
//! typed [`KvmRunError`] naming the ioctl and the vCPU.
//!
//! ```no_run
//! # #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
//! # fn main() -> Result<(), cpumodel_kvm::KvmRunError> {
//! use cpumodel_cpudata::{CpuidEntry, CpuidKey};
//! use cpumodel_kvm::{CpuidGuest, GuestVcpu};
//!
//! let kvm = CpuidGuest::open(std::path::Path::new(cpumodel_kvm::DEFAULT_DEVICE))?;
//! // Leaf 0 only: maximum leaf 0xd and "GenuineIntel".
//! let leaf0 = CpuidEntry::new(CpuidKey::leaf(0), [0xd, 0x756e_6547, 0x6c65_746e, 0x4965_6e69]);
//! let runs = kvm.run(&[GuestVcpu { apic_id: 0, cpuid: vec![leaf0] }], &[CpuidKey::leaf(0)])?;
//! assert_eq!(runs[0].results[0], [0xd, 0x756e_6547, 0x6c65_746e, 0x4965_6e69]);
//! # Ok(())
//! # }
//! # #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
//! # fn main() {}
//! ```

#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod convert;
mod error;
pub mod guest;
mod limits;
pub mod machine;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod probe;
mod run_error;
pub mod sysfs;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod vm;

use std::path::Path;

use cpumodel_cpudata::CpuData;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use convert::{cpudata_from_kvm, entry_from_kvm, kvm_cpuid, kvm_entry};
pub use error::{KvmProbeError, RAW_STILL_WORKS};
pub use limits::{VcpuRun, VmLimits};
pub use machine::{MachineView, MachineViewError, ViewSource};
pub use run_error::KvmRunError;
pub use sysfs::{host_topology, HostTopology};
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use vm::{CpuidGuest, GuestVcpu};

/// The usual KVM device.
pub const DEFAULT_DEVICE: &str = "/dev/kvm";

/// What KVM can give a guest, read from the KVM device at `path`: the
/// supported CPUID leaves and the feature MSRs.
///
/// # Errors
/// [`KvmProbeError`]: the device is missing or not accessible, is not a KVM
/// device, or lacks one of the ioctls; on a build for another platform than
/// Linux on x86_64, [`KvmProbeError::Unsupported`].
pub fn probe_at(path: &Path) -> Result<CpuData, KvmProbeError> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        probe::probe_at(path)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = path;
        Err(KvmProbeError::Unsupported)
    }
}
