//! The ioctl boundary: KVM's structures to and from cpumodel's CPUID types,
//! as pure conversions tested without a device.
//!
//! `kvm_cpuid_entry2` is the one place where a CPUID entry has KVM's shape
//! (`function`, `index`, `flags`); everywhere else it is a
//! [`CpuidEntry`], and the conversions are here, next to the ioctls.

use cpumodel_cpudata::{CpuData, CpuidEntry, CpuidKey, Item, ItemKey};
use kvm_bindings::{
    kvm_cpuid_entry2, kvm_msr_entry, CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, KVM_MAX_CPUID_ENTRIES,
};

use crate::run_error::KvmRunError;

/// `entry` as KVM takes it: the flag `KVM_CPUID_FLAG_SIGNIFCANT_INDEX` is
/// set when the leaf's subleaf selects the answer
/// ([`CpuidKey::is_indexed`]).
pub fn kvm_entry(entry: &CpuidEntry) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function: entry.key.leaf,
        index: entry.key.subleaf,
        flags: if entry.key.is_indexed() {
            KVM_CPUID_FLAG_SIGNIFCANT_INDEX
        } else {
            0
        },
        eax: entry.eax,
        ebx: entry.ebx,
        ecx: entry.ecx,
        edx: entry.edx,
        padding: [0; 3],
    }
}

/// A KVM entry as a [`CpuidEntry`] (its leaf and subleaf as KVM lists
/// them; the flags follow from the leaf).
pub fn entry_from_kvm(entry: &kvm_cpuid_entry2) -> CpuidEntry {
    CpuidEntry::new(
        CpuidKey::new(entry.function, entry.index),
        [entry.eax, entry.ebx, entry.ecx, entry.edx],
    )
}

/// One vCPU's entries as the `CpuId` that `KVM_SET_CPUID2`
/// (`VcpuFd::set_cpuid2`) takes.
///
/// # Errors
/// [`KvmRunError::TooManyEntries`] when there are more entries than KVM
/// accepts.
pub fn kvm_cpuid(entries: &[CpuidEntry]) -> Result<CpuId, KvmRunError> {
    let too_many = || KvmRunError::TooManyEntries {
        entries: entries.len(),
        max: KVM_MAX_CPUID_ENTRIES,
    };
    if entries.len() > KVM_MAX_CPUID_ENTRIES {
        return Err(too_many());
    }
    let entries: Vec<kvm_cpuid_entry2> = entries.iter().map(kvm_entry).collect();
    CpuId::from_entries(&entries).map_err(|_| too_many())
}

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
            key: ItemKey::cpuid(e.function, subleaf),
            regs: [e.eax, e.ebx, e.ecx, e.edx],
        }
    });
    let msr_items = msrs.iter().map(|m| Item::msr_value(m.index, m.data));
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
        ItemKey::cpuid(leaf, subleaf)
    }

    #[test]
    fn entries_cross_the_boundary_unchanged() {
        let leaf7 = CpuidEntry::new(CpuidKey::new(7, 1), [0x20, 0, 0, 0]);
        let k = kvm_entry(&leaf7);
        assert_eq!(
            (k.function, k.index, k.flags),
            (7, 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)
        );
        assert_eq!(entry_from_kvm(&k), leaf7);
        let leaf1 = CpuidEntry::new(CpuidKey::leaf(1), [1, 2, 3, 4]);
        assert_eq!(kvm_entry(&leaf1).flags, 0);
        assert_eq!(kvm_cpuid(&[leaf1, leaf7]).unwrap().as_slice().len(), 2);
        let many = vec![leaf1; KVM_MAX_CPUID_ENTRIES + 1];
        assert_eq!(
            kvm_cpuid(&many).unwrap_err().to_string(),
            format!(
                "the CPUID table has {} entries; KVM takes at most {KVM_MAX_CPUID_ENTRIES}",
                KVM_MAX_CPUID_ENTRIES + 1
            )
        );
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
