//! QEMU's x86 CPU model definitions: the identity a named model shows in
//! CPUID (vendor, family/model/stepping, brand string) and the minimum
//! basic and extended leaves it exposes.
//!
//! libvirt's CPU map says which *features* a model has but not what
//! signature or brand string the guest sees; QEMU decides those. The values
//! below are the ones of QEMU's `builtin_x86_defs` (target/i386/cpu.c) and
//! of the property overrides of its versioned models, restated as data.
//! libvirt names equal QEMU names: `Skylake-Client-v2` is version 2 of
//! `Skylake-Client`, `Skylake-Client-IBRS` is QEMU's alias of that version,
//! and an unversioned name is version 1 (what QEMU resolves it to on current
//! machine types).
//!
//! Versions are cumulative, as in QEMU: version N applies the overrides of
//! versions 2..=N in order. Versions that only change features need no line
//! in [`OVERRIDES`]; [`BASES`] records how many versions exist.

use std::fmt;

/// The CPUID vendor strings QEMU's definitions use.
const INTEL: [u8; 12] = *b"GenuineIntel";
const AMD: [u8; 12] = *b"AuthenticAMD";
const HYGON: [u8; 12] = *b"HygonGenuine";
const ZHAOXIN: [u8; 12] = *b"CentaurHauls";

/// The model-id QEMU gives its generic models (`"QEMU Virtual CPU version "
/// QEMU_HW_VERSION`).
const QEMU_VIRTUAL: &str = "QEMU Virtual CPU version 2.5+";

/// The CPUID identity a QEMU model definition gives a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QemuIdentity {
    /// CPUID leaf 0 vendor string.
    pub vendor: [u8; 12],
    /// Minimum maximum basic leaf (`.level`).
    pub level: u32,
    /// Minimum maximum extended leaf (`.xlevel`).
    pub xlevel: u32,
    /// Family.
    pub family: u32,
    /// Model.
    pub model: u32,
    /// Stepping.
    pub stepping: u32,
    /// Brand string (`.model_id`).
    pub model_id: &'static str,
}

/// One base definition of `builtin_x86_defs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QemuBase {
    /// QEMU's (and libvirt's) name.
    pub name: &'static str,
    /// Version 1's identity.
    pub id: QemuIdentity,
    /// The highest version number QEMU defines for it.
    pub versions: u32,
}

const fn base(
    name: &'static str,
    vendor: [u8; 12],
    level: u32,
    xlevel: u32,
    (family, model, stepping): (u32, u32, u32),
    model_id: &'static str,
    versions: u32,
) -> QemuBase {
    QemuBase {
        name,
        id: QemuIdentity {
            vendor,
            level,
            xlevel,
            family,
            model,
            stepping,
            model_id,
        },
        versions,
    }
}

