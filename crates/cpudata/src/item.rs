//! CPU data items and the set operations libvirt defines on them.
//!
//! A processor is described by the values its CPUID leaves and feature MSRs
//! return. A CPU feature is described the same way: as a mask over those
//! values. Keeping both in one type lets "does this processor have feature X"
//! be a masked comparison, exactly as in libvirt's x86 CPU driver.

use std::fmt;

use crate::cpuid::{vendor_from_regs, CpuidKey, Register};

/// Where a data item comes from: a CPUID leaf/subleaf or a model-specific register.
///
/// CPUID items sort before MSR items, then by leaf and subleaf or by index,
/// which is the order libvirt writes them in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ItemKey {
    /// `CPUID.(EAX=leaf, ECX=subleaf)`.
    Cpuid(CpuidKey),
    /// A model-specific register read with RDMSR.
    Msr {
        /// The MSR index (ECX of RDMSR).
        index: u32,
    },
}

impl ItemKey {
    /// The item key of `CPUID.(EAX=leaf, ECX=subleaf)`.
    pub const fn cpuid(leaf: u32, subleaf: u32) -> Self {
        ItemKey::Cpuid(CpuidKey::new(leaf, subleaf))
    }

    /// The CPUID key, when this is a CPUID item.
    pub const fn cpuid_key(&self) -> Option<CpuidKey> {
        match self {
            ItemKey::Cpuid(key) => Some(*key),
            ItemKey::Msr { .. } => None,
        }
    }

    /// The names of this kind of item's registers, in [`Item::regs`] order.
    pub fn register_names(&self) -> &'static [&'static str] {
        match self {
            ItemKey::Cpuid(_) => &CPUID_REGISTER_NAMES,
            ItemKey::Msr { .. } => &["eax", "edx"],
        }
    }
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemKey::Cpuid(key) => key.fmt(f),
            ItemKey::Msr { index } => write!(f, "MSR {index:#x}"),
        }
    }
}

/// The names of [`Register::ALL`], as [`ItemKey::register_names`] gives them.
const CPUID_REGISTER_NAMES: [&str; 4] = [
    Register::Eax.name(),
    Register::Ebx.name(),
    Register::Ecx.name(),
    Register::Edx.name(),
];

/// One CPUID leaf or MSR value.
///
/// For CPUID the registers are `[eax, ebx, ecx, edx]`; for an MSR they are
/// `[eax, edx, 0, 0]` (the low and high halves of the 64-bit value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Item {
    /// Which leaf or register this is.
    pub key: ItemKey,
    /// The register values.
    pub regs: [u32; 4],
}

impl Item {
    /// A CPUID item.
    pub fn cpuid(leaf: u32, subleaf: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> Self {
        Item {
            key: ItemKey::cpuid(leaf, subleaf),
            regs: [eax, ebx, ecx, edx],
        }
    }

    /// An MSR item holding the 64-bit value `edx:eax`.
    pub fn msr(index: u32, eax: u32, edx: u32) -> Self {
        Item {
            key: ItemKey::Msr { index },
            regs: [eax, edx, 0, 0],
        }
    }

    /// An MSR item holding the 64-bit `value` (split into `edx:eax`).
    pub fn msr_value(index: u32, value: u64) -> Self {
        let [a0, a1, a2, a3, d0, d1, d2, d3] = value.to_le_bytes();
        Item::msr(
            index,
            u32::from_le_bytes([a0, a1, a2, a3]),
            u32::from_le_bytes([d0, d1, d2, d3]),
        )
    }

    /// True when every register is zero (libvirt skips such items).
    pub fn is_zero(&self) -> bool {
        self.regs == [0; 4]
    }

    /// True when every bit set in `mask` is also set here.
    pub fn contains(&self, mask: &Item) -> bool {
        self.regs
            .iter()
            .zip(mask.regs.iter())
            .all(|(v, m)| v & m == *m)
    }

    /// True when any bit set in `mask` is also set here.
    pub fn intersects(&self, mask: &Item) -> bool {
        self.regs
            .iter()
            .zip(mask.regs.iter())
            .any(|(v, m)| v & m != 0)
    }
}

/// A sorted collection of CPUID and MSR items: a processor, a feature, or a mask.
///
/// Items are unique by key and kept in [`ItemKey`] order, so lookups are
/// binary searches and set operations are merges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuData {
    items: Vec<Item>,
}

impl CpuData {
    /// An empty set of items.
    pub fn new() -> Self {
        CpuData::default()
    }

