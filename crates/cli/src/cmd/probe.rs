//! `cpumodel probe`: boot a tiny guest in a real QEMU (or through a real
//! libvirt) with a CPU, and check that the guest sees the CPUID table
//! `cpumodel cpuid` builds for that CPU.
//!
//! The CPU is a model and flags (as in `cpumodel cpuid`), a QEMU `-cpu`
//! string, or a `<cpu>` file (such as `cpumodel guest`'s output); all three
//! go through the guest policy, so names get the same suggestions. The
//! guest is `cpumodel_probe::image`'s firmware; its answers become a
//! `<cpudata>` (`-o`) and are compared leaf by leaf and feature by feature
//! with the table ([`cpumodel_probe::compare`]), features QEMU announced
//! filtering named as such.
//!
//! Exit codes: 0 when the guest saw the intended CPU apart from what QEMU
//! reported it could not give, 1 otherwise, 2 on an error (no QEMU, QEMU
//! refusing the CPU, the time limit, an unreachable libvirt).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use cpumodel_cpudef::{decode, CpuDef, CpuFeatures, CpuKind, DecodeOptions, Mode, Policy};
use cpumodel_cpuid::{build, CpuidSpec, CpuidTable};
use cpumodel_map::Database;
use cpumodel_policy::{CpuMode, GuestCpu, PolicyInput};
use cpumodel_probe::image::{DEBUGCON_PORT, SERIAL_PORT};
use cpumodel_probe::libvirt::LibvirtProbe;
use cpumodel_probe::pin::pins;
use cpumodel_probe::qemu::{cpu_help, default_accel};
use cpumodel_probe::{Accel, Plan, Probe, QemuProbe};
use serde::Serialize;

use crate::error::{read, CliError};
use crate::shared::{json_text, kvm_device, MapArgs, Output, TextFormat};
use crate::topology_args::TopologyArgs;

/// Arguments of `cpumodel probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The CPU model (as in `cpumodel cpuid`).
    #[arg(long, value_name = "NAME", required_unless_present_any = ["cpu", "xml"], conflicts_with_all = ["cpu", "xml"])]
    pub model: Option<String>,
    /// An extra flag: +name or name enables it, -name disables it.
    #[arg(long = "flag", value_name = "F", allow_hyphen_values = true)]
    pub flags: Vec<String>,
    /// The CPU as QEMU's -cpu argument: MODEL[,+F|-F|F=on|F=off]...
    #[arg(long, value_name = "MODEL[,FEATURE]...", conflicts_with = "xml")]
    pub cpu: Option<String>,
    /// The CPU as a libvirt <cpu> (any document `cpumodel guest` or libvirt
    /// writes; its first CPU, which must be a named model).
    #[arg(long, value_name = "FILE")]
    pub xml: Option<PathBuf>,
    /// The vCPU count (default 1) and topology.
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// The accelerator (default: kvm when /dev/kvm is usable, else tcg).
    #[arg(long, value_enum)]
    pub accel: Option<AccelArg>,
    /// The QEMU binary.
    #[arg(long, value_name = "PATH", default_value = "qemu-system-x86_64")]
    pub qemu: PathBuf,
    /// Run the guest through libvirt (a transient domain created with
    /// virsh) instead of starting QEMU directly; the URI defaults to
    /// virsh's. Give that libvirt's release with the global `--libvirt`
    /// (e.g. `--libvirt 9.0` for Debian 12), so the <cpu> uses its map.
    #[arg(long, value_name = "URI", num_args = 0..=1, default_missing_value = "")]
    pub via_libvirt: Option<String>,
    /// Pass the CPU as `cpumodel guest` writes it, without stating every
    /// feature QEMU knows on or off as the table has it (QEMU's own model
    /// definition then fills in the rest).
    #[arg(long)]
    pub no_pin: bool,
    /// Stop the guest and fail after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub timeout: f64,
    /// Write the CPUID the guest saw as a <cpudata> document.
    #[arg(short = 'o', long = "output", value_name = "DUMP.xml")]
    pub output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

