//! The CPU labels KubeVirt's node-labeller puts on a node.
//!
//! KubeVirt schedules a VM with CPU model `Skylake-Client-IBRS` only on
//! nodes labelled `cpu-model.node.kubevirt.io/Skylake-Client-IBRS=true`,
//! and its node-labeller (in virt-handler) writes those labels from two
//! documents libvirt gives on the node: `virsh domcapabilities` (the
//! host-model CPU and which named models are usable) and the output of
//! `virsh hypervisor-cpu-baseline --features` on it (the supported
//! features). This crate reads the same facts ([`NodeCpuFacts`]) from
//! those documents, or takes them from a domain capabilities computation,
//! and turns them into the labels with the node-labeller's rules
//! ([`node_labels`]), so an operator can see which nodes a VM's CPU will
//! land on before any node runs KubeVirt.
//!
//! ```
//! use cpumodel_kubevirt::{node_labels, read_domain_capabilities, LabelOptions};
//! let facts = read_domain_capabilities("d.xml", "<domainCapabilities><cpu>\
//!     <mode name='host-model' supported='yes'><model fallback='forbid'>Haswell</model>\
//!     <vendor>Intel</vendor><feature policy='require' name='vmx'/></mode>\
//!     <mode name='custom' supported='yes'><model usable='yes'>Haswell</model>\
//!     <model usable='yes'>Conroe</model></mode></cpu></domainCapabilities>").unwrap();
//! let labels = node_labels(&facts, &LabelOptions::default());
//! assert_eq!(labels.get("cpu-model.node.kubevirt.io/Haswell").map(String::as_str), Some("true"));
//! // Conroe is on KubeVirt's default list of obsolete models.
//! assert!(!labels.contains_key("cpu-model.node.kubevirt.io/Conroe"));
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod facts;
mod labels;

pub use facts::{
    facts_from_caps, read_domain_capabilities, read_supported_features, HostModelFacts,
    KubevirtError, NodeCpuFacts, SevFacts,
};
pub use labels::{node_labels, LabelOptions, DEFAULT_OBSOLETE_CPU_MODELS};
