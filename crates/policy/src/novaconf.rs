//! The `[libvirt]` section of a nova.conf: `cpu_mode`, `cpu_models` (or the
//! older `cpu_model`), `cpu_model_extra_flags` and `virt_type`, read the
//! way oslo.config reads them.
//!
//! Reading the operator's real configuration file lets cpumodel check it
//! before Nova starts a single guest, so the file must mean here what it
//! means to Nova. oslo.config's rules, which this reader follows line for
//! line (and which `crates/cli/tests/nova.rs` checks against oslo.config
//! itself):
//!
//! - a line is `key = value` or `key: value`, split at the first `=` or
//!   `:` (whichever comes first); key and value are trimmed, and a value
//!   quoted with the same `"` or `'` at both ends loses the quotes;
//! - a line that starts with a space or a tab continues the previous value
//!   (joined with a newline); a blank line ends it;
//! - `#` and `;` start a comment only at the start of a line: `cpu_mode =
//!   custom # note` is the value `custom # note`;
//! - section names are case-insensitive (`[LIBVIRT]` is `[libvirt]`),
//!   option names are not (`CPU_MODE` is another, unknown option);
//! - a key given twice: the last value counts; `cpu_models` wins over the
//!   deprecated `cpu_model` wherever each appears;
//! - an assignment before any section header, a continuation line with
//!   nothing to continue, a header without `]` or with no name, and a line
//!   with neither `=` nor `:` are errors (so is a UTF-8 byte order mark,
//!   which oslo.config reads as part of the first line);
//! - list options split at commas, each item trimmed; trailing commas are
//!   dropped, but an empty item in the middle (`Westmere, , Nehalem`)
//!   stays, and Nova refuses to start on it.
//!
//! What cpumodel cannot honour, or what Nova ignores, is reported as a
//! warning (see [`NovaConf::warnings`]), never dropped silently.

use cpumodel_cpudef::Mode;
use cpumodel_map::closest;

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
    /// The line of `cpu_mode`, 0 when absent.
    pub mode_line: usize,
    /// Whether the file has a `[libvirt]` section (in any case).
    pub has_libvirt_section: bool,
    /// What Nova ignores or reads otherwise than it looks, one line each,
    /// `FILE:LINE: …`, for the caller to show.
    pub warnings: Vec<String>,
}

/// The options of `[libvirt]` cpumodel reads.
const OPTIONS: [&str; 5] = [
    "cpu_mode",
    "cpu_models",
    "cpu_model",
    "cpu_model_extra_flags",
    "virt_type",
];

