//! nova-compute's start-up check of the CPU configuration
//! (`LibvirtDriver._check_cpu_compatibility`, run by `init_host`).
//!
//! In order, as Nova checks:
//!
//! 1. a CPU mode other than none needs virt_type kvm or qemu (`Invalid`);
//! 2. a mode other than custom (or none set) takes no `cpu_models`
//!    (`Invalid`), and then nothing else is checked;
//! 3. custom needs `cpu_models` (`Invalid`);
//! 4. for each model in order: its name must be one of libvirt's models,
//!    ignoring case (`InvalidCPUInfo`); then, with virt_type kvm only, the
//!    model with every extra flag (`+f`/`f` required, `-f` disabled,
//!    lowercased) is compared with the host by libvirt, and anything but
//!    identical or superset stops the start (`InvalidCPUInfo`). A flag
//!    libvirt does not know makes libvirt's comparison fail, which Nova
//!    reports the same way.
//!
//! `[workarounds] skip_cpu_compare_at_startup` (which skips step 4's
//! comparison) is not read. Nova collects the flags in a set, so a feature
//! given both as `+f` and `-f` has no defined outcome there; here the last
//! setting wins.

use cpumodel_cpudef::{compare, Comparison, CpuDef, CpuKind, Match, Mode, Policy};
use cpumodel_map::Database;
use cpumodel_policy::{CpuMode, NovaConf};
use serde::Serialize;

use crate::traits::flag_name;
use crate::{map_model, unknown_model_message, NovaError};

/// Where Nova's libvirt documentation of comparison results is, as Nova's
/// message cites it.
const COMPARE_DOC: &str = "http://libvirt.org/html/libvirt-libvirt-host.html#virCPUCompareResult";

/// Why nova-compute would not start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Cause {
    /// A CPU mode is set with a virt type that cannot select CPU models.
    VirtTypeCannotSelect {
        /// The virt type.
        virt_type: String,
    },
    /// `cpu_models` is set with a mode other than custom.
    ModelsWithoutCustom,
    /// Custom mode without `cpu_models`.
    CustomWithoutModels,
    /// A model libvirt does not know.
    UnknownModel {
        /// The model as configured.
        model: String,
    },
    /// An extra flag libvirt does not know.
    UnknownFlag {
        /// The model whose comparison failed (the first one).
        model: String,
        /// The flag's name, as Nova passes it to libvirt.
        flag: String,
    },
    /// The host cannot run the model with the extra flags.
    Incompatible {
        /// The model as configured.
        model: String,
        /// Features of the model the host lacks.
        model_lacks: Vec<String>,
        /// Required extra flags the host lacks.
        flags_lack: Vec<String>,
        /// libvirt's reason when no feature is to blame.
        reason: Option<String>,
    },
}

impl Cause {
    /// The cause in one phrase, for people.
    pub fn describe(&self) -> String {
        match self {
            Cause::VirtTypeCannotSelect { virt_type } => {
                format!("virt_type {virt_type} cannot select CPU models")
            }
            Cause::ModelsWithoutCustom => "cpu_models is set, but cpu_mode is not custom".into(),
            Cause::CustomWithoutModels => "cpu_mode is custom, but cpu_models is empty".into(),
            Cause::UnknownModel { model } => {
                format!("model {model} is unknown to this libvirt")
            }
            Cause::UnknownFlag { flag, .. } => {
                format!("extra flag {flag} is unknown to this libvirt")
            }
            Cause::Incompatible {
                model,
                model_lacks,
                flags_lack,
                reason,
            } => {
                let mut parts = Vec::new();
                if !model_lacks.is_empty() {
                    parts.push(format!(
                        "model {model} is not usable on this host, which lacks {}",
                        model_lacks.join(" ")
                    ));
                }
                if !flags_lack.is_empty() {
                    let flags: Vec<String> = flags_lack.iter().map(|f| format!("+{f}")).collect();
                    parts.push(format!(
                        "extra flag{} {} not provided by the host",
                        if flags.len() == 1 { "" } else { "s" },
                        flags.join(" ")
                    ));
                }
                if parts.is_empty() {
                    parts.push(format!(
                        "model {model} is not usable on this host: {}",
                        reason.as_deref().unwrap_or("incompatible")
                    ));
                }
                parts.join("; ")
            }
        }
    }
}

