//! The walk over a processor's CPUID leaves, as a pure function.
//!
//! Which subleaves of a leaf are valid follows architectural rules (the
//! same rules libvirt applies), so a dump written from this walk decodes
//! exactly like one libvirt recorded. The walk asks a [`CpuidReader`] and
//! never executes the instruction itself: this crate is pure, and the real
//! processor is a reader that `cpumodel-kvm` (the crate owning devices and
//! machine instructions) provides, as it reads the feature MSRs. Here the
//! walk is tested on recorded values.

use crate::cpuid::CpuidKey;
use crate::item::{CpuData, Item, ItemKey};

/// Something that answers CPUID queries: the real processor or a recording.
pub trait CpuidReader {
    /// The answer to CPUID with `EAX=key.leaf`, `ECX=key.subleaf`, as `[eax, ebx, ecx, edx]`.
    fn cpuid(&self, key: CpuidKey) -> [u32; 4];
}

/// A recording answers from its items (zeros for a leaf it lacks).
impl CpuidReader for CpuData {
    fn cpuid(&self, key: CpuidKey) -> [u32; 4] {
        self.get(ItemKey::Cpuid(key)).map_or([0; 4], |i| i.regs)
    }
}

/// The IA32_ARCH_CAPABILITIES MSR, which carries the CPU's vulnerability
/// and mitigation bits (`rdctl-no`, `mds-no`, ...).
pub const IA32_ARCH_CAPABILITIES: u32 = 0x10a;

/// True when CPUID.7.0:EDX\[29\] announces IA32_ARCH_CAPABILITIES, so reading
/// the MSR makes sense (libvirt reads it only then).
pub fn announces_arch_capabilities(cpuid: &CpuData) -> bool {
    cpuid
        .get(ItemKey::cpuid(7, 0))
        .is_some_and(|leaf7| leaf7.regs[3] & (1 << 29) != 0)
}

/// Reads every standard (0x0...) and extended (0x80000000...) leaf with its
/// valid subleaves.
pub fn read_cpuid(reader: &impl CpuidReader) -> CpuData {
    let mut data = CpuData::new();
    for base in [0u32, 0x8000_0000] {
        let max = reader.cpuid(CpuidKey::leaf(base))[0];
        // Guard against nonsense maxima (a hypervisor bug must not hang us).
        let max = max.min(base.wrapping_add(0xff));
        let mut leaf = base;
        while leaf <= max {
            read_leaf(reader, &mut data, leaf);
            leaf += 1;
        }
    }
    data
}

