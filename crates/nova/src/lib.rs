//! OpenStack Nova's libvirt driver, the CPU rules it applies to a compute
//! host: whether nova-compute starts with a `[libvirt]` CPU configuration
//! ([`startup_check`]), and which CPU traits it reports to Placement
//! ([`reported_traits`]).
//!
//! The rules are restated from Nova 34.0.0 (`nova/virt/libvirt/driver.py`:
//! `_check_cpu_compatibility`, `_get_cpu_model_mapping`, `_compare_cpu`,
//! `_get_cpu_feature_traits`; `nova/virt/libvirt/utils.py`:
//! `CPU_TRAITS_MAPPING`), with libvirt's answers (its model list, its CPU
//! comparison) computed by `cpumodel-cpudef` from the host CPU. Pure: it
//! reads only the values it is given.
//!
//! ```
//! use cpumodel_cpudef::parse_cpus;
//! use cpumodel_map::Database;
//! use cpumodel_nova::{reported_traits, startup_check};
//! use cpumodel_policy::parse_nova_conf;
//!
//! let db = Database::embedded();
//! let host = "<cpu><arch>x86_64</arch><model>Westmere</model><vendor>Intel</vendor><feature name='vmx'/></cpu>";
//! let host = parse_cpus(&db, "host.xml", host).unwrap().remove(0).cpu;
//! let conf = parse_nova_conf("nova.conf", "[libvirt]\ncpu_mode = custom\ncpu_models = Haswell\n").unwrap();
//! let check = startup_check(&db, &conf, &host).unwrap();
//! assert!(!check.starts);
//! assert!(check.message.unwrap().starts_with("Configured CPU model: Haswell and CPU Flags [] are not compatible"));
//! let conf = parse_nova_conf("nova.conf", "[libvirt]\ncpu_mode = host-model\n").unwrap();
//! assert!(reported_traits(&db, &conf, &host).unwrap().contains(&"HW_CPU_X86_INTEL_VMX"));
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod check;
mod traits;

use cpumodel_cpudef::{CpuDef, OpError};
use cpumodel_map::{Database, ModelId};

pub use check::{startup_check, Cause, StartupCheck};
pub use traits::{feature_traits, flag_name, reported_traits, CPU_TRAITS};

/// Why a Nova question cannot be answered for a host and configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NovaError {
    /// A `cpu_models` entry libvirt does not know: Nova's own message
    /// (`InvalidCPUInfo`), which Nova raises wherever it maps the names.
    #[error("InvalidCPUInfo: {}", unknown_model_message(.0))]
    UnknownModel(String),
    /// The host CPU cannot be resolved against the database.
    #[error("host CPU: {0}")]
    Host(#[from] OpError),
    /// The database lacks the model Nova uses for `cpu_mode = none`.
    #[error("the CPU map has no model '{0}', the default CPU Nova assumes for cpu_mode = none")]
    DefaultModelMissing(&'static str),
}

/// Nova's message for a `cpu_models` entry libvirt does not know.
pub fn unknown_model_message(model: &str) -> String {
    format!(
        "Configured CPU model: {model} is not correct, or your host CPU arch does not support \
         this model. Please correct your config and try again."
    )
}

/// Nova's `_get_cpu_model_mapping`: on an x86 (or POWER) host, the libvirt
/// model whose name equals `model` ignoring case (libvirt's names are
/// case-sensitive, Nova's configuration is not), or Nova's
/// `InvalidCPUInfo`; on other architectures, no mapping (`None`).
///
/// # Errors
/// [`NovaError::UnknownModel`].
pub fn map_model(db: &Database, host: &CpuDef, model: &str) -> Result<Option<ModelId>, NovaError> {
    let mapped = matches!(
        host.arch.as_deref(),
        None | Some("i686" | "x86_64" | "ppc64" | "ppc64le" | "ppc")
    );
    if !mapped {
        return Ok(None);
    }
    let lower = model.to_lowercase();
    // Nova fills a dict from libvirt's list, so the last name of a case-
    // insensitive pair wins.
    db.models()
        .iter()
        .rposition(|m| m.name.to_lowercase() == lower)
        .map(|i| Some(ModelId::from_index(i)))
        .ok_or_else(|| NovaError::UnknownModel(model.to_string()))
}
