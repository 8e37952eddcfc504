//! From a guest CPU (model, features, topology) to its CPUID table.
//!
//! Feature bits come from the CPU map (every CPUID bit of every enabled
//! feature lands in its leaf), the identity from QEMU's model definition,
//! and everything else is computed the way QEMU computes it for a KVM guest
//! (`cpu_x86_cpuid()` and `x86_cpu_expand_features()`):
//!
//! - the maximum basic and extended leaves are the model's minimum raised to
//!   the highest leaf any enabled feature lives in (QEMU's
//!   `full-cpuid-auto-level`), to 0x14 for Intel PT, to 0x1F for an Intel
//!   topology with several dies or clusters, and to 0x8000000A for SVM;
//! - the hypervisor bit is always set; HT (and CmpLegacy on non-Intel
//!   vendors) when a package holds more than one logical processor; AMD
//!   copies the leaf 0x1 EDX bits it aliases into leaf 0x80000001 EDX;
//! - XSAVE components follow the features that use them ([`crate::xsave`]);
//! - topology and cache leaves follow [`crate::topology`] and
//!   [`crate::cache`];
//! - physical address bits default to QEMU's 40, virtual to 48 (57 with
//!   `la57`).
//!
//! Two deliberate differences from QEMU: leaf 0x1F is filled whenever the
//! maximum basic leaf reaches it (QEMU's newer model versions force it with
//! `x-force-cpuid-0x1f`), and leaf 0x80000000 carries the vendor string only
//! on AMD and Hygon, as real processors do (QEMU writes it for every
//! vendor). The KVM paravirtual leaves (0x40000000 onward) are left to the
//! VMM.

use cpumodel_cpudata::{vendor_to_regs, CpuData, CpuidEntry, CpuidKey, ItemKey, Signature};
use cpumodel_cpudef::{Mode, Topology};
use cpumodel_map::{Database, FeatureId, FeatureSet, ModelId};
use cpumodel_policy::{CpuMode, GuestCpu};

use crate::cache;
use crate::error::BuildCpuidError;
use crate::field::{
    FieldError, LEAF1F_COUNT, LEAF1F_LEVEL, LEAF1F_SHIFT, LEAF1F_TYPE, LEAF1_LOGICAL_PER_PACKAGE,
    LEAF80000008_APIC_ID_SIZE, LEAF80000008_THREADS, LEAF8000001E_THREADS, LEAFB_COUNT,
    LEAFB_LEVEL, LEAFB_SHIFT, LEAFB_TYPE,
};
use crate::qemu::{self, QemuModel};
use crate::table::{apply_apic_id, CpuidTable};
use crate::topology::{ApicIds, MAX_VCPUS};
use crate::xsave;

/// Features whose bits the processor sets from control-register state; a
/// table never asks for them.
pub const RUNTIME_FEATURES: &[&str] = &["osxsave", "ospke"];

/// Leaf 0x1 EDX bits AMD processors repeat in leaf 0x80000001 EDX.
const AMD_EDX_ALIASES: u32 = 0x0183_f3ff;

/// Everything a CPUID table is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuidSpec {
    /// The model name as the CPU map spells it.
    pub model: String,
    /// QEMU's definition of it.
    pub qemu: QemuModel,
    /// The CPUID vendor string (QEMU's, unless overridden).
    pub vendor: [u8; 12],
    /// Enabled features (MSR features are carried but not part of CPUID).
    pub features: FeatureSet,
    /// The topology.
    pub topology: Topology,
    /// Physical address bits of a 64-bit guest.
    pub phys_bits: u32,
}

impl CpuidSpec {
    /// A model with exactly its own features.
    ///
    /// # Errors
    /// [`BuildCpuidError`] when QEMU has no such model or the topology has
    /// more than [`MAX_VCPUS`] vCPUs.
    pub fn new(db: &Database, model: ModelId, topology: Topology) -> Result<Self, BuildCpuidError> {
        check_vcpus(&topology)?;
        let m = db.model(model);
        let q = qemu::resolve(&m.name)?;
        Ok(CpuidSpec {
            model: m.name.to_string(),
            vendor: q.id.vendor,
            qemu: q,
            features: m.features,
            topology,
            phys_bits: 40,
        })
    }

    /// The guest CPU a policy resolved to: its model, plus the features
    /// its flags require or force, minus those they disable or forbid. A
    /// guest without a topology has one vCPU.
    ///
    /// # Errors
    /// [`BuildCpuidError::NoModel`] for modes without a named model, and as
    /// [`CpuidSpec::new`].
    pub fn from_guest(db: &Database, guest: &GuestCpu) -> Result<Self, BuildCpuidError> {
        let model = match (guest.resolved_mode, guest.model) {
            (CpuMode::Cpu(Mode::Custom), Some(m)) => m,
            (mode, _) => return Err(BuildCpuidError::NoModel(mode.to_string())),
        };
        let topology = guest.topology.unwrap_or(Topology::SINGLE);
        let mut spec = CpuidSpec::new(db, model, topology)?;
        for (id, policy) in &guest.features {
            policy.apply(&mut spec.features, *id);
        }
        Ok(spec)
    }

