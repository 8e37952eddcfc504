//! Decode: name a processor (or a set of features) as model + features.
//!
//! Given what a CPU has, pick the named model that describes it best and list
//! the features that complete the match: extras as `require`, model features
//! the CPU lacks as `disable`. This is libvirt's x86 decode, reproduced
//! step for step so the answers are the same:
//!
//! 1. The vendor comes from CPUID leaf 0, the signature from leaf 1.
//! 2. On Intel family 6 models 60, 69, 70 and 63 (stepping < 4), `hle` and
//!    `rtm` are dropped: TSX is broken there (erratum), whatever CPUID says.
//! 3. Models are tried newest first (reverse map order). Models of another
//!    vendor, models not offered by the hypervisor (when a list is given),
//!    and models not meant for this kind of CPU (`decode host/guest`) are
//!    skipped. A host CPU's model must be a subset of the CPU.
//! 4. A candidate whose signature matches the CPU beats one that does not.
//! 5. Otherwise the candidate with the shorter feature list wins; for guest
//!    CPUs each disabled feature counts with an increasing penalty (2, 3,
//!    4, ...).
//!
//! Step 5 has a quirk: libvirt's loop that applies the penalties shrinks its
//! own upper bound as it finds disabled features, so it stops before the
//! end of the list and some disabled features are counted as if they were
//! enabled. cpumodel reproduces that by default ([`Scoring::Libvirt`]) so
//! its answers match libvirt's; [`Scoring::Intended`] applies the penalty to
//! every disabled feature, as the code's comments describe.

use cpumodel_cpudata::{CpuData, Signature};
use cpumodel_map::{Database, FeatureId, FeatureSet, ModelId, VendorId};

use crate::def::{CpuDef, CpuKind, Fallback, Match, Policy, SignatureDef};
use crate::error::DecodeError;

/// How candidate models are scored (see the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scoring {
    /// Exactly libvirt's behaviour, including the early loop exit.
    #[default]
    Libvirt,
    /// Every disabled feature is penalised.
    Intended,
}

/// The models a hypervisor offers, each with the features it cannot provide
/// for that model (QEMU's `unavailable-features`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HypervisorModels {
    /// `(model name, blocking features)`; names as the hypervisor spells them.
    pub models: Vec<(String, Vec<FeatureId>)>,
}

impl HypervisorModels {
    fn get(&self, name: &str) -> Option<&[FeatureId]> {
        self.models
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }
}

/// What decode works on: a vendor, a signature and two views of the features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuFeatures {
    /// The vendor, when known.
    pub vendor: Option<VendorId>,
    /// CPUID leaf 1 EAX without reserved bits; 0 when unknown.
    pub signature: u32,
    /// Features all of whose bits are present.
    pub full: FeatureSet,
    /// Features with at least one bit present (superset of `full`).
    pub partial: FeatureSet,
    /// Features the source cannot show, present or absent (a `/proc/cpuinfo`
    /// shows no MSR and no hidden bit). Decode counts them as absent, as
    /// libvirt counts bits a dump lacks; empty for a complete dump.
    pub undetermined: FeatureSet,
}

impl CpuFeatures {
    /// Reads vendor, signature and features from raw CPU data.
    ///
    /// # Errors
    /// [`DecodeError::UnknownVendor`] when leaf 0 carries a vendor string the
    /// database does not know.
    pub fn from_data(db: &Database, data: &CpuData) -> Result<Self, DecodeError> {
        let vendor =
            match data.vendor_string() {
                Some(s) => Some(db.find_vendor_by_string(&s).ok_or_else(|| {
                    DecodeError::UnknownVendor {
                        string: String::from_utf8_lossy(&s).into_owned(),
                        known: db.vendors().iter().map(|v| v.string_lossy()).collect(),
                    }
                })?),
                None => None,
            };
        let (full, partial) = db.features_in_data(data);
        Ok(CpuFeatures {
            vendor,
            signature: data.signature(),
            full,
            partial,
            undetermined: FeatureSet::new(),
        })
    }