    /// All items, sorted by key, zero items included.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Items that have at least one bit set.
    pub fn nonzero_items(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| !i.is_zero())
    }

    /// True when no item has any bit set.
    pub fn is_empty(&self) -> bool {
        self.nonzero_items().next().is_none()
    }

    /// The item with this key, if present.
    pub fn get(&self, key: ItemKey) -> Option<&Item> {
        self.items
            .binary_search_by(|i| i.key.cmp(&key))
            .ok()
            .map(|n| &self.items[n])
    }

    /// Adds an item; when one with the same key exists, its bits are OR-ed in.
    pub fn add(&mut self, item: Item) {
        // Dumps list their items in order: most adds append.
        if self.items.last().is_none_or(|last| last.key < item.key) {
            self.items.push(item);
            return;
        }
        match self.items.binary_search_by(|i| i.key.cmp(&item.key)) {
            Ok(n) => {
                for (r, v) in self.items[n].regs.iter_mut().zip(item.regs) {
                    *r |= v;
                }
            }
            Err(n) => self.items.insert(n, item),
        }
    }

    /// Adds every item of `other` (bitwise OR).
    pub fn add_all(&mut self, other: &CpuData) {
        for item in other.nonzero_items() {
            self.add(*item);
        }
    }

    /// Clears every bit that is set in `mask`.
    pub fn subtract(&mut self, mask: &CpuData) {
        for item in &mut self.items {
            if let Some(m) = mask.get(item.key) {
                for (r, v) in item.regs.iter_mut().zip(m.regs) {
                    *r &= !v;
                }
            }
        }
    }

    /// Keeps only the bits also set in `other`.
    pub fn intersect(&mut self, other: &CpuData) {
        for item in &mut self.items {
            match other.get(item.key) {
                Some(o) => {
                    for (r, v) in item.regs.iter_mut().zip(o.regs) {
                        *r &= v;
                    }
                }
                None => item.regs = [0; 4],
            }
        }
    }

    /// True when every bit of `subset` is set here.
    pub fn contains(&self, subset: &CpuData) -> bool {
        subset
            .nonzero_items()
            .all(|m| self.get(m.key).is_some_and(|i| i.contains(m)))
    }

    /// True when at least one bit of `mask` is set here.
    pub fn intersects(&self, mask: &CpuData) -> bool {
        mask.nonzero_items()
            .any(|m| self.get(m.key).is_some_and(|i| i.intersects(m)))
    }

    /// The vendor string from CPUID leaf 0 (EBX, EDX, ECX), if leaf 0 is present.
    pub fn vendor_string(&self) -> Option<[u8; 12]> {
        let leaf0 = self.get(ItemKey::cpuid(0, 0))?;
        Some(vendor_from_regs([
            leaf0.regs[1],
            leaf0.regs[3],
            leaf0.regs[2],
        ]))
    }

    /// The processor signature (CPUID leaf 1 EAX without reserved bits), or 0.
    pub fn signature(&self) -> u32 {
        self.get(ItemKey::cpuid(1, 0))
            .map_or(0, |i| i.regs[0] & SIGNATURE_MASK)
    }
}

impl FromIterator<Item> for CpuData {
    fn from_iter<T: IntoIterator<Item = Item>>(iter: T) -> Self {
        let mut data = CpuData::new();
        for item in iter {
            data.add(item);
        }
        data
    }
}

/// Bits of CPUID leaf 1 EAX that make up the processor signature.
pub const SIGNATURE_MASK: u32 = 0x0fff_3fff;

/// Family, model and stepping decoded from a leaf 1 EAX signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Signature {
    /// Family plus extended family.
    pub family: u32,
    /// Model with the extended model in the high nibble.
    pub model: u32,
    /// Stepping.
    pub stepping: u32,
}

impl Signature {
    /// Decodes a leaf 1 EAX value.
    pub fn from_eax(eax: u32) -> Self {
        Signature {
            family: ((eax >> 20) & 0xff) + ((eax >> 8) & 0xf),
            model: ((eax >> 12) & 0xf0) + ((eax >> 4) & 0xf),
            stepping: eax & 0xf,
        }
    }

    /// Encodes family, model and stepping as a leaf 1 EAX value.
    pub fn to_eax(self) -> u32 {
        let mut family = self.family;
        let mut eax = 0;
        if family > 0xf {
            eax |= (family - 0xf) << 20;
            family = 0xf;
        }
        eax |= (self.model >> 4) << 16;
        eax |= family << 8;
        eax |= (self.model & 0xf) << 4;
        eax |= self.stepping & 0xf;
        eax
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_merges_items_with_the_same_key() {
        let mut d = CpuData::new();
        d.add(Item::cpuid(1, 0, 0, 0, 1, 0));
        d.add(Item::cpuid(1, 0, 0, 0, 2, 0));
        d.add(Item::msr(0x10a, 4, 0));
        d.add(Item::cpuid(0, 0, 0xd, 0, 0, 0));
        assert_eq!(d.items().len(), 3);
        assert_eq!(d.items()[0].key, ItemKey::cpuid(0, 0));
        assert_eq!(d.get(ItemKey::cpuid(1, 0)).unwrap().regs, [0, 0, 3, 0]);
        assert_eq!(d.items()[2].key, ItemKey::Msr { index: 0x10a });
    }

    #[test]
    fn subtract_intersect_and_contains() {
        let mut a: CpuData = [
            Item::cpuid(1, 0, 0, 0, 0b111, 0),
            Item::cpuid(7, 0, 0, 1, 0, 0),
        ]
        .into_iter()
        .collect();
        let b: CpuData = [Item::cpuid(1, 0, 0, 0, 0b010, 0)].into_iter().collect();
        assert!(a.contains(&b));
        assert!(!b.contains(&a));
        a.subtract(&b);
        assert!(!a.contains(&b));
        assert!(!a.intersects(&b));
        a.intersect(&b);
        assert!(a.is_empty());
    }

    #[test]
    fn signature_round_trips_extended_family_and_model() {
        let sig = Signature::from_eax(0x00a20f10);
        assert_eq!(
            sig,
            Signature {
                family: 25,
                model: 33,
                stepping: 0
            }
        );
        assert_eq!(sig.to_eax(), 0x00a20f10);
        assert_eq!(
            Signature::from_eax(0x000506e3),
            Signature {
                family: 6,
                model: 94,
                stepping: 3
            }
        );
    }

    #[test]
    fn vendor_string_comes_from_ebx_edx_ecx() {
        let d: CpuData = [Item::cpuid(0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69)]
            .into_iter()
            .collect();
        assert_eq!(&d.vendor_string().unwrap(), b"GenuineIntel");
    }
}
