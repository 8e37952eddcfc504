//! The CPUID vocabulary every cpumodel crate shares.
//!
//! A CPUID query is a leaf and a subleaf (EAX and ECX when the instruction
//! executes), and its answer is four registers. The data layer ([`CpuData`](crate::CpuData)),
//! the guest table builder (`cpumodel-cpuid`) and the KVM edge (`cpumodel-kvm`)
//! all speak of the same things, so they are defined once here and the other
//! crates use these types instead of their own copies: converting between
//! look-alike structs field by field is where bits get lost.
//!
//! ```
//! use cpumodel_cpudata::{vendor_from_regs, vendor_to_regs, CpuidEntry, CpuidKey, Register};
//! let regs = vendor_to_regs(b"GenuineIntel");
//! assert_eq!(vendor_from_regs(regs), *b"GenuineIntel");
//! let leaf0 = CpuidEntry::new(CpuidKey::leaf(0), [0xd, regs[0], regs[2], regs[1]]);
//! assert_eq!(leaf0.get(Register::Ebx), 0x756e_6547);
//! assert_eq!(leaf0.vendor(), *b"GenuineIntel");
//! ```

use std::fmt;

/// A CPUID query: `CPUID.(EAX=leaf, ECX=subleaf)`.
///
/// Keys sort by leaf, then subleaf, which is the order libvirt writes dumps
/// in and the order KVM's entry lists use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct CpuidKey {
    /// Value of EAX when CPUID executes.
    pub leaf: u32,
    /// Value of ECX when CPUID executes.
    pub subleaf: u32,
}

impl CpuidKey {
    /// The key of `leaf` and `subleaf`.
    pub const fn new(leaf: u32, subleaf: u32) -> Self {
        CpuidKey { leaf, subleaf }
    }

    /// Subleaf 0 of `leaf` (where a dump keeps a leaf whose ECX does not matter).
    pub const fn leaf(leaf: u32) -> Self {
        CpuidKey { leaf, subleaf: 0 }
    }

    /// True when the subleaf selects the answer: the leaf is one of
    /// [`INDEXED_LEAVES`].
    pub fn is_indexed(&self) -> bool {
        INDEXED_LEAVES.contains(&self.leaf)
    }
}

impl fmt::Display for CpuidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CPUID.(EAX={:#x},ECX={:#x})", self.leaf, self.subleaf)
    }
}

/// Leaves whose subleaf (ECX) selects the answer, as KVM treats them.
pub const INDEXED_LEAVES: &[u32] = &[
    0x4,
    0x7,
    0xb,
    0xd,
    0xf,
    0x10,
    0x12,
    0x14,
    0x17,
    0x18,
    0x1d,
    0x1e,
    0x1f,
    0x20,
    0x23,
    0x24,
    0x8000_001d,
    0x8000_0020,
    0x8000_0026,
];

/// One of the four registers CPUID answers in.
///
/// The discriminant is the register's position in `[eax, ebx, ecx, edx]`
/// arrays ([`Register::index`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Register {
    /// EAX.
    Eax = 0,
    /// EBX.
    Ebx = 1,
    /// ECX.
    Ecx = 2,
    /// EDX.
    Edx = 3,
}

impl Register {
    /// The four registers in `[eax, ebx, ecx, edx]` order.
    pub const ALL: [Register; 4] = [Register::Eax, Register::Ebx, Register::Ecx, Register::Edx];

    /// The position of this register in `[eax, ebx, ecx, edx]` arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The register at `index` of `[eax, ebx, ecx, edx]`, if any.
    pub const fn from_index(index: usize) -> Option<Register> {
        match index {
            0 => Some(Register::Eax),
            1 => Some(Register::Ebx),
            2 => Some(Register::Ecx),
            3 => Some(Register::Edx),
            _ => None,
        }
    }

    /// The lowercase name (`eax`), as libvirt's XML and KVM's JSON write it.
    pub const fn name(self) -> &'static str {
        match self {
            Register::Eax => "eax",
            Register::Ebx => "ebx",
            Register::Ecx => "ecx",
            Register::Edx => "edx",
        }
    }

    /// The uppercase name (`EAX`), as Intel's manuals write it.
    pub const fn upper_name(self) -> &'static str {
        match self {
            Register::Eax => "EAX",
            Register::Ebx => "EBX",
            Register::Ecx => "ECX",
            Register::Edx => "EDX",
        }
    }
}

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.upper_name())
    }
}

/// One bit of one CPUID answer: `CPUID.(EAX=leaf,ECX=subleaf):REG[bit]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuidBit {
    /// The query.
    pub key: CpuidKey,
    /// The register holding the bit.
    pub register: Register,
    /// The bit's position, 0 to 31.
    pub bit: u32,
}

impl fmt::Display for CpuidBit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CPUID.(EAX={:#x},ECX={:#x}):{}[{}]",
            self.key.leaf, self.key.subleaf, self.register, self.bit
        )
    }
}

/// One CPUID answer: what `CPUID(EAX=key.leaf, ECX=key.subleaf)` returns.
///
/// This is the entry of a guest CPUID table and of what KVM stores for a
/// vCPU; `cpumodel-kvm` converts it to and from `kvm_cpuid_entry2` at the
/// ioctl boundary, where the entry's KVM flag follows from
/// [`CpuidKey::is_indexed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CpuidEntry {
    /// The query.
    pub key: CpuidKey,
    /// EAX output.
    pub eax: u32,
    /// EBX output.
    pub ebx: u32,
    /// ECX output.
    pub ecx: u32,
    /// EDX output.
    pub edx: u32,
}

