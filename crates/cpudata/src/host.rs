//! Reading the CPUID leaves of the processor this program runs on.
//!
//! The walk over leaves and subleaves follows the architectural rules for
//! which subleaves are valid (the same rules libvirt applies), so a dump
//! written here decodes exactly like one libvirt recorded. The instruction is
//! behind [`CpuidReader`] so the walk itself is tested on recorded values.

use crate::item::{CpuData, Item, ItemKey};

/// Something that answers CPUID queries: the real processor or a recording.
pub trait CpuidReader {
    /// Executes CPUID with `EAX=leaf`, `ECX=subleaf` and returns `[eax, ebx, ecx, edx]`.
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4];
}

/// The processor this program runs on.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostCpuid;

impl CpuidReader for HostCpuid {
    #[cfg(target_arch = "x86_64")]
    #[allow(unused_unsafe)]
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        // SAFETY: CPUID is available on every x86_64 processor.
        let r = unsafe { core::arch::x86_64::__cpuid_count(leaf, subleaf) };
        [r.eax, r.ebx, r.ecx, r.edx]
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn cpuid(&self, _leaf: u32, _subleaf: u32) -> [u32; 4] {
        [0; 4]
    }
}

impl CpuidReader for CpuData {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        self.get(ItemKey::Cpuid { leaf, subleaf })
            .map_or([0; 4], |i| i.regs)
    }
}

/// True when this build can read the live processor's CPUID.
pub const HOST_CPUID_AVAILABLE: bool = cfg!(target_arch = "x86_64");

/// The IA32_ARCH_CAPABILITIES MSR, which carries the CPU's vulnerability
/// and mitigation bits (`rdctl-no`, `mds-no`, ...).
pub const IA32_ARCH_CAPABILITIES: u32 = 0x10a;

/// Everything libvirt reads from the live host: the CPUID leaves, plus
/// IA32_ARCH_CAPABILITIES when CPUID says the MSR exists and the Linux msr
/// device (`/dev/cpu/0/msr`, root only) can read it. Like libvirt, the MSR
/// is best effort: without the device the CPUID leaves are the whole answer.
pub fn read_host_cpudata() -> CpuData {
    let mut data = read_cpuid(&HostCpuid);
    if let Some(item) = read_arch_capabilities(&data, std::path::Path::new("/dev/cpu/0/msr")) {
        data.add(item);
    }
    data
}

/// IA32_ARCH_CAPABILITIES through a Linux msr device, when CPUID.7.0:EDX\[29\]
/// announces it; `None` when the MSR is absent or unreadable.
pub fn read_arch_capabilities(cpuid: &CpuData, msr_device: &std::path::Path) -> Option<Item> {
    use std::os::unix::fs::FileExt as _;
    let leaf7 = cpuid.get(ItemKey::Cpuid {
        leaf: 7,
        subleaf: 0,
    })?;
    if leaf7.regs[3] & (1 << 29) == 0 {
        return None;
    }
    let file = std::fs::File::open(msr_device).ok()?;
    let mut buf = [0u8; 8];
    file.read_exact_at(&mut buf, u64::from(IA32_ARCH_CAPABILITIES))
        .ok()?;
    let value = u64::from_le_bytes(buf);
    Some(Item::msr(
        IA32_ARCH_CAPABILITIES,
        value as u32,
        (value >> 32) as u32,
    ))
}