/// The accelerators of `--accel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AccelArg {
    /// KVM.
    Kvm,
    /// QEMU's emulator.
    Tcg,
}

impl ProbeArgs {
    /// Runs `cpumodel probe`.
    ///
    /// # Errors
    /// Unknown names, a `<cpu>` without a named model or for another
    /// architecture, a missing QEMU or virsh, QEMU or libvirt refusing the
    /// guest (their message on one line), the time limit.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let mut guest = self.guest(db)?;
        let asked = guest.qemu_arg(db);
        let spec = CpuidSpec::from_guest(db, &guest).map_err(|e| CliError::Usage(e.to_string()))?;
        let table = build(db, &spec).map_err(|e| CliError::Usage(e.to_string()))?;
        let help = cpu_help(&self.qemu)?;
        if !help.models.contains(&table.model) {
            return Err(CliError::Usage(format!(
                "{} has no CPU model {} (see {} -cpu help)",
                self.qemu.display(),
                table.model,
                self.qemu.display()
            )));
        }
        let mut pinned = 0;
        if !self.no_pin {
            let already: Vec<_> = guest.features.iter().map(|f| f.0).collect();
            for (id, on) in pins(db, &table, |q| help.knows_flag(q), &already) {
                guest
                    .features
                    .push((id, if on { Policy::Require } else { Policy::Disable }));
                pinned += 1;
            }
        }
        let cpu_arg = guest.qemu_arg(db);
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "--timeout {}: not a positive number of seconds",
                    self.timeout
                ))
            })?;
        let accel = match self.accel {
            Some(AccelArg::Kvm) => Accel::Kvm,
            Some(AccelArg::Tcg) => Accel::Tcg,
            None => default_accel(&kvm_device()),
        };
        let smp = smp(&table)?;
        // Either edge runs the same image and gives back what the guest
        // wrote and what QEMU said; the comparison is the same.
        let (plan, output, stderr, via) = match &self.via_libvirt {
            None => {
                let plan = Plan::new(&table, DEBUGCON_PORT)?;
                let run = QemuProbe {
                    qemu: self.qemu.clone(),
                    accel,
                    cpu: cpu_arg.clone(),
                    smp,
                    timeout,
                };
                let outcome = run.run(&plan.image)?;
                let via = format!("{} (accel {})", self.qemu.display(), accel.name());
                (plan, outcome.output, outcome.stderr, via)
            }
            Some(uri) => {
                let plan = Plan::new(&table, SERIAL_PORT)?;
                let cpu_xml = guest.to_cpu_def(db).to_xml();
                let run = LibvirtProbe {
                    uri: Some(uri.clone()).filter(|u| !u.is_empty()),
                    accel: self.accel.map(|_| accel),
                    cpu_xml,
                    vcpus: table.vcpus(),
                    timeout,
                    expected_bytes: plan.queries.len() * cpumodel_probe::image::RESULT_SIZE,
                };
                let outcome = run.run(&plan.image)?;
                let via = format!(
                    "libvirt {} (domain type {})",
                    outcome.uri, outcome.domain_type
                );
                (plan, outcome.output, outcome.stderr, via)
            }
        };
        let probe = finish(&plan, db, &spec, &table, &output, &stderr, &cpu_arg)?;
        if let Some(path) = &self.output {
            std::fs::write(path, cpumodel_cpudata::format_cpudata(&probe.seen)).map_err(
                |source| CliError::File {
                    path: path.clone(),
                    action: "cannot write",
                    source,
                },
            )?;
        }
        let decoded = decode_seen(db, &probe)?;
        let code = u8::from(!probe.report.is_ok());
        let text = match self.format {
            TextFormat::Text => to_text(&table, &asked, pinned, &via, &probe, &decoded),
            TextFormat::Json => json_text(&ProbeDocument {
                model: &table.model,
                qemu_model: &table.qemu_model,
                vendor: String::from_utf8_lossy(&table.vendor).into_owned(),
                cpu: &cpu_arg,
                pinned,
                via: &via,
                ok: probe.report.is_ok(),
                filtered: &probe.warnings.filtered,
                qemu_messages: &probe.warnings.other,
                decode: &decoded,
                report: &probe.report,
            }),
        };
        Ok(Output { text, code })
    }

    /// The guest CPU of the arguments, through the guest policy.
    fn guest(&self, db: &Database) -> Result<GuestCpu, CliError> {
        let (model, mut flags) = match (&self.model, &self.cpu, &self.xml) {
            (Some(m), _, _) => (m.clone(), Vec::new()),
            (None, Some(arg), _) => parse_cpu_arg(db, arg)?,
            (None, None, Some(path)) => cpu_from_xml(db, path)?,
            (None, None, None) => {
                return Err(CliError::Usage(
                    "probe needs --model, --cpu or --xml".to_string(),
                ))
            }
        };
        flags.extend(self.flags.iter().cloned());
        let input = PolicyInput {
            mode: CpuMode::Cpu(Mode::Custom),
            models: vec![model],
            flags,
            required: Vec::new(),
            vcpus: self.topology.vcpus,
            specs: Default::default(),
            explicit: self.topology.explicit()?,
        };
        Ok(cpumodel_policy::build(db, &input, None)?)
    }
}

