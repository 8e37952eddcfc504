//! Proxmox VE's CPU settings: the `cpu:` option of a VM and the custom
//! models of `/etc/pve/virtual-guest/cpu-models.conf`.
//!
//! Proxmox VE (qemu-server's `PVE/QemuServer/CPUConfig.pm`) gives a VM its
//! CPU with one option, `cpu: [cputype=]TYPE[,flags=+a;-b][,phys-bits=N]...`,
//! where `TYPE` is a QEMU model, `host`, `max`, one of its `x86-64-v2`,
//! `x86-64-v2-AES`, `x86-64-v3` and `x86-64-v4` types (`qemu64` plus the
//! level's flags), or `custom-NAME`, a model of `cpu-models.conf`:
//!
//! ```text
//! cpu-model: NAME
//!     flags +pcid;-vmx
//!     phys-bits 40
//!     reported-model Westmere
//! ```
//!
//! Each property line is indented with one tab (shown as spaces above).
//!
//! For security, a VM's own `flags` may only name a short list of features
//! ([`VM_FLAGS`]); a custom model may name any. This module reads both forms
//! into a guest `<cpu>` ([`read_proxmox`]) with Proxmox's rules and
//! messages, and writes a guest `<cpu>` as a custom model
//! ([`ProxmoxModel`]).

use cpumodel_cpudef::{CpuDef, CpuKind, Fallback, Match, Mode, Policy};
use cpumodel_map::Database;
use serde::Serialize;

/// A Proxmox document or setting cpumodel cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxmoxError {
    /// A line of a VM config or of `cpu-models.conf` is invalid.
    #[error("{file}:{line}: {message}")]
    Line {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// What is wrong, in Proxmox's words where it has them.
        message: String,
    },
    /// A guest CPU has no custom-model form.
    #[error("{0}")]
    Model(String),
}

/// The flags a VM's own `cpu:` option may set (Proxmox refuses others
/// there "for security reasons"; custom models may set any).
pub const VM_FLAGS: &[&str] = &[
    "aes",
    "amd-no-ssb",
    "amd-ssbd",
    "hv-evmcs",
    "hv-tlbflush",
    "ibpb",
    "md-clear",
    "nested-virt",
    "pcid",
    "pdpe1gb",
    "spec-ctrl",
    "ssbd",
    "virt-ssbd",
];

/// Proxmox's own CPU types: `qemu64` reporting itself, plus these flags.
const LEVEL_TYPES: &[(&str, &str)] = &[
    ("x86-64-v2", "+popcnt;+pni;+sse4.1;+sse4.2;+ssse3"),
    ("x86-64-v2-AES", "+aes;+popcnt;+pni;+sse4.1;+sse4.2;+ssse3"),
    (
        "x86-64-v3",
        "+aes;+popcnt;+pni;+sse4.1;+sse4.2;+ssse3;+avx;+avx2;+bmi1;+bmi2;+f16c;+fma;+abm;+movbe;+xsave",
    ),
    (
        "x86-64-v4",
        "+aes;+popcnt;+pni;+sse4.1;+sse4.2;+ssse3;+avx;+avx2;+bmi1;+bmi2;+f16c;+fma;+abm;+movbe;+xsave;+avx512f;+avx512bw;+avx512cd;+avx512dq;+avx512vl",
    ),
];

/// Properties of the CPU setting (`$cpu_fmt`), for both forms.
const PROPERTIES: &[&str] = &[
    "cputype",
    "flags",
    "guest-phys-bits",
    "hidden",
    "hv-vendor-id",
    "level",
    "phys-bits",
    "reported-model",
];

/// Where a CPU setting is read from, for messages and rules.
struct At<'a> {
    file: &'a str,
    line: usize,
}

impl At<'_> {
    fn err(&self, message: impl Into<String>) -> ProxmoxError {
        ProxmoxError::Line {
            file: self.file.to_string(),
            line: self.line,
            message: message.into(),
        }
    }
}

/// Whether `text` is a Proxmox VM config (`cpu: ...`, `cores: 4`, ...) or
/// a `cpu-models.conf`: every line of its main section is blank, a
/// comment, or `key: value` with a lowercase key (an indented property
/// line in `cpu-models.conf`), and a key Proxmox writes for every VM (or
/// `cpu-model`) is among them.
pub fn looks_like_proxmox(text: &str) -> bool {
    let mut known = false;
    for line in text.lines() {
        if line.starts_with('[') {
            break;
        }
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, _)) = line.split_once(':') else {
            return false;
        };
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return false;
        }
        known |= matches!(
            key,
            "cpu" | "cpu-model" | "cores" | "sockets" | "memory" | "vmgenid" | "smbios1"
        );
    }
    known
}

