//! The CPUID table: KVM's entry list for every vCPU.
//!
//! A [`CpuidTable`] holds the entries of vCPU 0 in the order KVM's
//! `kvm_cpuid_entry2` list takes them, plus what varies per vCPU (the APIC
//! ID fields of leaves 0x1, 0xB, 0x1F and 0x8000001E). It is plain data: a
//! VMM applies [`CpuidTable::vcpu_entries`] to each vCPU with
//! `KVM_SET_CPUID2`, and a checker compares what a guest reads against the
//! same entries, allowing for the bits [`DYNAMIC_BITS`] lists.

use std::fmt::Write as _;

use cpumodel_cpudata::{CpuidEntry, CpuidKey, Register, VcpuState, APIC_BASE_ENABLE};
use cpumodel_cpudef::Topology;

use crate::field::{LEAF1_APIC_ID, LEAF8000001E_CORE_ID, LEAF8000001E_NODE_ID};
use crate::topology::{ApicIds, ApicLayout};

/// `KVM_CPUID_FLAG_SIGNIFCANT_INDEX`: the entry is selected by ECX too.
pub const FLAG_SIGNIFICANT_INDEX: u32 = 1;

/// The KVM flags of a table entry: [`FLAG_SIGNIFICANT_INDEX`] when its
/// leaf is one of [`INDEXED_LEAVES`](cpumodel_cpudata::INDEXED_LEAVES).
pub fn kvm_flags(key: CpuidKey) -> u32 {
    if key.is_indexed() {
        FLAG_SIGNIFICANT_INDEX
    } else {
        0
    }
}

/// Bits a processor (or KVM) changes by itself at run time; a checker
/// compares them against the guest's state, not against the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DynamicBits {
    /// Leaf and subleaf.
    pub key: CpuidKey,
    /// The register holding the bits.
    pub register: Register,
    /// The bits.
    pub mask: u32,
    /// What sets them.
    pub reason: &'static str,
    /// How their value follows from the vCPU's state.
    pub rule: DynamicRule,
}

/// How the value of run-time bits follows from the vCPU's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynamicRule {
    /// Set exactly when this CR4 bit is set.
    Cr4Bit(u32),
    /// The table's bit while `IA32_APIC_BASE` enables the local APIC, clear
    /// otherwise.
    ApicEnabled,
    /// The standard-format XSAVE area size of the components in XCR0. KVM
    /// fills it whenever the table has the leaf, even without XSAVE
    /// components (576 bytes for XCR0 = 1).
    XsaveSize,
    /// The compacted XSAVE area size of the components in XCR0 | IA32_XSS,
    /// when the table offers XSAVEC or XSAVES (EAX bit 1 or 3); otherwise
    /// the table's value.
    XsaveCompactedSize,
}

impl DynamicBits {
    /// True when the vCPU's state can change these bits for a table with
    /// this register value and EAX: the APIC bit only when the table sets
    /// it, the compacted size only with XSAVEC or XSAVES.
    pub fn varies(&self, table_value: u32, table_eax: u32) -> bool {
        match self.rule {
            DynamicRule::Cr4Bit(_) | DynamicRule::XsaveSize => true,
            DynamicRule::ApicEnabled => table_value & self.mask != 0,
            DynamicRule::XsaveCompactedSize => table_eax & 0b1010 != 0,
        }
    }

    /// The value of these bits (the rest of `table_value` cleared) on a
    /// vCPU in `state`, given the table's value of the register and the
    /// table's EAX of the same leaf.
    pub fn expected(&self, table_value: u32, table_eax: u32, state: &VcpuState) -> u32 {
        let value = match self.rule {
            DynamicRule::Cr4Bit(bit) => {
                if state.cr4 & (1 << bit) != 0 {
                    u32::MAX
                } else {
                    0
                }
            }
            DynamicRule::ApicEnabled => {
                if state.apic_base & APIC_BASE_ENABLE != 0 {
                    table_value
                } else {
                    0
                }
            }
            DynamicRule::XsaveSize => crate::xsave::standard_size(state.xcr0),
            DynamicRule::XsaveCompactedSize => {
                if table_eax & 0b1010 != 0 {
                    crate::xsave::compacted_size(state.xcr0 | state.xss)
                } else {
                    table_value
                }
            }
        };
        value & self.mask
    }
}

