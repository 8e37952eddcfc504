//! The comparison of what the probe guest saw with the table cpumodel
//! builds for the same CPU, leaf by leaf and feature by feature.
//!
//! The intended values are vCPU 0's entries of the table, with the bits the
//! processor sets from its own state at their reset values (the guest runs
//! right out of reset: CR4 0, XCR0 1, local APIC enabled; see
//! [`cpumodel_cpuid::verify::expected_entries`]). Every differing bit is
//! one of three things:
//!
//! - **filtered**: the table has it, the guest lacks it, and QEMU said it
//!   removed it (a "doesn't support requested feature" warning naming that
//!   bit, [`crate::warnings`]);
//! - **explained**: a known difference between cpumodel's restatement of
//!   QEMU and this QEMU, listed in [`EXPLAINED`] with its reason;
//! - **different**: anything else. One such bit makes the probe's answer
//!   negative.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use cpumodel_cpudata::{CpuData, CpuidBit, CpuidKey, Item, ItemKey, Register, VcpuState};
use cpumodel_cpuid::verify::{expected_entries, BitNames};
use cpumodel_cpuid::CpuidTable;
use cpumodel_map::Database;
use serde::Serialize;

use crate::warnings::QemuWarnings;

/// When an explained difference applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// For CPUs of this vendor.
    Vendor(&'static [u8; 12]),
    /// When the table lacks this CPUID bit (leaf, register index, bit).
    TableLacks(u32, usize, u32),
    /// For QEMU models whose name starts with one of these.
    Models(&'static [&'static str]),
}

/// A known, explained difference between the table and what a QEMU gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Explained {
    /// When it applies.
    pub when: When,
    /// Leaf.
    pub leaf: u32,
    /// Register.
    pub register: Register,
    /// The bits.
    pub mask: u32,
    /// Why they differ.
    pub reason: &'static str,
}

/// The explained differences (see the README's "Proof across the real
/// stack").
pub const EXPLAINED: &[Explained] = &[
    Explained {
        when: When::Vendor(b"GenuineIntel"),
        leaf: 0x8000_0000,
        register: Register::Ebx,
        mask: u32::MAX,
        reason: "QEMU repeats the vendor string in leaf 0x80000000 for every vendor; cpumodel only for AMD and Hygon, as their processors do",
    },
    Explained {
        when: When::Vendor(b"GenuineIntel"),
        leaf: 0x8000_0000,
        register: Register::Ecx,
        mask: u32::MAX,
        reason: "QEMU repeats the vendor string in leaf 0x80000000 for every vendor; cpumodel only for AMD and Hygon, as their processors do",
    },
    Explained {
        when: When::Vendor(b"GenuineIntel"),
        leaf: 0x8000_0000,
        register: Register::Edx,
        mask: u32::MAX,
        reason: "QEMU repeats the vendor string in leaf 0x80000000 for every vendor; cpumodel only for AMD and Hygon, as their processors do",
    },
    Explained {
        when: When::TableLacks(1, 2, 26),
        leaf: 0xd,
        register: Register::Ebx,
        mask: u32::MAX,
        reason: "without XSAVE, KVM still reports the 576-byte XSAVE area of XCR0 in leaf 0xD EBX (the table follows KVM); QEMU's TCG leaves the leaf zero",
    },
    Explained {
        when: When::Models(&["EPYC", "Dhyana"]),
        leaf: 0x8000_0005,
        register: Register::Ecx,
        mask: u32::MAX,
        reason: CACHE_REASON,
    },
    Explained {
        when: When::Models(&["EPYC", "Dhyana"]),
        leaf: 0x8000_0005,
        register: Register::Edx,
        mask: u32::MAX,
        reason: CACHE_REASON,
    },
    Explained {
        when: When::Models(&["EPYC", "Dhyana"]),
        leaf: 0x8000_0006,
        register: Register::Ecx,
        mask: u32::MAX,
        reason: CACHE_REASON,
    },
    Explained {
        when: When::Models(&["EPYC", "Dhyana"]),
        leaf: 0x8000_0006,
        register: Register::Edx,
        mask: u32::MAX,
        reason: CACHE_REASON,
    },
    Explained {
        when: When::Models(&["EPYC", "Dhyana"]),
        leaf: 0x8000_001d,
        register: Register::Ebx,
        mask: u32::MAX,
        reason: CACHE_REASON,
    },
    Explained {
        when: When::Models(&["EPYC", "Dhyana"]),
        leaf: 0x8000_001d,
        register: Register::Ecx,
        mask: u32::MAX,
        reason: CACHE_REASON,
    },
    Explained {
        when: When::Models(&["EPYC", "Dhyana"]),
        leaf: 0x8000_001d,
        register: Register::Edx,
        mask: u32::MAX,
        reason: CACHE_REASON,
    },
    Explained {
        when: When::Vendor(b"HygonGenuine"),
        leaf: 0x2,
        register: Register::Eax,
        mask: u32::MAX,
        reason: HYGON_REASON,
    },
    Explained {
        when: When::Vendor(b"HygonGenuine"),
        leaf: 0x2,
        register: Register::Ecx,
        mask: u32::MAX,
        reason: HYGON_REASON,
    },
    Explained {
        when: When::Vendor(b"HygonGenuine"),
        leaf: 0x2,
        register: Register::Edx,
        mask: u32::MAX,
        reason: HYGON_REASON,
    },
    Explained {
        when: When::Vendor(b"HygonGenuine"),
        leaf: 0x4,
        register: Register::Eax,
        mask: u32::MAX,
        reason: HYGON_REASON,
    },
    Explained {
        when: When::Vendor(b"HygonGenuine"),
        leaf: 0x4,
        register: Register::Ebx,
        mask: u32::MAX,
        reason: HYGON_REASON,
    },
    Explained {
        when: When::Vendor(b"HygonGenuine"),
        leaf: 0x4,
        register: Register::Ecx,
        mask: u32::MAX,
        reason: HYGON_REASON,
    },
    Explained {
        when: When::Vendor(b"HygonGenuine"),
        leaf: 0x4,
        register: Register::Edx,
        mask: u32::MAX,
        reason: HYGON_REASON,
    },
    Explained {
        when: When::Vendor(b"HygonGenuine"),
        leaf: 0x8000_0001,
        register: Register::Edx,
        mask: AMD_EDX_ALIASES,
        reason: HYGON_REASON,
    },
];

