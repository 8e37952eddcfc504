//! Compare, baseline and expand: the operations that make migration safe.
//!
//! All three work on feature sets resolved from `<cpu>` definitions, with
//! libvirt's semantics:
//!
//! - [`compare`] tells whether a host can run a guest CPU (`identical`,
//!   `superset` or `incompatible`), and also names the features that block it.
//! - [`baseline`] computes the CPU every input can run: the intersection of
//!   their features, decoded as a guest CPU that prefers the inputs' own
//!   model names. Inputs are feature bitsets, so there is no limit on their
//!   number.
//! - [`expand`] lists every feature of a definition's model explicitly.

use std::fmt;

use cpumodel_map::{Database, FeatureId, FeatureSet, ModelId, UnknownName, VendorId};

use crate::decode::{decode, CpuFeatures, DecodeOptions};
use crate::def::{CpuDef, CpuKind, Fallback, FeatureRef, Match, Policy};
use crate::error::DecodeError;

/// A definition could not be resolved or combined.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// A model or feature name is unknown.
    #[error(transparent)]
    UnknownName(#[from] UnknownName),
    /// A vendor name is unknown.
    #[error("unknown CPU vendor '{0}'")]
    UnknownVendor(String),
    /// A definition has no model where one is needed.
    #[error("no CPU model given")]
    NoModel,
    /// Decoding the result failed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A host CPU of another architecture than x86, where its features
    /// cannot mean anything (a baseline, the host of a comparison).
    #[error("architecture '{0}' is not x86 (expected x86_64 or i686)")]
    NotX86(String),
}

/// Refuses a CPU whose `<arch>` is not an x86 architecture (libvirt's x86
/// driver takes `x86_64` and `i686`); no `<arch>` is fine.
///
/// # Errors
/// [`OpError::NotX86`] naming the architecture.
pub fn check_x86(cpu: &CpuDef) -> Result<(), OpError> {
    match cpu.arch.as_deref() {
        Some(a) if a != "x86_64" && a != "i686" => Err(OpError::NotX86(a.to_string())),
        _ => Ok(()),
    }
}

/// The result of [`compare`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Comparison {
    /// The host provides exactly what the guest asks for.
    Identical,
    /// The host provides more than the guest asks for.
    Superset,
    /// The host cannot run the guest.
    Incompatible,
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Comparison::Identical => "identical",
            Comparison::Superset => "superset",
            Comparison::Incompatible => "incompatible",
        })
    }
}

/// A comparison and, when incompatible, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompareResult {
    /// The verdict.
    pub result: Comparison,
    /// Why an incompatible guest cannot run, in one phrase.
    pub reason: Option<String>,
    /// The features that make the guest incompatible, in map order.
    pub blockers: Vec<FeatureId>,
}

/// A definition's features by policy, resolved against a database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolvedCpu {
    /// The model, when given.
    pub model: Option<ModelId>,
    /// What the CPU provides: model + require + force − disable − forbid
    /// (for a host CPU: model + every listed feature).
    pub all: FeatureSet,
    /// The model's features plus `require` features.
    pub require: FeatureSet,
    /// `force` features.
    pub force: FeatureSet,
    /// `optional` features.
    pub optional: FeatureSet,
    /// `disable` features.
    pub disable: FeatureSet,
    /// `forbid` features.
    pub forbid: FeatureSet,
}

impl ResolvedCpu {
    /// Resolves every model and feature name of `cpu`, exactly as spelled,
    /// as libvirt resolves the names inside a document.
    ///
    /// # Errors
    /// [`OpError::UnknownName`] for the first unknown model or feature.
    pub fn new(db: &Database, cpu: &CpuDef) -> Result<Self, OpError> {
        let mut r = ResolvedCpu::default();
        if let Some(name) = &cpu.model {
            let id = db.resolve_model(name)?;
            r.model = Some(id);
            r.all = db.model(id).features;
            r.require = r.all;
        }
        for f in &cpu.features {
            let id = db.resolve_feature(&f.name)?;
            let policy = match cpu.kind {
                CpuKind::Host => Policy::Require,
                CpuKind::Guest => f.policy.unwrap_or(Policy::Require),
            };
            let listed = match policy {
                Policy::Force => &mut r.force,
                Policy::Require => &mut r.require,
                Policy::Optional => &mut r.optional,
                Policy::Disable => &mut r.disable,
                Policy::Forbid => &mut r.forbid,
            };
            listed.insert(id);
            policy.apply(&mut r.all, id);
        }
        Ok(r)
    }
}