    fn has(&self, db: &Database, name: &str) -> bool {
        feature(db, name).is_some_and(|id| self.features.contains(id))
    }
}

/// A table describes at most [`MAX_VCPUS`] vCPUs.
fn check_vcpus(topology: &Topology) -> Result<(), BuildCpuidError> {
    if topology.vcpus() > MAX_VCPUS {
        return Err(BuildCpuidError::TooManyVcpus {
            topology: *topology,
            vcpus: topology.vcpus(),
            max: MAX_VCPUS,
        });
    }
    Ok(())
}

pub(crate) fn feature(db: &Database, name: &str) -> Option<FeatureId> {
    db.find_feature_exact(name)
}

/// How the vendor shapes the vendor-specific leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VendorKind {
    Intel,
    Amd,
    Zhaoxin,
    Other,
}

pub(crate) fn vendor_kind(vendor: &[u8; 12]) -> VendorKind {
    match vendor {
        b"GenuineIntel" => VendorKind::Intel,
        b"AuthenticAMD" | b"HygonGenuine" => VendorKind::Amd,
        b"CentaurHauls" | b"  Shanghai  " => VendorKind::Zhaoxin,
        _ => VendorKind::Other,
    }
}

/// Bytes `i..i + 4` of a brand string as the register that holds them.
fn word(bytes: &[u8], i: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&bytes[i..i + 4]);
    u32::from_le_bytes(w)
}

/// The CPUID bits of the enabled features, run-time bits left out.
fn feature_bits(db: &Database, spec: &CpuidSpec) -> CpuData {
    let mut set = spec.features;
    for name in RUNTIME_FEATURES {
        if let Some(id) = feature(db, name) {
            set.remove(id);
        }
    }
    db.features_to_data(&set)
        .nonzero_items()
        .filter(|i| matches!(i.key, ItemKey::Cpuid(_)))
        .copied()
        .collect()
}

fn regs_of(data: &CpuData, leaf: u32, subleaf: u32) -> [u32; 4] {
    data.get(ItemKey::Cpuid(CpuidKey { leaf, subleaf }))
        .map_or([0; 4], |i| i.regs)
}