/// Every base definition cpumodel knows, one per line:
/// name, vendor, level, xlevel, (family, model, stepping), model-id, versions.
#[rustfmt::skip]
pub const BASES: &[QemuBase] = &[
    base("qemu64", AMD, 0xd, 0x8000000a, (15, 107, 1), QEMU_VIRTUAL, 1),
    base("phenom", AMD, 5, 0x8000001a, (16, 2, 3), "AMD Phenom(tm) 9550 Quad-Core Processor", 1),
    base("core2duo", INTEL, 10, 0x80000008, (6, 15, 11), "Intel(R) Core(TM)2 Duo CPU     T7700  @ 2.40GHz", 1),
    base("kvm64", INTEL, 0xd, 0x80000008, (15, 6, 1), "Common KVM processor", 1),
    base("qemu32", INTEL, 4, 0x80000004, (6, 6, 3), QEMU_VIRTUAL, 1),
    base("kvm32", INTEL, 5, 0x80000008, (15, 6, 1), "Common 32-bit KVM processor", 1),
    base("coreduo", INTEL, 10, 0x80000008, (6, 14, 8), "Genuine Intel(R) CPU           T2600  @ 2.16GHz", 1),
    base("486", INTEL, 1, 0, (4, 8, 0), "", 1),
    base("pentium", INTEL, 1, 0, (5, 4, 3), "", 1),
    base("pentium2", INTEL, 2, 0, (6, 5, 2), "", 1),
    base("pentium3", INTEL, 3, 0, (6, 7, 3), "", 1),
    base("athlon", AMD, 2, 0x80000008, (6, 2, 3), QEMU_VIRTUAL, 1),
    base("n270", INTEL, 10, 0x80000008, (6, 28, 2), "Intel(R) Atom(TM) CPU N270   @ 1.60GHz", 1),
    base("Conroe", INTEL, 10, 0x80000008, (6, 15, 3), "Intel Celeron_4x0 (Conroe/Merom Class Core 2)", 1),
    base("Penryn", INTEL, 10, 0x80000008, (6, 23, 3), "Intel Core 2 Duo P9xxx (Penryn Class Core 2)", 1),
    base("Nehalem", INTEL, 11, 0x80000008, (6, 26, 3), "Intel Core i7 9xx (Nehalem Class Core i7)", 2),
    base("Westmere", INTEL, 11, 0x80000008, (6, 44, 1), "Westmere E56xx/L56xx/X56xx (Nehalem-C)", 2),
    base("SandyBridge", INTEL, 0xd, 0x80000008, (6, 42, 1), "Intel Xeon E312xx (Sandy Bridge)", 2),
    base("IvyBridge", INTEL, 0xd, 0x80000008, (6, 58, 9), "Intel Xeon E3-12xx v2 (Ivy Bridge)", 2),
    base("Haswell", INTEL, 0xd, 0x80000008, (6, 60, 4), "Intel Core Processor (Haswell)", 4),
    base("Broadwell", INTEL, 0xd, 0x80000008, (6, 61, 2), "Intel Core Processor (Broadwell)", 4),
    base("Skylake-Client", INTEL, 0xd, 0x80000008, (6, 94, 3), "Intel Core Processor (Skylake)", 4),
    base("Skylake-Server", INTEL, 0xd, 0x80000008, (6, 85, 4), "Intel Xeon Processor (Skylake)", 5),
    base("Cascadelake-Server", INTEL, 0xd, 0x80000008, (6, 85, 6), "Intel Xeon Processor (Cascadelake)", 5),
    base("Cooperlake", INTEL, 0xd, 0x80000008, (6, 85, 10), "Intel Xeon Processor (Cooperlake)", 2),
    base("Icelake-Client", INTEL, 0xd, 0x80000008, (6, 126, 0), "Intel Core Processor (Icelake)", 2),
    base("Icelake-Server", INTEL, 0xd, 0x80000008, (6, 134, 0), "Intel Xeon Processor (Icelake)", 7),
    base("SapphireRapids", INTEL, 0x20, 0x80000008, (6, 143, 4), "Intel Xeon Processor (SapphireRapids)", 6),
    base("GraniteRapids", INTEL, 0x20, 0x80000008, (6, 173, 0), "Intel Xeon Processor (GraniteRapids)", 5),
    base("SierraForest", INTEL, 0x23, 0x80000008, (6, 175, 0), "Intel Xeon Processor (SierraForest)", 5),
    base("ClearwaterForest", INTEL, 0x23, 0x80000008, (6, 221, 0), "Intel Xeon Processor (ClearwaterForest)", 3),
    base("Denverton", INTEL, 21, 0x80000008, (6, 95, 1), "Intel Atom Processor (Denverton)", 3),
    base("Snowridge", INTEL, 27, 0x80000008, (6, 134, 1), "Intel Atom Processor (SnowRidge)", 4),
    base("KnightsMill", INTEL, 0xd, 0x80000008, (6, 133, 0), "Intel Xeon Phi Processor (Knights Mill)", 1),
    base("Opteron_G1", AMD, 5, 0x80000008, (15, 6, 1), "AMD Opteron 240 (Gen 1 Class Opteron)", 1),
    base("Opteron_G2", AMD, 5, 0x80000008, (15, 6, 1), "AMD Opteron 22xx (Gen 2 Class Opteron)", 1),
    base("Opteron_G3", AMD, 5, 0x80000008, (16, 2, 3), "AMD Opteron 23xx (Gen 3 Class Opteron)", 1),
    base("Opteron_G4", AMD, 0xd, 0x8000001a, (21, 1, 2), "AMD Opteron 62xx class CPU", 1),
    base("Opteron_G5", AMD, 0xd, 0x8000001a, (21, 2, 0), "AMD Opteron 63xx class CPU", 1),
    base("EPYC", AMD, 0xd, 0x8000001e, (23, 1, 2), "AMD EPYC Processor", 5),
    base("Dhyana", HYGON, 0xd, 0x8000001e, (24, 0, 1), "Hygon Dhyana Processor", 2),
    base("EPYC-Rome", AMD, 0xd, 0x8000001e, (23, 49, 0), "AMD EPYC-Rome Processor", 5),
    base("EPYC-Milan", AMD, 0xd, 0x8000001e, (25, 1, 1), "AMD EPYC-Milan Processor", 3),
    base("EPYC-Genoa", AMD, 0xd, 0x80000022, (25, 17, 0), "AMD EPYC-Genoa Processor", 3),
    base("EPYC-Turin", AMD, 0xd, 0x80000022, (26, 0, 0), "AMD EPYC-Turin Processor", 2),
    base("YongFeng", ZHAOXIN, 0x1f, 0x80000008, (7, 11, 3), "Zhaoxin YongFeng Processor", 3),
];

