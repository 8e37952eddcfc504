//! Why the CPUID guest could not run.

use std::io;
use std::path::PathBuf;

use crate::error::KvmProbeError;

/// The CPUID guest could not be run to its end.
///
/// Every message is one line that names what failed; a failed ioctl names
/// the ioctl and the vCPU.
#[derive(Debug, thiserror::Error)]
pub enum KvmRunError {
    /// The KVM device could not be opened or is not KVM.
    #[error("{}", .0.reason())]
    Device(#[source] KvmProbeError),
    /// More vCPUs than KVM allows in one VM.
    #[error(
        "the guest has {vcpus} vCPUs, but KVM at {} allows at most {max} per VM \
         (KVM_CAP_MAX_VCPUS)",
        path.display()
    )]
    TooManyVcpus {
        /// The device path.
        path: PathBuf,
        /// vCPUs asked for.
        vcpus: usize,
        /// `KVM_CAP_MAX_VCPUS`.
        max: usize,
    },
    /// An APIC ID (which is also the vCPU's KVM ID) past KVM's limit.
    #[error(
        "vCPU {vcpu} has APIC ID {apic_id}, but KVM at {} takes vCPU IDs below {limit} only \
         (KVM_CAP_MAX_VCPU_ID)",
        path.display()
    )]
    ApicIdTooLarge {
        /// The device path.
        path: PathBuf,
        /// The vCPU index.
        vcpu: usize,
        /// Its APIC ID.
        apic_id: u32,
        /// `KVM_CAP_MAX_VCPU_ID`.
        limit: usize,
    },
    /// More CPUID queries than the guest's memory layout holds.
    #[error("{queries} CPUID queries; the guest runs at most {max}")]
    TooManyQueries {
        /// Queries asked for.
        queries: usize,
        /// [`crate::guest::MAX_QUERIES`].
        max: usize,
    },
    /// More CPUID entries than `struct kvm_cpuid2` can carry.
    #[error("the CPUID table has {entries} entries; KVM takes at most {max}")]
    TooManyEntries {
        /// Entries in the table.
        entries: usize,
        /// `KVM_MAX_CPUID_ENTRIES`.
        max: usize,
    },
    /// The guest's memory could not be mapped.
    #[error("cannot map {size} bytes of guest memory: {source}")]
    Memory {
        /// Bytes asked for.
        size: usize,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A VM ioctl failed.
    #[error("{}: {ioctl} failed: {source}", path.display())]
    Vm {
        /// The device path.
        path: PathBuf,
        /// The ioctl's name.
        ioctl: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A vCPU ioctl failed.
    #[error("{}: {ioctl} on vCPU {vcpu} failed: {source}", path.display())]
    Vcpu {
        /// The device path.
        path: PathBuf,
        /// The ioctl's name.
        ioctl: &'static str,
        /// The vCPU index.
        vcpu: usize,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The guest stopped for something else than its final HLT.
    #[error("vCPU {vcpu} stopped with {exit} at guest address {rip:#x} instead of halting")]
    UnexpectedExit {
        /// The vCPU index.
        vcpu: usize,
        /// The exit, as KVM reported it.
        exit: String,
        /// Where the guest was.
        rip: u64,
    },
    /// The guest halted before its last query.
    #[error(
        "vCPU {vcpu} halted with its result pointer at {end_mark:#x} instead of {expected:#x}: \
         not every CPUID query ran"
    )]
    Incomplete {
        /// The vCPU index.
        vcpu: usize,
        /// What the guest wrote at [`crate::guest::END_MARK`].
        end_mark: u16,
        /// What it writes after the last query.
        expected: u16,
    },
    /// This build of cpumodel cannot use KVM (it is not for Linux on x86_64).
    #[error("this build of cpumodel runs KVM guests only on Linux on x86_64")]
    Unsupported,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_errors_give_the_limit() {
        let e = KvmRunError::TooManyVcpus {
            path: "/dev/kvm".into(),
            vcpus: 2048,
            max: 1024,
        };
        assert_eq!(
            e.to_string(),
            "the guest has 2048 vCPUs, but KVM at /dev/kvm allows at most 1024 per VM \
             (KVM_CAP_MAX_VCPUS)"
        );
        let e = KvmRunError::ApicIdTooLarge {
            path: "/dev/kvm".into(),
            vcpu: 5,
            apic_id: 1030,
            limit: 1024,
        };
        assert_eq!(
            e.to_string(),
            "vCPU 5 has APIC ID 1030, but KVM at /dev/kvm takes vCPU IDs below 1024 only \
             (KVM_CAP_MAX_VCPU_ID)"
        );
    }

    #[test]
    fn device_errors_are_the_probe_reason_alone() {
        let e = KvmRunError::Device(KvmProbeError::NoDevice {
            path: "/nonexistent".into(),
        });
        assert_eq!(
            e.to_string(),
            "/nonexistent does not exist: this machine offers no KVM (load the kvm_intel or \
             kvm_amd module, or enable nested virtualization for this VM)"
        );
    }
}