/// Builds the CPUID table of `spec`.
///
/// # Errors
/// [`BuildCpuidError::TooManyVcpus`] past [`MAX_VCPUS`], and
/// [`BuildCpuidError::Field`] when a count does not fit a CPUID field
/// QEMU does not clamp (more than 256 logical processors per package in
/// CPUID.80000008H:ECX\[7:0\], more than 256 threads per core in
/// CPUID.8000001EH:EBX\[15:8\]).
pub fn build(db: &Database, spec: &CpuidSpec) -> Result<CpuidTable, BuildCpuidError> {
    check_vcpus(&spec.topology)?;
    let data = feature_bits(db, spec);
    let kind = vendor_kind(&spec.vendor);
    let topo = spec.topology;
    let tpp = topo.threads_per_package();
    let field = |source: FieldError| BuildCpuidError::Field {
        topology: topo,
        source,
    };
    let has = |name: &str| spec.has(db, name);

    // Maximum leaves: the model's minimum raised by what the features use.
    let mut level = spec.qemu.id.level;
    let mut xlevel = spec.qemu.id.xlevel;
    let mut xlevel2 = 0;
    let mut func7 = 0;
    for item in data.nonzero_items() {
        if let ItemKey::Cpuid(CpuidKey { leaf, subleaf }) = item.key {
            match leaf {
                0..=0x3fff_ffff => level = level.max(leaf),
                0x8000_0000..=0xbfff_ffff => xlevel = xlevel.max(leaf),
                0xc000_0000..=0xcfff_ffff => xlevel2 = xlevel2.max(leaf),
                _ => {}
            }
            if leaf == 7 {
                func7 = func7.max(subleaf);
            }
        }
    }
    if has("intel-pt") {
        level = level.max(0x14);
    }
    if matches!(kind, VendorKind::Intel | VendorKind::Zhaoxin)
        && (topo.dies() > 1 || topo.clusters() > 1)
    {
        level = level.max(0x1f);
    }
    if has("svm") {
        xlevel = xlevel.max(0x8000_000a);
    }

    let signature = Signature {
        family: spec.qemu.id.family,
        model: spec.qemu.id.model,
        stepping: spec.qemu.id.stepping,
    }
    .to_eax();
    let [ebx, edx, ecx] = vendor_to_regs(&spec.vendor);
    let vendor = [ebx, ecx, edx];
    let xsave_mask: u64 = if has("xsave") {
        xsave::COMPONENTS
            .iter()
            .filter(|c| c.feature.is_none_or(&has))
            .fold(0, |m, c| m | (1 << c.bit))
    } else {
        0
    };
    let layout = topo.layout();

    let mut entries: Vec<CpuidEntry> = Vec::new();
    let mut push = |leaf: u32, sub: u32, regs: [u32; 4]| {
        let mut r = regs;
        let f = regs_of(&data, leaf, sub);
        for (a, b) in r.iter_mut().zip(f) {
            *a |= b;
        }
        entries.push(CpuidEntry::new(CpuidKey::new(leaf, sub), r));
    };

    for leaf in 0..=level {
        match leaf {
            0 => push(0, 0, [level, vendor[0], vendor[1], vendor[2]]),
            1 => {
                // CLFLUSH line size 8 (quadwords), the hypervisor bit.
                let mut r = [signature, 8 << 8, 1 << 31, 0];
                if tpp > 1 {
                    // QEMU writes MIN(threads_per_pkg, 255) since commit
                    // a62fef5829 ("i386/cpu: Fix cpu number overflow in
                    // CPUID.01H.EBX[23:16]"), with HTT set.
                    LEAF1_LOGICAL_PER_PACKAGE.set_clamped(&mut r, tpp);
                    r[3] |= 1 << 28;
                }
                push(1, 0, r);
            }
            2 if kind != VendorKind::Amd => push(2, 0, cache::LEAF2),
            4 if kind != VendorKind::Amd => {
                for (i, c) in (0..).zip(&cache::INTEL_CACHES) {
                    push(4, i, cache::leaf4(c, &topo));
                }
                push(4, 4, [0; 4]);
            }
            5 => push(5, 0, [0, 0, 0x3, 0]),
            7 => {
                for sub in 0..=func7.max(2) {
                    push(7, sub, [if sub == 0 { func7 } else { 0 }, 0, 0, 0]);
                }
            }
            0xb => {
                for (sub, regs) in (0..).zip(leafb(&topo).map_err(field)?) {
                    push(0xb, sub, regs);
                }
            }
            0xd if xsave_mask != 0 => {
                let size = xsave::standard_size(xsave_mask);
                let [low, high] = xsave::halves(xsave_mask);
                push(0xd, 0, [low, size, size, high]);
                push(0xd, 1, [0, xsave::compacted_size(xsave_mask), 0, 0]);
                for c in xsave::COMPONENTS
                    .iter()
                    .filter(|c| c.bit >= 2 && xsave_mask & (1 << c.bit) != 0)
                {
                    push(0xd, c.bit, [c.size, c.offset, c.ecx, 0]);
                }
            }
            0x14 if has("intel-pt") => {
                push(0x14, 0, [1, 0xf, 0x7, 0]);
                push(0x14, 1, [0x0249_0002, 0x003f_1fff, 0, 0]);
            }
            0x1d if has("amx-tile") => {
                push(0x1d, 0, [1, 0, 0, 0]);
                push(0x1d, 1, [0x0400_2000, 0x0008_0040, 0x10, 0]);
            }
            0x1e if has("amx-tile") => push(0x1e, 0, [0, 0x4010, 0, 0]),
            0x1f => {
                for (sub, regs) in (0..).zip(leaf1f(&topo).map_err(field)?) {
                    push(0x1f, sub, regs);
                }
            }
            _ => push(leaf, 0, [0; 4]),
        }
    }

    if xlevel >= 0x8000_0000 {
        let model_id = {
            let mut b = [0u8; 48];
            let id = spec.qemu.id.model_id.as_bytes();
            b[..id.len()].copy_from_slice(id);
            b
        };
        let lm = has("lm");
        for leaf in 0x8000_0000..=xlevel {
            match leaf {
                0x8000_0000 if kind == VendorKind::Amd => {
                    push(leaf, 0, [xlevel, vendor[0], vendor[1], vendor[2]]);
                }
                0x8000_0000 => push(leaf, 0, [xlevel, 0, 0, 0]),
                0x8000_0001 => {
                    let mut ecx = 0;
                    let mut edx = 0;
                    if tpp > 1 && !matches!(kind, VendorKind::Intel | VendorKind::Zhaoxin) {
                        ecx |= 1 << 1;
                    }
                    if kind == VendorKind::Amd {
                        edx |= regs_of(&data, 1, 0)[3] & AMD_EDX_ALIASES;
                    }
                    push(leaf, 0, [signature, 0, ecx, edx]);
                }
                0x8000_0002..=0x8000_0004 => {
                    let base = (leaf - 0x8000_0002) as usize * 16;
                    let r = [0, 4, 8, 12].map(|o| word(&model_id, base + o));
                    push(leaf, 0, r);
                }
                0x8000_0005 => push(leaf, 0, cache::leaf80000005()),
                0x8000_0006 => push(leaf, 0, cache::leaf80000006()),
                0x8000_0008 => {
                    let eax = if lm {
                        spec.phys_bits | (if has("la57") { 57 } else { 48 } << 8)
                    } else if has("pse36") {
                        // QEMU: 36 bits with PSE36, else 32 (PAE alone
                        // does not count).
                        36
                    } else {
                        32
                    };
                    let mut r = [eax, 0, 0, 0];
                    if tpp > 1 {
                        // QEMU writes both unclamped: a count they cannot
                        // hold is an error here, not a wrapped value.
                        LEAF80000008_APIC_ID_SIZE
                            .set(&mut r, layout.package_offset)
                            .map_err(field)?;
                        LEAF80000008_THREADS.set(&mut r, tpp - 1).map_err(field)?;
                    }
                    push(leaf, 0, r);
                }
                0x8000_000a if has("svm") => push(leaf, 0, [1, 0x10, 0, 0]),
                0x8000_001d => {
                    for (i, c) in (0..).zip(&cache::AMD_CACHES) {
                        push(leaf, i, cache::leaf8000001d(c, &topo));
                    }
                    push(leaf, 4, [0; 4]);
                }
                0x8000_001e => {
                    // Threads per core - 1; QEMU writes it unclamped. The
                    // APIC ID fields are filled per vCPU.
                    let mut r = [0; 4];
                    LEAF8000001E_THREADS
                        .set(&mut r, topo.threads() - 1)
                        .map_err(field)?;
                    push(leaf, 0, r);
                }
                _ => push(leaf, 0, [0; 4]),
            }
        }
    }

    if xlevel2 >= 0xc000_0000 {
        for leaf in 0xc000_0000..=xlevel2 {
            match leaf {
                0xc000_0000 => push(leaf, 0, [xlevel2, 0, 0, 0]),
                0xc000_0001 => push(leaf, 0, [signature, 0, 0, 0]),
                _ => push(leaf, 0, [0; 4]),
            }
        }
    }

    // Feature bits in subleaves the loops above did not create.
    for item in data.nonzero_items() {
        if let ItemKey::Cpuid(CpuidKey { leaf, subleaf }) = item.key {
            let in_range = leaf <= level
                || (0x8000_0000..=xlevel).contains(&leaf)
                || (0xc000_0000..=xlevel2).contains(&leaf);
            let exists = entries.iter().any(|e| e.key == CpuidKey { leaf, subleaf });
            let key = CpuidKey { leaf, subleaf };
            if in_range && !exists && key.is_indexed() {
                entries.push(CpuidEntry::new(key, item.regs));
            }
        }
    }
    entries.sort_by_key(|e| e.key);
    for e in &mut entries {
        apply_apic_id(e, topo.apic_id(0), &layout);
    }

    Ok(CpuidTable {
        entries,
        topology: topo,
        model: spec.model.clone(),
        qemu_model: spec.qemu.to_string(),
        vendor: spec.vendor,
    })
}