/// The run-time bits of every table.
pub const DYNAMIC_BITS: &[DynamicBits] = &[
    DynamicBits {
        key: CpuidKey::new(0x1, 0),
        register: Register::Ecx,
        mask: 1 << 27,
        reason: "OSXSAVE mirrors CR4.OSXSAVE",
        rule: DynamicRule::Cr4Bit(18),
    },
    DynamicBits {
        key: CpuidKey::new(0x1, 0),
        register: Register::Edx,
        mask: 1 << 9,
        reason: "APIC is clear while IA32_APIC_BASE disables the local APIC",
        rule: DynamicRule::ApicEnabled,
    },
    DynamicBits {
        key: CpuidKey::new(0x7, 0),
        register: Register::Ecx,
        mask: 1 << 4,
        reason: "OSPKE mirrors CR4.PKE",
        rule: DynamicRule::Cr4Bit(22),
    },
    DynamicBits {
        key: CpuidKey::new(0xd, 0),
        register: Register::Ebx,
        mask: u32::MAX,
        reason: "XSAVE area size for the components enabled in XCR0",
        rule: DynamicRule::XsaveSize,
    },
    DynamicBits {
        key: CpuidKey::new(0xd, 1),
        register: Register::Ebx,
        mask: u32::MAX,
        reason: "compacted XSAVE area size for XCR0 | IA32_XSS",
        rule: DynamicRule::XsaveCompactedSize,
    },
    DynamicBits {
        key: CpuidKey::new(0x8000_0001, 0),
        register: Register::Edx,
        mask: 1 << 9,
        reason: "APIC is clear while IA32_APIC_BASE disables the local APIC",
        rule: DynamicRule::ApicEnabled,
    },
];

/// The run-time bits of `key`, per register.
pub fn dynamic_mask(key: CpuidKey) -> [u32; 4] {
    let mut m = [0; 4];
    for d in DYNAMIC_BITS.iter().filter(|d| d.key == key) {
        m[d.register.index()] |= d.mask;
    }
    m
}

/// A complete guest CPUID table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuidTable {
    /// vCPU 0's entries, sorted by function then index.
    pub entries: Vec<CpuidEntry>,
    /// The topology the table describes.
    pub topology: Topology,
    /// The model the table was built for (`Skylake-Client-IBRS`).
    pub model: String,
    /// QEMU's definition it took the identity from (`Skylake-Client-v2`).
    pub qemu_model: String,
    /// Vendor string.
    pub vendor: [u8; 12],
}

impl CpuidTable {
    /// The number of vCPUs.
    pub fn vcpus(&self) -> u32 {
        self.topology.vcpus()
    }

    /// The x2APIC ID of every vCPU, in vCPU order.
    pub fn apic_ids(&self) -> Vec<u32> {
        (0..self.vcpus())
            .map(|i| self.topology.apic_id(i))
            .collect()
    }

    /// The entry for `(leaf, subleaf)` as vCPU 0 sees it.
    pub fn get(&self, leaf: u32, subleaf: u32) -> Option<&CpuidEntry> {
        let key = CpuidKey::new(leaf, subleaf);
        self.entries.iter().find(|e| e.answers(key))
    }

    /// The entries of vCPU `vcpu`: vCPU 0's with its APIC ID fields.
    ///
    /// # Panics
    /// When `vcpu` is not below [`CpuidTable::vcpus`].
    pub fn vcpu_entries(&self, vcpu: u32) -> Vec<CpuidEntry> {
        assert!(vcpu < self.vcpus(), "vCPU {vcpu} out of range");
        let apic_id = self.topology.apic_id(vcpu);
        let layout = self.topology.layout();
        let mut entries = self.entries.clone();
        for e in &mut entries {
            apply_apic_id(e, apic_id, &layout);
        }
        entries
    }

    /// One line per entry with hexadecimal registers, a header naming the
    /// model and topology, and the APIC IDs of every vCPU.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "# {} ({}), {}, {} vCPU{}: {}\n",
            self.model,
            self.qemu_model,
            String::from_utf8_lossy(&self.vendor),
            self.vcpus(),
            if self.vcpus() == 1 { "" } else { "s" },
            self.topology
        );
        out.push_str("# leaf      subleaf     eax        ebx        ecx        edx\n");
        for e in &self.entries {
            let _ = writeln!(
                out,
                "0x{:08x} 0x{:08x}  0x{:08x} 0x{:08x} 0x{:08x} 0x{:08x}",
                e.key.leaf, e.key.subleaf, e.eax, e.ebx, e.ecx, e.edx
            );
        }
        let ids: Vec<String> = self.apic_ids().iter().map(|i| i.to_string()).collect();
        let _ = writeln!(out, "# APIC IDs by vCPU: {}", ids.join(" "));
        out
    }
}

/// Writes `apic_id` into every field of `e` that holds the vCPU's APIC ID
/// or a value derived from it. Each is an identifier that QEMU truncates to
/// its field (`apic_id << 24`, `& 0xFF`), so these writes keep the low bits;
/// the counts beside them were checked when the table was built.
pub(crate) fn apply_apic_id(e: &mut CpuidEntry, apic_id: u32, layout: &ApicLayout) {
    let mut r = e.regs();
    match e.key.leaf {
        0x1 => LEAF1_APIC_ID.set_masked(&mut r, apic_id),
        0xb | 0x1f => r[3] = apic_id,
        0x8000_001e => {
            // In 64 bits: offsets of up to 32 shift without overflow.
            let id = u64::from(apic_id);
            let core_bits = layout.cluster_offset - layout.core_offset;
            let core = (id >> layout.core_offset) & ((1u64 << core_bits) - 1);
            r[0] = apic_id;
            LEAF8000001E_CORE_ID.set_masked(&mut r, core);
            LEAF8000001E_NODE_ID.set_masked(&mut r, id >> layout.package_offset);
        }
        _ => {}
    }
    e.set_regs(r);
}
