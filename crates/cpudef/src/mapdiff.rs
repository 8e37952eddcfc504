//! Between two CPU maps: what an upgrade does to decode results, and a CPU
//! definition rewritten for another release (`cpumodel convert`), both on
//! one translation of feature sets by their CPUID and MSR bits.
//!
//! [`cpumodel_map::MapDiff`] lists what changed in the maps themselves.
//! Whether a change matters to a host depends on decode: a new model only
//! changes a result if decode picks it for some CPU. So the changes are
//! probed: every model of either map that decode may choose for a host is
//! taken as a CPU (exactly its features, no signature), decoded with both
//! maps, and each probe whose result differs says that CPUs decoded as the
//! old result may now decode as the new one.

use std::collections::BTreeMap;

use cpumodel_map::{Database, FeatureSet, MapDiff, Model};
use serde::Serialize;

use crate::decode::{decode, CpuFeatures, DecodeOptions};
use crate::def::{CpuDef, CpuKind};
use crate::error::DecodeError;
use crate::ops::{check_x86, OpError, ResolvedCpu};

/// The map differences and their effect on decode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MapChanges {
    /// What changed in the maps.
    #[serde(flatten)]
    pub map: MapDiff,
    /// Models of OLD whose decode results can differ with NEW, in OLD's
    /// order.
    pub decode_can_change: Vec<DecodeShift>,
}

/// A model of OLD whose host decode results can change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecodeShift {
    /// The model, as OLD names it.
    pub model: String,
    /// What changed about the model itself: `removed`, `features changed`,
    /// `signatures changed`, `decode use changed`.
    pub reasons: Vec<String>,
    /// Models NEW decodes the probe CPUs as that OLD decoded as this model.
    pub now_decodes_as: Vec<String>,
}

/// The features of `set` (of `from`) as features of `to`, matched by their
/// CPUID and MSR bits, so that renamed features carry over; and the names
/// of the features `to` has no bits for.
pub fn translate_features(
    from: &Database,
    set: &FeatureSet,
    to: &Database,
) -> (FeatureSet, Vec<String>) {
    let mut out = FeatureSet::EMPTY;
    let mut unknown = Vec::new();
    for f in set.iter() {
        let (full, _) = to.features_in_data(&from.feature(f).data);
        if full.is_empty() {
            unknown.push(from.feature_name(f).to_string());
        }
        out = out.union(&full);
    }
    (out, unknown)
}

/// The changes from `old` to `new` with their effect on decode.
pub fn map_changes(old: &Database, new: &Database) -> MapChanges {
    let map = MapDiff::new(old, new);
    let mut shifts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (db, m) in probes(old).chain(probes(new)) {
        let (Some(was), Some(now)) = (host_model(db, m, old), host_model(db, m, new)) else {
            continue;
        };
        if was != now {
            let list = shifts.entry(was).or_default();
            if !list.contains(&now) {
                list.push(now);
            }
        }
    }
    let mut decode_can_change = Vec::new();
    for m in old
        .models()
        .iter()
        .filter(|m| m.decode_host || m.decode_guest)
    {
        let mut reasons = Vec::new();
        if map.models_removed.iter().any(|r| *r == m.name) {
            reasons.push("removed".to_string());
        }
        if let Some(c) = map.models_changed.iter().find(|c| c.name == m.name) {
            if !c.features_added.is_empty() || !c.features_removed.is_empty() {
                reasons.push("features changed".to_string());
            }
            if c.signatures.is_some() {
                reasons.push("signatures changed".to_string());
            }
            if c.decode.is_some() {
                reasons.push("decode use changed".to_string());
            }
        }
        let now_decodes_as = shifts.remove(m.name.as_ref()).unwrap_or_default();
        if !reasons.is_empty() || !now_decodes_as.is_empty() {
            decode_can_change.push(DecodeShift {
                model: m.name.to_string(),
                reasons,
                now_decodes_as,
            });
        }
    }
    MapChanges {
        map,
        decode_can_change,
    }
}

