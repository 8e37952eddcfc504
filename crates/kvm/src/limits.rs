//! How many vCPUs KVM takes in one VM, and what one vCPU of the CPUID guest
//! reports: plain data, checked without a device.

use std::path::Path;

use cpumodel_cpudata::{CpuidEntry, VcpuState};

use crate::guest::MAX_QUERIES;
use crate::run_error::KvmRunError;

/// KVM's vCPU limits for one VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmLimits {
    /// `KVM_CAP_MAX_VCPUS`: the most vCPUs one VM can have.
    pub max_vcpus: usize,
    /// `KVM_CAP_NR_VCPUS`: the most KVM recommends (the host's CPU count).
    pub recommended_vcpus: usize,
    /// `KVM_CAP_MAX_VCPU_ID`: vCPU IDs (here, APIC IDs) must be below it.
    pub max_vcpu_id: usize,
}

impl VmLimits {
    /// Checks a guest of vCPUs with these APIC IDs (in vCPU order) and this
    /// many CPUID queries against the limits.
    ///
    /// # Errors
    /// [`KvmRunError::TooManyVcpus`], [`KvmRunError::ApicIdTooLarge`] or
    /// [`KvmRunError::TooManyQueries`], naming the limit.
    pub fn check(&self, path: &Path, apic_ids: &[u32], queries: usize) -> Result<(), KvmRunError> {
        if apic_ids.len() > self.max_vcpus {
            return Err(KvmRunError::TooManyVcpus {
                path: path.to_path_buf(),
                vcpus: apic_ids.len(),
                max: self.max_vcpus,
            });
        }
        if let Some((vcpu, &apic_id)) = apic_ids
            .iter()
            .enumerate()
            .find(|(_, id)| **id as usize >= self.max_vcpu_id)
        {
            return Err(KvmRunError::ApicIdTooLarge {
                path: path.to_path_buf(),
                vcpu,
                apic_id,
                limit: self.max_vcpu_id,
            });
        }
        if queries > MAX_QUERIES {
            return Err(KvmRunError::TooManyQueries {
                queries,
                max: MAX_QUERIES,
            });
        }
        Ok(())
    }
}

/// What one vCPU of the CPUID guest read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcpuRun {
    /// Its APIC ID, which is also its KVM vCPU ID.
    pub apic_id: u32,
    /// EAX, EBX, ECX, EDX for each query, in query order.
    pub results: Vec<[u32; 4]>,
    /// CR0 after the run (protection stays off in the real-mode guest).
    pub cr0: u64,
    /// The state the CPUID run-time bits mirror, after the run.
    pub state: VcpuState,
    /// The CPUID entries KVM holds for it after the run (`KVM_GET_CPUID2`):
    /// where they differ from the table it was given, KVM changed the table
    /// when it was set.
    pub stored: Vec<CpuidEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: VmLimits = VmLimits {
        max_vcpus: 4,
        recommended_vcpus: 2,
        max_vcpu_id: 6,
    };

    #[test]
    fn more_vcpus_than_the_recommendation_are_fine() {
        assert!(LIMITS
            .check(Path::new("/dev/kvm"), &[0, 1, 2, 3], 256)
            .is_ok());
    }

    #[test]
    fn each_limit_is_named_with_its_value() {
        let dev = Path::new("/dev/kvm");
        assert_eq!(
            LIMITS
                .check(dev, &[0, 1, 2, 3, 4], 1)
                .unwrap_err()
                .to_string(),
            "the guest has 5 vCPUs, but KVM at /dev/kvm allows at most 4 per VM \
             (KVM_CAP_MAX_VCPUS)"
        );
        // IDs have holes when a count is not a power of two: 2 sockets of 3
        // cores are APIC IDs 0, 1, 2, 4, 5, 6.
        assert!(LIMITS.check(dev, &[0, 1, 2, 4], 1).is_ok());
        assert_eq!(
            LIMITS.check(dev, &[0, 1, 2, 6], 1).unwrap_err().to_string(),
            "vCPU 3 has APIC ID 6, but KVM at /dev/kvm takes vCPU IDs below 6 only \
             (KVM_CAP_MAX_VCPU_ID)"
        );
        assert_eq!(
            LIMITS.check(dev, &[0], 257).unwrap_err().to_string(),
            "257 CPUID queries; the guest runs at most 256"
        );
    }
}