/// Leaf 0xB subleaves: SMT, core, then the invalid level that ends the
/// list, as QEMU writes them. EAX is where the next level's field starts in
/// the APIC ID (QEMU asserts it fits 5 bits; here it is checked), EBX the
/// logical processors at the level, kept to 16 bits as QEMU does (`*ebx &=
/// 0xffff; /* The count doesn't need to be reliable. */`). EDX (the APIC
/// ID) is filled per vCPU.
fn leafb(topo: &Topology) -> Result<Vec<[u32; 4]>, FieldError> {
    let l = topo.layout();
    // (shift, logical processors, level type)
    let levels = [
        (l.core_offset, topo.threads(), 1u32),
        (l.package_offset, topo.threads_per_package(), 2),
        (0, 0, 0),
    ];
    levels
        .iter()
        .enumerate()
        .map(|(sub, &(shift, count, kind))| {
            let mut r = [0; 4];
            LEAFB_SHIFT.set(&mut r, shift)?;
            LEAFB_COUNT.set_masked(&mut r, count);
            LEAFB_LEVEL.set(&mut r, sub as u64)?;
            LEAFB_TYPE.set(&mut r, kind)?;
            Ok(r)
        })
        .collect()
}

/// Leaf 0x1F subleaves: SMT, core, then cluster and die when there are
/// several, then the invalid level that ends the list. Subleaf n describes
/// level n: EAX is where the next level's field starts in the APIC ID, EBX how
/// many logical processors one instance of the next level holds (kept to 16
/// bits, as QEMU's `encode_topo_cpuid1f` does). EDX (the APIC ID) is filled
/// per vCPU.
fn leaf1f(topo: &Topology) -> Result<Vec<[u32; 4]>, FieldError> {
    let l = topo.layout();
    // (level type, first APIC ID bit of the level, logical processors in one)
    let mut levels: Vec<(u32, u32, u32)> = vec![(1, 0, 1), (2, l.core_offset, topo.threads())];
    if topo.clusters() > 1 {
        levels.push((3, l.cluster_offset, topo.threads_per_cluster()));
    }
    if topo.dies() > 1 {
        levels.push((5, l.die_offset, topo.threads_per_die()));
    }
    levels.push((0, l.package_offset, topo.threads_per_package()));
    let mut out = Vec::with_capacity(levels.len());
    for (sub, w) in levels.windows(2).enumerate() {
        let mut r = [0; 4];
        LEAF1F_SHIFT.set(&mut r, w[1].1)?;
        LEAF1F_COUNT.set_masked(&mut r, w[1].2);
        LEAF1F_LEVEL.set(&mut r, sub as u64)?;
        LEAF1F_TYPE.set(&mut r, w[0].0)?;
        out.push(r);
    }
    let mut end = [0; 4];
    LEAF1F_LEVEL.set(&mut end, out.len() as u64)?;
    out.push(end);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(model: &str, topo: (u32, u32, u32, u32)) -> CpuidTable {
        let db = Database::embedded();
        let (sockets, dies, cores, threads) = topo;
        let t = Topology::new(sockets, dies, 1, cores, threads).unwrap();
        let spec = CpuidSpec::new(&db, db.find_model(model).unwrap(), t).unwrap();
        build(&db, &spec).unwrap()
    }

    fn regs(t: &[CpuidEntry], leaf: u32, sub: u32) -> [u32; 4] {
        t.iter()
            .find(|e| e.key == CpuidKey::new(leaf, sub))
            .unwrap_or_else(|| panic!("no leaf {leaf:#x}.{sub}"))
            .regs()
    }

    #[test]
    fn every_embedded_model_has_a_qemu_definition_but_the_downstream_ones() {
        let db = Database::embedded();
        let missing: Vec<&str> = db
            .models()
            .iter()
            .filter(|m| qemu::resolve(&m.name).is_err())
            .map(|m| m.name.as_ref())
            .collect();
        assert_eq!(missing, ["pentiumpro", "cpu64-rhel5", "cpu64-rhel6"]);
    }

    #[test]
    fn every_model_with_a_qemu_definition_builds_a_consistent_table() {
        let db = Database::embedded();
        let t = Topology::new(2, 2, 1, 3, 2).unwrap();
        for m in db
            .models()
            .iter()
            .filter(|m| qemu::resolve(&m.name).is_ok())
        {
            let spec = CpuidSpec::new(&db, db.find_model(&m.name).unwrap(), t).unwrap();
            let table = build(&db, &spec).unwrap();
            let level = table.get(0, 0).unwrap().eax;
            assert!(
                table
                    .entries
                    .iter()
                    .all(|e| e.key.leaf <= level || e.key.leaf >= 0x8000_0000),
                "{}",
                m.name
            );
            assert!(
                table.entries.len() <= 256,
                "{}: {} entries",
                m.name,
                table.entries.len()
            );
            // Sorted and unique.
            for w in table.entries.windows(2) {
                assert!(w[0].key < w[1].key, "{}", m.name);
            }
        }
    }

    #[test]
    fn skylake_client_ibrs_identity_leaves() {
        let t = table("Skylake-Client-IBRS", (2, 1, 2, 2));
        let e = &t.entries;
        assert_eq!(regs(e, 0, 0), [0xd, 0x756e_6547, 0x6c65_746e, 0x4965_6e69]);
        assert_eq!(regs(e, 1, 0)[0], 0x0005_06e3);
        assert_eq!(regs(e, 0x8000_0000, 0), [0x8000_0008, 0, 0, 0]);
        let brand: Vec<u8> = (0x8000_0002..=0x8000_0004)
            .flat_map(|l| regs(e, l, 0))
            .flat_map(u32::to_le_bytes)
            .collect();
        assert_eq!(
            String::from_utf8(brand).unwrap().trim_end_matches('\0'),
            "Intel Core Processor (Skylake, IBRS)"
        );
    }

    #[test]
    fn skylake_client_ibrs_feature_leaves() {
        let e = table("Skylake-Client-IBRS", (2, 1, 2, 2)).entries;
        // Hypervisor and HT set, OSXSAVE left to the processor.
        assert_eq!(regs(e.as_slice(), 1, 0)[2..], [0xf7fa_3203, 0x178b_fbff]);
        assert_eq!(regs(&e, 6, 0), [0x4, 0, 0, 0]);
        assert_eq!(regs(&e, 7, 0), [0, 0x001c_0fb9, 0, 0x0400_0000]);
        assert_eq!(regs(&e, 7, 1), [0; 4]);
        assert_eq!(regs(&e, 7, 2), [0; 4]);
        assert_eq!(
            regs(&e, 0x8000_0001, 0),
            [0x0005_06e3, 0, 0x121, 0x2810_0800]
        );
        assert_eq!(regs(&e, 0x8000_0007, 0), [0; 4]);
        // 40 physical and 48 virtual address bits; 4 threads per package.
        assert_eq!(regs(&e, 0x8000_0008, 0), [0x3028, 0, 0x2003, 0]);
        // x87, SSE and AVX: 832 bytes.
        assert_eq!(regs(&e, 0xd, 0), [0x7, 832, 832, 0]);
        assert_eq!(regs(&e, 0xd, 1), [0x7, 832, 0, 0]);
        assert_eq!(regs(&e, 0xd, 2), [256, 576, 0, 0]);
    }

    #[test]
    fn skylake_client_ibrs_two_sockets_two_cores_two_threads() {
        let t = table("Skylake-Client-IBRS", (2, 1, 2, 2));
        assert_eq!(t.apic_ids(), [0, 1, 2, 3, 4, 5, 6, 7]);
        // Leaf 1 EBX: APIC ID, 4 logical processors per package, CLFLUSH 8.
        assert_eq!(regs(&t.vcpu_entries(0), 1, 0)[1], 0x0004_0800);
        assert_eq!(regs(&t.vcpu_entries(5), 1, 0)[1], 0x0504_0800);
        // Leaf 4: two cores per package (EAX[31:26] = 1), L1/L2 shared by a
        // core's 2 threads, L3 by the die's 4.
        let e = &t.entries;
        assert_eq!(regs(e, 4, 0), [0x0400_4121, 0x01c0_003f, 0x3f, 1]);
        assert_eq!(regs(e, 4, 1), [0x0400_4122, 0x01c0_003f, 0x3f, 1]);
        assert_eq!(regs(e, 4, 2), [0x0400_4143, 0x03c0_003f, 0xfff, 1]);
        assert_eq!(regs(e, 4, 3), [0x0400_c163, 0x03c0_003f, 0x3fff, 6]);
        assert_eq!(regs(e, 4, 4), [0; 4]);
        assert_eq!(regs(e, 2, 0), [1, 0, 0x4d, 0x002c_307d]);
        // Leaf 0xB: SMT level (shift 1, 2 threads), core level (shift 2,
        // 4 threads), then the end; EDX is each vCPU's x2APIC ID.
        let v6 = t.vcpu_entries(6);
        assert_eq!(regs(&v6, 0xb, 0), [1, 2, 0x100, 6]);
        assert_eq!(regs(&v6, 0xb, 1), [2, 4, 0x201, 6]);
        assert_eq!(regs(&v6, 0xb, 2), [0, 0, 2, 6]);
        // Level 0xd: no leaf 0x1F.
        assert!(t.get(0x1f, 0).is_none());
    }

    #[test]
    fn large_packages_get_what_qemu_writes() {
        // 256 cores: leaf 1 counts MIN(256, 255) with HTT; leaf 4 counts
        // MIN(255, 63) core IDs; leaf 0xB and AMD's NC hold the exact count.
        let t = table("Skylake-Client-IBRS", (1, 1, 256, 1));
        let e = &t.entries;
        assert_eq!(regs(e, 1, 0)[1], 0x00ff_0800);
        assert_eq!(regs(e, 1, 0)[3] & (1 << 28), 1 << 28);
        assert_eq!(regs(e, 4, 0)[0] >> 26, 63);
        assert_eq!(regs(e, 0xb, 1), [8, 256, 0x201, 0]);
        assert_eq!(regs(e, 0x8000_0008, 0)[2], 0x80ff);
        // vCPU 255's initial APIC ID fills EBX[31:24].
        assert_eq!(regs(&t.vcpu_entries(255), 1, 0)[1], 0xffff_0800);
    }

    #[test]
    fn counts_no_field_can_hold_are_errors_naming_the_field() {
        let db = Database::embedded();
        let build_with = |model: &str, t: Topology| {
            let spec = CpuidSpec::new(&db, db.find_model(model).unwrap(), t).unwrap();
            build(&db, &spec).unwrap_err().to_string()
        };
        assert_eq!(
            build_with("Skylake-Client-IBRS", Topology::new(1, 1, 1, 257, 1).unwrap()),
            "topology 1 sockets × 1 dies × 1 clusters × 257 cores × 1 threads: CPUID.80000008H:ECX[7:0] (logical processors per package - 1) cannot hold 256: its 8 bits hold at most 255"
        );
        // More than 256 threads per core: AMD's NC is the first field
        // that cannot count them (8000001EH:EBX[15:8] is the next).
        assert!(
            build_with("EPYC-Rome", Topology::new(1, 1, 1, 1, 257).unwrap()).contains(
                ": CPUID.80000008H:ECX[7:0] (logical processors per package - 1) cannot hold 256"
            )
        );
        assert_eq!(
            CpuidSpec::new(
                &db,
                db.find_model("Haswell").unwrap(),
                Topology::new(64, 1, 1, 64, 2).unwrap()
            )
            .unwrap_err()
            .to_string(),
            "topology 64 sockets × 1 dies × 1 clusters × 64 cores × 2 threads holds 8192 vCPUs; at most 4096 are supported"
        );
    }

    #[test]
    fn avx512_models_need_2696_bytes_of_xsave_with_pkru() {
        let e = table("Skylake-Server-v5", (1, 1, 1, 1)).entries;
        assert_eq!(regs(&e, 0xd, 0), [0x2e7, 2696, 2696, 0]);
        assert_eq!(regs(&e, 0xd, 5), [64, 1088, 0, 0]);
        assert_eq!(regs(&e, 0xd, 6), [512, 1152, 0, 0]);
        assert_eq!(regs(&e, 0xd, 7), [1024, 1664, 0, 0]);
        assert_eq!(regs(&e, 0xd, 9), [8, 2688, 0, 0]);
        assert_eq!(regs(&e, 0xd, 1)[1], 576 + 256 + 64 + 512 + 1024 + 8);
        assert_eq!(
            regs(&table("Icelake-Server", (1, 1, 1, 1)).entries, 0xd, 0)[2],
            2696
        );
        // libvirt's Skylake-Server-IBRS and KnightsMill have AVX-512 but
        // no pku: the area ends with Hi16_ZMM.
        let e = table("Skylake-Server-IBRS", (1, 1, 1, 1)).entries;
        assert_eq!(regs(&e, 0xd, 0), [0xe7, 2688, 2688, 0]);
        assert!(e.iter().all(|x| x.key != CpuidKey::new(0xd, 9)));
        assert_eq!(
            regs(&table("KnightsMill", (1, 1, 1, 1)).entries, 0xd, 0)[2],
            2688
        );
    }

    #[test]
    fn amx_models_add_the_tile_components_and_leaves() {
        let e = table("SapphireRapids", (1, 1, 1, 1)).entries;
        assert_eq!(regs(&e, 0, 0)[0], 0x20);
        assert_eq!(regs(&e, 0xd, 0)[0], 0x0006_02e7);
        assert_eq!(regs(&e, 0xd, 0)[2], 11008);
        assert_eq!(regs(&e, 0xd, 18), [8192, 2816, 0x6, 0]);
        assert_eq!(regs(&e, 0x1d, 1), [0x0400_2000, 0x0008_0040, 0x10, 0]);
        assert_eq!(regs(&e, 0x1e, 0), [0, 0x4010, 0, 0]);
        // Level 0x20 reaches leaf 0x1F: SMT, core, end.
        assert_eq!(regs(&e, 0x1f, 0), [0, 1, 0x100, 0]);
        assert_eq!(regs(&e, 0x1f, 1), [0, 1, 0x201, 0]);
        assert_eq!(regs(&e, 0x1f, 2), [0, 0, 2, 0]);
    }

    #[test]
    fn several_dies_raise_intel_level_to_0x1f() {
        let t = table("Cascadelake-Server", (2, 2, 2, 1));
        let e = &t.entries;
        assert_eq!(regs(e, 0, 0)[0], 0x1f);
        // Core field at bit 0 (1 thread), die at bit 1, socket at bit 2.
        assert_eq!(t.apic_ids(), [0, 1, 2, 3, 4, 5, 6, 7]);
        let v7 = t.vcpu_entries(7);
        assert_eq!(regs(&v7, 0x1f, 0), [0, 1, 0x100, 7]);
        assert_eq!(regs(&v7, 0x1f, 1), [1, 2, 0x201, 7]);
        assert_eq!(regs(&v7, 0x1f, 2), [2, 4, 0x502, 7]);
        assert_eq!(regs(&v7, 0x1f, 3), [0, 0, 3, 7]);
        // Leaf 0xB still goes straight from core to package.
        assert_eq!(regs(&v7, 0xb, 1), [2, 4, 0x201, 7]);
        // L3 is shared by a die: 2 threads' worth of IDs.
        assert_eq!(regs(e, 4, 3)[0] >> 14 & 0xfff, 1);
        assert_eq!(regs(e, 4, 3)[0] >> 26, 3);
    }

    #[test]
    fn epyc_rome_one_socket_four_cores_two_threads() {
        let t = table("EPYC-Rome", (1, 1, 4, 2));
        let e = &t.entries;
        assert_eq!(regs(e, 0, 0), [0xd, 0x6874_7541, 0x444d_4163, 0x6974_6e65]);
        assert_eq!(
            regs(e, 0x8000_0000, 0),
            [0x8000_001e, 0x6874_7541, 0x444d_4163, 0x6974_6e65]
        );
        assert_eq!(regs(e, 1, 0)[0], 0x0083_0f10);
        // AMD: no Intel cache leaves.
        assert_eq!(regs(e, 2, 0), [0; 4]);
        assert_eq!(regs(e, 4, 0), [0; 4]);
        // Core count and APIC ID size: 8 threads, 3 bits.
        assert_eq!(regs(e, 0x8000_0008, 0)[2], 0x3007);
        // CmpLegacy, and the leaf 1 EDX bits AMD repeats.
        assert_eq!(regs(e, 0x8000_0001, 0)[2] & 0x2, 0x2);
        assert_eq!(
            regs(e, 0x8000_0001, 0)[3] & 0x0183_f3ff,
            regs(e, 1, 0)[3] & 0x0183_f3ff
        );
        // Leaf 0x8000001E per vCPU: APIC ID, threads per core - 1 and core
        // ID, node (socket) ID.
        for (vcpu, apic, core) in [(0, 0, 0), (1, 1, 0), (2, 2, 1), (7, 7, 3)] {
            let v = t.vcpu_entries(vcpu);
            assert_eq!(
                regs(&v, 0x8000_001e, 0),
                [apic, 0x100 | core, 0, 0],
                "vCPU {vcpu}"
            );
            assert_eq!(regs(&v, 1, 0)[1], (apic << 24) | 0x0008_0800);
        }
        // Leaf 0x8000001D: the AMD legacy caches, L3 shared by 8 threads.
        assert_eq!(regs(e, 0x8000_001d, 0), [0x4121, 0x0040_003f, 0x1ff, 1]);
        assert_eq!(regs(e, 0x8000_001d, 2), [0x4043, 0x03c0_003f, 0x1ff, 0]);
        assert_eq!(
            regs(e, 0x8000_001d, 3),
            [0x0001_c163, 0x03c0_003f, 0x3fff, 2]
        );
        assert_eq!(regs(e, 0x8000_001d, 4), [0; 4]);
        assert_eq!(
            regs(e, 0x8000_0005, 0),
            [0x01ff_01ff, 0x01ff_01ff, 0x4002_0140, 0x4002_0140]
        );
        assert_eq!(regs(e, 0x8000_000a, 0), [1, 0x10, 0, 0x9]);
    }

    #[test]
    fn flags_change_the_feature_bits_and_what_depends_on_them() {
        let db = Database::embedded();
        let model = db.find_model("Skylake-Client-IBRS").unwrap();
        let mut spec = CpuidSpec::new(&db, model, Topology::SINGLE).unwrap();
        spec.features.remove(db.find_feature("avx").unwrap());
        spec.features.insert(db.find_feature("avx512f").unwrap());
        let t = build(&db, &spec).unwrap();
        assert_eq!(regs(&t.entries, 0xd, 0), [0xe3, 2688, 2688, 0]);
        assert_eq!(regs(&t.entries, 7, 0)[1] & (1 << 16), 1 << 16);
        // One vCPU: no HT, no package thread count.
        assert_eq!(regs(&t.entries, 1, 0)[1], 0x800);
        assert_eq!(regs(&t.entries, 1, 0)[3] & (1 << 28), 0);
        assert_eq!(regs(&t.entries, 0x8000_0008, 0)[2], 0);
    }

    #[test]
    fn svm_raises_the_extended_level() {
        let db = Database::embedded();
        let model = db.find_model("Westmere").unwrap();
        let mut spec = CpuidSpec::new(&db, model, Topology::SINGLE).unwrap();
        spec.features.insert(db.find_feature("svm").unwrap());
        let t = build(&db, &spec).unwrap();
        assert_eq!(t.get(0x8000_0000, 0).unwrap().eax, 0x8000_000a);
        assert_eq!(t.get(0x8000_000a, 0).unwrap().regs()[..2], [1, 0x10]);
    }

    #[test]
    fn guest_policies_without_a_model_have_no_table() {
        let db = Database::embedded();
        let guest = GuestCpu {
            mode: CpuMode::Cpu(Mode::HostPassthrough),
            resolved_mode: CpuMode::Cpu(Mode::HostPassthrough),
            model: None,
            features: Vec::new(),
            topology: None,
        };
        assert_eq!(
            CpuidSpec::from_guest(&db, &guest).unwrap_err().to_string(),
            "CPU mode 'host-passthrough' has no fixed CPUID table; use a named model (custom mode or a resolved host-model)"
        );
    }
}
