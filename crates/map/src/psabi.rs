//! x86-64 microarchitecture levels (the psABI's `x86-64-v1` to `x86-64-v4`).
//!
//! Distributions build for a level (RHEL 9 for v2, RHEL 10 for v3), so
//! "which level does this CPU reach" is the question behind "will this
//! guest boot that image". A level is a list of CPUID bits, each level
//! including the one below; this module writes the list once, by CPUID
//! bit, and joins it to a [`Database`]'s feature names at run time
//! ([`PsabiTable::new`]), so the same table serves the embedded map of
//! any libvirt release and a `--cpu-map` directory.
//!
//! The lists follow the x86-64 psABI's "Micro-architecture levels"
//! table. Two of its entries are not properties of a CPU model and are
//! read as the CPU capability they rest on: `OSFXSR` (the OS enabled
//! FXSAVE) is `fxsr`, and `OSXSAVE` (the OS enabled XSAVE) is `xsave`.
//! Long mode (`lm`) is part of v1: the levels describe x86-64 processors.
//!
//! ```
//! use cpumodel_map::{Database, PsabiLevel, PsabiTable};
//! let db = &Database::embedded();
//! let table = PsabiTable::new(&db);
//! let skylake = db.model(db.find_model("Skylake-Client").unwrap());
//! let a = table.assess(&skylake.features);
//! assert_eq!(a.level, Some(PsabiLevel::V3));
//! assert_eq!(table.names(&db, &a.missing), ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"]);
//! ```

use std::fmt;
use std::str::FromStr;

use cpumodel_cpudata::{CpuData, CpuidBit, CpuidKey, Item, Register};
use serde::Serialize;

use crate::db::Database;
use crate::featureset::{FeatureId, FeatureSet};

/// One x86-64 microarchitecture level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PsabiLevel {
    /// `x86-64` (the baseline): CMOV, CX8, FPU, FXSR, MMX, SYSCALL, SSE, SSE2.
    V1,
    /// `x86-64-v2`: CMPXCHG16B, LAHF/SAHF, POPCNT, SSE3, SSE4.1, SSE4.2, SSSE3.
    V2,
    /// `x86-64-v3`: AVX, AVX2, BMI1, BMI2, F16C, FMA, LZCNT, MOVBE, XSAVE.
    V3,
    /// `x86-64-v4`: AVX512F, AVX512BW, AVX512CD, AVX512DQ, AVX512VL.
    V4,
}

impl PsabiLevel {
    /// Every level, lowest first.
    pub const ALL: [PsabiLevel; 4] = [
        PsabiLevel::V1,
        PsabiLevel::V2,
        PsabiLevel::V3,
        PsabiLevel::V4,
    ];

    /// The short name: `v1` to `v4`.
    pub fn as_str(self) -> &'static str {
        match self {
            PsabiLevel::V1 => "v1",
            PsabiLevel::V2 => "v2",
            PsabiLevel::V3 => "v3",
            PsabiLevel::V4 => "v4",
        }
    }

    /// The level above this one, if any.
    pub fn next(self) -> Option<PsabiLevel> {
        PsabiLevel::ALL.get(self.index() + 1).copied()
    }

    /// The level's position in [`PsabiLevel::ALL`].
    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for PsabiLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level name that is none of `v1`..`v4` (or `x86-64-v1`..`x86-64-v4`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown x86-64 level '{0}' (expected v1, v2, v3 or v4)")]
pub struct UnknownLevel(pub String);

impl FromStr for PsabiLevel {
    type Err = UnknownLevel;

    /// `v3`, `V3` and `x86-64-v3` all name v3; `x86-64` is v1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let short = lower.strip_prefix("x86-64-").unwrap_or(&lower);
        match short {
            "v1" | "x86-64" => Ok(PsabiLevel::V1),
            "v2" => Ok(PsabiLevel::V2),
            "v3" => Ok(PsabiLevel::V3),
            "v4" => Ok(PsabiLevel::V4),
            _ => Err(UnknownLevel(s.to_string())),
        }
    }
}

/// One requirement of a level: the psABI's name for it and its CPUID bit.
struct Requirement {
    /// The name the psABI uses (what a database without the bit reports).
    name: &'static str,
    /// `CPUID.(EAX=leaf, ECX=subleaf)`, register and bit.
    leaf: u32,
    register: Register,
    bit: u32,
}

const fn req(name: &'static str, leaf: u32, register: Register, bit: u32) -> Requirement {
    Requirement {
        name,
        leaf,
        register,
        bit,
    }
}

const EXT: u32 = 0x8000_0001;
use Register::{Ebx, Ecx, Edx};