impl NovaConf {
    /// Checks the model and flag names against `db`, so that a bad one is
    /// reported at its line of `file` (the policy checks them again, without
    /// a position, when they come from the command line).
    ///
    /// # Errors
    /// The first empty or unknown model or invalid flag, with its line.
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
                if m.is_empty() {
                    return Err(err(
                        self.models_line,
                        "cpu_models",
                        &"an empty model name between commas (Nova refuses to start: \
                          InvalidCPUInfo for model '')",
                    ));
                }
                db.find_model(m)
                    .map_err(|e| err(self.models_line, "cpu_models", &e))?;
            }
        }
        if flags {
            for f in self.effective_flags() {
                crate::policy::check_flag(db, &f)
                    .map_err(|e| err(self.flags_line, "cpu_model_extra_flags", &e))?;
            }
        }
        Ok(())
    }

    /// The mode Nova uses: `cpu_mode`, else host-model for kvm/qemu and
    /// none otherwise.
    pub fn effective_mode(&self) -> CpuMode {
        self.cpu_mode.unwrap_or(if self.selects_cpu_models() {
            CpuMode::Cpu(Mode::HostModel)
        } else {
            CpuMode::None
        })
    }

    /// What makes nova-compute refuse this configuration at start-up
    /// (`LibvirtDriver._check_cpu_compatibility`), before any guest: a CPU
    /// mode where `virt_type` selects none, models without mode custom, or
    /// mode custom without models. `file` names the
    /// configuration in the error.
    ///
    /// # Errors
    /// Nova's reason, at the line of the option concerned.
    pub fn check_startup(&self, file: &str) -> Result<(), NovaConfError> {
        let custom = self.effective_mode() == CpuMode::Cpu(Mode::Custom);
        if !self.selects_cpu_models() && self.cpu_mode.is_some_and(|m| m != CpuMode::None) {
            return Err(NovaConfError {
                file: file.to_string(),
                line: self.mode_line,
                message: format!(
                    "cpu_mode is set, but virt_type = {} does not support selecting CPU models \
                     (Nova refuses to start)",
                    self.virt_type
                ),
            });
        }
        let message = if !custom && !self.cpu_models.is_empty() {
            "the cpu_models option is not required when cpu_mode!=custom (Nova refuses to start)"
        } else if custom && self.cpu_models.is_empty() {
            "the cpu_models option is required when cpu_mode=custom (Nova refuses to start)"
        } else {
            return Ok(());
        };
        Err(NovaConfError {
            file: file.to_string(),
            line: self.models_line,
            message: message.to_string(),
        })
    }

    /// Whether `virt_type` lets Nova choose a CPU model (kvm and qemu).
    fn selects_cpu_models(&self) -> bool {
        matches!(self.virt_type.as_str(), "kvm" | "qemu")
    }

    /// Whether Nova writes a `<cpu>` element at all: with `virt_type` lxc
    /// or parallels and mode none it writes none.
    pub fn emits_cpu_element(&self) -> bool {
        self.selects_cpu_models() || self.effective_mode() != CpuMode::None
    }

    /// The extra flags Nova applies, lowercased as Nova lowercases them:
    /// none with mode none (Nova returns before applying them), and each
    /// doubled sign stripped as Nova strips it (`++avx` is `+avx`).
    pub fn effective_flags(&self) -> Vec<String> {
        if self.effective_mode() == CpuMode::None {
            return Vec::new();
        }
        self.extra_flags
            .iter()
            .map(|f| {
                let f = f.to_lowercase();
                match f.strip_prefix('-') {
                    Some(rest) => format!("-{}", rest.trim_start_matches('-')),
                    None => format!("+{}", f.trim_start_matches('+')),
                }
            })
            .collect()
    }
}

/// oslo.config's `ListOpt`: split at commas, items trimmed, trailing
/// commas dropped, empty items in the middle kept.
fn list(v: &str) -> Vec<String> {
    let s = v.trim().trim_end_matches(',');
    if s.is_empty() {
        return Vec::new();
    }
    s.split(',').map(|i| i.trim().to_string()).collect()
}

/// One assignment of the `[libvirt]` section: its value (continuation
/// lines joined with newlines) and the line it starts on.
struct Assignment {
    key: String,
    value: String,
    line: usize,
    libvirt: bool,
}

/// Splits the file into assignments as oslo.config's parser does.
fn assignments(
    text: &str,
    err: &dyn Fn(usize, String) -> NovaConfError,
) -> Result<(Vec<Assignment>, bool), NovaConfError> {
    if text.starts_with('\u{feff}') {
        return Err(err(
            1,
            "the file starts with a UTF-8 byte order mark, which oslo.config reads as part of \
             the first line and refuses; save it without one"
                .into(),
        ));
    }
    let mut out: Vec<Assignment> = Vec::new();
    let mut section: Option<String> = None;
    let mut has_libvirt = false;
    let mut open = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end();
        if line.is_empty() {
            open = false;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match out.last_mut() {
                Some(a) if open => {
                    a.value.push('\n');
                    a.value.push_str(line.trim_start());
                }
                _ => {
                    return Err(err(
                        n,
                        format!("a continuation line with nothing to continue: '{line}'"),
                    ))
                }
            }
            continue;
        }
        open = false;
        if line.starts_with('[') {
            let name = line
                .strip_suffix(']')
                .ok_or_else(|| err(n, format!("a section header must end with ']': '{line}'")))?;
            let name = &name[1..];
            if name.is_empty() {
                return Err(err(n, "an empty section name: '[]'".into()));
            }
            // oslo.config compares group names in lower case (DEFAULT
            // aside).
            let normal = if name == "DEFAULT" {
                name.to_string()
            } else {
                name.to_lowercase()
            };
            has_libvirt |= normal == "libvirt";
            section = Some(normal);
            continue;
        }
        if line.starts_with(['#', ';']) {
            continue;
        }
        let colon = line.find(':');
        let equal = line.find('=');
        let at = match (colon, equal) {
            (None, None) => {
                return Err(err(
                    n,
                    format!("no ':' or '=' in this assignment: '{line}'"),
                ))
            }
            (Some(c), Some(e)) => c.min(e),
            (Some(c), None) => c,
            (None, Some(e)) => e,
        };
        let key = line[..at].trim();
        let mut value = line[at + 1..].trim();
        if key.is_empty() {
            return Err(err(n, format!("an assignment without a key: '{line}'")));
        }
        let Some(s) = &section else {
            return Err(err(
                n,
                format!("'{key}' comes before any section header; oslo.config refuses it"),
            ));
        };
        if value.len() >= 2
            && (value.starts_with('"') || value.starts_with('\''))
            && value.ends_with(&value[..1])
        {
            value = &value[1..value.len() - 1];
        }
        out.push(Assignment {
            key: key.to_string(),
            value: value.to_string(),
            line: n,
            libvirt: s == "libvirt",
        });
        open = true;
    }
    Ok((out, has_libvirt))
}