/// A property a model version sets that changes what this crate builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Override {
    /// `stepping`.
    Stepping(u32),
    /// `model`.
    Model(u32),
    /// `model-id`.
    ModelId(&'static str),
}

/// The identity-changing properties of one model version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionOverride {
    /// The base definition's name.
    pub base: &'static str,
    /// The version.
    pub version: u32,
    /// QEMU's alias for this version, if any (`Haswell-noTSX-IBRS`).
    pub alias: Option<&'static str>,
    /// What it sets, in QEMU's order.
    pub props: &'static [Override],
}

const fn ver(
    base: &'static str,
    version: u32,
    alias: Option<&'static str>,
    props: &'static [Override],
) -> VersionOverride {
    VersionOverride {
        base,
        version,
        alias,
        props,
    }
}

use Override::{Model as M, ModelId as Id, Stepping as S};

/// Versions with an alias or with signature/brand overrides, one per line.
#[rustfmt::skip]
pub const OVERRIDES: &[VersionOverride] = &[
    ver("Nehalem", 2, Some("Nehalem-IBRS"), &[Id("Intel Core i7 9xx (Nehalem Core i7, IBRS update)")]),
    ver("Westmere", 2, Some("Westmere-IBRS"), &[Id("Westmere E56xx/L56xx/X56xx (IBRS update)")]),
    ver("SandyBridge", 2, Some("SandyBridge-IBRS"), &[Id("Intel Xeon E312xx (Sandy Bridge, IBRS update)")]),
    ver("IvyBridge", 2, Some("IvyBridge-IBRS"), &[Id("Intel Xeon E3-12xx v2 (Ivy Bridge, IBRS)")]),
    ver("Haswell", 2, Some("Haswell-noTSX"), &[S(1), Id("Intel Core Processor (Haswell, no TSX)")]),
    ver("Haswell", 3, Some("Haswell-IBRS"), &[S(4), Id("Intel Core Processor (Haswell, IBRS)")]),
    ver("Haswell", 4, Some("Haswell-noTSX-IBRS"), &[S(1), Id("Intel Core Processor (Haswell, no TSX, IBRS)")]),
    ver("Broadwell", 2, Some("Broadwell-noTSX"), &[Id("Intel Core Processor (Broadwell, no TSX)")]),
    ver("Broadwell", 3, Some("Broadwell-IBRS"), &[Id("Intel Core Processor (Broadwell, IBRS)")]),
    ver("Broadwell", 4, Some("Broadwell-noTSX-IBRS"), &[Id("Intel Core Processor (Broadwell, no TSX, IBRS)")]),
    ver("Skylake-Client", 2, Some("Skylake-Client-IBRS"), &[Id("Intel Core Processor (Skylake, IBRS)")]),
    ver("Skylake-Client", 3, Some("Skylake-Client-noTSX-IBRS"), &[Id("Intel Core Processor (Skylake, IBRS, no TSX)")]),
    ver("Skylake-Server", 2, Some("Skylake-Server-IBRS"), &[Id("Intel Xeon Processor (Skylake, IBRS)")]),
    ver("Skylake-Server", 3, Some("Skylake-Server-noTSX-IBRS"), &[Id("Intel Xeon Processor (Skylake, IBRS, no TSX)")]),
    ver("Cascadelake-Server", 3, Some("Cascadelake-Server-noTSX"), &[]),
    ver("Icelake-Client", 2, Some("Icelake-Client-noTSX"), &[]),
    ver("Icelake-Server", 2, Some("Icelake-Server-noTSX"), &[]),
    ver("Icelake-Server", 4, None, &[M(106)]),
    ver("GraniteRapids", 2, None, &[S(1)]),
    ver("SierraForest", 2, None, &[S(3)]),
    ver("Snowridge", 2, None, &[Id("Intel Atom Processor (Snowridge, no MPX)")]),
    ver("EPYC", 2, Some("EPYC-IBPB"), &[Id("AMD EPYC Processor (with IBPB)")]),
    ver("EPYC", 3, None, &[Id("AMD EPYC Processor")]),
    ver("EPYC", 4, None, &[Id("AMD EPYC-v4 Processor")]),
    ver("EPYC", 5, None, &[Id("AMD EPYC-v5 Processor")]),
    ver("EPYC-Rome", 3, None, &[Id("AMD EPYC-Rome-v3 Processor")]),
    ver("EPYC-Rome", 4, None, &[Id("AMD EPYC-Rome-v4 Processor (no XSAVES)")]),
    ver("EPYC-Rome", 5, None, &[Id("AMD EPYC-Rome-v5 Processor")]),
    ver("EPYC-Milan", 2, None, &[Id("AMD EPYC-Milan-v2 Processor")]),
    ver("EPYC-Milan", 3, None, &[Id("AMD EPYC-Milan-v3 Processor")]),
    ver("EPYC-Genoa", 2, None, &[Id("AMD EPYC-Genoa-v2 Processor")]),
];

