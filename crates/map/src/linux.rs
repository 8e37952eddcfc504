//! Linux's names for CPU features: the flags of `/proc/cpuinfo`.
//!
//! Operators read feature names off `/proc/cpuinfo` (`tsc_deadline_timer`,
//! `avx512_vnni`, `sha_ni`), while libvirt names the same bits differently
//! (`tsc-deadline`, `avx512-vnni`, `sha-ni`). The kernel's table of
//! capability bits, imported from its `cpufeatures.h` into `linux/flags.rs`
//! by `cargo xtask import-linux-flags`, says which CPUID bit each flag is.
//! The join to a model database is made by that bit, at run time, so it
//! holds for any [`Database`]: the embedded one and any cpu_map directory.
//!
//! Not every flag is a CPUID bit: the kernel keeps words of its own
//! (synthetic bits such as `constant_tsc`, and bits it gathers from
//! scattered CPUID leaves), and it hides some CPUID bits from cpuinfo
//! (`spec_ctrl`). A feature of the map whose bits are not all shown flags
//! cannot be read off a flags line ([`Database::linux_shown`]).

use std::sync::OnceLock;

use cpumodel_cpudata::{CpuData, CpuidBit, CpuidKey, Item, ItemKey, Register};

use crate::db::Database;
use crate::featureset::{FeatureId, FeatureSet};

#[allow(clippy::unreadable_literal)]
#[rustfmt::skip]
mod flags;

/// The kernel the flag table was imported from (`Linux 6.12.118`).
pub const LINUX_KERNEL: &str = flags::KERNEL;

/// What one of the kernel's 32-bit capability words holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapabilityWord {
    /// A copy of one CPUID register: leaf, subleaf, register.
    Cpuid(u32, u32, Register),
    /// A word Linux defines itself: synthetic bits, or bits gathered from
    /// several CPUID leaves. Its bits are not a CPUID bit.
    Linux,
}

/// One capability bit of the Linux kernel (an `X86_FEATURE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxFlag {
    /// The macro name without `X86_FEATURE_` (`TSC_DEADLINE_TIMER`).
    pub symbol: &'static str,
    /// The capability word.
    pub word: u8,
    /// The bit in the word.
    pub bit: u8,
    /// The name `/proc/cpuinfo` shows, `None` when the kernel hides it.
    pub name: Option<&'static str>,
}

impl LinuxFlag {
    /// What the flag's word holds.
    pub fn source(&self) -> CapabilityWord {
        flags::WORDS[usize::from(self.word)]
    }

    /// The CPUID bit the flag is, or `None` for a Linux-defined bit.
    pub fn cpuid_bit(&self) -> Option<CpuidBit> {
        match self.source() {
            CapabilityWord::Cpuid(leaf, subleaf, register) => Some(CpuidBit {
                key: CpuidKey::new(leaf, subleaf),
                register,
                bit: u32::from(self.bit),
            }),
            CapabilityWord::Linux => None,
        }
    }
}

/// Every capability bit the kernel defines, hidden ones included, in the
/// order of its header.
pub fn linux_flags() -> &'static [LinuxFlag] {
    flags::FLAGS
}