/// The outcome of [`startup_check`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StartupCheck {
    /// Why it would not start (`null` when it would).
    pub cause: Option<Cause>,
    /// Nova's exception class (`InvalidCPUInfo` or `Invalid`), when it
    /// would not start.
    pub exception: Option<&'static str>,
    /// Nova's message, exactly (line breaks included), when it would not
    /// start.
    pub message: Option<String>,
    /// What Nova checked, in one phrase.
    pub note: String,
    /// Whether nova-compute would start.
    pub starts: bool,
}

impl StartupCheck {
    fn starts(note: String) -> Self {
        StartupCheck {
            cause: None,
            exception: None,
            message: None,
            note,
            starts: true,
        }
    }

    fn refuses(exception: &'static str, message: String, cause: Cause) -> Self {
        StartupCheck {
            note: cause.describe(),
            cause: Some(cause),
            exception: Some(exception),
            message: Some(message),
            starts: false,
        }
    }
}

/// A Python list of strings as `str()` prints it: `['-vmx', 'PCID']`.
fn py_list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::from(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        })
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// Nova's message when a model and the flags are not compatible with the
/// host; `ret` is what libvirt's comparison returned (0) or its error.
fn incompatible_message(model: &str, flags: &[String], ret: &str) -> String {
    format!(
        "Configured CPU model: {model} and CPU Flags {} are not compatible with host CPU. \
         Please correct your config and try again. Unacceptable CPU info: CPU doesn't have \
         compatibility.\n\n{ret}\n\nRefer to {COMPARE_DOC}",
        py_list(flags)
    )
}