/// What each level adds to the one below, by CPUID bit (subleaf 0).
const LEVELS: [&[Requirement]; 4] = [
    &[
        req("CMOV", 1, Edx, 15),
        req("CX8", 1, Edx, 8),
        req("FPU", 1, Edx, 0),
        req("FXSR", 1, Edx, 24),
        req("MMX", 1, Edx, 23),
        req("SCE", EXT, Edx, 11),
        req("SSE", 1, Edx, 25),
        req("SSE2", 1, Edx, 26),
        req("LM", EXT, Edx, 29),
    ],
    &[
        req("CMPXCHG16B", 1, Ecx, 13),
        req("LAHF-SAHF", EXT, Ecx, 0),
        req("POPCNT", 1, Ecx, 23),
        req("SSE3", 1, Ecx, 0),
        req("SSE4_1", 1, Ecx, 19),
        req("SSE4_2", 1, Ecx, 20),
        req("SSSE3", 1, Ecx, 9),
    ],
    &[
        req("AVX", 1, Ecx, 28),
        req("AVX2", 7, Ebx, 5),
        req("BMI1", 7, Ebx, 3),
        req("BMI2", 7, Ebx, 8),
        req("F16C", 1, Ecx, 29),
        req("FMA", 1, Ecx, 12),
        req("LZCNT", EXT, Ecx, 5),
        req("MOVBE", 1, Ecx, 22),
        req("OSXSAVE", 1, Ecx, 26),
    ],
    &[
        req("AVX512F", 7, Ebx, 16),
        req("AVX512BW", 7, Ebx, 30),
        req("AVX512CD", 7, Ebx, 28),
        req("AVX512DQ", 7, Ebx, 17),
        req("AVX512VL", 7, Ebx, 31),
    ],
];

/// What one level asks of a database's features.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct LevelFeatures {
    /// The database's features for the level's bits (this level's own,
    /// not the ones below).
    features: FeatureSet,
    /// psABI names of the level's bits no feature of the database has:
    /// no CPU described with this database reaches the level.
    undefined: Vec<&'static str>,
}

/// The levels joined to one [`Database`]'s features.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsabiTable {
    levels: [LevelFeatures; 4],
}

/// Where a set of features stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsabiAssessment {
    /// The highest level reached, `None` below v1.
    pub level: Option<PsabiLevel>,
    /// What the next level needs that the features lack (empty at v4).
    pub missing: Vec<PsabiMissing>,
}

/// A requirement a CPU lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PsabiMissing {
    /// A feature of the database.
    Feature(FeatureId),
    /// A bit the database names no feature for, by its psABI name.
    Undefined(&'static str),
}

impl PsabiTable {
    /// Joins the levels to `db`: each CPUID bit becomes the feature made of
    /// exactly that bit (the first in map order, should several be).
    pub fn new(db: &Database) -> Self {
        let levels = LEVELS.map(|reqs| {
            let mut level = LevelFeatures::default();
            for r in reqs {
                let mut regs = [0u32; 4];
                regs[r.register.index()] = 1 << r.bit;
                let mut data = CpuData::new();
                data.add(Item::cpuid(r.leaf, 0, regs[0], regs[1], regs[2], regs[3]));
                match db.features_in_data(&data).0.iter().next() {
                    Some(id) => level.features.insert(id),
                    None => level.undefined.push(r.name),
                }
            }
            level
        });
        PsabiTable { levels }
    }

    /// The CPUID bit behind each requirement of `level` alone, with its
    /// psABI name, in the psABI's order.
    pub fn bits(level: PsabiLevel) -> impl Iterator<Item = (&'static str, CpuidBit)> {
        LEVELS[level.index()].iter().map(|r| {
            (
                r.name,
                CpuidBit {
                    key: CpuidKey::leaf(r.leaf),
                    register: r.register,
                    bit: r.bit,
                },
            )
        })
    }

    /// Where `features` stand: the highest level all of whose requirements
    /// (its own and those below) they have, and what the next one lacks.
    pub fn assess(&self, features: &FeatureSet) -> PsabiAssessment {
        let mut level = None;
        for l in PsabiLevel::ALL {
            let missing = self.missing_at(l, features);
            if !missing.is_empty() {
                return PsabiAssessment { level, missing };
            }
            level = Some(l);
        }
        PsabiAssessment {
            level,
            missing: Vec::new(),
        }
    }

    /// What `features` lack to reach `level` (every requirement up to it):
    /// database features in map order, then undefined bits. Empty when
    /// `features` reach it.
    pub fn missing(&self, level: PsabiLevel, features: &FeatureSet) -> Vec<PsabiMissing> {
        PsabiLevel::ALL[..=level.index()]
            .iter()
            .flat_map(|l| self.missing_at(*l, features))
            .collect()
    }

    /// What `features` lack of `level`'s own requirements.
    fn missing_at(&self, level: PsabiLevel, features: &FeatureSet) -> Vec<PsabiMissing> {
        let l = &self.levels[level.index()];
        l.features
            .difference(features)
            .iter()
            .map(PsabiMissing::Feature)
            .chain(l.undefined.iter().map(|n| PsabiMissing::Undefined(n)))
            .collect()
    }

    /// The names of `missing`: feature names of `db` (the database this
    /// table was made from), psABI names for undefined bits.
    pub fn names(&self, db: &Database, missing: &[PsabiMissing]) -> Vec<String> {
        missing
            .iter()
            .map(|m| match m {
                PsabiMissing::Feature(id) => db.feature_name(*id).to_string(),
                PsabiMissing::Undefined(name) => (*name).to_string(),
            })
            .collect()
    }