    /// Reads CPU data of which only the bits in `shown` are known (set or
    /// clear): every feature with a bit outside `shown` is undetermined.
    ///
    /// # Errors
    /// As [`CpuFeatures::from_data`].
    pub fn from_shown(db: &Database, data: &CpuData, shown: &CpuData) -> Result<Self, DecodeError> {
        let mut cpu = Self::from_data(db, data)?;
        let known = db.features_in_data(shown).0;
        cpu.undetermined = (0..db.features().len())
            .map(FeatureId::from_index)
            .filter(|f| !known.contains(*f))
            .collect();
        Ok(cpu)
    }

    /// The same CPU with every undetermined feature present: the most it
    /// can be, for naming what the undetermined features could change.
    #[must_use]
    pub fn assuming_undetermined(&self) -> Self {
        CpuFeatures {
            full: self.full.union(&self.undetermined),
            partial: self.partial.union(&self.undetermined),
            undetermined: FeatureSet::new(),
            ..*self
        }
    }

    /// A CPU known only by its feature set (as in baseline).
    pub fn from_set(vendor: Option<VendorId>, set: FeatureSet) -> Self {
        CpuFeatures {
            vendor,
            signature: 0,
            full: set,
            partial: set,
            undetermined: FeatureSet::new(),
        }
    }
}

/// Options for [`decode`].
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions<'a> {
    /// Host (model must be a subset) or guest (features may be disabled).
    pub kind: CpuKind,
    /// Restrict candidates to the hypervisor's models.
    pub hypervisor: Option<&'a HypervisorModels>,
    /// Models to prefer (baseline passes the inputs' model names).
    pub preferred: &'a [ModelId],
    /// The result's fallback, which decides whether a preferred model the
    /// hypervisor lacks is an error.
    pub fallback: Fallback,
    /// Drop features that block migration from the result.
    pub migratable: bool,
    /// Candidate scoring.
    pub scoring: Scoring,
}

impl DecodeOptions<'_> {
    /// Plain options for a host or guest decode.
    pub fn new(kind: CpuKind) -> Self {
        DecodeOptions {
            kind,
            hypervisor: None,
            preferred: &[],
            fallback: if kind == CpuKind::Guest {
                Fallback::Forbid
            } else {
                Fallback::Allow
            },
            migratable: false,
            scoring: Scoring::Libvirt,
        }
    }
}

/// The result of [`decode`]: the model and the feature list, with ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The chosen model.
    pub model: ModelId,
    /// The vendor of the decoded CPU.
    pub vendor: Option<VendorId>,
    /// The CPU's signature (0 when unknown).
    pub signature: u32,
    /// Features to add to the model, in map order.
    pub require: Vec<FeatureId>,
    /// Model features to disable: missing ones in map order, then the
    /// model's removed features (guest decode only).
    pub disable: Vec<FeatureId>,
}

impl Decoded {
    /// The result as a libvirt `<cpu>` definition of the decoded kind.
    pub fn to_cpu_def(&self, db: &Database, kind: CpuKind) -> CpuDef {
        let mut cpu = CpuDef::new(kind);
        cpu.model = Some(db.model(self.model).name.to_string());
        cpu.vendor = self.vendor.map(|v| db.vendor(v).name.to_string());
        let (req, dis) = match kind {
            CpuKind::Host => {
                cpu.arch = Some("x86_64".into());
                let sig = Signature::from_eax(self.signature);
                cpu.signature = Some(SignatureDef {
                    family: sig.family,
                    model: sig.model,
                    stepping: sig.stepping,
                });
                (None, None)
            }
            CpuKind::Guest => {
                cpu.match_ = Some(Match::Exact);
                cpu.fallback = Some(Fallback::Forbid);
                (Some(Policy::Require), Some(Policy::Disable))
            }
        };
        for id in &self.require {
            cpu.features.push(crate::def::FeatureRef {
                name: db.feature_name(*id).to_string(),
                policy: req,
            });
        }
        for id in &self.disable {
            cpu.features.push(crate::def::FeatureRef {
                name: db.feature_name(*id).to_string(),
                policy: dis,
            });
        }
        cpu
    }
}

