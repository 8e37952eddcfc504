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

#[cfg(test)]
mod tests {
    use cpumodel_map::Database;

    use super::*;
    use crate::{build, CpuTopology, CpuidSpec, FLAG_SIGNIFICANT_INDEX};

    #[test]
    fn each_vcpu_gets_its_own_cpuid_with_its_apic_id() {
        let db = Database::embedded();
        let topo = CpuTopology {
            cores: 4,
            threads: 2,
            ..CpuTopology::SINGLE
        };
        let spec = CpuidSpec::new(&db, db.find_model("EPYC-Rome").unwrap(), topo).unwrap();
        let table = build(&db, &spec).unwrap();
        let cpuid = to_kvm_cpuid(&table, 3).unwrap();
        let entries = cpuid.as_slice();
        assert_eq!(entries.len(), table.entries.len());
        let e1e = entries.iter().find(|e| e.function == 0x8000_001e).unwrap();
        assert_eq!((e1e.eax, e1e.ebx), (3, 0x101));
        let e7 = entries.iter().find(|e| e.function == 7).unwrap();
        assert_eq!(e7.flags, FLAG_SIGNIFICANT_INDEX);
        assert!(to_kvm_cpuid(&table, 8).is_err());
    }
}