/// Leaf 0x1 EDX bits AMD processors repeat in leaf 0x80000001 EDX.
const AMD_EDX_ALIASES: u32 = 0x0183_f3ff;

const CACHE_REASON: &str = "QEMU gives its EPYC and Dhyana models their own cache descriptions (epyc_cache_info and successors, machine types 3.0 and later); cpumodel's table uses QEMU's legacy cache values for every model";

const HYGON_REASON: &str = "QEMU treats only AuthenticAMD as AMD here: a Hygon CPU gets Intel's cache leaves 2 and 4 and no copies of leaf 1 EDX bits in leaf 0x80000001; cpumodel's table treats Hygon as AMD";

/// What a differing bit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BitKind {
    /// QEMU said it removed it.
    Filtered,
    /// A known difference ([`EXPLAINED`]).
    Explained,
    /// Anything else.
    Different,
}

/// One register of one leaf that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegisterDiff {
    /// The register.
    pub register: Register,
    /// What the table says (run-time bits at their reset values).
    pub intended: u32,
    /// What the guest read.
    pub seen: u32,
    /// Bits set in the table and clear in the guest, named, that QEMU
    /// reported filtering.
    pub filtered: Vec<String>,
    /// Bits that differ for a known reason, named.
    pub explained: Vec<String>,
    /// Bits the guest has and the table does not, named.
    pub extra: Vec<String>,
    /// Bits the table has and the guest lacks (unannounced), named.
    pub missing: Vec<String>,
    /// The reasons of the explained bits.
    pub reasons: Vec<&'static str>,
}

/// One leaf and subleaf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeafDiff {
    /// The leaf and subleaf.
    pub key: CpuidKey,
    /// False when the table has no such entry.
    pub in_table: bool,
    /// False when the guest's CPU has no such leaf.
    pub in_guest: bool,
    /// The worst kind of difference in the leaf; `None` when equal.
    pub kind: Option<BitKind>,
    /// The registers that differ.
    pub registers: Vec<RegisterDiff>,
}

/// One CPU-map feature whose presence differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeatureDiff {
    /// The CPU map's name.
    pub name: String,
    /// In the table.
    pub intended: bool,
    /// In the guest.
    pub seen: bool,
    /// What the difference is.
    pub kind: BitKind,
}