fn read_leaf(reader: &impl CpuidReader, data: &mut CpuData, leaf: u32) {
    let r = |leaf: u32, sub: u32| reader.cpuid(CpuidKey::new(leaf, sub));
    let mut add = |sub: u32, regs: [u32; 4]| {
        data.add(Item {
            key: ItemKey::cpuid(leaf, sub),
            regs,
        });
    };
    let sub0 = r(leaf, 0);
    match leaf {
        // Deterministic cache parameters: subleaf n+1 is valid while EAX[4:0] != 0.
        0x4 => {
            add(0, sub0);
            let mut regs = sub0;
            let mut sub = 0;
            while regs[0] & 0x1f != 0 && sub < 64 {
                sub += 1;
                regs = r(leaf, sub);
                add(sub, regs);
            }
        }
        // Subleaf 0 EAX gives the highest valid subleaf.
        0x7 | 0x14 => {
            add(0, sub0);
            for sub in 1..=sub0[0].min(64) {
                add(sub, r(leaf, sub));
            }
        }
        // Extended topology: valid while ECX[15:8] (level type) != 0.
        0xb | 0x1f => {
            let mut regs = sub0;
            let mut sub = 0;
            while regs[2] & 0xff00 != 0 && sub < 64 {
                add(sub, regs);
                sub += 1;
                regs = r(leaf, sub);
            }
        }
        // XSAVE state components: 0 and 1 always, others when enabled in the bitmaps.
        0xd => {
            add(0, sub0);
            let sub1 = r(leaf, 1);
            add(1, sub1);
            for sub in 2..64u32 {
                let valid = if sub < 32 {
                    (sub0[0] | sub1[2]) & (1 << sub) != 0
                } else {
                    (sub0[3] | sub1[3]) & (1 << (sub - 32)) != 0
                };
                if valid {
                    add(sub, r(leaf, sub));
                }
            }
        }
        // RDT monitoring (EDX) and allocation (EBX) resource bitmaps.
        0xf | 0x10 => {
            add(0, sub0);
            let res = if leaf == 0xf { sub0[3] } else { sub0[1] };
            for sub in 1..32 {
                if res & (1 << sub) != 0 {
                    add(sub, r(leaf, sub));
                }
            }
        }
        // SGX: only with CPUID.7.0:EBX[2]; subleaves >= 2 while EAX[3:0] != 0.
        0x12 => {
            if r(7, 0)[1] & (1 << 2) == 0 {
                return;
            }
            add(0, sub0);
            add(1, r(leaf, 1));
            let mut sub = 2;
            let mut regs = r(leaf, sub);
            while regs[0] & 0xf != 0 && sub < 64 {
                add(sub, regs);
                sub += 1;
                regs = r(leaf, sub);
            }
        }
        // SoC vendor: valid when EAX >= 3, which is also the highest subleaf.
        0x17 => {
            if sub0[0] < 3 {
                return;
            }
            add(0, sub0);
            for sub in 1..=sub0[0].min(64) {
                add(sub, r(leaf, sub));
            }
        }
        _ => add(0, sub0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_capabilities_only_when_announced() {
        let announced: CpuData = [Item::cpuid(7, 0, 0, 0, 0, 1 << 29)].into_iter().collect();
        let silent: CpuData = [Item::cpuid(7, 0, 0, 0, 0, 0)].into_iter().collect();
        assert!(announces_arch_capabilities(&announced));
        assert!(!announces_arch_capabilities(&silent));
        assert!(!announces_arch_capabilities(&CpuData::new()));
    }

    #[test]
    fn walk_follows_subleaf_rules_on_recorded_data() {
        let recorded: CpuData = [
            Item::cpuid(0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69),
            Item::cpuid(4, 0, 0x1c004121, 0, 0, 0),
            Item::cpuid(4, 1, 0x1c004122, 0, 0, 0),
            Item::cpuid(4, 2, 0, 0, 0, 0),
            Item::cpuid(7, 0, 1, 0x4, 0, 0),
            Item::cpuid(7, 1, 0, 0x20, 0, 0),
            Item::cpuid(0xb, 0, 1, 2, 0x100, 0),
            Item::cpuid(0xb, 1, 4, 4, 0x201, 0),
            Item::cpuid(0xd, 0, 0x7, 0, 0, 0),
            Item::cpuid(0xd, 1, 0x1, 0, 0, 0),
            Item::cpuid(0xd, 2, 0x100, 0x240, 0, 0),
            Item::cpuid(0x80000000, 0, 0x80000001, 0, 0, 0),
            Item::cpuid(0x80000001, 0, 0, 0, 1, 0x28100800),
        ]
        .into_iter()
        .collect();
        let read = read_cpuid(&recorded);
        let keys: Vec<_> = read
            .nonzero_items()
            .filter_map(|i| i.key.cpuid_key())
            .map(|k| (k.leaf, k.subleaf))
            .collect();
        assert_eq!(
            keys,
            [
                (0, 0),
                (4, 0),
                (4, 1),
                (7, 0),
                (7, 1),
                (0xb, 0),
                (0xb, 1),
                (0xd, 0),
                (0xd, 1),
                (0xd, 2),
                (0x80000000, 0),
                (0x80000001, 0)
            ]
        );
    }
}