/// Reads every standard (0x0...) and extended (0x80000000...) leaf with its
/// valid subleaves.
pub fn read_cpuid(reader: &impl CpuidReader) -> CpuData {
    let mut data = CpuData::new();
    for base in [0u32, 0x8000_0000] {
        let max = reader.cpuid(base, 0)[0];
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

fn read_leaf(r: &impl CpuidReader, data: &mut CpuData, leaf: u32) {
    let mut add = |sub: u32, regs: [u32; 4]| {
        data.add(Item {
            key: ItemKey::Cpuid { leaf, subleaf: sub },
            regs,
        });
    };
    let sub0 = r.cpuid(leaf, 0);
    match leaf {
        // Deterministic cache parameters: subleaf n+1 is valid while EAX[4:0] != 0.
        0x4 => {
            add(0, sub0);
            let mut regs = sub0;
            let mut sub = 0;
            while regs[0] & 0x1f != 0 && sub < 64 {
                sub += 1;
                regs = r.cpuid(leaf, sub);
                add(sub, regs);
            }
        }
        // Subleaf 0 EAX gives the highest valid subleaf.
        0x7 | 0x14 => {
            add(0, sub0);
            for sub in 1..=sub0[0].min(64) {
                add(sub, r.cpuid(leaf, sub));
            }
        }
        // Extended topology: valid while ECX[15:8] (level type) != 0.
        0xb | 0x1f => {
            let mut regs = sub0;
            let mut sub = 0;
            while regs[2] & 0xff00 != 0 && sub < 64 {
                add(sub, regs);
                sub += 1;
                regs = r.cpuid(leaf, sub);
            }
        }
        // XSAVE state components: 0 and 1 always, others when enabled in the bitmaps.
        0xd => {
            add(0, sub0);
            let sub1 = r.cpuid(leaf, 1);
            add(1, sub1);
            for sub in 2..64u32 {
                let valid = if sub < 32 {
                    (sub0[0] | sub1[2]) & (1 << sub) != 0
                } else {
                    (sub0[3] | sub1[3]) & (1 << (sub - 32)) != 0
                };
                if valid {
                    add(sub, r.cpuid(leaf, sub));
                }
            }
        }
        // RDT monitoring (EDX) and allocation (EBX) resource bitmaps.
        0xf | 0x10 => {
            add(0, sub0);
            let res = if leaf == 0xf { sub0[3] } else { sub0[1] };
            for sub in 1..32 {
                if res & (1 << sub) != 0 {
                    add(sub, r.cpuid(leaf, sub));
                }
            }
        }
        // SGX: only with CPUID.7.0:EBX[2]; subleaves >= 2 while EAX[3:0] != 0.
        0x12 => {
            if r.cpuid(7, 0)[1] & (1 << 2) == 0 {
                return;
            }
            add(0, sub0);
            add(1, r.cpuid(leaf, 1));
            let mut sub = 2;
            let mut regs = r.cpuid(leaf, sub);
            while regs[0] & 0xf != 0 && sub < 64 {
                add(sub, regs);
                sub += 1;
                regs = r.cpuid(leaf, sub);
            }
        }
        // SoC vendor: valid when EAX >= 3, which is also the highest subleaf.
        0x17 => {
            if sub0[0] < 3 {
                return;
            }
            add(0, sub0);
            for sub in 1..=sub0[0].min(64) {
                add(sub, r.cpuid(leaf, sub));
            }
        }
        _ => add(0, sub0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_capabilities_only_when_announced_and_readable() {
        let announced: CpuData = [Item::cpuid(7, 0, 0, 0, 0, 1 << 29)].into_iter().collect();
        let silent: CpuData = [Item::cpuid(7, 0, 0, 0, 0, 0)].into_iter().collect();
        // A file standing in for the msr device: 8 bytes at offset 0x10a.
        let path = std::env::temp_dir().join(format!("cpumodel-msr-{}", std::process::id()));
        let mut bytes = vec![0u8; 0x10a + 8];
        bytes[0x10a..].copy_from_slice(&0x0000_0001_0000_01ebu64.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(
            read_arch_capabilities(&announced, &path),
            Some(Item::msr(0x10a, 0x1eb, 1))
        );
        assert_eq!(read_arch_capabilities(&silent, &path), None);
        assert_eq!(
            read_arch_capabilities(&announced, std::path::Path::new("/nonexistent/msr")),
            None
        );
        std::fs::remove_file(&path).unwrap();
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
            .map(|i| match i.key {
                ItemKey::Cpuid { leaf, subleaf } => (leaf, subleaf),
                ItemKey::Msr { .. } => unreachable!(),
            })
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