struct Candidate {
    model: ModelId,
    require: FeatureSet,
    disable: FeatureSet,
    removed_extra: usize,
}

impl Candidate {
    fn len(&self) -> usize {
        self.require.len() + self.disabled_len()
    }

    fn disabled_len(&self) -> usize {
        self.disable.len() + self.removed_extra
    }

    /// `(total, disabled penalty)` as libvirt's candidate comparison computes them.
    fn score(&self, kind: CpuKind, scoring: Scoring) -> (usize, usize) {
        if kind == CpuKind::Host {
            return (self.len(), 0);
        }
        let n = self.len();
        let first_disabled = self.require.len();
        let mut enabled = n;
        let mut disabled = 0;
        let mut penalty = 2;
        let mut i = 0;
        let bound = |enabled: usize| match scoring {
            Scoring::Libvirt => enabled,
            Scoring::Intended => n,
        };
        while i < bound(enabled) {
            if i >= first_disabled {
                enabled -= 1;
                disabled += penalty;
                penalty += 1;
            }
            i += 1;
        }
        (enabled + disabled, disabled)
    }
}

/// Picks the model that best describes `cpu` (see the module documentation).
///
/// # Errors
/// [`DecodeError::NoModel`] when no model fits, and
/// [`DecodeError::PreferredUnsupported`] when the only preferred model is not
/// offered by the hypervisor and fallback is forbidden.
pub fn decode(
    db: &Database,
    cpu: &CpuFeatures,
    opts: &DecodeOptions<'_>,
) -> Result<Decoded, DecodeError> {
    let mut full = cpu.full;
    let mut partial = cpu.partial;
    drop_broken_tsx(db, cpu, &mut full, &mut partial);
    let sig = cpu.signature;
    let single_preferred = if opts.preferred.len() == 1 {
        Some(opts.preferred[0])
    } else {
        None
    };

    let mut best: Option<Candidate> = None;
    for (index, model) in db.models().iter().enumerate().rev() {
        let id = ModelId::from_index(index);
        let blockers = match opts.hypervisor {
            Some(hv) => match hv.get(&model.name) {
                Some(b) => b,
                None => {
                    if single_preferred == Some(id) && opts.fallback != Fallback::Allow {
                        return Err(DecodeError::PreferredUnsupported {
                            model: model.name.to_string(),
                        });
                    }
                    continue;
                }
            },
            None => &[],
        };
        if let (Some(v), Some(mv)) = (cpu.vendor, model.vendor) {
            if v != mv {
                continue;
            }
        }
        let allowed = match opts.kind {
            CpuKind::Host => model.decode_host,
            CpuKind::Guest => model.decode_guest,
        };
        if !allowed {
            continue;
        }
        let require = full.difference(&model.features);
        let mut disable = model.features.difference(&partial);
        for b in blockers {
            if !require.contains(*b) {
                disable.insert(*b);
            }
        }
        let removed_extra = match opts.kind {
            CpuKind::Host => 0,
            CpuKind::Guest => distinct(&model.removed)
                .filter(|f| !require.contains(*f) && !disable.contains(*f))
                .count(),
        };
        let cand = Candidate {
            model: id,
            require,
            disable,
            removed_extra,
        };
        if opts.kind == CpuKind::Host && cand.disabled_len() > 0 {
            continue;
        }
        let preferred = opts.preferred.contains(&id);
        if preferred && single_preferred.is_some() {
            best = Some(cand);
            break;
        }
        let better = match &best {
            None => true,
            Some(cur) => is_better(db, opts, sig, cur, &cand, preferred),
        };
        if better {
            best = Some(cand);
        }
    }
    let best = best.ok_or(DecodeError::NoModel)?;
    let model = db.model(best.model);
    let keep = |f: &FeatureId| !opts.migratable || db.feature(*f).migratable;
    let require: Vec<FeatureId> = best.require.iter().filter(keep).collect();
    let mut disable: Vec<FeatureId> = best.disable.iter().filter(keep).collect();
    if opts.kind == CpuKind::Guest {
        for f in distinct(&model.removed) {
            if !best.require.contains(f) && !best.disable.contains(f) && keep(&f) {
                disable.push(f);
            }
        }
    }
    Ok(Decoded {
        model: best.model,
        vendor: cpu.vendor,
        signature: sig,
        require,
        disable,
    })
}