/// Can `host` run the guest CPU `cpu`? libvirt's x86 compare, plus the
/// blocking features.
///
/// # Errors
/// Unknown model or feature names in either definition.
pub fn compare(db: &Database, host: &CpuDef, cpu: &CpuDef) -> Result<CompareResult, OpError> {
    check_x86(host)?;
    if let Some(r) = compare_identity(host, cpu) {
        return Ok(r);
    }
    let h = ResolvedCpu::new(db, host)?;
    let c = ResolvedCpu::new(db, cpu)?;
    Ok(compare_resolved(host, &h, cpu, &c))
}

/// The verdicts of a comparison that need no model or feature name: no
/// host model, a guest `<arch>` that is not x86, or a guest vendor the host
/// does not have. libvirt's x86 driver decides these before it looks up any
/// name, so a guest CPU of another vendor is incompatible even when it names
/// a model or feature the map does not know; [`compare`] and
/// [`compare_resolved`] give these verdicts first, and a caller holding
/// unresolved definitions asks this before resolving them.
pub fn compare_identity(host: &CpuDef, cpu: &CpuDef) -> Option<CompareResult> {
    let incompatible = |reason: String| CompareResult {
        result: Comparison::Incompatible,
        reason: Some(reason),
        blockers: Vec::new(),
    };
    if host.model.is_none() {
        return Some(incompatible("unknown host CPU".into()));
    }
    if let Some(arch) = &cpu.arch {
        if arch != "x86_64" && arch != "i686" {
            return Some(incompatible(format!(
                "CPU arch {arch} does not match host arch"
            )));
        }
    }
    match &cpu.vendor {
        Some(v) if host.vendor.as_deref() != Some(v.as_str()) => Some(incompatible(format!(
            "host CPU vendor does not match required CPU vendor {v}"
        ))),
        _ => None,
    }
}

/// [`compare`] on already resolved definitions (the fast path for fleets).
pub fn compare_resolved(
    host: &CpuDef,
    h: &ResolvedCpu,
    cpu: &CpuDef,
    c: &ResolvedCpu,
) -> CompareResult {
    if let Some(r) = compare_identity(host, cpu) {
        return r;
    }
    let incompatible = |reason: String, blockers: FeatureSet| CompareResult {
        result: Comparison::Incompatible,
        reason: Some(reason),
        blockers: blockers.iter().collect(),
    };
    let (force, require, optional, disable, forbid) = match cpu.kind {
        CpuKind::Host => (
            FeatureSet::EMPTY,
            c.all,
            FeatureSet::EMPTY,
            FeatureSet::EMPTY,
            FeatureSet::EMPTY,
        ),
        CpuKind::Guest => (c.force, c.require, c.optional, c.disable, c.forbid),
    };
    let forbidden = forbid.intersection(&h.all);
    if !forbidden.is_empty() {
        return incompatible("host CPU provides forbidden features".into(), forbidden);
    }
    let require = require
        .difference(&force)
        .difference(&optional)
        .difference(&disable);
    if !h.all.is_superset(&require) {
        return incompatible(
            "host CPU does not provide required features".into(),
            require.difference(&h.all),
        );
    }
    let diff = h
        .all
        .difference(&optional)
        .difference(&require)
        .difference(&disable)
        .difference(&force);
    if diff.is_empty() {
        return CompareResult {
            result: Comparison::Identical,
            reason: None,
            blockers: Vec::new(),
        };
    }
    if cpu.kind == CpuKind::Guest && cpu.match_ == Some(Match::Strict) {
        return incompatible(
            "host CPU does not strictly match guest CPU: extra features".into(),
            diff,
        );
    }
    CompareResult {
        result: Comparison::Superset,
        reason: None,
        blockers: Vec::new(),
    }
}

