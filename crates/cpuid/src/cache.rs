//! Cache and TLB descriptions (CPUID leaves 0x2, 0x4, 0x80000005,
//! 0x80000006, 0x8000001D).
//!
//! cpumodel describes the same caches for every model: QEMU's *legacy*
//! cache values (`legacy_l1d_cache` and friends in target/i386/cpu.c), which
//! QEMU uses for every model that has no cache description of its own.
//! (QEMU's EPYC, Dhyana, recent Xeon and YongFeng definitions carry their own
//! cache sizes; cpumodel does not reproduce those, so its cache leaves for
//! them are the legacy ones.) As in QEMU, the Intel-format leaves 0x2 and 0x4
//! use one set of values and the AMD-format leaves another.

use cpumodel_cpudef::Topology;

use crate::field::{LEAF4_CORE_IDS, LEAF4_SHARING_IDS, LEAF8000001D_SHARING};
use crate::topology::ApicIds;

/// Which level of the topology shares a cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// All threads of a core.
    Core,
    /// All cores of a die.
    Die,
}

/// One cache as CPUID leaves 0x4 and 0x8000001D describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cache {
    /// 1 = data, 2 = instruction, 3 = unified.
    pub kind: u32,
    /// Cache level.
    pub level: u32,
    /// Size in bytes.
    pub size: u32,
    /// Line size in bytes.
    pub line: u32,
    /// Ways of associativity.
    pub ways: u32,
    /// Number of sets.
    pub sets: u32,
    /// Lines per tag (AMD leaves only).
    pub lines_per_tag: u32,
    /// Self-initializing.
    pub self_init: bool,
    /// WBINVD/INVD does not act on lower levels of sharing threads.
    pub no_invd_sharing: bool,
    /// Inclusive of lower levels.
    pub inclusive: bool,
    /// Complex indexing.
    pub complex: bool,
    /// Who shares it.
    pub sharing: Sharing,
}

const fn cache(
    kind: u32,
    level: u32,
    size: u32,
    (ways, sets): (u32, u32),
    (self_init, no_invd_sharing): (bool, bool),
    (inclusive, complex): (bool, bool),
    sharing: Sharing,
) -> Cache {
    Cache {
        kind,
        level,
        size,
        line: 64,
        ways,
        sets,
        lines_per_tag: 1,
        self_init,
        no_invd_sharing,
        inclusive,
        complex,
        sharing,
    }
}

const KIB: u32 = 1024;
const MIB: u32 = 1024 * 1024;

/// Intel-format caches (leaf 0x4): L1d, L1i, L2, L3.
#[rustfmt::skip]
pub const INTEL_CACHES: [Cache; 4] = [
    cache(1, 1, 32 * KIB, (8, 64), (true, true), (false, false), Sharing::Core),
    cache(2, 1, 32 * KIB, (8, 64), (true, true), (false, false), Sharing::Core),
    cache(3, 2, 4 * MIB, (16, 4096), (true, true), (false, false), Sharing::Core),
    cache(3, 3, 16 * MIB, (16, 16384), (true, false), (true, true), Sharing::Die),
];

/// AMD-format caches (leaves 0x80000005, 0x80000006, 0x8000001D).
#[rustfmt::skip]
pub const AMD_CACHES: [Cache; 4] = [
    cache(1, 1, 64 * KIB, (2, 512), (true, true), (false, false), Sharing::Core),
    cache(2, 1, 64 * KIB, (2, 512), (true, true), (false, false), Sharing::Core),
    cache(3, 2, 512 * KIB, (16, 512), (false, false), (false, false), Sharing::Core),
    cache(3, 3, 16 * MIB, (16, 16384), (true, false), (true, true), Sharing::Die),
];

/// Leaf 0x2: one call; descriptors 0x2C (L1d 32 KiB 8-way), 0x30 (L1i
/// 32 KiB 8-way), 0x7D (L2 2 MiB 8-way) and 0x4D (L3 16 MiB 16-way).
pub const LEAF2: [u32; 4] = [0x0000_0001, 0, 0x0000_004d, 0x002c_307d];

/// QEMU's `max_thread_ids_for_cache`: the APIC IDs a cache's sharing level
/// spans, minus one. Computed in 64 bits: the field that holds it clamps.
fn max_sharing_ids(cache: &Cache, topo: &Topology) -> u64 {
    let l = topo.layout();
    let bits = match cache.sharing {
        Sharing::Core => l.core_offset,
        Sharing::Die => l.die_offset,
    };
    (1u64 << bits.min(63)) - 1
}

/// The registers both leaf formats share, with the sharing field left 0.
fn common_regs(cache: &Cache) -> [u32; 4] {
    let eax = cache.kind | (cache.level << 5) | (u32::from(cache.self_init) << 8);
    let ebx = (cache.line - 1) | ((cache.ways - 1) << 22);
    let ecx = cache.sets - 1;
    let edx = u32::from(cache.no_invd_sharing)
        | (u32::from(cache.inclusive) << 1)
        | (u32::from(cache.complex) << 2);
    [eax, ebx, ecx, edx]
}