/// The guest CPUs of a Proxmox document: the VM's (its `cpu:` option, or
/// Proxmox's default `kvm64` without one), or each custom model of a
/// `cpu-models.conf`, named `custom-NAME`.
///
/// # Errors
/// What Proxmox refuses (an unknown CPU type or property, a VM flag
/// outside [`VM_FLAGS`], `reported-model` in a VM, a malformed flag list
/// or value), a flag cpumodel's map has no feature for, and a `custom-`
/// type (its definition is in `cpu-models.conf`, read that file instead).
pub fn read_proxmox(
    db: &Database,
    source: &str,
    text: &str,
) -> Result<Vec<(String, CpuDef)>, ProxmoxError> {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    if first.is_some_and(|l| l.starts_with("cpu-model:")) {
        return read_models_conf(db, source, text);
    }
    let mut value = ("kvm64".to_string(), 0);
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('[') {
            break;
        }
        if let Some(v) = line.strip_prefix("cpu:") {
            value = (v.trim().to_string(), i + 1);
        }
    }
    let at = At {
        file: source,
        line: value.1,
    };
    let props = property_string(&at, &value.0)?;
    let cpu = vm_cpu(db, &at, &props)?;
    Ok(vec![(source.to_string(), cpu)])
}

/// `key=value` pairs of a property string; the first item may omit
/// `cputype=`.
fn property_string(at: &At, s: &str) -> Result<Vec<(String, String)>, ProxmoxError> {
    let mut props: Vec<(String, String)> = Vec::new();
    for (i, item) in s.split(',').enumerate() {
        let (k, v) = match item.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None if i == 0 => ("cputype", item.trim()),
            None => return Err(at.err(format!("cpu: '{item}' is not KEY=VALUE"))),
        };
        if !PROPERTIES.contains(&k) {
            return Err(at.err(format!(
                "cpu: unknown property '{k}' (known: {})",
                PROPERTIES.join(", ")
            )));
        }
        if props.iter().any(|(p, _)| p == k) {
            return Err(at.err(format!(
                "cpu: duplicate key in comma-separated list property: {k}"
            )));
        }
        props.push((k.to_string(), v.to_string()));
    }
    Ok(props)
}

fn get<'a>(props: &'a [(String, String)], key: &str) -> Option<&'a str> {
    props
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A VM's `cpu:` option as a guest `<cpu>`.
fn vm_cpu(db: &Database, at: &At, props: &[(String, String)]) -> Result<CpuDef, ProxmoxError> {
    check_values(at, props)?;
    if get(props, "reported-model").is_some() {
        return Err(at.err("Property 'reported-model' not allowed in VM-specific CPU config."));
    }
    let cputype = get(props, "cputype").unwrap_or("");
    if cputype.is_empty() {
        return Err(at.err("CPU is missing cputype"));
    }
    let flags = get(props, "flags").unwrap_or("");
    let vm_flags = parse_flags(at, flags)?;
    if let Some((_, bad)) = vm_flags
        .iter()
        .find(|(_, f)| !VM_FLAGS.contains(&f.as_str()))
    {
        return Err(at.err(format!(
            "VM-specific CPU flags must be a subset of: {} (not '{bad}')",
            VM_FLAGS.join(", ")
        )));
    }
    if cputype.starts_with("custom-") {
        return Err(at.err(format!(
            "cpu type '{cputype}' is a custom model of cpu-models.conf: read that file for its definition"
        )));
    }
    let mut cpu = CpuDef::new(CpuKind::Guest);
    match cputype {
        "host" => cpu.mode = Mode::HostPassthrough,
        "max" => cpu.mode = Mode::Maximum,
        _ => {
            let (model, level_flags) = match LEVEL_TYPES.iter().find(|(t, _)| *t == cputype) {
                Some((_, f)) => ("qemu64", parse_flags(at, f)?),
                None => (cputype, Vec::new()),
            };
            if db.find_model_exact(model).is_none() {
                return Err(at.err(format!(
                    "Built-in cputype '{cputype}' is not defined (missing 'custom-' prefix?)"
                )));
            }
            cpu.model = Some(model.to_string());
            cpu.match_ = Some(Match::Exact);
            // Proxmox starts QEMU with `enforce`: that model or no guest.
            cpu.fallback = Some(Fallback::Forbid);
            apply_flags(db, at, &mut cpu, &level_flags)?;
        }
    }
    apply_flags(db, at, &mut cpu, &vm_flags)?;
    Ok(cpu)
}

