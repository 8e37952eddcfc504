//! The CPU traits Nova's libvirt driver reports to Placement.
//!
//! Nova turns libvirt feature names into os-traits names with one table
//! (`CPU_TRAITS_MAPPING` in `nova/virt/libvirt/utils.py`), restated here as
//! [`CPU_TRAITS`]. Which features it feeds the table depends on the CPU
//! mode (`LibvirtDriver._get_cpu_feature_traits`):
//!
//! - host-model and host-passthrough (and no `cpu_mode` with kvm or qemu,
//!   which means host-model): every feature of the host CPU (the
//!   capabilities' host CPU expanded by libvirt's baseline), plus the name
//!   of every `cpu_model_extra_flags` entry, **disabled ones included**
//!   (Nova takes the names and ignores the policy);
//! - custom: every feature of every `cpu_models` entry (libvirt's
//!   expanding baseline of the model alone), plus the flag names as above;
//!   the host does not matter;
//! - `cpu_mode = none` with kvm or qemu: the features of `qemu64` (`qemu32`
//!   on i686), without the flags;
//! - any other virt type without a CPU mode: no CPU traits.
//!
//! Only exact libvirt names match: libvirt calls SSE3 `pni`, so a host's
//! SSE3 never becomes `HW_CPU_X86_SSE3` (only a flag spelt `sse3` does).

use std::collections::BTreeSet;

use cpumodel_cpudef::{CpuDef, Mode, ResolvedCpu};
use cpumodel_map::Database;
use cpumodel_policy::{CpuMode, NovaConf};

use crate::{map_model, NovaError};

pub use cpumodel_policy::CPU_TRAITS;

/// The traits of a set of libvirt feature names (exact, case-sensitive
/// names, as Nova looks them up), sorted and without repeats.
pub fn feature_traits<'a>(features: impl IntoIterator<Item = &'a str>) -> Vec<&'static str> {
    let mut out = BTreeSet::new();
    for name in features {
        if let Some((_, traits)) = CPU_TRAITS.iter().find(|(f, _)| *f == name) {
            out.extend(traits.iter().copied());
        }
    }
    out.into_iter().collect()
}

/// The name Nova gives an extra flag when it builds the guest CPU: the
/// flag lowercased, without its leading `-` signs (a disabled flag) or `+`
/// signs (a required one). Also whether it is disabled.
pub fn flag_name(flag: &str) -> (String, bool) {
    let lower = flag.to_lowercase();
    match lower.strip_prefix('-') {
        Some(_) => (lower.trim_start_matches('-').to_string(), true),
        None => (lower.trim_start_matches('+').to_string(), false),
    }
}

/// The `HW_CPU_X86_*` traits Nova's libvirt driver reports for `host` with
/// the `[libvirt]` settings of `conf`, sorted (see the module's rules).
///
/// # Errors
/// A `cpu_models` entry libvirt does not know (Nova fails the same way),
/// names of `host` the database does not know, and a database without
/// `qemu64` when `cpu_mode = none`.
pub fn reported_traits(
    db: &Database,
    conf: &NovaConf,
    host: &CpuDef,
) -> Result<Vec<&'static str>, NovaError> {
    let kvm_or_qemu = matches!(conf.virt_type.as_str(), "kvm" | "qemu");
    let models = conf
        .cpu_models
        .iter()
        .map(|m| map_model(db, host, m))
        .collect::<Result<Vec<_>, _>>()?;
    let flags: Vec<String> = conf.extra_flags.iter().map(|f| flag_name(f).0).collect();
    let mut features: BTreeSet<String> = BTreeSet::new();
    let mode = match conf.cpu_mode {
        None | Some(CpuMode::None) if !kvm_or_qemu => return Ok(Vec::new()),
        None => CpuMode::Cpu(Mode::HostModel),
        Some(m) => m,
    };
    match mode {
        CpuMode::Cpu(Mode::HostModel | Mode::HostPassthrough | Mode::Maximum) => {
            let all = ResolvedCpu::new(db, host)?.all;
            features.extend(db.feature_names(&all).map(str::to_string));
            features.extend(flags);
        }
        CpuMode::None => {
            let name = if host.arch.as_deref() == Some("i686") {
                "qemu32"
            } else {
                "qemu64"
            };
            let id = db
                .find_model_exact(name)
                .ok_or(NovaError::DefaultModelMissing(name))?;
            features.extend(db.feature_names(&db.model(id).features).map(str::to_string));
        }
        CpuMode::Cpu(Mode::Custom) => {
            for m in models.into_iter().flatten() {
                features.extend(db.feature_names(&db.model(m).features).map(str::to_string));
            }
            features.extend(flags);
        }
    }
    Ok(feature_traits(features.iter().map(String::as_str)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_feature_but_sse3_is_a_libvirt_feature() {
        let db = Database::embedded();
        let missing: Vec<&str> = CPU_TRAITS
            .iter()
            .map(|(f, _)| *f)
            .filter(|f| db.find_feature_exact(f).is_none())
            .collect();
        assert_eq!(missing, ["sse3"]);
    }

    #[test]
    fn names_map_exactly() {
        assert_eq!(
            feature_traits(["vmx", "pni", "sse3", "AVX", "avx", "svm"]),
            [
                "HW_CPU_X86_AMD_SVM",
                "HW_CPU_X86_AVX",
                "HW_CPU_X86_INTEL_VMX",
                "HW_CPU_X86_SSE3",
                "HW_CPU_X86_SVM",
                "HW_CPU_X86_VMX"
            ]
        );
        assert_eq!(flag_name("--PCID"), ("pcid".to_string(), true));
        assert_eq!(flag_name("+Avx"), ("avx".to_string(), false));
    }
}