    /// The JSON fields of `features`' level ([`PsabiFields`]).
    pub fn fields(&self, db: &Database, features: &FeatureSet) -> PsabiFields {
        let a = self.assess(features);
        PsabiFields {
            psabi_level: a.level,
            psabi_missing: self.names(db, &a.missing),
        }
    }
}

/// The level of a CPU as it appears in JSON documents (flattened into a
/// model's, a host's or a guest's document): `psabi_level` is `"v1"` to
/// `"v4"` or `null` below v1, and `psabi_missing` names what the next
/// level needs that the CPU lacks (empty at v4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PsabiFields {
    /// The highest level reached.
    pub psabi_level: Option<PsabiLevel>,
    /// What the next level needs that is missing.
    pub psabi_missing: Vec<String>,
}

impl PsabiFields {
    /// `v3`, or `-` below v1, for text outputs.
    pub fn level_text(&self) -> &'static str {
        self.psabi_level.map_or("-", PsabiLevel::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level_of(db: &Database, model: &str) -> Option<PsabiLevel> {
        let table = PsabiTable::new(db);
        table
            .assess(&db.model(db.find_model(model).unwrap()).features)
            .level
    }

    #[test]
    fn every_bit_is_a_feature_of_the_embedded_map() {
        let db = &Database::embedded();
        let t = PsabiTable::new(db);
        for (i, l) in t.levels.iter().enumerate() {
            assert!(l.undefined.is_empty(), "level {i}: {:?}", l.undefined);
        }
        let names: Vec<_> = db.feature_names(&t.levels[1].features).collect();
        assert_eq!(
            names,
            ["pni", "ssse3", "cx16", "sse4.1", "sse4.2", "popcnt", "lahf_lm"]
        );
        let names: Vec<_> = db.feature_names(&t.levels[2].features).collect();
        assert_eq!(
            names,
            ["fma", "movbe", "xsave", "avx", "f16c", "bmi1", "avx2", "bmi2", "abm"]
        );
    }

    #[test]
    fn levels_of_known_models() {
        let db = &Database::embedded();
        assert_eq!(level_of(db, "486"), None);
        assert_eq!(level_of(db, "qemu64"), Some(PsabiLevel::V1));
        assert_eq!(level_of(db, "Westmere"), Some(PsabiLevel::V2));
        assert_eq!(level_of(db, "Skylake-Client"), Some(PsabiLevel::V3));
        // libvirt's Haswell lacks f16c and abm, which QEMU's has.
        assert_eq!(level_of(db, "Haswell"), Some(PsabiLevel::V2));
        assert_eq!(level_of(db, "Skylake-Server"), Some(PsabiLevel::V4));
    }

    #[test]
    fn missing_lists_the_next_level_only() {
        let db = &Database::embedded();
        let t = PsabiTable::new(db);
        let sandy = db.model(db.find_model("SandyBridge").unwrap()).features;
        let a = t.assess(&sandy);
        assert_eq!(a.level, Some(PsabiLevel::V2));
        assert_eq!(
            t.names(db, &a.missing),
            ["fma", "movbe", "f16c", "bmi1", "avx2", "bmi2", "abm"]
        );
        assert!(t.missing(PsabiLevel::V2, &sandy).is_empty());
        assert_eq!(t.missing(PsabiLevel::V3, &sandy), a.missing);
        let none = t.assess(&FeatureSet::new());
        assert_eq!(none.level, None);
        assert_eq!(none.missing.len(), 9);
    }

    #[test]
    fn a_map_without_a_bit_names_it_by_the_psabi() {
        let full = &Database::embedded();
        let avx2 = full.find_feature("avx2").unwrap();
        let features: Vec<_> = full
            .features()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != avx2.index())
            .map(|(_, f)| f.clone())
            .collect();
        let db = Database::from_parts(full.vendors().to_vec(), features, Vec::new());
        let t = PsabiTable::new(&db);
        let mut all = FeatureSet::new();
        for i in 0..db.features().len() {
            all.insert(FeatureId::from_index(i));
        }
        let a = t.assess(&all);
        assert_eq!(a.level, Some(PsabiLevel::V2));
        assert_eq!(t.names(&db, &a.missing), ["AVX2"]);
    }

    #[test]
    fn level_names() {
        assert_eq!("V3".parse::<PsabiLevel>(), Ok(PsabiLevel::V3));
        assert_eq!("x86-64-v2".parse::<PsabiLevel>(), Ok(PsabiLevel::V2));
        assert_eq!("x86-64".parse::<PsabiLevel>(), Ok(PsabiLevel::V1));
        assert_eq!(
            "v5".parse::<PsabiLevel>().unwrap_err().to_string(),
            "unknown x86-64 level 'v5' (expected v1, v2, v3 or v4)"
        );
        assert_eq!(PsabiLevel::V3.next(), Some(PsabiLevel::V4));
        assert_eq!(PsabiLevel::V4.next(), None);
    }
}