/// Values Proxmox's schema checks: phys-bits, guest-phys-bits, level,
/// hidden and hv-vendor-id.
fn check_values(at: &At, props: &[(String, String)]) -> Result<(), ProxmoxError> {
    for (k, v) in props {
        let ok = match k.as_str() {
            "phys-bits" => phys_bits_ok(v),
            "guest-phys-bits" => v.parse::<u8>().is_ok_and(|n| (32..=64).contains(&n)),
            "level" => v.parse::<u32>().is_ok(),
            "hidden" => matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "1" | "yes" | "no" | "on" | "off" | "true" | "false"
            ),
            "hv-vendor-id" => {
                (1..=12).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric())
            }
            _ => true,
        };
        if !ok {
            let want = match k.as_str() {
                "phys-bits" => PHYS_BITS,
                "guest-phys-bits" => "an integer between 32 and 64",
                "level" => "an integer between 0 and 4294967295",
                "hidden" => "a boolean (0 or 1)",
                _ => "1 to 12 letters and digits",
            };
            return Err(at.err(format!("{k}: '{v}' is not {want}")));
        }
    }
    Ok(())
}

/// What `phys-bits` takes, as its messages say.
const PHYS_BITS: &str = "an integer between 8 and 64 or 'host'";

/// Whether `v` is a `phys-bits` value Proxmox accepts ([`PHYS_BITS`]).
fn phys_bits_ok(v: &str) -> bool {
    v == "host" || v.parse::<u8>().is_ok_and(|n| (8..=64).contains(&n))
}

/// `+a;-b` as `(enable, name)` pairs; an empty list is none.
fn parse_flags(at: &At, s: &str) -> Result<Vec<(bool, String)>, ProxmoxError> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(';')
        .map(|f| {
            let bad = || {
                at.err(format!(
                    "flags: '{f}' is not +FLAG or -FLAG (flags are separated by ';')"
                ))
            };
            let (on, name) = match (f.strip_prefix('+'), f.strip_prefix('-')) {
                (Some(n), _) => (true, n),
                (_, Some(n)) => (false, n),
                _ => return Err(bad()),
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(bad());
            }
            Ok((on, name.to_string()))
        })
        .collect()
}

/// Sets each flag on `cpu` as a required or disabled feature.
/// `nested-virt` is `vmx` on Intel models and `svm` on AMD ones; Hyper-V
/// enlightenments (`hv-*`) are not CPU features and are left out.
fn apply_flags(
    db: &Database,
    at: &At,
    cpu: &mut CpuDef,
    flags: &[(bool, String)],
) -> Result<(), ProxmoxError> {
    for (on, name) in flags {
        if name.starts_with("hv-") {
            continue;
        }
        let name = if name == "nested-virt" {
            let vendor = cpu
                .model
                .as_deref()
                .and_then(|m| db.find_model_exact(m))
                .and_then(|m| db.model(m).vendor)
                .map(|v| db.vendor(v).name.to_string());
            match vendor.as_deref() {
                Some("Intel") => "vmx",
                Some("AMD") | Some("Hygon") => "svm",
                _ => {
                    return Err(at.err(
                        "flags: nested-virt is vmx or svm by the host's vendor, and this CPU type names none",
                    ))
                }
            }
        } else {
            name.as_str()
        };
        // QEMU's spellings (Proxmox passes the flags to `-cpu`): the map's
        // name, QEMU's known alternative, or the map's `qemu` alias.
        let id = cpumodel_qemu::QemuNames::WithAliases
            .feature(db, name)
            .ok_or_else(|| at.err(format!("flags: unknown CPU flag '{name}'")))?;
        let policy = if *on {
            Policy::Require
        } else {
            Policy::Disable
        };
        cpu.set_feature(db.feature_name(id), Some(policy));
    }
    Ok(())
}

