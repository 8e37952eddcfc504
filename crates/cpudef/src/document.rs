//! The JSON documents of domain capabilities, comparisons and host views.
//!
//! Each answer the command line prints as JSON has its shape defined here,
//! next to the concept it describes, as a plain [`serde::Serialize`] type:
//! the shape is part of the library's answer, and a program using the
//! library gets exactly the document `cpumodel` prints. Field names are the
//! document's keys; fields are declared in the order the keys are printed
//! (by name, as serde_json's default map sorts them).

use std::collections::BTreeMap;

use cpumodel_map::Database;
use serde::Serialize;

use crate::def::CpuDef;
use crate::domcaps::DomainCpuCaps;
use crate::level::CpuDocument;
use crate::ops::{CompareResult, Comparison};

/// The CPU part of domain capabilities as JSON: libvirt's
/// `<domainCapabilities>` element with the same modes and values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DomainCapsDocument {
    /// The `<domainCapabilities>` element.
    #[serde(rename = "domainCapabilities")]
    pub domain_capabilities: DomainCapsBody,
}

/// The body of [`DomainCapsDocument`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DomainCapsBody {
    /// Always `x86_64`.
    pub arch: &'static str,
    /// The CPU modes.
    pub cpu: DomainCpuModes,
    /// Always `kvm`.
    pub domain: &'static str,
}

/// The `<cpu>` element of domain capabilities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DomainCpuModes {
    /// host-passthrough, maximum, host-model and custom, in that order.
    pub modes: Vec<ModeDocument>,
}

/// One CPU mode of domain capabilities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ModeDocument {
    /// A mode with an on/off migratable switch (host-passthrough, maximum).
    Switch {
        /// The switch: its name and its values, `on` and `off`.
        enums: BTreeMap<&'static str, [&'static str; 2]>,
        /// The mode's name.
        name: &'static str,
        /// Always `yes`.
        supported: &'static str,
    },
    /// The host-model mode and its CPU.
    HostModel {
        /// The host-model CPU.
        cpu: CpuDef,
        /// `host-model`.
        name: &'static str,
        /// Always `yes`.
        supported: &'static str,
    },
    /// The custom mode and its models.
    Custom {
        /// Every model with its verdict.
        models: Vec<CustomModelDocument>,
        /// `custom`.
        name: &'static str,
        /// `yes` when there is any model.
        supported: &'static str,
    },
}

/// One model of the custom mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CustomModelDocument {
    /// The features that block the model, sorted by name.
    pub blockers: Vec<String>,
    /// The model name.
    pub name: String,
    /// `yes` or `no`.
    pub usable: &'static str,
    /// The vendor, or `unknown` as libvirt writes it.
    pub vendor: String,
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl DomainCapsDocument {
    /// The document of `caps`.
    pub fn new(caps: &DomainCpuCaps) -> Self {
        let switch = |name: &'static str, switch: &'static str| ModeDocument::Switch {
            enums: BTreeMap::from([(switch, ["on", "off"])]),
            name,
            supported: "yes",
        };
        let models: Vec<CustomModelDocument> = caps
            .custom
            .iter()
            .map(|m| CustomModelDocument {
                blockers: m.blockers.clone(),
                name: m.name.clone(),
                usable: yes_no(m.usable),
                vendor: m.vendor.clone().unwrap_or_else(|| "unknown".into()),
            })
            .collect();
        DomainCapsDocument {
            domain_capabilities: DomainCapsBody {
                arch: "x86_64",
                cpu: DomainCpuModes {
                    modes: vec![
                        switch("host-passthrough", "hostPassthroughMigratable"),
                        switch("maximum", "maximumMigratable"),
                        ModeDocument::HostModel {
                            cpu: caps.host_model.clone(),
                            name: "host-model",
                            supported: "yes",
                        },
                        ModeDocument::Custom {
                            supported: yes_no(!models.is_empty()),
                            models,
                            name: "custom",
                        },
                    ],
                },
                domain: "kvm",
            },
        }
    }
}

/// A comparison as JSON: the verdict, why, and the blocking features.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CompareDocument {
    /// The features that make the guest incompatible, by name in map order.
    pub blockers: Vec<String>,
    /// Why an incompatible guest cannot run (`null` otherwise).
    pub reason: Option<String>,
    /// `identical`, `superset` or `incompatible`.
    pub result: Comparison,
}

impl CompareDocument {
    /// The document of `r`, feature names from `db`.
    pub fn new(db: &Database, r: &CompareResult) -> Self {
        CompareDocument {
            blockers: r
                .blockers
                .iter()
                .map(|f| db.feature_name(*f).to_string())
                .collect(),
            reason: r.reason.clone(),
            result: r.result,
        }
    }
}

/// This machine's CPU as JSON: the host CPU, the host-model guest CPU, and
/// which view of the machine they were decoded from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostDocument {
    /// The host CPU, with its x86-64 level.
    pub host: CpuDocument,
    /// The host-model guest CPU, with its x86-64 level.
    pub host_model: CpuDocument,
    /// The KVM device of the hypervisor view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kvm_device: Option<String>,
    /// Why the raw view was shown although KVM was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kvm_unusable: Option<String>,
    /// `hypervisor (KVM)` or `raw CPUID`.
    pub view: &'static str,
}

impl HostDocument {
    /// The hypervisor view: what the KVM device `device` can give a guest.
    pub fn hypervisor(device: String, host: CpuDocument, host_model: CpuDocument) -> Self {
        HostDocument {
            host,
            host_model,
            kvm_device: Some(device),
            kvm_unusable: None,
            view: "hypervisor (KVM)",
        }
    }

    /// The raw CPUID view, with the reason KVM was not used when it was
    /// tried.
    pub fn raw(kvm_unusable: Option<String>, host: CpuDocument, host_model: CpuDocument) -> Self {
        HostDocument {
            host,
            host_model,
            kvm_device: None,
            kvm_unusable,
            view: "raw CPUID",
        }
    }
}
