//! The table as `kvm_bindings::CpuId`, ready for `VcpuFd::set_cpuid2`.

use kvm_bindings::{kvm_cpuid_entry2, CpuId, KVM_MAX_CPUID_ENTRIES};

use crate::error::ExportCpuidError;
use crate::table::CpuidTable;

/// The entries of vCPU `vcpu` as a `CpuId` (each vCPU gets its own: the
/// APIC ID fields differ).
///
/// # Errors
/// [`ExportCpuidError`] when the vCPU does not exist or the table has more
/// entries than KVM accepts.
pub fn to_kvm_cpuid(table: &CpuidTable, vcpu: u32) -> Result<CpuId, ExportCpuidError> {
    if vcpu >= table.vcpus() {
        return Err(ExportCpuidError::NoSuchVcpu {
            vcpu,
            vcpus: table.vcpus(),
        });
    }
    let entries: Vec<kvm_cpuid_entry2> = table
        .vcpu_entries(vcpu)
        .iter()
        .map(|e| kvm_cpuid_entry2 {
            function: e.function,
            index: e.index,
            flags: e.flags,
            eax: e.eax,
            ebx: e.ebx,
            ecx: e.ecx,
            edx: e.edx,
            padding: [0; 3],
        })
        .collect();
    if entries.len() > KVM_MAX_CPUID_ENTRIES {
        return Err(ExportCpuidError::TooManyEntries {
            entries: entries.len(),
            max: KVM_MAX_CPUID_ENTRIES,
        });
    }
    Ok(CpuId::from_entries(&entries).expect("the entry count is within KVM_MAX_CPUID_ENTRIES"))
}
