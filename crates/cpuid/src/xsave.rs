//! XSAVE state components (CPUID leaf 0xD).
//!
//! Each user state component has an architectural size and offset in the
//! standard (non-compacted) XSAVE area (Intel SDM Vol. 1, 13.4). A guest
//! gets a component when it has the feature that uses it, exactly as QEMU's
//! `x86_ext_save_areas` ties them: x87 and SSE come with XSAVE, AVX with
//! `avx`, MPX with `mpx`, the three AVX-512 components with `avx512f`, PKRU
//! with `pku`, and the AMX tile components with `amx-tile`.

/// One XSAVE state component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Component {
    /// Its bit in XCR0.
    pub bit: u32,
    /// A short name for reports.
    pub name: &'static str,
    /// The libvirt feature that enables it; `None` for x87 and SSE, which
    /// come with XSAVE itself.
    pub feature: Option<&'static str>,
    /// Size in bytes (CPUID.(EAX=0xD,ECX=bit).EAX).
    pub size: u32,
    /// Offset in the standard format (CPUID.(EAX=0xD,ECX=bit).EBX).
    pub offset: u32,
    /// CPUID.(EAX=0xD,ECX=bit).ECX: bit 1 = 64-byte aligned when compacted,
    /// bit 2 = supports extended feature disable (XFD).
    pub ecx: u32,
}

/// The legacy region (512 bytes) plus the XSAVE header (64 bytes).
pub const LEGACY_AND_HEADER: u32 = 576;

const fn c(
    bit: u32,
    name: &'static str,
    feature: Option<&'static str>,
    size: u32,
    offset: u32,
    ecx: u32,
) -> Component {
    Component {
        bit,
        name,
        feature,
        size,
        offset,
        ecx,
    }
}

/// The user state components cpumodel knows, by XCR0 bit.
#[rustfmt::skip]
pub const COMPONENTS: &[Component] = &[
    c(0, "x87", None, 160, 0, 0),
    c(1, "SSE", None, 256, 160, 0),
    c(2, "AVX", Some("avx"), 256, 576, 0),
    c(3, "MPX BNDREGS", Some("mpx"), 64, 960, 0),
    c(4, "MPX BNDCSR", Some("mpx"), 64, 1024, 0),
    c(5, "AVX-512 opmask", Some("avx512f"), 64, 1088, 0),
    c(6, "AVX-512 ZMM_Hi256", Some("avx512f"), 512, 1152, 0),
    c(7, "AVX-512 Hi16_ZMM", Some("avx512f"), 1024, 1664, 0),
    c(9, "PKRU", Some("pku"), 8, 2688, 0),
    c(17, "AMX XTILECFG", Some("amx-tile"), 64, 2752, 0x2),
    c(18, "AMX XTILEDATA", Some("amx-tile"), 8192, 2816, 0x6),
];

/// The XCR0 bits every component cpumodel knows occupies (for templates).
pub fn known_mask() -> u64 {
    COMPONENTS.iter().fold(0, |m, c| m | (1 << c.bit))
}

/// An XCR0 mask as the two registers of leaf 0xD that hold it: the low
/// half (EAX) and the high half (EDX).
pub fn halves(mask: u64) -> [u32; 2] {
    // cast: each half is taken to 32 bits on purpose.
    #[allow(clippy::cast_possible_truncation)]
    [mask as u32, (mask >> 32) as u32]
}

/// The component with this XCR0 bit.
pub fn component(bit: u32) -> Option<&'static Component> {
    COMPONENTS.iter().find(|c| c.bit == bit)
}

/// Size of a standard-format XSAVE area holding the components in `mask`
/// (CPUID.(EAX=0xD,ECX=0).ECX): the end of the highest component.
pub fn standard_size(mask: u64) -> u32 {
    COMPONENTS
        .iter()
        .filter(|c| c.bit >= 2 && mask & (1 << c.bit) != 0)
        .map(|c| c.offset + c.size)
        .fold(LEGACY_AND_HEADER, u32::max)
}

/// Size of a compacted XSAVE area holding the components in `mask`
/// (CPUID.(EAX=0xD,ECX=1).EBX, as QEMU computes it: components packed one
/// after the other after the legacy region and header).
pub fn compacted_size(mask: u64) -> u32 {
    COMPONENTS
        .iter()
        .filter(|c| c.bit >= 2 && mask & (1 << c.bit) != 0)
        .fold(LEGACY_AND_HEADER, |end, c| end + c.size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avx512_with_pkru_needs_2696_bytes() {
        let mask = 0b10_1110_0111; // x87 SSE AVX opmask ZMM_Hi256 Hi16_ZMM PKRU
        assert_eq!(standard_size(mask), 2696);
        assert_eq!(compacted_size(mask), 576 + 256 + 64 + 512 + 1024 + 8);
    }

    #[test]
    fn sizes_of_common_sets() {
        assert_eq!(standard_size(0b11), 576);
        assert_eq!(standard_size(0b111), 832);
        assert_eq!(standard_size(0b11111), 1088);
        let amx = (1 << 17) | (1 << 18) | 0b10_1110_0111;
        assert_eq!(standard_size(amx), 11008);
    }

    #[test]
    fn components_do_not_overlap() {
        let mut v: Vec<&Component> = COMPONENTS.iter().filter(|c| c.bit >= 2).collect();
        v.sort_by_key(|c| c.offset);
        for w in v.windows(2) {
            assert!(w[0].offset + w[0].size <= w[1].offset, "{w:?}");
        }
    }
}