/// Leaf 0x4 subleaf for `cache`: EAX\[25:14\] holds the APIC IDs sharing
/// the cache minus one, EAX\[31:26\] the core IDs in the package minus one.
///
/// Both are clamped to their fields' maxima (4095 and 63), as QEMU's
/// `encode_cache_cpuid4` does since commit 3e86124e7c ("i386/cpu: Fix
/// overflow of cache topology fields in CPUID.04H"): a guest with more than
/// 64 cores per package reads 63, as on real processors with that many.
pub fn leaf4(cache: &Cache, topo: &Topology) -> [u32; 4] {
    let l = topo.layout();
    let mut r = common_regs(cache);
    LEAF4_SHARING_IDS.set_clamped(&mut r, max_sharing_ids(cache, topo));
    let core_bits = (l.package_offset - l.core_offset).min(63);
    LEAF4_CORE_IDS.set_clamped(&mut r, (1u64 << core_bits) - 1);
    r
}

/// Leaf 0x8000001D subleaf for `cache` (EDX keeps only the
/// no-invd-sharing and inclusive bits, as QEMU's topoext-only mode does).
///
/// EAX\[25:14\] is clamped to 4095, as QEMU's `encode_cache_cpuid8000001d`
/// does since commit 5d21ee453a ("i386/cpu: Honor maximum value for
/// CPUID.8000001DH.EAX\[25:14\]").
pub fn leaf8000001d(cache: &Cache, topo: &Topology) -> [u32; 4] {
    let mut r = common_regs(cache);
    LEAF8000001D_SHARING.set_clamped(&mut r, max_sharing_ids(cache, topo));
    r[3] &= 0b11;
    r
}

/// AMD's 4-bit associativity code of leaf 0x80000006.
fn amd_assoc(ways: u32) -> u32 {
    match ways {
        0 | 1 => ways,
        2 => 0x2,
        4 => 0x4,
        8 => 0x6,
        16 => 0x8,
        32 => 0xa,
        48 => 0xb,
        64 => 0xc,
        96 => 0xd,
        128 => 0xe,
        _ => 0,
    }
}

/// Leaf 0x80000005: L1 TLBs (255 entries, 1-way) and the L1 caches.
pub fn leaf80000005() -> [u32; 4] {
    let l1 = |c: &Cache| (c.size / KIB) << 24 | c.ways << 16 | c.lines_per_tag << 8 | c.line;
    [
        0x01ff_01ff,
        0x01ff_01ff,
        l1(&AMD_CACHES[0]),
        l1(&AMD_CACHES[1]),
    ]
}

/// Leaf 0x80000006: L2 TLBs (512 4-KiB entries, 4-way), L2 and L3.
pub fn leaf80000006() -> [u32; 4] {
    let l2 = &AMD_CACHES[2];
    let l3 = &AMD_CACHES[3];
    let ebx = (amd_assoc(4) << 28) | (512 << 16) | (amd_assoc(4) << 12) | 512;
    let ecx =
        ((l2.size / KIB) << 16) | (amd_assoc(l2.ways) << 12) | (l2.lines_per_tag << 8) | l2.line;
    let edx = ((l3.size / (512 * KIB)) << 18)
        | (amd_assoc(l3.ways) << 12)
        | (l3.lines_per_tag << 8)
        | l3.line;
    [0, ebx, ecx, edx]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_self_consistent() {
        for c in INTEL_CACHES.iter().chain(AMD_CACHES.iter()) {
            assert_eq!(c.size, c.line * c.ways * c.sets, "{c:?}");
        }
    }

    #[test]
    fn amd_legacy_leaves() {
        assert_eq!(
            leaf80000005(),
            [0x01ff01ff, 0x01ff01ff, 0x40020140, 0x40020140]
        );
        assert_eq!(leaf80000006(), [0, 0x42004200, 0x02008140, 0x00808140]);
    }

    #[test]
    fn leaf4_counts_cores_and_sharing_threads() {
        let t = Topology::new(2, 1, 1, 2, 2).unwrap();
        // L1d: 2 threads share it (EAX[25:14] = 1), 2 cores (EAX[31:26] = 1).
        assert_eq!(
            leaf4(&INTEL_CACHES[0], &t),
            [0x0400_4121, 0x01c0_003f, 0x3f, 1]
        );
        // L3: the die's 4 threads share it.
        assert_eq!(
            leaf4(&INTEL_CACHES[3], &t),
            [0x0400_c163, 0x03c0_003f, 0x3fff, 6]
        );
    }

    #[test]
    fn leaf4_and_8000001d_clamp_their_counts_as_qemu() {
        // 256 cores: 255 core IDs and 255 sharing IDs for the die's L3.
        let t = Topology::new(1, 1, 1, 256, 1).unwrap();
        let l3 = leaf4(&INTEL_CACHES[3], &t);
        assert_eq!(l3[0] >> 26, 63);
        assert_eq!(l3[0] >> 14 & 0xfff, 255);
        // 33 threads × 9 cores × 9 clusters (QEMU's example): the die's
        // IDs take 6 + 4 + 4 bits, more than EAX[25:14] counts.
        let t = Topology::new(1, 1, 9, 9, 33).unwrap();
        assert_eq!(leaf4(&INTEL_CACHES[3], &t)[0] >> 14 & 0xfff, 4095);
        assert_eq!(leaf4(&INTEL_CACHES[3], &t)[0] >> 26, 63);
        assert_eq!(leaf8000001d(&AMD_CACHES[3], &t)[0] >> 14 & 0xfff, 4095);
        // Below the limits nothing changes.
        assert_eq!(leaf8000001d(&AMD_CACHES[0], &t)[0] >> 14 & 0xfff, 63);
    }
}
