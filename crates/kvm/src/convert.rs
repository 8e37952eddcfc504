//! KVM's answers as CPU data: a pure conversion, tested without a device.

use cpumodel_cpudata::{CpuData, Item, ItemKey};
use kvm_bindings::{kvm_cpuid_entry2, kvm_msr_entry, KVM_CPUID_FLAG_SIGNIFCANT_INDEX};

/// The CPU data that `KVM_GET_SUPPORTED_CPUID` entries and feature MSR
/// values describe.
///
/// Each CPUID entry becomes the item of its leaf (`function`) and subleaf
/// (`index`). An entry whose subleaf does not matter (the flag
/// `KVM_CPUID_FLAG_SIGNIFCANT_INDEX` unset) is stored as subleaf 0, which
/// is where a CPUID dump keeps such leaves. Each MSR becomes an MSR item
/// holding its 64-bit value as `edx:eax`. Entries with the same key are
/// merged (their bits OR-ed).
pub fn cpudata_from_kvm(cpuid: &[kvm_cpuid_entry2], msrs: &[kvm_msr_entry]) -> CpuData {
    let cpuid_items = cpuid.iter().map(|e| {
        let subleaf = if e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX != 0 {
            e.index
        } else {
            0
        };
        Item {
            key: ItemKey::Cpuid {
                leaf: e.function,
                subleaf,
            },
            regs: [e.eax, e.ebx, e.ecx, e.edx],
        }
    });
    let msr_items = msrs
        .iter()
        .map(|m| Item::msr(m.index, m.data as u32, (m.data >> 32) as u32));
    cpuid_items.chain(msr_items).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A CPUID entry as KVM lists it (shared with the VM runner's tests).
    pub(crate) fn entry(function: u32, index: u32, flags: u32, regs: [u32; 4]) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            flags,
            eax: regs[0],
            ebx: regs[1],
            ecx: regs[2],
            edx: regs[3],
            ..Default::default()
        }
    }

    fn key(leaf: u32, subleaf: u32) -> ItemKey {
        ItemKey::Cpuid { leaf, subleaf }
    }

    #[test]
    fn indexed_leaves_keep_their_subleaf_others_are_subleaf_zero() {
        let sig = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
        let data = cpudata_from_kvm(
            &[
                entry(0, 0, 0, [0xd, 0x6874_7541, 0x444d_4163, 0x6974_6e65]),
                // Not indexed: KVM may leave garbage in `index`.
                entry(1, 7, 0, [0x00a0_0f11, 0, 0x8000_0001, 0x0789_fbff]),
                entry(7, 0, sig, [1, 0x219c_07ab, 0, 0]),
                entry(7, 1, sig, [0x20, 0, 0, 0]),
                entry(0xd, 1, sig, [0xf, 0, 0, 0]),
            ],
            &[],
        );
        let keys: Vec<ItemKey> = data.items().iter().map(|i| i.key).collect();
        assert_eq!(
            keys,
            [key(0, 0), key(1, 0), key(7, 0), key(7, 1), key(0xd, 1)]
        );
        assert_eq!(&data.vendor_string().unwrap(), b"AuthenticAMD");
        assert_eq!(data.signature(), 0x00a0_0f11);
        assert_eq!(data.get(key(7, 1)).unwrap().regs, [0x20, 0, 0, 0]);
    }

    #[test]
    fn msr_values_split_into_eax_and_edx() {
        let data = cpudata_from_kvm(
            &[],
            &[
                kvm_msr_entry {
                    index: 0x10a,
                    reserved: 0,
                    data: 0x0000_0040_0000_0c6b,
                },
                kvm_msr_entry {
                    index: 0x345,
                    reserved: 0,
                    data: 0,
                },
            ],
        );
        assert_eq!(
            data.get(ItemKey::Msr { index: 0x10a }).unwrap().regs,
            [0x0c6b, 0x40, 0, 0]
        );
        // A zero MSR is kept but carries no feature.
        assert!(data.get(ItemKey::Msr { index: 0x345 }).unwrap().is_zero());
        assert_eq!(data.nonzero_items().count(), 1);
    }

    #[test]
    fn duplicate_entries_are_merged() {
        let data = cpudata_from_kvm(
            &[entry(1, 0, 0, [0, 0, 1, 0]), entry(1, 3, 0, [0, 0, 2, 0])],
            &[],
        );
        assert_eq!(data.items().len(), 1);
        assert_eq!(data.get(key(1, 0)).unwrap().regs, [0, 0, 3, 0]);
    }
}