/// A model name resolved to QEMU's definition: what the guest's CPUID
/// identity is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuModel {
    /// The base definition's name.
    pub base: &'static str,
    /// The version the name stands for.
    pub version: u32,
    /// The version's identity: the base's, with the version's overrides.
    pub id: QemuIdentity,
}

impl fmt::Display for QemuModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-v{}", self.base, self.version)
    }
}

/// Why a model name has no QEMU definition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QemuModelError {
    /// QEMU has no model of that name.
    #[error("CPU model '{0}' has no QEMU definition (QEMU's builtin_x86_defs), so its CPUID signature and brand string are unknown")]
    Unknown(String),
    /// The version is past the ones cpumodel knows.
    #[error("CPU model '{name}': QEMU's {base} has versions 1 to {known} here, not {version}")]
    Version {
        /// The name as given.
        name: String,
        /// The base definition.
        base: &'static str,
        /// The requested version.
        version: u32,
        /// The highest known version.
        known: u32,
    },
}

/// Resolves a libvirt/QEMU model name (exact spelling, as both use).
///
/// # Errors
/// [`QemuModelError`] when no QEMU definition matches.
pub fn resolve(name: &str) -> Result<QemuModel, QemuModelError> {
    let (base, version) = split_name(name)?;
    if version > base.versions {
        return Err(QemuModelError::Version {
            name: name.to_string(),
            base: base.name,
            version,
            known: base.versions,
        });
    }
    let mut m = QemuModel {
        base: base.name,
        version,
        id: base.id,
    };
    for o in OVERRIDES
        .iter()
        .filter(|o| o.base == base.name && o.version <= version)
    {
        for p in o.props {
            match *p {
                Override::Stepping(s) => m.id.stepping = s,
                Override::Model(v) => m.id.model = v,
                Override::ModelId(id) => m.id.model_id = id,
            }
        }
    }
    Ok(m)
}