/// Options for [`baseline`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BaselineOptions {
    /// List every feature of the result's model explicitly.
    pub expand_features: bool,
    /// Drop features that block migration.
    pub migratable: bool,
    /// Features the hypervisor driver removes from the result before it is
    /// expanded, as `virsh cpu-baseline` on a QEMU connection does
    /// ([`Behaviour::hypervisor_filter`](cpumodel_map::Behaviour)); empty
    /// for the CPU driver's own answer, which libvirt's CPU tests check.
    pub hypervisor_filter: &'static [&'static str],
}

/// Baseline failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BaselineError {
    /// No input CPU.
    #[error("no CPUs given")]
    Empty,
    /// One input is unusable.
    #[error("{origin}: {source}")]
    Input {
        /// Where the input came from.
        origin: String,
        /// Why.
        #[source]
        source: OpError,
    },
    /// Two inputs have different vendors.
    #[error("CPU vendors do not match: {first} is {first_vendor}, {second} is {second_vendor}")]
    MixedVendors {
        /// The input that set the vendor.
        first: String,
        /// Its vendor.
        first_vendor: String,
        /// The conflicting input.
        second: String,
        /// Its vendor.
        second_vendor: String,
    },
    /// An input declares a vendor that differs from its model's.
    #[error("{origin}: CPU vendor {model_vendor} of model {model} differs from vendor {vendor}")]
    ModelVendor {
        /// The input.
        origin: String,
        /// Its model.
        model: String,
        /// The model's vendor.
        model_vendor: String,
        /// The declared vendor.
        vendor: String,
    },
    /// The inputs share no feature at all.
    #[error("CPUs are incompatible: they have no feature in common")]
    NothingInCommon,
    /// Decoding the common features failed.
    #[error("{0}")]
    Decode(#[from] DecodeError),
}

/// The CPU every input can run (libvirt's x86 baseline).
///
/// `cpus` pairs each definition with a name for error messages.
///
/// # Errors
/// See [`BaselineError`].
pub fn baseline<'a>(
    db: &Database,
    cpus: impl IntoIterator<Item = (&'a str, &'a CpuDef)>,
    opts: BaselineOptions,
) -> Result<CpuDef, BaselineError> {
    let mut acc = BaselineAccumulator::default();
    for (origin, cpu) in cpus {
        acc.add(db, origin, cpu)?;
    }
    acc.finish(db, opts)
}

/// Incremental baseline: feed CPUs one at a time (constant memory for any
/// fleet size), then [`finish`](Self::finish).
#[derive(Clone, Debug, Default)]
pub struct BaselineAccumulator {
    count: usize,
    common: FeatureSet,
    vendor: Option<(VendorId, String)>,
    output_vendor: bool,
    names: Vec<ModelId>,
}

impl BaselineAccumulator {
    /// Adds one CPU definition.
    ///
    /// # Errors
    /// Unknown names, a missing model, or a vendor conflict.
    pub fn add(&mut self, db: &Database, origin: &str, cpu: &CpuDef) -> Result<(), BaselineError> {
        self.add_with_origin(db, || origin.to_string(), cpu)
    }

