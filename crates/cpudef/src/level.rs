//! The x86-64 level of a `<cpu>` definition, and the JSON document that
//! carries it.
//!
//! A guest's level is its model's features with the definition's feature
//! policies applied (`require` and `force` add, `disable` and `forbid`
//! remove), so `-avx2` on a v3 model gives a v2 guest; the model's features
//! are those the guest gets from QEMU, which runs the model by name
//! ([`Database::guest_model_features`]). A host CPU's is its model plus
//! every listed feature. The levels themselves are defined once,
//! in [`cpumodel_map::psabi`]; this module only resolves a definition to
//! the feature set they are measured on.

use cpumodel_map::{Database, PsabiFields, PsabiTable};
use serde::Serialize;

use crate::def::{CpuDef, CpuKind, Mode};
use crate::ops::{OpError, ResolvedCpu};

/// The level of `cpu`: `None` when the definition names no features to
/// measure (a guest in host-passthrough or maximum mode, or one without a
/// model).
///
/// # Errors
/// An unknown model or feature name in `cpu`.
pub fn cpu_psabi(
    db: &Database,
    table: &PsabiTable,
    cpu: &CpuDef,
) -> Result<Option<PsabiFields>, OpError> {
    let measurable = match cpu.kind {
        CpuKind::Host => true,
        CpuKind::Guest => cpu.model.is_some() && matches!(cpu.mode, Mode::Custom | Mode::HostModel),
    };
    if !measurable {
        return Ok(None);
    }
    let resolved = ResolvedCpu::new(db, cpu)?;
    let mut features = resolved.all;
    if let (CpuKind::Guest, Some(model)) = (cpu.kind, resolved.model) {
        let removed = resolved.disable.union(&resolved.forbid);
        features = features.union(&db.guest_model_features(model).difference(&removed));
    }
    Ok(Some(table.fields(db, &features)))
}

/// A `<cpu>` definition as JSON, with its x86-64 level beside its fields
/// (`psabi_level` and `psabi_missing`, absent where [`cpu_psabi`] has no
/// answer). The XML form of the definition is unchanged: a level is not
/// part of libvirt's element.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CpuDocument {
    /// The definition.
    #[serde(flatten)]
    pub cpu: CpuDef,
    /// Its level.
    #[serde(flatten)]
    pub psabi: Option<PsabiFields>,
}

impl CpuDocument {
    /// `cpu` with its level.
    ///
    /// # Errors
    /// An unknown model or feature name in `cpu`.
    pub fn new(db: &Database, table: &PsabiTable, cpu: CpuDef) -> Result<Self, OpError> {
        let psabi = cpu_psabi(db, table, &cpu)?;
        Ok(CpuDocument { cpu, psabi })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::def::Policy;
    use cpumodel_map::PsabiLevel;

    #[test]
    fn feature_policies_move_a_guest_between_levels() {
        let db = &Database::embedded();
        let table = PsabiTable::new(db);
        let mut cpu = CpuDef::new(CpuKind::Guest);
        cpu.model = Some("Skylake-Client".into());
        let level = |cpu: &CpuDef| cpu_psabi(db, &table, cpu).unwrap().unwrap();
        assert_eq!(level(&cpu).psabi_level, Some(PsabiLevel::V3));
        cpu.set_feature("avx2", Some(Policy::Disable));
        let l = level(&cpu);
        assert_eq!(l.psabi_level, Some(PsabiLevel::V2));
        assert_eq!(l.psabi_missing, ["avx2"]);
        cpu.set_feature("avx2", Some(Policy::Require));
        for f in ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"] {
            cpu.set_feature(f, Some(Policy::Require));
        }
        assert_eq!(level(&cpu).psabi_level, Some(PsabiLevel::V4));
        cpu.mode = Mode::HostPassthrough;
        assert_eq!(cpu_psabi(db, &table, &cpu).unwrap(), None);
    }

    #[test]
    fn the_document_keeps_the_definition_and_adds_the_level() {
        let db = &Database::embedded();
        let table = PsabiTable::new(db);
        let mut cpu = CpuDef::new(CpuKind::Guest);
        cpu.model = Some("Westmere".into());
        let doc = serde_json::to_value(CpuDocument::new(db, &table, cpu.clone()).unwrap()).unwrap();
        let mut plain = serde_json::to_value(&cpu).unwrap();
        let obj = plain.as_object_mut().unwrap();
        obj.insert("psabi_level".into(), "v2".into());
        obj.insert(
            "psabi_missing".into(),
            serde_json::json!([
                "fma", "movbe", "xsave", "avx", "f16c", "bmi1", "avx2", "bmi2", "abm"
            ]),
        );
        assert_eq!(doc, plain);
    }
}