/// Parses the `[libvirt]` section of a nova.conf.
///
/// # Errors
/// A line oslo.config refuses (anywhere in the file), an unknown
/// `cpu_mode` or `virt_type`, or a CPU mode other than none with a
/// virt_type that cannot select CPU models.
pub fn parse_nova_conf(file: &str, text: &str) -> Result<NovaConf, NovaConfError> {
    let err = |line: usize, message: String| NovaConfError {
        file: file.to_string(),
        line,
        message,
    };
    let (all, has_libvirt) = assignments(text, &err)?;
    let mut conf = NovaConf {
        virt_type: "kvm".into(),
        has_libvirt_section: has_libvirt,
        ..Default::default()
    };
    if !has_libvirt {
        conf.warnings.push(format!(
            "{file}: no [libvirt] section; Nova's defaults apply (virt_type kvm, cpu_mode host-model)"
        ));
    }
    // The last assignment of each key counts.
    let last = |key: &str| all.iter().rev().find(|a| a.libvirt && a.key == key);
    if let Some(a) = last("cpu_mode") {
        conf.mode_line = a.line;
        conf.cpu_mode = Some(
            CpuMode::parse(&a.value)
                .filter(|m| *m != CpuMode::Cpu(Mode::Maximum))
                .ok_or_else(|| {
                    err(
                        a.line,
                        format!(
                            "cpu_mode = {}: unknown mode (expected host-model, host-passthrough, custom or none)",
                            a.value
                        ),
                    )
                })?,
        );
    }
    if let Some(a) = last("cpu_models").or_else(|| last("cpu_model")) {
        conf.cpu_models = list(&a.value);
        conf.models_line = a.line;
    }
    if let Some(a) = last("cpu_model_extra_flags") {
        conf.extra_flags = list(&a.value);
        conf.flags_line = a.line;
    }
    if let Some(a) = last("virt_type") {
        if !matches!(a.value.as_str(), "kvm" | "lxc" | "qemu" | "parallels") {
            return Err(err(
                a.line,
                format!(
                    "virt_type = {}: unknown type (expected kvm, lxc, qemu or parallels)",
                    a.value
                ),
            ));
        }
        conf.virt_type = a.value.clone();
    }
    for a in all
        .iter()
        .filter(|a| a.libvirt && !OPTIONS.contains(&a.key.as_str()))
    {
        let near = closest(&a.key, OPTIONS.iter().copied());
        if a.key.to_lowercase().starts_with("cpu_") || !near.is_empty() {
            let hint = near
                .first()
                .map_or(String::new(), |n| format!(" (did you mean '{n}'?)"));
            conf.warnings.push(format!(
                "{file}:{}: '{}' is not an option Nova reads; it is ignored{hint}",
                a.line, a.key
            ));
        }
    }
    if let (Some(new), Some(old)) = (last("cpu_models"), last("cpu_model")) {
        conf.warnings.push(format!(
            "{file}:{}: cpu_model is ignored: cpu_models (line {}) takes precedence",
            old.line, new.line
        ));
    }
    if !conf.extra_flags.is_empty() && conf.effective_mode() == CpuMode::None {
        conf.warnings.push(format!(
            "{file}:{}: cpu_model_extra_flags is ignored with cpu_mode none (Nova applies no flags)",
            conf.flags_line
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
        assert_eq!(c.effective_flags(), ["-hle", "-rtm", "+ssbd", "+mtrr"]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn reads_as_oslo_config_reads() {
        let text = "[LIBVIRT]\ncpu_mode: custom\ncpu_models = Westmere,\n   Nehalem\ncpu_model = Haswell\n\n[Libvirt]\ncpu_model_extra_flags='++AVX, --hle,'\n";
        let c = parse_nova_conf("nova.conf", text).unwrap();
        assert_eq!(c.cpu_mode, Some(CpuMode::Cpu(Mode::Custom)));
        assert_eq!(c.cpu_models, ["Westmere", "Nehalem"]);
        assert_eq!(c.models_line, 3);
        assert_eq!(c.effective_flags(), ["+avx", "-hle"]);
        assert_eq!(
            c.warnings,
            ["nova.conf:5: cpu_model is ignored: cpu_models (line 3) takes precedence"]
        );
        let c = parse_nova_conf("n", "[libvirt]\ncpu_models = Westmere, , Nehalem\n").unwrap();
        assert_eq!(c.cpu_models, ["Westmere", "", "Nehalem"]);
        let c = parse_nova_conf(
            "n",
            "[libvirt]\ncpu_mode = none\ncpu_model_extra_flags = avx\n",
        )
        .unwrap();
        assert!(c.effective_flags().is_empty());
        assert_eq!(
            c.warnings,
            ["n:3: cpu_model_extra_flags is ignored with cpu_mode none (Nova applies no flags)"]
        );
        let c = parse_nova_conf("n", "[libvirt]\nvirt_type = lxc\n").unwrap();
        assert!(!c.emits_cpu_element());
    }

    #[test]
    fn what_oslo_refuses_is_an_error() {
        let e = |t: &str| parse_nova_conf("n", t).unwrap_err().to_string();
        assert_eq!(
            e("cpu_mode = custom\n[libvirt]\n"),
            "n:1: 'cpu_mode' comes before any section header; oslo.config refuses it"
        );
        assert_eq!(e("\u{feff}[libvirt]\n").split(':').nth(1), Some("1"));
        assert_eq!(
            e("[libvirt\n"),
            "n:1: a section header must end with ']': '[libvirt'"
        );
        assert_eq!(
            e("  x = 1\n"),
            "n:1: a continuation line with nothing to continue: '  x = 1'"
        );
        assert_eq!(
            e("[libvirt]\ncpu_mode\n"),
            "n:2: no ':' or '=' in this assignment: 'cpu_mode'"
        );
        assert_eq!(
            e("[libvirt]\ncpu_mode = custom # the model below\n"),
            "n:2: cpu_mode = custom # the model below: unknown mode (expected host-model, host-passthrough, custom or none)"
        );
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
            "[libvirt]\nvirt_type = lxc\ncpu_mode = custom\ncpu_models = Westmere\n",
        )
        .unwrap()
        .check_startup("nova.conf")
        .unwrap_err();
        assert_eq!(e.to_string(), "nova.conf:3: cpu_mode is set, but virt_type = lxc does not support selecting CPU models (Nova refuses to start)");
    }

    #[test]
    fn near_misses_are_warned_about() {
        let c = parse_nova_conf(
            "n",
            "[libvirt]\nCPU_MODE = custom\ncpu_modles = x\nimages_type = rbd\n",
        )
        .unwrap();
        assert_eq!(c.cpu_mode, None);
        assert_eq!(
            c.warnings,
            [
                "n:2: 'CPU_MODE' is not an option Nova reads; it is ignored (did you mean 'cpu_mode'?)",
                "n:3: 'cpu_modles' is not an option Nova reads; it is ignored (did you mean 'cpu_mode'?)",
            ]
        );
    }
}
