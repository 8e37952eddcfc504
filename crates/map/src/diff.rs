//! What changed between two CPU maps: `cpumodel map diff OLD NEW`.
//!
//! An upgrade of libvirt changes what `host-model` means and which guest
//! CPUs the new release accepts. Before upgrading, an operator wants the
//! changes as facts: models and features added and removed, features that
//! only changed their name (the same CPUID or MSR bits under a new name),
//! and what each model gained or lost (which models' decode results change
//! because of it is `cpumodel_cpudef`'s part, as it takes a decode). The
//! diff is computed from the two databases alone, so it works for any pair
//! of embedded releases or cpu_map directories.
//!
//! Features are matched by name first, and a feature only in OLD whose bits
//! are exactly those of a feature only in NEW is a rename. Model features
//! are compared through that matching, so a rename alone is no change of a
//! model.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::db::{Database, ModelId};
use crate::document::{DecodeUse, ModelInfo, SignatureInfo};
use crate::featureset::FeatureId;

/// Every difference between two maps, names as each map spells them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MapDiff {
    /// Models of NEW that OLD lacks, in NEW's order.
    pub models_added: Vec<String>,
    /// Models of OLD that NEW lacks, in OLD's order.
    pub models_removed: Vec<String>,
    /// Features of NEW that OLD lacks (renames excluded), in NEW's order.
    pub features_added: Vec<String>,
    /// Features of OLD that NEW lacks (renames excluded), in OLD's order.
    pub features_removed: Vec<String>,
    /// Features whose bits are the same under another name.
    pub features_renamed: Vec<Rename>,
    /// Features whose name stayed but whose bits changed.
    pub features_redefined: Vec<String>,
    /// Models of both maps whose definition changed, in NEW's order.
    pub models_changed: Vec<ModelChange>,
}

/// A feature known under another name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rename {
    /// The name in OLD.
    pub old: String,
    /// The name in NEW.
    pub new: String,
}

/// How one model's definition changed (only the parts that did).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ModelChange {
    /// The model.
    pub name: String,
    /// Features the model has in NEW but not in OLD.
    pub features_added: Vec<String>,
    /// Features the model had in OLD but not in NEW.
    pub features_removed: Vec<String>,
    /// Changes of the `added='yes'` list: `+name` or `-name`.
    pub added_list: Vec<String>,
    /// Changes of the `removed` list: `+name` or `-name`.
    pub removed_list: Vec<String>,
    /// The signatures, when they changed: `[old, new]`.
    pub signatures: Option<[Vec<SignatureInfo>; 2]>,
    /// Where decode may choose the model, when it changed: `[old, new]`.
    pub decode: Option<[DecodeUse; 2]>,
    /// The vendor, when it changed: `[old, new]`.
    pub vendor: Option<[Option<String>; 2]>,
    /// The ancestor, when it changed: `[old, new]`.
    pub ancestor: Option<[Option<String>; 2]>,
}

impl MapDiff {
    /// The differences from `old` to `new`.
    pub fn new(old: &Database, new: &Database) -> MapDiff {
        let matching = FeatureMatching::new(old, new);
        let models_added: Vec<String> = new
            .models()
            .iter()
            .filter(|m| old.find_model_exact(&m.name).is_none())
            .map(|m| m.name.to_string())
            .collect();
        let models_removed: Vec<String> = old
            .models()
            .iter()
            .filter(|m| new.find_model_exact(&m.name).is_none())
            .map(|m| m.name.to_string())
            .collect();
        let mut models_changed = Vec::new();
        for (i, m) in new.models().iter().enumerate() {
            let Some(old_id) = old.find_model_exact(&m.name) else {
                continue;
            };
            let change = model_change(old, new, &matching, old_id, ModelId::from_index(i));
            if change
                != (ModelChange {
                    name: change.name.clone(),
                    ..ModelChange::default()
                })
            {
                models_changed.push(change);
            }
        }
        MapDiff {
            models_added,
            models_removed,
            features_added: matching.added,
            features_removed: matching.removed,
            features_renamed: matching.renamed,
            features_redefined: matching.redefined,
            models_changed,
        }
    }
}

/// Which feature of NEW each feature of OLD is.
struct FeatureMatching {
    /// OLD's feature index → NEW's feature, when NEW has it.
    to_new: Vec<Option<FeatureId>>,
    added: Vec<String>,
    removed: Vec<String>,
    renamed: Vec<Rename>,
    redefined: Vec<String>,
}