/// The whole comparison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// Every leaf of the table or the guest, in key order.
    pub leaves: Vec<LeafDiff>,
    /// Every feature whose presence differs.
    pub features: Vec<FeatureDiff>,
    /// The features QEMU said it filtered, by CPU-map name (QEMU's name
    /// when the map has none).
    pub filtered: Vec<String>,
}

impl ProbeReport {
    /// True when nothing differs but what QEMU announced or what is
    /// explained.
    pub fn is_ok(&self) -> bool {
        self.leaves
            .iter()
            .all(|l| l.kind != Some(BitKind::Different))
    }

    /// Leaves with a difference of `kind`.
    pub fn count(&self, kind: BitKind) -> usize {
        self.leaves.iter().filter(|l| l.kind == Some(kind)).count()
    }

    /// One line per leaf (`OK`, `FILTERED`, `EXPLAINED`, `DIFFERENT`) with
    /// the differing registers, then the features, then the verdict.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for l in &self.leaves {
            let status = match l.kind {
                None => "OK",
                Some(BitKind::Filtered) => "FILTERED",
                Some(BitKind::Explained) => "EXPLAINED",
                Some(BitKind::Different) => "DIFFERENT",
            };
            let mut line = format!("{status:<10}{:#010x}.{}", l.key.leaf, l.key.subleaf);
            if !l.in_table {
                line.push_str("  (not in the table)");
            }
            if !l.in_guest {
                line.push_str("  (not in the guest's CPU)");
            }
            for r in &l.registers {
                let _ = write!(
                    line,
                    "  {}: intended {:#010x}, seen {:#010x}",
                    r.register.name().to_uppercase(),
                    r.intended,
                    r.seen
                );
                for (what, names) in [
                    ("filtered by QEMU", &r.filtered),
                    ("extra", &r.extra),
                    ("missing", &r.missing),
                ] {
                    if !names.is_empty() {
                        let _ = write!(line, "; {what}: {}", names.join(" "));
                    }
                }
                if !r.reasons.is_empty() {
                    line.push_str("; explained");
                }
            }
            let mut reasons: Vec<&str> = Vec::new();
            for reason in l.registers.iter().flat_map(|r| &r.reasons) {
                if !reasons.contains(reason) {
                    reasons.push(reason);
                }
            }
            for reason in reasons {
                let _ = write!(line, " ({reason})");
            }
            out.push_str(&line);
            out.push('\n');
        }
        for f in &self.features {
            let kind = match f.kind {
                BitKind::Filtered => "filtered by QEMU",
                BitKind::Explained => "explained",
                BitKind::Different => "DIFFERENT",
            };
            let _ = writeln!(
                out,
                "feature   {}: intended {}, seen {} ({kind})",
                f.name,
                on_off(f.intended),
                on_off(f.seen)
            );
        }
        let different = self.count(BitKind::Different);
        let filtered = self.count(BitKind::Filtered);
        let explained = self.count(BitKind::Explained);
        if different == 0 {
            let _ = writeln!(
                out,
                "result: OK: the guest saw the intended CPU ({} leaves; {filtered} differ only by features QEMU filtered, {explained} only by explained differences)",
                self.leaves.len()
            );
        } else {
            let _ = writeln!(
                out,
                "result: DIFFERENT: {different} of {} leaves differ from the intended table beyond what QEMU reported filtering",
                self.leaves.len()
            );
        }
        out
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// The intended entries as CPU data: vCPU 0 of `table` in `state`.
pub fn intended_data(table: &CpuidTable, state: &VcpuState) -> CpuData {
    expected_entries(table, 0, state)
        .into_iter()
        .map(|e| Item {
            key: ItemKey::Cpuid(e.key),
            regs: e.regs(),
        })
        .collect()
}

fn cpuid_map(data: &CpuData) -> BTreeMap<CpuidKey, [u32; 4]> {
    data.items()
        .iter()
        .filter_map(|i| match i.key {
            ItemKey::Cpuid(k) => Some((k, i.regs)),
            ItemKey::Msr { .. } => None,
        })
        .collect()
}