    /// [`add`](Self::add), making the origin only when it is needed (for an
    /// error, or as the first vendor's origin).
    pub(crate) fn add_with_origin(
        &mut self,
        db: &Database,
        origin: impl Fn() -> String,
        cpu: &CpuDef,
    ) -> Result<(), BaselineError> {
        let input_err = |source: OpError| BaselineError::Input {
            origin: origin(),
            source,
        };
        if cpu.model.is_none() {
            return Err(input_err(OpError::NoModel));
        }
        check_x86(cpu).map_err(input_err)?;
        let resolved = ResolvedCpu::new(db, cpu).map_err(input_err)?;
        let model_id = resolved.model.expect("model checked above");
        let model = db.model(model_id);
        let first = self.count == 0;
        if first {
            self.output_vendor = cpu.vendor.is_some();
        } else if let (Some(v), Some(mv)) = (&cpu.vendor, model.vendor) {
            if db.vendor(mv).name != v.as_str() {
                return Err(BaselineError::ModelVendor {
                    origin: origin(),
                    model: model.name.to_string(),
                    model_vendor: db.vendor(mv).name.to_string(),
                    vendor: v.clone(),
                });
            }
        }
        let vendor_name: Option<String> = match &cpu.vendor {
            Some(v) => Some(v.clone()),
            None if first => None,
            None => {
                self.output_vendor = false;
                model.vendor.map(|v| db.vendor(v).name.to_string())
            }
        };
        if let Some(vn) = vendor_name {
            match &self.vendor {
                None => {
                    let id = db
                        .find_vendor(&vn)
                        .ok_or_else(|| input_err(OpError::UnknownVendor(vn.clone())))?;
                    self.vendor = Some((id, origin()));
                }
                Some((id, first_origin)) => {
                    if db.vendor(*id).name != vn.as_str() {
                        return Err(BaselineError::MixedVendors {
                            first: first_origin.clone(),
                            first_vendor: db.vendor(*id).name.to_string(),
                            second: origin(),
                            second_vendor: vn,
                        });
                    }
                }
            }
        }
        if !self.names.contains(&model_id) {
            self.names.push(model_id);
        }
        self.add_features(&resolved.all);
        Ok(())
    }

    /// Adds a host known only as a feature set (vendor checks are the
    /// caller's); this is the inner loop of fleet-sized baselines.
    pub fn add_features(&mut self, features: &FeatureSet) {
        if self.count == 0 {
            self.common = *features;
        } else {
            self.common.intersect_with(features);
        }
        self.count += 1;
    }

    /// The number of CPUs added so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no CPU was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Decodes the common features as a guest CPU.
    ///
    /// # Errors
    /// No input, no common feature, or no model fits.
    pub fn finish(&self, db: &Database, opts: BaselineOptions) -> Result<CpuDef, BaselineError> {
        if self.count == 0 {
            return Err(BaselineError::Empty);
        }
        if self.common.is_empty() {
            return Err(BaselineError::NothingInCommon);
        }
        let vendor = self.vendor.as_ref().map(|(v, _)| *v);
        let features = CpuFeatures::from_set(vendor, self.common);
        let mut dopts = DecodeOptions::new(CpuKind::Guest);
        dopts.preferred = &self.names;
        dopts.fallback = Fallback::Allow;
        dopts.migratable = opts.migratable;
        let decoded = decode(db, &features, &dopts)?;
        let mut cpu = decoded.to_cpu_def(db, CpuKind::Guest);
        cpu.fallback = Some(if self.names.len() == 1 && self.names[0] == decoded.model {
            Fallback::Forbid
        } else {
            Fallback::Allow
        });
        if !self.output_vendor {
            cpu.vendor = None;
        }
        cpu.features
            .retain(|f| !opts.hypervisor_filter.contains(&f.name.as_str()));
        if opts.expand_features {
            cpu = expand(db, &cpu).map_err(|e| match e {
                OpError::Decode(d) => BaselineError::Decode(d),
                other => BaselineError::Input {
                    origin: "baseline result".into(),
                    source: other,
                },
            })?;
        }
        Ok(cpu)
    }
}