/// The models of `db` decode may choose for a host, each with its map.
fn probes(db: &Database) -> impl Iterator<Item = (&Database, &Model)> {
    db.models()
        .iter()
        .filter(|m| m.decode_host)
        .map(move |m| (db, m))
}

/// The model a host with exactly `model`'s features (from `from`) decodes
/// as with `to`; `None` when `to` cannot decode it.
fn host_model(from: &Database, model: &Model, to: &Database) -> Option<String> {
    let vendor = match model.vendor {
        Some(v) => Some(to.find_vendor(&from.vendor(v).name)?),
        None => None,
    };
    let (set, _) = translate_features(from, &model.features, to);
    let decoded = decode(
        to,
        &CpuFeatures::from_set(vendor, set),
        &DecodeOptions::new(CpuKind::Host),
    )
    .ok()?;
    Some(to.model(decoded.model).name.to_string())
}

/// A CPU definition rewritten for another map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Converted {
    /// The definition for the target map: the same model name when the
    /// target's model of that name has the same features, else the closest
    /// model the target has, plus explicit features.
    pub cpu: CpuDef,
    /// Features the guest had that the target map cannot express (no model
    /// or feature of it has their bits): the converted guest lacks them.
    pub lost: Vec<String>,
    /// Disabled features the target map does not know: no model of it can
    /// enable them, so dropping them changes nothing.
    pub dropped_disabled: Vec<String>,
}

/// A CPU that cannot be written for the target map at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The CPU itself is invalid in its own map.
    #[error(transparent)]
    Cpu(#[from] OpError),
    /// The target map has no such vendor.
    #[error("the target map cannot express CPU vendor '{0}'")]
    Vendor(String),
    /// No model of the target map fits the features.
    #[error("no model of the target map fits: {0}")]
    Decode(#[from] DecodeError),
}

/// Rewrites `cpu` (valid in `from`) for the map `to`, so that the release
/// with that map accepts it and the guest gets the same features: the
/// features are carried over by their CPUID and MSR bits and decoded
/// again with `to`'s models, preferring the model of the same name.
///
/// # Errors
/// An invalid `cpu`, a vendor `to` does not have, or features no model of
/// `to` fits.
pub fn convert(from: &Database, cpu: &CpuDef, to: &Database) -> Result<Converted, ConvertError> {
    check_x86(cpu)?;
    let resolved = ResolvedCpu::new(from, cpu)?;
    let vendor_name = match (&cpu.vendor, resolved.model) {
        (Some(v), _) => Some(v.clone()),
        (None, Some(m)) => from
            .model(m)
            .vendor
            .map(|v| from.vendor(v).name.to_string()),
        (None, None) => None,
    };
    let vendor = match &vendor_name {
        Some(name) => Some(
            to.find_vendor(name)
                .ok_or_else(|| ConvertError::Vendor(name.clone()))?,
        ),
        None => None,
    };
    let (enabled, lost) = translate_features(from, &resolved.all, to);
    let disabled = resolved.disable.union(&resolved.forbid);
    let (_, dropped_disabled) = translate_features(from, &disabled, to);
    let same_name: Vec<_> = cpu
        .model
        .as_deref()
        .and_then(|m| to.find_model_exact(m))
        .into_iter()
        .collect();
    let mut opts = DecodeOptions::new(cpu.kind);
    opts.preferred = &same_name;
    let decoded = decode(to, &CpuFeatures::from_set(vendor, enabled), &opts)?;
    let mut out = decoded.to_cpu_def(to, cpu.kind);
    out.mode = cpu.mode;
    out.match_ = cpu.match_.or(out.match_);
    out.check = cpu.check;
    out.arch.clone_from(&cpu.arch);
    out.vendor = cpu.vendor.clone();
    out.vendor_id.clone_from(&cpu.vendor_id);
    out.topology = cpu.topology;
    if cpu.kind == CpuKind::Guest {
        out.fallback = cpu.fallback.or(out.fallback);
    } else {
        out.signature.clone_from(&cpu.signature);
    }
    Ok(Converted {
        cpu: out,
        lost,
        dropped_disabled,
    })
}