/// Compares `seen` (what the guest read) with `table` (vCPU 0, the guest
/// in `state`). `effective` is the table rebuilt without the features QEMU
/// said it filtered ([`crate::effective_table`]): a bit where the guest
/// matches `effective` but not `table` is a consequence of that filtering.
pub fn compare(
    db: &Database,
    table: &CpuidTable,
    effective: &CpuidTable,
    state: &VcpuState,
    seen: &CpuData,
    warnings: &QemuWarnings,
) -> ProbeReport {
    let names = BitNames::new(db);
    let intended = intended_data(table, state);
    let want = cpuid_map(&intended);
    let after = cpuid_map(&intended_data(effective, state));
    let got = cpuid_map(seen);
    let filtered_bits: BTreeSet<CpuidBit> =
        warnings.filtered.iter().filter_map(|f| f.bit).collect();
    let applies = |when: When| match when {
        When::Vendor(v) => *v == table.vendor,
        When::TableLacks(leaf, reg, bit) => table
            .get(leaf, 0)
            .is_none_or(|e| e.regs()[reg] & (1 << bit) == 0),
        When::Models(prefixes) => prefixes.iter().any(|p| table.qemu_model.starts_with(p)),
    };
    let explained = |key: CpuidKey, register: Register, bit: u32| {
        EXPLAINED.iter().find(|e| {
            applies(e.when)
                && e.leaf == key.leaf
                && e.register == register
                && e.mask & (1 << bit) != 0
        })
    };
    let keys: BTreeSet<CpuidKey> = want
        .keys()
        .chain(after.keys())
        .chain(got.keys())
        .copied()
        .collect();
    let mut leaves = Vec::new();
    for key in keys {
        let w = want.get(&key).copied();
        let g = got.get(&key).copied();
        let (wr, gr) = (w.unwrap_or([0; 4]), g.unwrap_or([0; 4]));
        let ar = after.get(&key).copied().unwrap_or([0; 4]);
        let mut registers = Vec::new();
        let mut kind = None;
        for register in Register::ALL {
            let i = register.index();
            let (iv, av, sv) = (wr[i], ar[i], gr[i]);
            if iv == sv && av == sv {
                continue;
            }
            let mut d = RegisterDiff {
                register,
                intended: iv,
                seen: sv,
                filtered: Vec::new(),
                explained: Vec::new(),
                extra: Vec::new(),
                missing: Vec::new(),
                reasons: Vec::new(),
            };
            for bit in (0..32).filter(|b| ((iv ^ sv) | (av ^ sv)) & (1 << b) != 0) {
                let cb = CpuidBit { key, register, bit };
                let name = names.name(cb);
                let announced = filtered_bits.contains(&cb) && iv & !sv & (1 << bit) != 0;
                let this = if (av ^ sv) & (1 << bit) == 0 || announced {
                    d.filtered.push(name);
                    BitKind::Filtered
                } else if let Some(e) = explained(key, register, bit) {
                    if !d.reasons.contains(&e.reason) {
                        d.reasons.push(e.reason);
                    }
                    d.explained.push(name);
                    BitKind::Explained
                } else {
                    if sv & (1 << bit) != 0 {
                        d.extra.push(name);
                    } else {
                        d.missing.push(name);
                    }
                    BitKind::Different
                };
                kind = kind.max(Some(this));
            }
            if kind.is_some() {
                registers.push(d);
            }
        }
        leaves.push(LeafDiff {
            key,
            in_table: w.is_some(),
            in_guest: g.is_some(),
            kind,
            registers,
        });
    }
    let effective_data = intended_data(effective, state);
    let mut features = Vec::new();
    for f in db.features() {
        let cpuid_only = f
            .data
            .nonzero_items()
            .all(|i| matches!(i.key, ItemKey::Cpuid(_)));
        if f.data.is_empty() || !cpuid_only {
            continue;
        }
        let (i, s) = (intended.contains(&f.data), seen.contains(&f.data));
        if i == s {
            continue;
        }
        let bits: Vec<CpuidBit> = feature_bits(&f.data);
        let kind = if s == effective_data.contains(&f.data)
            || (i && bits.iter().all(|b| filtered_bits.contains(b)))
        {
            BitKind::Filtered
        } else if bits
            .iter()
            .all(|b| explained(b.key, b.register, b.bit).is_some())
        {
            BitKind::Explained
        } else {
            BitKind::Different
        };
        features.push(FeatureDiff {
            name: f.name.to_string(),
            intended: i,
            seen: s,
            kind,
        });
    }
    let filtered = warnings
        .filtered
        .iter()
        .map(|f| match f.bit {
            Some(b) if names.name(b) != b.to_string() => names.name(b),
            _ if !f.qemu_name.is_empty() => f.qemu_name.clone(),
            _ => format!("{} [bit {}]", f.place, f.bit_number),
        })
        .collect();
    ProbeReport {
        leaves,
        features,
        filtered,
    }
}