/// Lists every feature of `cpu`'s model explicitly (libvirt's
/// expand-features): the model's features as `require` (plain names for a
/// host CPU), the definition's own `require`/`disable` features on top, the
/// model's removed features as `disable`, sorted by name.
///
/// # Errors
/// Another architecture than x86, no model, or an unknown model or feature
/// name.
pub fn expand(db: &Database, cpu: &CpuDef) -> Result<CpuDef, OpError> {
    check_x86(cpu)?;
    let name = cpu.model.as_deref().ok_or(OpError::NoModel)?;
    let model_id = db.resolve_model(name)?;
    let model = db.model(model_id);
    let host = cpu.kind == CpuKind::Host;
    let mut out = cpu.clone();
    out.model = Some(model.name.to_string());
    out.features.clear();
    let base_policy = if host { None } else { Some(Policy::Require) };
    for f in model.features.iter() {
        out.features.push(FeatureRef {
            name: db.feature_name(f).to_string(),
            policy: base_policy,
        });
    }
    for f in &cpu.features {
        let id = db.resolve_feature(&f.name)?;
        if !host && !matches!(f.policy, Some(Policy::Require | Policy::Disable) | None) {
            continue;
        }
        let policy = if host {
            None
        } else {
            Some(f.policy.unwrap_or(Policy::Require))
        };
        out.set_feature(db.feature_name(id), policy);
    }
    if !host {
        for f in &model.removed {
            out.add_feature_if_missing(db.feature_name(*f), Some(Policy::Disable));
        }
    }
    out.features.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_cpus;

    fn cpu(db: &Database, text: &str) -> CpuDef {
        parse_cpus(db, "t.xml", text).unwrap().remove(0).cpu
    }

    #[test]
    fn compare_names_blocking_features() {
        let db = Database::embedded();
        let host = cpu(&db, "<cpu><arch>x86_64</arch><model>Westmere</model><vendor>Intel</vendor><feature name='vmx'/></cpu>");
        let guest = cpu(&db, "<cpu match='exact'><model>Westmere</model><feature policy='require' name='avx'/><feature policy='require' name='xsave'/></cpu>");
        let r = compare(&db, &host, &guest).unwrap();
        assert_eq!(r.result, Comparison::Incompatible);
        assert_eq!(
            r.blockers
                .iter()
                .map(|f| db.feature_name(*f))
                .collect::<Vec<_>>(),
            ["xsave", "avx"]
        );
        let same = cpu(
            &db,
            "<cpu match='exact'><model>Westmere</model><feature name='vmx'/></cpu>",
        );
        assert_eq!(
            compare(&db, &host, &same).unwrap().result,
            Comparison::Identical
        );
        let strict = cpu(&db, "<cpu match='strict'><model>Westmere</model></cpu>");
        let r = compare(&db, &host, &strict).unwrap();
        assert_eq!((r.result, r.blockers.len()), (Comparison::Incompatible, 1));
        let bogus = cpu(
            &db,
            "<cpu><model>Westmere</model><feature name='nosuch'/></cpu>",
        );
        assert!(matches!(
            compare(&db, &host, &bogus),
            Err(OpError::UnknownName(_))
        ));
    }

    #[test]
    fn baseline_errors_name_the_inputs() {
        let db = Database::embedded();
        let a = cpu(
            &db,
            "<cpu><arch>x86_64</arch><model>Westmere</model><vendor>Intel</vendor></cpu>",
        );
        let b = cpu(
            &db,
            "<cpu><arch>x86_64</arch><model>Opteron_G3</model><vendor>AMD</vendor></cpu>",
        );
        let e = baseline(
            &db,
            [("a.xml", &a), ("b.xml", &b)],
            BaselineOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "CPU vendors do not match: a.xml is Intel, b.xml is AMD"
        );
        assert_eq!(
            baseline(&db, std::iter::empty(), BaselineOptions::default()).unwrap_err(),
            BaselineError::Empty
        );
        let r = baseline(
            &db,
            [("a.xml", &a), ("a2.xml", &a)],
            BaselineOptions::default(),
        )
        .unwrap();
        assert_eq!(r.to_xml(), "<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>Westmere</model>\n  <vendor>Intel</vendor>\n</cpu>\n");
    }
}