/// The flag `/proc/cpuinfo` shows as `name` (ignoring ASCII case).
pub fn find_linux_flag(name: &str) -> Option<&'static LinuxFlag> {
    flags::FLAGS
        .iter()
        .find(|f| f.name.is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

/// The flag defined for a CPUID bit, a shown one first.
pub fn linux_flag_of_bit(bit: CpuidBit) -> Option<&'static LinuxFlag> {
    static BY_BIT: OnceLock<Vec<(CpuidBit, &'static LinuxFlag)>> = OnceLock::new();
    let table = BY_BIT.get_or_init(|| {
        let mut v: Vec<(CpuidBit, &'static LinuxFlag)> = flags::FLAGS
            .iter()
            .filter_map(|f| Some((f.cpuid_bit()?, f)))
            .collect();
        // Shown flags sort before hidden ones of the same bit.
        v.sort_by_key(|(b, f)| (*b, f.name.is_none()));
        v
    });
    let i = table.partition_point(|(b, _)| *b < bit);
    table.get(i).filter(|(b, _)| *b == bit).map(|(_, f)| *f)
}

/// Why a cpuinfo flag name is no feature of any database, for the message
/// of an unknown feature: the flag is a bit Linux defines itself. `None`
/// for every other name (a CPUID bit the map lacks is just unknown).
pub(crate) fn unmapped_flag_note(name: &str) -> Option<String> {
    let flag = find_linux_flag(name)?;
    flag.cpuid_bit().is_none().then(|| {
        format!(
            "Linux flag X86_FEATURE_{} is a bit Linux defines itself, not a CPUID bit",
            flag.symbol
        )
    })
}

/// The CPUID bits of every flag `/proc/cpuinfo` shows, as CPU data: the
/// bits a flags line says something about, set or clear.
pub fn linux_shown_bits() -> &'static CpuData {
    static SHOWN: OnceLock<CpuData> = OnceLock::new();
    SHOWN.get_or_init(|| {
        let mut data = CpuData::new();
        for f in flags::FLAGS.iter().filter(|f| f.name.is_some()) {
            if let Some(bit) = f.cpuid_bit() {
                data.add(bit_item(bit));
            }
        }
        data
    })
}

/// A CPU data item with just `bit` set.
pub fn bit_item(bit: CpuidBit) -> Item {
    let mut regs = [0u32; 4];
    regs[bit.register.index()] = 1 << bit.bit;
    Item {
        key: ItemKey::Cpuid(bit.key),
        regs,
    }
}

impl Database {
    /// The CPUID bit of a feature defined by exactly one CPUID bit.
    pub fn feature_cpuid_bit(&self, id: FeatureId) -> Option<CpuidBit> {
        let mut items = self.feature(id).data.nonzero_items();
        let item = items.next()?;
        if items.next().is_some() {
            return None;
        }
        let key = item.key.cpuid_key()?;
        let mut set = item
            .regs
            .iter()
            .enumerate()
            .filter(|(_, r)| **r != 0)
            .map(|(i, r)| (i, *r));
        let (reg, value) = set.next()?;
        if set.next().is_some() || !value.is_power_of_two() {
            return None;
        }
        Some(CpuidBit {
            key,
            register: Register::from_index(reg)?,
            bit: value.trailing_zeros(),
        })
    }

    /// The feature defined by exactly the CPUID bit `bit`.
    pub fn feature_of_cpuid_bit(&self, bit: CpuidBit) -> Option<FeatureId> {
        let item = bit_item(bit);
        self.features()
            .iter()
            .position(|f| {
                let mut items = f.data.nonzero_items();
                items.next() == Some(&item) && items.next().is_none()
            })
            .map(FeatureId::from_index)
    }

    /// The name `/proc/cpuinfo` shows for a feature: the shown flag of the
    /// feature's CPUID bit, if the feature is one CPUID bit and Linux shows
    /// it.
    pub fn linux_name(&self, id: FeatureId) -> Option<&'static str> {
        linux_flag_of_bit(self.feature_cpuid_bit(id)?)?.name
    }

    /// A feature's name in the chosen vocabulary: its Linux name with
    /// `linux` when it has one, its libvirt name otherwise.
    pub fn display_name(&self, id: FeatureId, linux: bool) -> &str {
        match linux.then(|| self.linux_name(id)).flatten() {
            Some(name) => name,
            None => self.feature_name(id),
        }
    }

    /// The feature a `/proc/cpuinfo` flag name stands for: the feature whose
    /// CPUID bit the flag is. `None` for names Linux does not show, for
    /// Linux-defined bits and for bits the database has no feature for.
    pub fn find_linux_feature(&self, name: &str) -> Option<FeatureId> {
        self.feature_of_cpuid_bit(find_linux_flag(name)?.cpuid_bit()?)
    }

    /// The features a `/proc/cpuinfo` flags line can show: those all of
    /// whose bits are CPUID bits Linux shows a flag for. Every other
    /// feature (MSR features, bits Linux hides or does not know) cannot be
    /// read off cpuinfo, present or absent.
    pub fn linux_shown(&self) -> FeatureSet {
        self.features_in_data(linux_shown_bits()).0
    }

    /// Linux flag names that stand for a feature of this database, for
    /// suggestions next to the libvirt names.
    pub(crate) fn linux_names(&self) -> Vec<&'static str> {
        let shown = self.linux_shown();
        shown
            .iter()
            .filter_map(|id| self.linux_name(id))
            .filter(|n| self.find_feature_exact(n).is_none())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_and_name_is_consistent() {
        for f in linux_flags() {
            assert!(usize::from(f.word) < flags::WORDS.len(), "{}", f.symbol);
            assert!(f.bit < 32, "{}", f.symbol);
        }
        let bit = find_linux_flag("tsc_deadline_timer").unwrap().cpuid_bit();
        assert_eq!(
            bit.map(|b| b.to_string()).as_deref(),
            Some("CPUID.(EAX=0x1,ECX=0x0):ECX[24]")
        );
        assert_eq!(find_linux_flag("constant_tsc").unwrap().cpuid_bit(), None);
        // Hidden from cpuinfo: no name to find it by.
        assert!(find_linux_flag("spec_ctrl").is_none());
        assert!(LINUX_KERNEL.starts_with("Linux "));
    }

    #[test]
    fn linux_names_join_the_database_by_bit() {
        let db = Database::embedded();
        let name = |f: &str| db.find_linux_feature(f).map(|id| db.feature_name(id));
        assert_eq!(name("tsc_deadline_timer"), Some("tsc-deadline"));
        assert_eq!(name("avx512_vnni"), Some("avx512vnni"));
        assert_eq!(name("sha_ni"), Some("sha-ni"));
        assert_eq!(name("pni"), Some("pni"));
        assert_eq!(name("constant_tsc"), None);
        let avx2 = db.find_feature("avx2").unwrap();
        assert_eq!(db.linux_name(avx2), Some("avx2"));
        let deadline = db.find_feature("tsc-deadline").unwrap();
        assert_eq!(db.display_name(deadline, true), "tsc_deadline_timer");
        assert_eq!(db.display_name(deadline, false), "tsc-deadline");
        // spec-ctrl is a CPUID bit Linux hides; MSR features are not CPUID.
        let shown = db.linux_shown();
        assert!(shown.contains(avx2));
        assert!(!shown.contains(db.find_feature("spec-ctrl").unwrap()));
        assert!(!shown.contains(db.find_feature("vmx-ept").unwrap()));
    }
}
