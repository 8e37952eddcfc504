//! The CPU part of libvirt's domain capabilities, from what a hypervisor
//! can give a guest.
//!
//! libvirt's `virsh domcapabilities` tells management software which CPU
//! modes a guest may use: `host-passthrough` and `maximum` (always, with
//! KVM), the `host-model` CPU (the host as a named model plus features),
//! and every named model with a verdict: `usable='yes'` when the hypervisor
//! provides all of its features, otherwise `usable='no'` followed by the
//! features that block it. libvirt gets these answers from QEMU; here they
//! are computed from the hypervisor's raw CPU data (for KVM, what
//! `KVM_GET_SUPPORTED_CPUID` and the feature MSRs report) and the model map.

use std::fmt::Write as _;

use cpumodel_cpudata::CpuData;
use cpumodel_map::{Database, FeatureId};
use cpumodel_xml::escape;

use crate::decode::{decode, CpuFeatures, DecodeOptions, HypervisorModels};

use crate::def::{CpuDef, CpuKind};
use crate::error::DecodeError;

/// One named model of the `custom` mode.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CustomModel {
    /// The model name.
    pub name: String,
    /// The model's vendor (`Intel`, `AMD`, ...), when it has one.
    pub vendor: Option<String>,
    /// The hypervisor provides every feature of the model.
    pub usable: bool,
    /// The model's features the hypervisor cannot provide, sorted by name
    /// (empty when usable).
    pub blockers: Vec<String>,
}

/// The CPU part of domain capabilities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainCpuCaps {
    /// The host-model CPU: the hypervisor's CPU decoded as a guest, with
    /// `fallback='forbid'` and only migratable features.
    pub host_model: CpuDef,
    /// Every model of the map, in map order.
    pub custom: Vec<CustomModel>,
}

/// Computes the CPU part of domain capabilities from the CPU data a
/// hypervisor offers.
///
/// A model is usable when every one of its features is fully present in
/// `data`; its blockers are the rest. The host-model is `data` decoded as a
/// guest CPU among those models (a model's blockers count as disabled
/// features, as libvirt counts QEMU's), with the features that block
/// migration left out.
///
/// # Errors
/// [`DecodeError::UnknownVendor`] when `data` names a vendor the map does
/// not know, [`DecodeError::NoModel`] when no model fits.
pub fn domain_cpu_caps(db: &Database, data: &CpuData) -> Result<DomainCpuCaps, DecodeError> {
    domain_cpu_caps_of(db, &CpuFeatures::from_data(db, data)?)
}

/// [`domain_cpu_caps`] of a CPU known by its features (a host `<cpu>`
/// resolved against the map, say) rather than its raw data.
///
/// # Errors
/// [`DecodeError::NoModel`] when no model fits.
pub fn domain_cpu_caps_of(
    db: &Database,
    features: &CpuFeatures,
) -> Result<DomainCpuCaps, DecodeError> {
    let mut hypervisor = HypervisorModels::default();
    let mut custom = Vec::with_capacity(db.models().len());
    for model in db.models() {
        let missing: Vec<FeatureId> = model.features.difference(&features.full).iter().collect();
        let mut blockers: Vec<String> = missing
            .iter()
            .map(|f| db.feature_name(*f).to_string())
            .collect();
        blockers.sort();
        custom.push(CustomModel {
            name: model.name.to_string(),
            vendor: model.vendor.map(|v| db.vendor(v).name.to_string()),
            usable: missing.is_empty(),
            blockers,
        });
        hypervisor.models.push((model.name.to_string(), missing));
    }
    let mut opts = DecodeOptions::new(CpuKind::Guest);
    opts.hypervisor = Some(&hypervisor);
    opts.migratable = true;
    let host_model = decode(db, features, &opts)?.to_cpu_def(db, CpuKind::Guest);
    Ok(DomainCpuCaps { host_model, custom })
}

