//! Guest CPU policy: what operators configure, checked and turned into what
//! the guest gets.
//!
//! A policy is a mode (none, host-model, host-passthrough, custom, maximum),
//! an ordered model list for custom mode, extra flags, required features and
//! a vCPU count with topology constraints. [`build`] validates it the way
//! OpenStack Nova's libvirt driver does (and, given a host, checks that the
//! host can run it), then resolves host-model into the custom CPU libvirt
//! would start the guest with. The result renders as a libvirt `<cpu>`
//! element or as QEMU's `-cpu` argument.
//!
//! ```
//! use cpumodel_cpudef::Mode;
//! use cpumodel_policy::{build, parse_specs, CpuMode, PolicyInput};
//! use cpumodel_map::Database;
//!
//! let db = Database::embedded();
//! let input = PolicyInput {
//!     mode: CpuMode::Cpu(Mode::Custom),
//!     models: vec!["Westmere".into(), "Haswell".into()],
//!     flags: vec!["+avx".into(), "-aes".into()],
//!     required: vec![],
//!     vcpus: Some(4),
//!     specs: parse_specs(&["hw:cpu_max_sockets=2".into()], &[]).unwrap(),
//!     explicit: None,
//! };
//! let guest = build(&db, &input, None).unwrap();
//! assert_eq!(guest.qemu_arg(&db), "Westmere,aes=off,avx=on");
//! assert_eq!(guest.topology.unwrap().sockets(), 2);
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod document;
mod novaconf;
mod policy;
pub mod proxmox;
mod specs;
pub mod topology;

pub use cpumodel_cpudef::{Topology, TopologyError};

pub use document::GuestDocument;
pub use novaconf::{parse_nova_conf, NovaConf, NovaConfError};
pub use policy::{build, find_feature_any, CpuMode, GuestCpu, HostCpu, PolicyError, PolicyInput};
pub use specs::{parse_specs, ParsedSpecs, SpecError, CPU_TRAITS};