fn split_name(name: &str) -> Result<(&'static QemuBase, u32), QemuModelError> {
    if let Some(b) = BASES.iter().find(|b| b.name == name) {
        return Ok((b, 1));
    }
    if let Some(o) = OVERRIDES.iter().find(|o| o.alias == Some(name)) {
        let b = BASES
            .iter()
            .find(|b| b.name == o.base)
            .expect("every override names a base");
        return Ok((b, o.version));
    }
    if let Some((stem, digits)) = name.rsplit_once("-v") {
        if let (Some(b), Ok(v)) = (BASES.iter().find(|b| b.name == stem), digits.parse::<u32>()) {
            // `-v1` only: no sign, no leading zero, no version 0.
            if v >= 1 && digits == v.to_string() {
                return Ok((b, v));
            }
        }
    }
    Err(QemuModelError::Unknown(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_versions_resolve_to_the_same_definition() {
        let alias = resolve("Skylake-Client-IBRS").unwrap();
        let v2 = resolve("Skylake-Client-v2").unwrap();
        assert_eq!(alias, v2);
        assert_eq!(alias.id.model_id, "Intel Core Processor (Skylake, IBRS)");
        assert_eq!(
            (alias.id.family, alias.id.model, alias.id.stepping),
            (6, 94, 3)
        );
        // v4 has no model-id of its own: it keeps v3's.
        assert_eq!(
            resolve("Skylake-Client-v4").unwrap().id.model_id,
            "Intel Core Processor (Skylake, IBRS, no TSX)"
        );
    }

    #[test]
    fn overrides_are_cumulative() {
        assert_eq!(resolve("Haswell-noTSX").unwrap().id.stepping, 1);
        assert_eq!(resolve("Haswell-IBRS").unwrap().id.stepping, 4);
        assert_eq!(resolve("Haswell-v4").unwrap().id.stepping, 1);
        assert_eq!(resolve("Icelake-Server-v3").unwrap().id.model, 134);
        assert_eq!(resolve("Icelake-Server-v7").unwrap().id.model, 106);
        assert_eq!(resolve("SierraForest-v5").unwrap().id.stepping, 3);
        assert_eq!(
            resolve("EPYC-Rome-v4").unwrap().id.model_id,
            "AMD EPYC-Rome-v4 Processor (no XSAVES)"
        );
    }

    #[test]
    fn unknown_models_and_versions_are_errors_naming_the_model() {
        assert_eq!(
            resolve("cpu64-rhel6").unwrap_err().to_string(),
            "CPU model 'cpu64-rhel6' has no QEMU definition (QEMU's builtin_x86_defs), so its CPUID signature and brand string are unknown"
        );
        assert_eq!(
            resolve("Haswell-v9").unwrap_err().to_string(),
            "CPU model 'Haswell-v9': QEMU's Haswell has versions 1 to 4 here, not 9"
        );
        assert!(resolve("Haswell-v0").is_err());
    }

    #[test]
    fn every_override_and_alias_is_consistent() {
        for o in OVERRIDES {
            let b = BASES.iter().find(|b| b.name == o.base).unwrap();
            assert!(o.version >= 2 && o.version <= b.versions, "{o:?}");
        }
        for b in BASES {
            assert!(b.id.model_id.len() <= 48, "{}", b.name);
        }
    }
}