/// Each section of a `cpu-models.conf` as a guest CPU.
fn read_models_conf(
    db: &Database,
    source: &str,
    text: &str,
) -> Result<Vec<(String, CpuDef)>, ProxmoxError> {
    let mut cpus = Vec::new();
    // The section's name, header line, properties and each one's line.
    type Section = (String, usize, Vec<(String, String)>, Vec<usize>);
    let mut section: Option<Section> = None;
    let finish = |s: Section, cpus: &mut Vec<(String, CpuDef)>| -> Result<(), ProxmoxError> {
        let (name, line, props, lines) = s;
        // Errors point at the property's line, or the header's.
        let at = |key: Option<&str>| At {
            file: source,
            line: key
                .and_then(|k| props.iter().position(|(p, _)| p == k))
                .map_or(line, |i| lines[i]),
        };
        cpus.push((
            format!("{source}:custom-{name}"),
            custom_cpu(db, &at, &props)?,
        ));
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        let at = At {
            file: source,
            line: i + 1,
        };
        let t = line.trim();
        if t.starts_with('#') {
            continue;
        }
        if t.is_empty() {
            if let Some(s) = section.take() {
                finish(s, &mut cpus)?;
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, _, props, lines)) = section.as_mut() else {
                return Err(at.err("property line outside a 'cpu-model:' section"));
            };
            let (k, v) = t.split_once([' ', '\t']).unwrap_or((t, ""));
            if k == "cputype" || !PROPERTIES.contains(&k) {
                let known: Vec<&str> = PROPERTIES
                    .iter()
                    .copied()
                    .filter(|p| *p != "cputype")
                    .collect();
                return Err(at.err(format!(
                    "unknown property '{k}' (known: {})",
                    known.join(", ")
                )));
            }
            if props.iter().any(|(p, _)| p == k) {
                return Err(at.err(format!("duplicate property '{k}'")));
            }
            props.push((k.to_string(), v.trim().to_string()));
            lines.push(i + 1);
            continue;
        }
        if let Some(s) = section.take() {
            finish(s, &mut cpus)?;
        }
        let name = line
            .strip_prefix("cpu-model:")
            .map(str::trim)
            .ok_or_else(|| at.err(format!("'{t}' is not a 'cpu-model: NAME' section header")))?;
        check_name(name).map_err(|m| at.err(m))?;
        section = Some((name.to_string(), i + 1, Vec::new(), Vec::new()));
    }
    if let Some(s) = section.take() {
        finish(s, &mut cpus)?;
    }
    if cpus.is_empty() {
        return Err(At {
            file: source,
            line: 1,
        }
        .err("no 'cpu-model:' section"));
    }
    Ok(cpus)
}

/// A custom model's section as a guest `<cpu>`: its reported model (by
/// default `kvm64`) with its flags, any of QEMU's.
fn custom_cpu<'a>(
    db: &Database,
    at: &impl Fn(Option<&str>) -> At<'a>,
    props: &[(String, String)],
) -> Result<CpuDef, ProxmoxError> {
    for (k, v) in props {
        check_values(&at(Some(k)), &[(k.clone(), v.clone())])?;
    }
    let model = get(props, "reported-model").unwrap_or("kvm64");
    if db.find_model_exact(model).is_none() {
        return Err(
            at(Some("reported-model")).err(format!("reported-model: unknown CPU model '{model}'"))
        );
    }
    let mut cpu = CpuDef::new(CpuKind::Guest);
    cpu.model = Some(model.to_string());
    cpu.match_ = Some(Match::Exact);
    cpu.fallback = Some(Fallback::Forbid);
    let flags_at = at(Some("flags"));
    let flags = parse_flags(&flags_at, get(props, "flags").unwrap_or(""))?;
    apply_flags(db, &flags_at, &mut cpu, &flags)?;
    Ok(cpu)
}

/// Proxmox's section IDs: a letter, then letters, digits, `-` and `_`
/// (two characters at least).
fn check_name(name: &str) -> Result<(), String> {
    let b = name.as_bytes();
    if b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    {
        Ok(())
    } else {
        Err(format!(
            "invalid custom CPU model name '{name}' (a letter, then letters, digits, '-' or '_'; two characters at least)"
        ))
    }
}

/// A custom model of `cpu-models.conf`, as Proxmox writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProxmoxModel {
    /// The section name (VMs use it as `cpu: custom-NAME`).
    pub name: String,
    /// The model reported to the guest.
    pub reported_model: String,
    /// `+FLAG` and `-FLAG`, QEMU's names, in the definition's order.
    pub flags: Vec<String>,
    /// The physical address bits (`8` to `64`, or `host`).
    pub phys_bits: Option<String>,
    /// The VM setting that uses the model: `custom-NAME`.
    pub vm_cpu: String,
}