/// Every CPUID bit of a feature.
fn feature_bits(data: &CpuData) -> Vec<CpuidBit> {
    let mut bits = Vec::new();
    for item in data.nonzero_items() {
        let ItemKey::Cpuid(key) = item.key else {
            continue;
        };
        for (register, v) in Register::ALL.into_iter().zip(item.regs) {
            bits.extend((0..32).filter(|b| v & (1 << b) != 0).map(|bit| CpuidBit {
                key,
                register,
                bit,
            }));
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warnings::parse_warnings;
    use cpumodel_cpuid::{build, CpuidSpec, Topology};

    fn westmere(db: &Database) -> CpuidTable {
        let spec = CpuidSpec::new(
            db,
            db.find_model("Westmere").expect("model"),
            Topology::SINGLE,
        )
        .expect("spec");
        build(db, &spec).expect("table")
    }

    /// The intended data with `f` applied to one register.
    fn seen_with(
        table: &CpuidTable,
        key: CpuidKey,
        register: Register,
        f: impl Fn(u32) -> u32,
    ) -> CpuData {
        intended_data(table, &VcpuState::REAL_MODE)
            .items()
            .iter()
            .map(|i| {
                let mut i = *i;
                if i.key == ItemKey::Cpuid(key) {
                    i.regs[register.index()] = f(i.regs[register.index()]);
                }
                i
            })
            .collect()
    }

    #[test]
    fn an_announced_filter_is_filtered_and_anything_else_different() {
        let db = &Database::embedded();
        let table = westmere(db);
        let state = VcpuState::REAL_MODE;
        // The guest lacks SSE4.2 (leaf 1 ECX bit 20).
        let seen = seen_with(&table, CpuidKey::leaf(1), Register::Ecx, |v| v & !(1 << 20));
        let silent = compare(db, &table, &table, &state, &seen, &QemuWarnings::default());
        assert!(!silent.is_ok());
        let leaf1 = silent
            .leaves
            .iter()
            .find(|l| l.key == CpuidKey::leaf(1))
            .expect("leaf 1");
        assert_eq!(leaf1.kind, Some(BitKind::Different));
        assert_eq!(leaf1.registers[0].missing, ["sse4.2"]);
        assert_eq!(silent.features[0].name, "sse4.2");
        assert!(silent
            .to_text()
            .contains("DIFFERENT 0x00000001.0  ECX: intended"));

        let warned = parse_warnings(
            db,
            "qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.sse4.2 [bit 20]\n",
        );
        let announced = compare(db, &table, &table, &state, &seen, &warned);
        assert!(announced.is_ok(), "{}", announced.to_text());
        assert_eq!(announced.filtered, ["sse4.2"]);
        assert_eq!(announced.count(BitKind::Filtered), 1);
        assert_eq!(announced.features[0].kind, BitKind::Filtered);
    }

    #[test]
    fn an_extra_bit_is_different_and_the_intel_vendor_leaf_explained() {
        let db = &Database::embedded();
        let table = westmere(db);
        let state = VcpuState::REAL_MODE;
        // AVX (leaf 1 ECX bit 28) appears.
        let seen = seen_with(&table, CpuidKey::leaf(1), Register::Ecx, |v| v | (1 << 28));
        let report = compare(db, &table, &table, &state, &seen, &QemuWarnings::default());
        assert_eq!(report.count(BitKind::Different), 1);
        assert_eq!(report.features[0].name, "avx");
        assert!(report.features[0].seen && !report.features[0].intended);

        let seen = seen_with(&table, CpuidKey::leaf(0x8000_0000), Register::Ebx, |_| {
            0x756e_6547
        });
        let report = compare(db, &table, &table, &state, &seen, &QemuWarnings::default());
        assert!(report.is_ok());
        assert_eq!(report.count(BitKind::Explained), 1);
    }
}