impl DomainCpuCaps {
    /// The document in libvirt's format: `<domainCapabilities>` holding
    /// `<domain>kvm</domain>`, `<arch>x86_64</arch>` and the `<cpu>` element
    /// with its four modes.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<domainCapabilities>\n  <domain>kvm</domain>\n");
        out.push_str("  <arch>x86_64</arch>\n  <cpu>\n");
        for (mode, name) in [
            ("host-passthrough", "hostPassthroughMigratable"),
            ("maximum", "maximumMigratable"),
        ] {
            let _ = write!(
                out,
                "    <mode name='{mode}' supported='yes'>\n      <enum name='{name}'>\n        \
                 <value>on</value>\n        <value>off</value>\n      </enum>\n    </mode>\n"
            );
        }
        out.push_str("    <mode name='host-model' supported='yes'>\n");
        for line in self.host_model.xml_body().lines() {
            let _ = writeln!(out, "    {line}");
        }
        out.push_str("    </mode>\n");
        if self.custom.is_empty() {
            out.push_str("    <mode name='custom' supported='no'/>\n");
        } else {
            out.push_str("    <mode name='custom' supported='yes'>\n");
            for m in &self.custom {
                let name = escape(&m.name);
                let _ = writeln!(
                    out,
                    "      <model usable='{}' vendor='{}'>{name}</model>",
                    if m.usable { "yes" } else { "no" },
                    escape(m.vendor.as_deref().unwrap_or("unknown")),
                );
                if !m.usable {
                    let _ = writeln!(out, "      <blockers model='{name}'>");
                    for b in &m.blockers {
                        let _ = writeln!(out, "        <feature name='{}'/>", escape(b));
                    }
                    out.push_str("      </blockers>\n");
                }
            }
            out.push_str("    </mode>\n");
        }
        out.push_str("  </cpu>\n</domainCapabilities>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data of a CPU with exactly a model's features.
    fn model_data(db: &Database, name: &str) -> CpuData {
        let m = db.model(db.find_model(name).unwrap());
        let mut data = db.features_to_data(&m.features);
        data.add(db.vendor(m.vendor.unwrap()).cpuid_item());
        data
    }

    #[test]
    fn usable_models_are_subsets_and_blockers_are_the_rest() {
        let db = Database::embedded();
        let caps = domain_cpu_caps(&db, &model_data(&db, "Westmere")).unwrap();
        let find = |n: &str| caps.custom.iter().find(|m| m.name == n).unwrap();
        let westmere = find("Westmere");
        assert!(westmere.usable);
        assert!(westmere.blockers.is_empty());
        assert_eq!(westmere.vendor.as_deref(), Some("Intel"));
        assert!(find("Nehalem").usable);
        let sandy = find("SandyBridge");
        assert!(!sandy.usable);
        assert!(sandy.blockers.contains(&"avx".to_string()));
        let mut sorted = sandy.blockers.clone();
        sorted.sort();
        assert_eq!(sandy.blockers, sorted);
        assert_eq!(caps.custom.len(), db.models().len());
        assert_eq!(caps.host_model.model.as_deref(), Some("Westmere"));
        assert_eq!(caps.host_model.fallback, Some(crate::Fallback::Forbid));
    }

    #[test]
    fn host_model_leaves_out_features_that_block_migration() {
        let db = Database::embedded();
        let mut data = model_data(&db, "Westmere");
        let invtsc = db.find_feature_exact("invtsc").unwrap();
        assert!(!db.feature(invtsc).migratable);
        data.add_all(&db.feature(invtsc).data);
        let caps = domain_cpu_caps(&db, &data).unwrap();
        assert!(caps.host_model.feature("invtsc").is_none());
    }

    #[test]
    fn xml_has_libvirts_layout() {
        let db = Database::embedded();
        let xml = domain_cpu_caps(&db, &model_data(&db, "Westmere"))
            .unwrap()
            .to_xml();
        let head =
            "<domainCapabilities>\n  <domain>kvm</domain>\n  <arch>x86_64</arch>\n  <cpu>\n    \
             <mode name='host-passthrough' supported='yes'>\n      \
             <enum name='hostPassthroughMigratable'>\n        <value>on</value>\n        \
             <value>off</value>\n      </enum>\n    </mode>\n    \
             <mode name='maximum' supported='yes'>\n      <enum name='maximumMigratable'>\n        \
             <value>on</value>\n        <value>off</value>\n      </enum>\n    </mode>\n    \
             <mode name='host-model' supported='yes'>\n      \
             <model fallback='forbid'>Westmere</model>\n      <vendor>Intel</vendor>\n    \
             </mode>\n    <mode name='custom' supported='yes'>\n      \
             <model usable='no' vendor='unknown'>486</model>\n      \
             <blockers model='486'>\n        <feature name='vme'/>\n      </blockers>\n";
        assert!(xml.starts_with(head), "{xml}");
        assert!(xml.contains("      <model usable='yes' vendor='Intel'>Nehalem</model>\n"));
        assert!(xml.contains(
            "      <model usable='no' vendor='Intel'>SandyBridge</model>\n      \
             <blockers model='SandyBridge'>\n        <feature name='avx'/>\n"
        ));
        assert!(xml.ends_with("    </mode>\n  </cpu>\n</domainCapabilities>\n"));
        roxmltree::Document::parse(&xml).unwrap();
    }
}