impl ProxmoxModel {
    /// The custom model named `name` for the guest CPU `cpu` (custom mode
    /// with a model); `require` and `force` features become `+FLAG`,
    /// `disable` and `forbid` ones `-FLAG`.
    ///
    /// # Errors
    /// An invalid name or phys-bits, a CPU without a model (host-passthrough
    /// is `cpu: host`), a model or feature `db` does not define, an
    /// `optional` feature (Proxmox has no such flag).
    pub fn from_cpu(
        db: &Database,
        name: &str,
        cpu: &CpuDef,
        phys_bits: Option<&str>,
    ) -> Result<Self, ProxmoxError> {
        check_name(name).map_err(ProxmoxError::Model)?;
        if let Some(p) = phys_bits {
            if !phys_bits_ok(p) {
                return Err(ProxmoxError::Model(format!(
                    "phys-bits '{p}' is not {PHYS_BITS}"
                )));
            }
        }
        let model = match (&cpu.mode, &cpu.model) {
            (Mode::Custom | Mode::HostModel, Some(m)) => m,
            (mode, _) => {
                return Err(ProxmoxError::Model(format!(
                    "a {mode} CPU without a model has no custom-model form (use 'cpu: host' or 'cpu: max' in the VM)"
                )))
            }
        };
        let id = db
            .find_model_exact(model)
            .ok_or_else(|| ProxmoxError::Model(format!("unknown CPU model '{model}'")))?;
        let mut flags = Vec::new();
        for f in &cpu.features {
            let fid = db
                .find_feature_exact(&f.name)
                .ok_or_else(|| ProxmoxError::Model(format!("unknown CPU feature '{}'", f.name)))?;
            let sign = match f.policy.unwrap_or(Policy::Require) {
                Policy::Require | Policy::Force => '+',
                Policy::Disable | Policy::Forbid => '-',
                Policy::Optional => {
                    return Err(ProxmoxError::Model(format!(
                        "feature '{}' has policy 'optional', which a Proxmox flag cannot express",
                        f.name
                    )))
                }
            };
            flags.push(format!("{sign}{}", cpumodel_qemu::feature_to_qemu(db, fid)));
        }
        Ok(ProxmoxModel {
            name: name.to_string(),
            reported_model: db.model(id).name.to_string(),
            flags,
            phys_bits: phys_bits.map(str::to_string),
            vm_cpu: format!("custom-{name}"),
        })
    }