fn distinct(ids: &[FeatureId]) -> impl Iterator<Item = FeatureId> + '_ {
    ids.iter()
        .enumerate()
        .filter(|(i, f)| !ids[..*i].contains(f))
        .map(|(_, f)| *f)
}

fn is_better(
    db: &Database,
    opts: &DecodeOptions<'_>,
    sig: u32,
    cur: &Candidate,
    cand: &Candidate,
    preferred: bool,
) -> bool {
    if sig != 0 {
        let cur_match = db.model(cur.model).matches_signature(sig);
        let cand_match = db.model(cand.model).matches_signature(sig);
        if cur_match && !cand_match {
            return false;
        }
        if !cur_match && cand_match {
            return true;
        }
    }
    let (cur_total, cur_disabled) = cur.score(opts.kind, opts.scoring);
    let (cand_total, cand_disabled) = cand.score(opts.kind, opts.scoring);
    cand_total < cur_total
        || (cand_total == cur_total && cand_disabled < cur_disabled)
        || (preferred && cand_disabled < cur_disabled)
}

/// TSX (`hle`, `rtm`) is unusable on these Intel processors whatever CPUID says.
fn drop_broken_tsx(
    db: &Database,
    cpu: &CpuFeatures,
    full: &mut FeatureSet,
    partial: &mut FeatureSet,
) {
    let Some(v) = cpu.vendor else { return };
    if db.vendor(v).name != "Intel" {
        return;
    }
    let s = Signature::from_eax(cpu.signature);
    let broken =
        s.family == 6 && ((s.model == 63 && s.stepping < 4) || matches!(s.model, 60 | 69 | 70));
    if broken {
        for name in ["hle", "rtm"] {
            if let Some(f) = db.find_feature_exact(name) {
                full.remove(f);
                partial.remove(f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(req: usize, dis: usize) -> Candidate {
        Candidate {
            model: ModelId(0),
            require: FeatureSet::from_indices(
                &(0..u16::try_from(req).unwrap()).collect::<Vec<_>>(),
            ),
            disable: FeatureSet::from_indices(
                &(100..100 + u16::try_from(dis).unwrap()).collect::<Vec<_>>(),
            ),
            removed_extra: 0,
        }
    }

    #[test]
    fn libvirt_scoring_stops_early_intended_scoring_does_not() {
        // 2 required + 3 disabled: libvirt's loop counts only two disabled
        // features before its shrinking bound stops it.
        assert_eq!(
            cand(2, 3).score(CpuKind::Guest, Scoring::Libvirt),
            (3 + 5, 5)
        );
        assert_eq!(
            cand(2, 3).score(CpuKind::Guest, Scoring::Intended),
            (2 + 2 + 3 + 4, 9)
        );
        assert_eq!(cand(0, 1).score(CpuKind::Guest, Scoring::Libvirt), (2, 2));
        assert_eq!(cand(5, 0).score(CpuKind::Guest, Scoring::Libvirt), (5, 0));
        assert_eq!(cand(4, 2).score(CpuKind::Host, Scoring::Libvirt), (6, 0));
    }
}