impl FeatureMatching {
    fn new(old: &Database, new: &Database) -> Self {
        let mut to_new: Vec<Option<FeatureId>> = old
            .features()
            .iter()
            .map(|f| new.find_feature_exact(&f.name))
            .collect();
        let mut taken: BTreeSet<usize> = to_new.iter().flatten().map(|f| f.index()).collect();
        let mut renamed = Vec::new();
        for (i, f) in old.features().iter().enumerate() {
            if to_new[i].is_some() {
                continue;
            }
            let twin = new
                .features()
                .iter()
                .enumerate()
                .find(|(j, g)| !taken.contains(j) && g.data == f.data);
            if let Some((j, g)) = twin {
                taken.insert(j);
                to_new[i] = Some(FeatureId::from_index(j));
                renamed.push(Rename {
                    old: f.name.to_string(),
                    new: g.name.to_string(),
                });
            }
        }
        let removed = old
            .features()
            .iter()
            .zip(&to_new)
            .filter(|(_, n)| n.is_none())
            .map(|(f, _)| f.name.to_string())
            .collect();
        let added = new
            .features()
            .iter()
            .enumerate()
            .filter(|(j, _)| !taken.contains(j))
            .map(|(_, f)| f.name.to_string())
            .collect();
        let redefined = old
            .features()
            .iter()
            .zip(&to_new)
            .filter_map(|(f, n)| {
                let g = new.feature((*n)?);
                (g.name == f.name && g.data != f.data).then(|| f.name.to_string())
            })
            .collect();
        FeatureMatching {
            to_new,
            added,
            removed,
            renamed,
            redefined,
        }
    }

    /// NEW's name for OLD's feature (OLD's own name when NEW lacks it).
    fn new_name<'a>(&self, old: &'a Database, new: &'a Database, id: FeatureId) -> &'a str {
        match self.to_new[id.index()] {
            Some(n) => new.feature_name(n),
            None => old.feature_name(id),
        }
    }
}

/// `+name` for what `new` adds to `old`, `-name` for what it drops.
fn list_changes(old: &BTreeSet<&str>, new: &BTreeSet<&str>) -> Vec<String> {
    let mut out: Vec<String> = new.difference(old).map(|n| format!("+{n}")).collect();
    out.extend(old.difference(new).map(|n| format!("-{n}")));
    out
}

fn model_change(
    old: &Database,
    new: &Database,
    matching: &FeatureMatching,
    old_id: ModelId,
    new_id: ModelId,
) -> ModelChange {
    let (o, n) = (old.model(old_id), new.model(new_id));
    let translate = |ids: &mut dyn Iterator<Item = FeatureId>| -> BTreeSet<&str> {
        ids.map(|f| matching.new_name(old, new, f)).collect()
    };
    let names = |ids: &mut dyn Iterator<Item = FeatureId>| -> BTreeSet<&str> {
        ids.map(|f| new.feature_name(f)).collect()
    };
    let (of, nf) = (
        translate(&mut o.features.iter()),
        names(&mut n.features.iter()),
    );
    let (oi, ni) = (ModelInfo::new(old, old_id), ModelInfo::new(new, new_id));
    let when = |changed: bool| changed.then_some(());
    ModelChange {
        name: n.name.to_string(),
        features_added: nf.difference(&of).map(|s| (*s).to_string()).collect(),
        features_removed: of.difference(&nf).map(|s| (*s).to_string()).collect(),
        added_list: list_changes(
            &translate(&mut o.added.iter().copied()),
            &names(&mut n.added.iter().copied()),
        ),
        removed_list: list_changes(
            &translate(&mut o.removed.iter().copied()),
            &names(&mut n.removed.iter().copied()),
        ),
        signatures: when(oi.signatures != ni.signatures).map(|()| [oi.signatures, ni.signatures]),
        decode: when(oi.decode != ni.decode).map(|()| [oi.decode, ni.decode]),
        vendor: when(oi.vendor != ni.vendor).map(|()| [oi.vendor, ni.vendor]),
        ancestor: when(oi.ancestor != ni.ancestor).map(|()| [oi.ancestor, ni.ancestor]),
    }
}