    /// The section for `cpu-models.conf`: the header, then the properties
    /// by name, each on a tab-indented line, and a blank line.
    pub fn to_conf(&self) -> String {
        let mut out = format!("cpu-model: {}\n", self.name);
        if !self.flags.is_empty() {
            out.push_str(&format!("\tflags {}\n", self.flags.join(";")));
        }
        if let Some(p) = &self.phys_bits {
            out.push_str(&format!("\tphys-bits {p}\n"));
        }
        out.push_str(&format!("\treported-model {}\n\n", self.reported_model));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<(String, CpuDef)>, ProxmoxError> {
        read_proxmox(&Database::embedded(), "vm.conf", text)
    }

    #[test]
    fn a_vm_cpu_option_is_a_guest_cpu() {
        let text = "boot: order=scsi0\ncores: 4\ncpu: Skylake-Client,flags=+pcid;-spec-ctrl;+nested-virt\nmemory: 4096\n[snap]\ncpu: host\n";
        assert!(looks_like_proxmox(text));
        let cpus = read(text).unwrap();
        let cpu = &cpus[0].1;
        assert_eq!(
            cpu.to_xml(),
            "<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>Skylake-Client</model>\n  \
             <feature policy='require' name='pcid'/>\n  \
             <feature policy='disable' name='spec-ctrl'/>\n  \
             <feature policy='require' name='vmx'/>\n</cpu>\n"
        );
        let host = read("cpu: host\n").unwrap();
        assert_eq!(host[0].1.mode, Mode::HostPassthrough);
        let default = read("cores: 2\n").unwrap();
        assert_eq!(default[0].1.model.as_deref(), Some("kvm64"));
        let v3 = read("cpu: x86-64-v3\n").unwrap();
        assert_eq!(v3[0].1.model.as_deref(), Some("qemu64"));
        assert_eq!(v3[0].1.features.len(), 15);
    }

    #[test]
    fn proxmox_refusals_are_one_line_with_the_line() {
        let e = |t: &str| read(t).unwrap_err().to_string();
        assert_eq!(
            e("cores: 2\ncpu: Westmere,flags=+avx\n"),
            "vm.conf:2: VM-specific CPU flags must be a subset of: aes, amd-no-ssb, amd-ssbd, hv-evmcs, hv-tlbflush, ibpb, md-clear, nested-virt, pcid, pdpe1gb, spec-ctrl, ssbd, virt-ssbd (not 'avx')"
        );
        assert_eq!(
            e("cpu: Westmere,reported-model=Haswell\n"),
            "vm.conf:1: Property 'reported-model' not allowed in VM-specific CPU config."
        );
        assert_eq!(
            e("cpu: Westmeer\n"),
            "vm.conf:1: Built-in cputype 'Westmeer' is not defined (missing 'custom-' prefix?)"
        );
        assert_eq!(
            e("cpu: Westmere,phys-bits=65\n"),
            "vm.conf:1: phys-bits: '65' is not an integer between 8 and 64 or 'host'"
        );
        assert_eq!(
            e("cpu: Westmere,flags=pcid\n"),
            "vm.conf:1: flags: 'pcid' is not +FLAG or -FLAG (flags are separated by ';')"
        );
        assert_eq!(
            e("cpu: Westmere,cputype=Haswell\n"),
            "vm.conf:1: cpu: duplicate key in comma-separated list property: cputype"
        );
    }

    #[test]
    fn custom_models_round_trip() {
        let db = Database::embedded();
        let conf = "# custom models\ncpu-model: fleet\n\tflags +pcid;-vmx;+sse4_2\n\tphys-bits 40\n\treported-model Westmere\n\ncpu-model: other\n    reported-model EPYC\n";
        assert!(looks_like_proxmox(conf));
        let cpus = read_proxmox(&db, "cpu-models.conf", conf).unwrap();
        assert_eq!(cpus.len(), 2);
        assert_eq!(cpus[0].0, "cpu-models.conf:custom-fleet");
        let m = ProxmoxModel::from_cpu(&db, "fleet", &cpus[0].1, Some("40")).unwrap();
        assert_eq!(
            m.to_conf(),
            "cpu-model: fleet\n\tflags +pcid;-vmx;+sse4.2\n\tphys-bits 40\n\treported-model Westmere\n\n"
        );
        assert_eq!(
            read_proxmox(&db, "c.conf", "cpu-model: x\n")
                .unwrap_err()
                .to_string(),
            "c.conf:1: invalid custom CPU model name 'x' (a letter, then letters, digits, '-' or '_'; two characters at least)"
        );
        assert_eq!(
            read_proxmox(&db, "c.conf", "cpu-model: ok\n\tflags +nosuchflag\n")
                .unwrap_err()
                .to_string(),
            "c.conf:2: flags: unknown CPU flag 'nosuchflag'"
        );
        assert_eq!(
            read_proxmox(&db, "c.conf", "cpu-model: ok\n\tcputype Westmere\n")
                .unwrap_err()
                .to_string(),
            "c.conf:2: unknown property 'cputype' (known: flags, guest-phys-bits, hidden, hv-vendor-id, level, phys-bits, reported-model)"
        );
        assert_eq!(
            ProxmoxModel::from_cpu(&db, "fleet", &cpus[0].1, Some("7"))
                .unwrap_err()
                .to_string(),
            "phys-bits '7' is not an integer between 8 and 64 or 'host'"
        );
    }

    #[test]
    fn qemu_spellings_of_flags_are_the_maps_features() {
        let db = Database::embedded();
        let conf = "cpu-model: spelt\n\tflags +sse3;+sse4-1;+sse4_2;+xd;+i64;+ffxsr;+lahf-lm;+pclmulqdq;+svm-lock;+svm_lock;+nrip_save;+tsc-scale\n\treported-model EPYC\n";
        let cpus = read_proxmox(&db, "cpu-models.conf", conf).unwrap();
        let names: Vec<&str> = cpus[0].1.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "pni",
                "sse4.1",
                "sse4.2",
                "nx",
                "lm",
                "fxsr_opt",
                "lahf_lm",
                "pclmuldq",
                "svm-lock",
                "nrip-save",
                "tsc-scale"
            ]
        );
    }
}
