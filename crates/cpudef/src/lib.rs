//! CPU definitions and the operations on them.
//!
//! This crate turns raw CPU data into named models ([`decode()`]) and holds
//! libvirt's `<cpu>` definition ([`CpuDef`]). It is pure: it reads nothing
//! but the values it is given, so every answer can be reproduced from
//! recorded dumps.
//!
//! ```
//! use cpumodel_cpudef::{decode, CpuFeatures, CpuKind, DecodeOptions};
//! use cpumodel_map::Database;
//!
//! let db = Database::embedded();
//! // A CPU with exactly the features of Westmere decodes as Westmere.
//! let westmere = db.model(db.find_model("Westmere").unwrap());
//! let cpu = CpuFeatures::from_set(westmere.vendor, westmere.features);
//! let decoded = decode(&db, &cpu, &DecodeOptions::new(CpuKind::Guest)).unwrap();
//! assert_eq!(db.model(decoded.model).name, "Westmere");
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cpuinfo;
pub mod decode;
mod def;
mod document;
mod domcaps;
mod error;
mod firecracker;
mod input;
mod level;
mod linux;
mod mapdiff;
pub mod ops;
mod parse;
pub mod topology;

pub use cpuinfo::{looks_like_cpu_info, parse_cpu_info, CpuInfoError, NovaCpuInfo, NovaTopology};
pub use decode::{decode, CpuFeatures, DecodeOptions, Decoded, HypervisorModels, Scoring};
pub use def::{Check, CpuDef, CpuKind, Fallback, FeatureRef, Match, Mode, Policy, SignatureDef};
pub use document::{
    CompareDocument, CustomModelDocument, DomainCapsBody, DomainCapsDocument, DomainCpuModes,
    HostDocument, ModeDocument,
};
pub use domcaps::{domain_cpu_caps, domain_cpu_caps_of, CustomModel, DomainCpuCaps};
pub use error::DecodeError;
pub use firecracker::{FirecrackerDocument, FirecrackerError};
pub use input::{
    detect_partial, host_features_from_cpudata, parse_host, read_host_data, HostData, HostInput,
    InputError, PartialKind, PartialSource,
};
pub use level::{cpu_psabi, CpuDocument};
pub use linux::{
    detect_linux_text, parse_lscpu, parse_lscpu_json, parse_proc_cpuinfo, LinuxInputError,
    LinuxText, ShownData,
};
pub use mapdiff::{
    convert, map_changes, translate_features, ConvertError, Converted, DecodeShift, MapChanges,
};
pub use ops::{
    baseline, check_x86, compare, compare_identity, compare_resolved, expand, BaselineAccumulator,
    BaselineError, BaselineOptions, CompareResult, Comparison, OpError, ResolvedCpu,
};
pub use parse::{
    add_cpus_to_baseline, parse_cpu_node, parse_cpus, parse_known_cpus, AddCpusError, SourcedCpu,
};
pub use topology::{CpuPosition, Topology, TopologyError};