impl CpuidEntry {
    /// The entry for `key` with registers `[eax, ebx, ecx, edx]`.
    pub const fn new(key: CpuidKey, regs: [u32; 4]) -> Self {
        CpuidEntry {
            key,
            eax: regs[0],
            ebx: regs[1],
            ecx: regs[2],
            edx: regs[3],
        }
    }

    /// `[eax, ebx, ecx, edx]`.
    pub const fn regs(&self) -> [u32; 4] {
        [self.eax, self.ebx, self.ecx, self.edx]
    }

    /// Replaces the four registers.
    pub fn set_regs(&mut self, regs: [u32; 4]) {
        [self.eax, self.ebx, self.ecx, self.edx] = regs;
    }

    /// The value of one register.
    pub const fn get(&self, register: Register) -> u32 {
        match register {
            Register::Eax => self.eax,
            Register::Ebx => self.ebx,
            Register::Ecx => self.ecx,
            Register::Edx => self.edx,
        }
    }

    /// The register `register`, to change it.
    pub fn get_mut(&mut self, register: Register) -> &mut u32 {
        match register {
            Register::Eax => &mut self.eax,
            Register::Ebx => &mut self.ebx,
            Register::Ecx => &mut self.ecx,
            Register::Edx => &mut self.edx,
        }
    }

    /// True when this entry answers `key`: same leaf, and same subleaf
    /// unless the leaf's subleaf does not matter ([`CpuidKey::is_indexed`]).
    pub fn answers(&self, key: CpuidKey) -> bool {
        self.key.leaf == key.leaf && (self.key.subleaf == key.subleaf || !self.key.is_indexed())
    }

    /// The 12-byte vendor string, read as leaf 0 holds it (EBX, EDX, ECX).
    pub fn vendor(&self) -> [u8; 12] {
        vendor_from_regs([self.ebx, self.edx, self.ecx])
    }
}

/// The three register words of a 12-byte vendor string, in the order the
/// string runs through them: `[ebx, edx, ecx]` of CPUID leaf 0 (and of
/// leaf 0x80000000 on AMD).
pub fn vendor_to_regs(vendor: &[u8; 12]) -> [u32; 3] {
    let word =
        |i: usize| u32::from_le_bytes([vendor[i], vendor[i + 1], vendor[i + 2], vendor[i + 3]]);
    [word(0), word(4), word(8)]
}

/// The 12-byte vendor string held in `[ebx, edx, ecx]` of CPUID leaf 0.
pub fn vendor_from_regs(regs: [u32; 3]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for (chunk, word) in s.chunks_exact_mut(4).zip(regs) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    s
}

/// The vCPU state that CPUID's run-time bits mirror (OSXSAVE follows
/// CR4, the XSAVE sizes follow XCR0 and `IA32_XSS`, the APIC bit follows
/// `IA32_APIC_BASE`).
///
/// `cpumodel-kvm` reads it from a vCPU after a guest ran, and the check of
/// `cpumodel-cpuid` compares those bits against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VcpuState {
    /// CR4 (OSXSAVE is bit 18, PKE bit 22).
    pub cr4: u64,
    /// XCR0.
    pub xcr0: u64,
    /// `IA32_XSS`.
    pub xss: u64,
    /// `IA32_APIC_BASE` (bit 11 enables the local APIC).
    pub apic_base: u64,
}

/// The xAPIC's default base address in `IA32_APIC_BASE`.
pub const APIC_DEFAULT_BASE: u64 = 0xfee0_0000;

/// `IA32_APIC_BASE` bit 11: the local APIC is enabled.
pub const APIC_BASE_ENABLE: u64 = 1 << 11;

impl VcpuState {
    /// A vCPU just out of reset in real mode with its local APIC enabled:
    /// CR4 0, XCR0 1 (x87), `IA32_XSS` 0.
    pub const REAL_MODE: VcpuState = VcpuState {
        cr4: 0,
        xcr0: 1,
        xss: 0,
        apic_base: APIC_DEFAULT_BASE | APIC_BASE_ENABLE,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_words_run_ebx_edx_ecx() {
        assert_eq!(
            vendor_to_regs(b"AuthenticAMD"),
            [0x6874_7541, 0x6974_6e65, 0x444d_4163]
        );
        assert_eq!(
            vendor_from_regs([0x756e_6547, 0x4965_6e69, 0x6c65_746e]),
            *b"GenuineIntel"
        );
    }

    #[test]
    fn registers_and_entries() {
        let mut e = CpuidEntry::new(CpuidKey::new(7, 0), [1, 2, 3, 4]);
        assert_eq!(Register::ALL.map(|r| e.get(r)), e.regs());
        *e.get_mut(Register::Ecx) |= 0x10;
        assert_eq!(e.regs(), [1, 2, 0x13, 4]);
        assert_eq!(Register::from_index(3), Some(Register::Edx));
        assert_eq!(Register::from_index(4), None);
        assert!(e.answers(CpuidKey::new(7, 0)));
        assert!(!e.answers(CpuidKey::new(7, 1)));
        // Leaf 1 ignores ECX.
        assert!(CpuidEntry::new(CpuidKey::leaf(1), [0; 4]).answers(CpuidKey::new(1, 5)));
        let bit = CpuidBit {
            key: CpuidKey::leaf(1),
            register: Register::Ebx,
            bit: 23,
        };
        assert_eq!(bit.to_string(), "CPUID.(EAX=0x1,ECX=0x0):EBX[23]");
    }
}