/// The guest's answers, read and compared.
fn finish(
    plan: &Plan,
    db: &Database,
    spec: &CpuidSpec,
    table: &CpuidTable,
    output: &[u8],
    stderr: &str,
    cpu: &str,
) -> Result<Probe, CliError> {
    plan.finish(db, spec, table, output, stderr)
        .map_err(|source| {
            cpumodel_probe::ProbeError::Output {
                cpu: cpu.to_string(),
                source,
            }
            .into()
        })
}

/// QEMU's `-smp` for the table's topology; `None` for one vCPU.
fn smp(table: &CpuidTable) -> Result<Option<String>, CliError> {
    let t = table.topology;
    if t.vcpus() == 1 {
        return Ok(None);
    }
    if t.clusters() > 1 {
        return Err(CliError::Usage(format!(
            "topology {t}: QEMU's x86 machines have no clusters; use --clusters 1"
        )));
    }
    Ok(Some(format!(
        "{},sockets={},dies={},cores={},threads={}",
        t.vcpus(),
        t.sockets(),
        t.dies(),
        t.cores(),
        t.threads()
    )))
}

/// `Westmere,+avx,-vmx,pcid=on,ssbd=off,aes` as a model and `cpumodel`
/// flags; QEMU's feature spellings are mapped to the CPU map's.
fn parse_cpu_arg(db: &Database, arg: &str) -> Result<(String, Vec<String>), CliError> {
    let mut parts = arg.split(',');
    let model = parts.next().unwrap_or_default().trim().to_string();
    if model.is_empty() {
        return Err(CliError::Usage(format!("--cpu {arg}: no model")));
    }
    let mut flags = Vec::new();
    for part in parts.map(str::trim).filter(|p| !p.is_empty()) {
        let (name, on) = if let Some(n) = part.strip_prefix('+') {
            (n, true)
        } else if let Some(n) = part.strip_prefix('-') {
            (n, false)
        } else if let Some((n, v)) = part.split_once('=') {
            let on = match v {
                "on" | "true" | "yes" => true,
                "off" | "false" | "no" => false,
                _ => {
                    return Err(CliError::Usage(format!(
                        "--cpu {arg}: {part}: only feature=on|off settings are CPU features"
                    )))
                }
            };
            (n, on)
        } else {
            (part, true)
        };
        let name = cpumodel_qemu::feature_from_qemu(db, name)
            .map_or_else(|| name.to_string(), |id| db.feature(id).name.to_string());
        flags.push(format!("{}{name}", if on { '+' } else { '-' }));
    }
    Ok((model, flags))
}