/// Whether nova-compute would start on `host` (the CPU libvirt compares
/// with: for a live host, what the hypervisor offers) with the `[libvirt]`
/// settings of `conf`, and Nova's reason when not.
///
/// # Errors
/// A host CPU that cannot be resolved against `db` (unknown names, not
/// x86).
pub fn startup_check(
    db: &Database,
    conf: &NovaConf,
    host: &CpuDef,
) -> Result<StartupCheck, NovaError> {
    let kvm_or_qemu = matches!(conf.virt_type.as_str(), "kvm" | "qemu");
    if !kvm_or_qemu && !matches!(conf.cpu_mode, None | Some(CpuMode::None)) {
        let message = format!(
            "Config requested an explicit CPU model, but the current libvirt hypervisor '{}' \
             does not support selecting CPU models",
            conf.virt_type
        );
        let cause = Cause::VirtTypeCannotSelect {
            virt_type: conf.virt_type.clone(),
        };
        return Ok(StartupCheck::refuses("Invalid", message, cause));
    }
    if conf.cpu_mode != Some(CpuMode::Cpu(Mode::Custom)) {
        if conf.cpu_models.is_empty() {
            let mode = conf
                .cpu_mode
                .map_or("not set".to_string(), |m| m.to_string());
            return Ok(StartupCheck::starts(format!(
                "cpu_mode is {mode}: Nova checks CPU models at start-up only for cpu_mode = custom"
            )));
        }
        let message = "The cpu_models option is not required when cpu_mode!=custom".to_string();
        return Ok(StartupCheck::refuses(
            "Invalid",
            message,
            Cause::ModelsWithoutCustom,
        ));
    }
    if conf.cpu_models.is_empty() {
        let message = "The cpu_models option is required when cpu_mode=custom".to_string();
        return Ok(StartupCheck::refuses(
            "Invalid",
            message,
            Cause::CustomWithoutModels,
        ));
    }
    // The flags as Nova adds them to the guest CPU: lowercased, each
    // feature once (the last setting here).
    let mut flags: Vec<(String, bool)> = Vec::new();
    for f in &conf.extra_flags {
        let (name, disabled) = flag_name(f);
        match flags.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = disabled,
            None => flags.push((name, disabled)),
        }
    }
    for model in &conf.cpu_models {
        let id = match map_model(db, host, model) {
            Ok(id) => id,
            Err(NovaError::UnknownModel(m)) => {
                let message = unknown_model_message(&m);
                let cause = Cause::UnknownModel { model: m };
                return Ok(StartupCheck::refuses("InvalidCPUInfo", message, cause));
            }
            Err(e) => return Err(e),
        };
        if conf.virt_type != "kvm" {
            continue;
        }
        let Some(id) = id else { continue };
        let mut guest = CpuDef::new(CpuKind::Guest);
        guest.match_ = Some(Match::Exact);
        guest.model = Some(db.model(id).name.to_string());
        let mut required = Vec::new();
        for (name, disabled) in &flags {
            if db.find_feature_exact(name).is_none() {
                let ret = format!("internal error: Unknown CPU feature {name}");
                let message = incompatible_message(model, &conf.extra_flags, &ret);
                let cause = Cause::UnknownFlag {
                    model: model.clone(),
                    flag: name.clone(),
                };
                return Ok(StartupCheck::refuses("InvalidCPUInfo", message, cause));
            }
            let policy = if *disabled {
                Policy::Disable
            } else {
                required.push(name.clone());
                Policy::Require
            };
            guest.set_feature(name, Some(policy));
        }
        let r = compare(db, host, &guest)?;
        if r.result == Comparison::Incompatible {
            let model_features = db.model(id).features;
            let (mut model_lacks, mut flags_lack) = (Vec::new(), Vec::new());
            for f in &r.blockers {
                let name = db.feature_name(*f).to_string();
                if model_features.contains(*f) {
                    model_lacks.push(name);
                } else {
                    flags_lack.push(name);
                }
            }
            let message = incompatible_message(model, &conf.extra_flags, "0");
            let cause = Cause::Incompatible {
                model: model.clone(),
                model_lacks,
                flags_lack,
                reason: r.reason.filter(|_| r.blockers.is_empty()),
            };
            return Ok(StartupCheck::refuses("InvalidCPUInfo", message, cause));
        }
    }
    let models = conf.cpu_models.join(", ");
    Ok(StartupCheck::starts(if conf.virt_type == "kvm" {
        format!("every model of cpu_models ({models}) with cpu_model_extra_flags runs on this host")
    } else {
        format!(
            "every model of cpu_models ({models}) is known to libvirt; with virt_type = {} Nova \
             compares no CPU with the host",
            conf.virt_type
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpumodel_policy::parse_nova_conf;

    fn host() -> CpuDef {
        let db = Database::embedded();
        let text = "<cpu><arch>x86_64</arch><model>Westmere</model><vendor>Intel</vendor><feature name='vmx'/></cpu>";
        cpumodel_cpudef::parse_cpus(&db, "h.xml", text)
            .unwrap()
            .remove(0)
            .cpu
    }

    fn check(libvirt: &str) -> StartupCheck {
        let db = Database::embedded();
        let conf = parse_nova_conf("nova.conf", &format!("[libvirt]\n{libvirt}")).unwrap();
        startup_check(&db, &conf, &host()).unwrap()
    }

    #[test]
    fn follows_novas_order_and_messages() {
        assert!(check("").starts);
        assert!(check("cpu_mode = custom\ncpu_models = nehalem, WESTMERE\ncpu_model_extra_flags = -vmx, +VMX\n").starts);
        let c = check("cpu_mode = host-model\ncpu_models = Westmere\n");
        assert_eq!(
            (c.exception, c.message.as_deref()),
            (
                Some("Invalid"),
                Some("The cpu_models option is not required when cpu_mode!=custom")
            )
        );
        let c = check("cpu_mode = custom\n");
        assert_eq!(c.cause, Some(Cause::CustomWithoutModels));
        let c = check("cpu_mode = custom\ncpu_models = Westmere, Westmeer\n");
        assert_eq!(c.message.unwrap(), "Configured CPU model: Westmeer is not correct, or your host CPU arch does not support this model. Please correct your config and try again.");
        let c =
            check("cpu_mode = custom\ncpu_models = Westmere\ncpu_model_extra_flags = -vmx, PCID\n");
        assert_eq!(c.message.unwrap(), "Configured CPU model: Westmere and CPU Flags ['-vmx', 'PCID'] are not compatible with host CPU. Please correct your config and try again. Unacceptable CPU info: CPU doesn't have compatibility.\n\n0\n\nRefer to http://libvirt.org/html/libvirt-libvirt-host.html#virCPUCompareResult");
        assert_eq!(c.note, "extra flag +pcid not provided by the host");
        let c = check("cpu_mode = custom\ncpu_models = Westmere\ncpu_model_extra_flags = sse3\n");
        assert!(c
            .message
            .unwrap()
            .contains("\n\ninternal error: Unknown CPU feature sse3\n\n"));
        let c = check("cpu_mode = custom\ncpu_models = SandyBridge\n");
        assert_eq!(
            c.note,
            "model SandyBridge is not usable on this host, which lacks pclmuldq x2apic tsc-deadline xsave avx rdtscp"
        );
        // With qemu, only the names are checked.
        assert!(check("virt_type = qemu\ncpu_mode = custom\ncpu_models = SandyBridge\n").starts);
        assert_eq!(
            py_list(&["it's".into(), "a\\b".into()]),
            r#"["it's", 'a\\b']"#
        );
    }
}
