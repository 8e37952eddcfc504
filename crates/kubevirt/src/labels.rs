//! The node-labeller's rules: which labels the facts give.
//!
//! From KubeVirt's `pkg/virt-handler/node-labeller` (x86-64):
//!
//! - `cpu-feature.node.kubevirt.io/F` for each supported feature;
//! - `cpu-model.node.kubevirt.io/M` for each usable model, and
//!   `cpu-model-migration.node.kubevirt.io/M` for each model with a
//!   `usable` verdict, usable or not (a host-model VM started elsewhere
//!   may migrate here when its model is known); models on the obsolete
//!   list get neither;
//! - `host-model-cpu.node.kubevirt.io/M` for the host-model CPU's model,
//!   `host-model-required-features.node.kubevirt.io/F` for each feature it
//!   requires, `cpu-vendor.node.kubevirt.io/V` for its vendor, and
//!   `node-labeller.kubevirt.io/obsolete-host-model` when the model is
//!   obsolete;
//! - `kubevirt.io/sev`, `kubevirt.io/sev-es`, `kubevirt.io/sev-snp` and
//!   `kubevirt.io/tdx` for the secure-virtualization capabilities.
//!
//! Every value is `true`. KubeVirt's `minCPUModel` setting is deprecated
//! and no longer read by the node-labeller, so it has no option here.

use std::collections::{BTreeMap, BTreeSet};

use crate::facts::NodeCpuFacts;

/// KubeVirt's default `obsoleteCPUModels`: models too old to offer, with
/// and without their version suffix.
pub const DEFAULT_OBSOLETE_CPU_MODELS: &[&str] = &[
    "486",
    "486-v1",
    "pentium",
    "pentium-v1",
    "pentium2",
    "pentium2-v1",
    "pentium3",
    "pentium3-v1",
    "pentiumpro",
    "pentiumpro-v1",
    "coreduo",
    "coreduo-v1",
    "n270",
    "n270-v1",
    "core2duo",
    "core2duo-v1",
    "Conroe",
    "Conroe-v1",
    "athlon",
    "athlon-v1",
    "phenom",
    "phenom-v1",
    "qemu64",
    "qemu64-v1",
    "qemu32",
    "qemu32-v1",
    "kvm64",
    "kvm64-v1",
    "kvm32",
    "kvm32-v1",
    "Opteron_G1",
    "Opteron_G1-v1",
    "Opteron_G2",
    "Opteron_G2-v1",
];

/// The node-labeller's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelOptions {
    /// The models never labelled (KubeVirt's `obsoleteCPUModels`, which
    /// replaces the default list when set). Names match exactly.
    pub obsolete: BTreeSet<String>,
}

impl Default for LabelOptions {
    /// KubeVirt's defaults.
    fn default() -> Self {
        LabelOptions {
            obsolete: DEFAULT_OBSOLETE_CPU_MODELS
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

/// The label prefixes and names the node-labeller writes.
const FEATURE: &str = "cpu-feature.node.kubevirt.io/";
const MODEL: &str = "cpu-model.node.kubevirt.io/";
const MIGRATION: &str = "cpu-model-migration.node.kubevirt.io/";
const HOST_MODEL: &str = "host-model-cpu.node.kubevirt.io/";
const REQUIRED: &str = "host-model-required-features.node.kubevirt.io/";
const VENDOR: &str = "cpu-vendor.node.kubevirt.io/";
const OBSOLETE_HOST_MODEL: &str = "node-labeller.kubevirt.io/obsolete-host-model";

/// The labels of a node with `facts`, sorted by key; every value is
/// `true`.
///
/// A label whose name would be empty (a host-model CPU without a vendor)
/// is left out: Kubernetes refuses such a key.
pub fn node_labels(facts: &NodeCpuFacts, opts: &LabelOptions) -> BTreeMap<String, String> {
    let mut keys: BTreeSet<String> = BTreeSet::new();
    let mut add = |prefix: &str, name: &str| {
        if !name.is_empty() {
            keys.insert(format!("{prefix}{name}"));
        }
    };
    let obsolete_host_model = facts
        .host_model
        .as_ref()
        .is_some_and(|hm| opts.obsolete.contains(&hm.name));
    for f in &facts.supported_features {
        add(FEATURE, f);
    }
    for (model, usable) in &facts.models {
        if opts.obsolete.contains(model) {
            continue;
        }
        if *usable {
            add(MODEL, model);
        }
        add(MIGRATION, model);
    }
    if let Some(hm) = &facts.host_model {
        for f in &hm.required {
            add(REQUIRED, f);
        }
        add(VENDOR, hm.vendor.as_deref().unwrap_or(""));
        add(HOST_MODEL, &hm.name);
    }
    let s = facts.security;
    for (on, key) in [
        (obsolete_host_model, OBSOLETE_HOST_MODEL),
        (s.sev, "kubevirt.io/sev"),
        (s.sev_es, "kubevirt.io/sev-es"),
        (s.sev_snp, "kubevirt.io/sev-snp"),
        (s.tdx, "kubevirt.io/tdx"),
    ] {
        if on {
            keys.insert(key.to_string());
        }
    }
    keys.into_iter().map(|k| (k, "true".to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostModelFacts;

    #[test]
    fn an_obsolete_host_model_is_marked_and_still_named() {
        let facts = NodeCpuFacts {
            host_model: Some(HostModelFacts {
                name: "Opteron_G2".into(),
                vendor: None,
                required: vec!["svm".into()],
            }),
            models: vec![("Opteron_G2".into(), true)],
            ..NodeCpuFacts::default()
        };
        let labels = node_labels(&facts, &LabelOptions::default());
        let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "host-model-cpu.node.kubevirt.io/Opteron_G2",
                "host-model-required-features.node.kubevirt.io/svm",
                "node-labeller.kubevirt.io/obsolete-host-model"
            ]
        );
        let none = LabelOptions {
            obsolete: BTreeSet::new(),
        };
        assert!(node_labels(&facts, &none).contains_key("cpu-model.node.kubevirt.io/Opteron_G2"));
    }
}