/// The first CPU of a document: its model and its features as flags.
fn cpu_from_xml(db: &Database, path: &std::path::Path) -> Result<(String, Vec<String>), CliError> {
    let name = path.display().to_string();
    let text = read(path)?;
    let cpu = cpumodel_cpudef::parse_known_cpus(db, &name, &text)?
        .remove(0)
        .cpu;
    if let Some(arch) = cpu
        .arch
        .as_deref()
        .filter(|a| !matches!(*a, "x86_64" | "i686"))
    {
        return Err(CliError::Usage(format!(
            "{name}: the <cpu> is for architecture {arch}; probe runs x86 guests (x86_64, i686)"
        )));
    }
    let Some(model) = cpu.model.clone().filter(|_| cpu.mode == Mode::Custom) else {
        return Err(CliError::Usage(format!(
            "{name}: the <cpu> has no named model (mode {}); probe needs a custom-mode CPU",
            cpu.mode
        )));
    };
    let flags = cpu
        .features
        .iter()
        .map(|f| match f.policy.unwrap_or(Policy::Require) {
            Policy::Require | Policy::Force | Policy::Optional => format!("+{}", f.name),
            Policy::Disable | Policy::Forbid => format!("-{}", f.name),
        })
        .collect();
    Ok((model, flags))
}

/// The guest's CPU decoded as a guest `<cpu>`.
fn decode_seen(db: &Database, probe: &Probe) -> Result<CpuDef, CliError> {
    let input = "the CPUID the probe guest saw".to_string();
    let features = CpuFeatures::from_data(db, &probe.seen).map_err(|source| CliError::Decode {
        input: input.clone(),
        source,
    })?;
    Ok(decode(db, &features, &DecodeOptions::new(CpuKind::Guest))
        .map_err(|source| CliError::Decode { input, source })?
        .to_cpu_def(db, CpuKind::Guest))
}

fn to_text(
    table: &CpuidTable,
    asked: &str,
    pinned: usize,
    via: &str,
    probe: &Probe,
    decoded: &CpuDef,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cpu:      -cpu {asked} ({} as QEMU {}), {}",
        table.model,
        table.qemu_model,
        String::from_utf8_lossy(&table.vendor)
    );
    if pinned > 0 {
        let _ = writeln!(
            out,
            "          plus {pinned} more CPUID features QEMU knows, each set on or off as the table has it (--no-pin: none)"
        );
    }
    let _ = writeln!(
        out,
        "qemu:     {via}, {} vCPU(s), firmware-only guest in real mode",
        table.vcpus()
    );
    let features: Vec<String> = decoded
        .features
        .iter()
        .map(|f| {
            let sign = match f.policy {
                Some(Policy::Disable | Policy::Forbid) => '-',
                _ => '+',
            };
            format!("{sign}{}", f.name)
        })
        .collect();
    let _ = writeln!(
        out,
        "decode:   {}{}{}",
        decoded.model.as_deref().unwrap_or("(no model)"),
        if features.is_empty() { "" } else { " " },
        features.join(" ")
    );
    if probe.report.filtered.is_empty() {
        let _ = writeln!(out, "QEMU filtered no feature");
    } else {
        let _ = writeln!(out, "QEMU filtered: {}", probe.report.filtered.join(", "));
    }
    for line in &probe.warnings.other {
        let _ = writeln!(out, "QEMU said: {line}");
    }
    out.push_str(&probe.report.to_text());
    out
}

/// `--format json`.
#[derive(Serialize)]
struct ProbeDocument<'a> {
    model: &'a str,
    qemu_model: &'a str,
    vendor: String,
    cpu: &'a str,
    pinned: usize,
    via: &'a str,
    ok: bool,
    filtered: &'a [cpumodel_probe::warnings::FilteredFeature],
    qemu_messages: &'a [String],
    decode: &'a CpuDef,
    report: &'a cpumodel_probe::ProbeReport,
}
