//! The `[libvirt]` section of a nova.conf: `cpu_mode`, `cpu_models` (or the
//! older `cpu_model`), `cpu_model_extra_flags` and `virt_type`.
//!
//! Reading the operator's real configuration file lets cpumodel check it
//! before Nova starts a single guest.

use cpumodel_cpudef::Mode;

use crate::policy::CpuMode;

/// A nova.conf problem, with the file and line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct NovaConfError {
    /// The file.
    pub file: String,
    /// 1-based line (0 for the whole file).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The CPU settings of a nova.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NovaConf {
    /// `cpu_mode`, when set.
    pub cpu_mode: Option<CpuMode>,
    /// `cpu_models` (or `cpu_model`).
    pub cpu_models: Vec<String>,
    /// `cpu_model_extra_flags`.
    pub extra_flags: Vec<String>,
    /// `virt_type` (default `kvm`).
    pub virt_type: String,
    /// The line of `cpu_models` (or `cpu_model`), 0 when absent.
    pub models_line: usize,
    /// The line of `cpu_model_extra_flags`, 0 when absent.
    pub flags_line: usize,
}

impl NovaConf {
    /// Checks the model and flag names against `db`, so that a bad one is
    /// reported at its line of `file` (the policy checks them again, without
    /// a position, when they come from the command line).
    ///
    /// # Errors
    /// The first unknown model or invalid flag, with its line.
    pub fn check_names(
        &self,
        db: &cpumodel_map::Database,
        file: &str,
        models: bool,
        flags: bool,
    ) -> Result<(), NovaConfError> {
        let err = |line: usize, key: &str, e: &dyn std::fmt::Display| NovaConfError {
            file: file.to_string(),
            line,
            message: format!("{key}: {e}"),
        };
        if models {
            for m in &self.cpu_models {
                db.find_model(m)
                    .map_err(|e| err(self.models_line, "cpu_models", &e))?;
            }
        }
        if flags {
            for f in &self.extra_flags {
                crate::policy::check_flag(db, f)
                    .map_err(|e| err(self.flags_line, "cpu_model_extra_flags", &e))?;
            }
        }
        Ok(())
    }

    /// The mode Nova uses: `cpu_mode`, else host-model for kvm/qemu and none otherwise.
    pub fn effective_mode(&self) -> CpuMode {
        self.cpu_mode
            .unwrap_or(if matches!(self.virt_type.as_str(), "kvm" | "qemu") {
                CpuMode::Cpu(Mode::HostModel)
            } else {
                CpuMode::None
            })
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses the `[libvirt]` section of a nova.conf.
///
/// # Errors
/// A malformed line inside `[libvirt]`, an unknown `cpu_mode` or `virt_type`,
/// or a CPU mode other than none with a virt_type that cannot select CPU models.
pub fn parse_nova_conf(file: &str, text: &str) -> Result<NovaConf, NovaConfError> {
    let err = |line: usize, message: String| NovaConfError {
        file: file.to_string(),
        line,
        message,
    };
    let mut conf = NovaConf {
        virt_type: "kvm".into(),
        ..Default::default()
    };
    let mut section = String::new();
    let mut mode_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            section = name
                .strip_suffix(']')
                .ok_or_else(|| err(n, format!("malformed section header '{line}'")))?
                .to_string();
            continue;
        }
        if section != "libvirt" {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| err(n, format!("expected 'key = value', found '{line}'")))?;
        match key {
            "cpu_mode" => {
                mode_line = n;
                conf.cpu_mode = Some(CpuMode::parse(value).filter(|m| *m != CpuMode::Cpu(Mode::Maximum)).ok_or_else(|| {
                    err(n, format!("cpu_mode = {value}: unknown mode (expected host-model, host-passthrough, custom or none)"))
                })?);
            }
            "cpu_models" | "cpu_model" => {
                conf.cpu_models = list(value);
                conf.models_line = n;
            }
            "cpu_model_extra_flags" => {
                conf.extra_flags = list(value);
                conf.flags_line = n;
            }
            "virt_type" => {
                if !matches!(value, "kvm" | "lxc" | "qemu" | "parallels") {
                    return Err(err(n, format!("virt_type = {value}: unknown type (expected kvm, lxc, qemu or parallels)")));
                }
                conf.virt_type = value.to_string();
            }
            _ => {}
        }
    }
    if !matches!(conf.virt_type.as_str(), "kvm" | "qemu")
        && conf.cpu_mode.is_some_and(|m| m != CpuMode::None)
    {
        return Err(err(
            mode_line,
            format!(
                "cpu_mode is set, but virt_type = {} does not support selecting CPU models",
                conf.virt_type
            ),
        ));
    }
    Ok(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_libvirt_section_only() {
        let text = "[DEFAULT]\ncpu_mode = bogus\n\n[libvirt]\n# comment\nvirt_type = kvm\ncpu_mode = custom\ncpu_model = Cascadelake-Server\ncpu_model_extra_flags = -hle, -rtm, +ssbd, mtrr\n";
        let c = parse_nova_conf("nova.conf", text).unwrap();
        assert_eq!(c.cpu_mode, Some(CpuMode::Cpu(Mode::Custom)));
        assert_eq!(c.cpu_models, ["Cascadelake-Server"]);
        assert_eq!(c.extra_flags, ["-hle", "-rtm", "+ssbd", "mtrr"]);
    }

    #[test]
    fn unknown_mode_names_the_line() {
        let e = parse_nova_conf("nova.conf", "[libvirt]\ncpu_mode = host-modle\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "nova.conf:2: cpu_mode = host-modle: unknown mode (expected host-model, host-passthrough, custom or none)"
        );
        let e = parse_nova_conf(
            "nova.conf",
            "[libvirt]\nvirt_type = lxc\ncpu_mode = custom\n",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "nova.conf:3: cpu_mode is set, but virt_type = lxc does not support selecting CPU models");
    }
}
