//! `cpumodel cpuid`: the guest CPUID table of a model, as text, as KVM's
//! entry list in JSON, or as a Firecracker custom CPU template.
//!
//! The model, flags and topology are validated by the guest policy
//! (`cpumodel_policy::build`), so names get the same suggestions and
//! topologies the same checks as in `cpumodel guest`.

use std::path::PathBuf;

use cpumodel_cpuid::export::{firecracker::to_firecracker, kvm_json::to_kvm_json};
use cpumodel_cpuid::{build, CpuidSpec};
use cpumodel_map::Database;
use cpumodel_policy::{CpuMode, PolicyInput, Topology};

use crate::cli::{Args, Command, Format, FormatArg};
use crate::commands::Output;
use crate::error::{read, CliError};
use crate::topology_args::TopologyArgs;

/// The guest CPU that `cpuid` and `verify` build a table for: one
/// definition of these flags for both commands.
#[derive(Debug, clap::Args)]
pub struct CpuSpecArgs {
    /// The CPU model (case-insensitive; versions and QEMU aliases such as
    /// Skylake-Client-v2 or Skylake-Client-IBRS are models of their own).
    #[arg(long, value_name = "NAME")]
    pub model: String,
    /// An extra flag: +name or name enables it, -name disables it.
    #[arg(long = "flag", value_name = "F", allow_hyphen_values = true)]
    pub flags: Vec<String>,
    /// The vCPU count (default 1) and topology.
    #[command(flatten)]
    pub topology: TopologyArgs,
}

impl CpuSpecArgs {
    /// Validates the model, flags and topology and builds the table's spec.
    ///
    /// # Errors
    /// Unknown names (with suggestions) and impossible topologies.
    pub fn spec(&self, db: &Database) -> Result<cpumodel_cpuid::CpuidSpec, CliError> {
        let explicit = self.topology.explicit()?;
        guest_spec(db, &self.model, &self.flags, self.topology.vcpus, explicit)
    }
}

/// Arguments of `cpumodel cpuid`.
#[derive(Debug, clap::Args)]
pub struct CpuidArgs {
    /// The guest CPU.
    #[command(flatten)]
    pub cpu: CpuSpecArgs,
    /// Mask the table by what a host's KVM supports: a <cpudata> dump of
    /// KVM_GET_SUPPORTED_CPUID. Dropped features are named on stderr.
    #[arg(long, value_name = "CPUDATA.xml")]
    pub kvm_supported: Option<PathBuf>,
}

/// The `--format` of every command but `cpuid`, which alone takes
/// kvm-json and firecracker.
///
/// # Errors
/// [`CliError::Usage`] for a CPUID table format with another command.
pub fn common_format(args: &Args) -> Result<Option<Format>, CliError> {
    Ok(match args.format {
        None => None,
        Some(FormatArg::Xml) => Some(Format::Xml),
        Some(FormatArg::Json) => Some(Format::Json),
        Some(FormatArg::Text) => Some(Format::Text),
        Some(FormatArg::Qemu) => Some(Format::Qemu),
        Some(f @ (FormatArg::KvmJson | FormatArg::Firecracker)) => {
            if matches!(args.command, Command::Cpuid(_)) {
                None
            } else {
                return Err(CliError::Usage(format!(
                    "--format {} applies to the cpuid command only",
                    f.name()
                )));
            }
        }
    })
}

/// The guest CPU of a model with flags and a topology, validated as a
/// custom-mode guest policy (so names get suggestions and topologies Nova's
/// checks).
///
/// # Errors
/// Unknown model or flag names, impossible topologies and models without
/// a QEMU definition.
pub fn guest_spec(
    db: &Database,
    model: &str,
    flags: &[String],
    vcpus: Option<u32>,
    explicit: Option<Topology>,
) -> Result<CpuidSpec, CliError> {
    let input = PolicyInput {
        mode: CpuMode::Custom,
        models: vec![model.to_string()],
        flags: flags.to_vec(),
        required: Vec::new(),
        vcpus,
        specs: Default::default(),
        explicit,
    };
    let guest = cpumodel_policy::build(db, &input, None)?;
    CpuidSpec::from_guest(db, &guest).map_err(|e| CliError::Usage(e.to_string()))
}

/// Runs `cpumodel cpuid`.
///
/// # Errors
/// Unknown model or flag names (with suggestions), impossible topologies,
/// models without a QEMU definition, unreadable `--kvm-supported` files and
/// formats the table has no form in.
pub fn run(db: &Database, a: &CpuidArgs, format: Option<FormatArg>) -> Result<Output, CliError> {
    let format = match format {
        None | Some(FormatArg::Text) => FormatArg::Text,
        Some(f @ (FormatArg::KvmJson | FormatArg::Firecracker)) => f,
        Some(f) => {
            return Err(CliError::Usage(format!(
                "cpuid has no {} form; use --format text, kvm-json or firecracker",
                f.name()
            )))
        }
    };
    let mut spec = a.cpu.spec(db)?;
    let usage = |e: cpumodel_cpuid::BuildCpuidError| CliError::Usage(e.to_string());
    if let Some(path) = &a.kvm_supported {
        let name = path.display().to_string();
        let supported = cpumodel_cpudata::parse_cpudata(&name, &read(path)?)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let report = spec.mask(db, &supported);
        for d in &report.dropped {
            let bits: Vec<String> = d.missing.iter().map(ToString::to_string).collect();
            eprintln!(
                "cpumodel: warning: {name}: KVM lacks {} ({}); dropped",
                d.name,
                bits.join(" ")
            );
        }
    }
    let table = build(db, &spec).map_err(usage)?;
    let text = match format {
        FormatArg::KvmJson => to_kvm_json(&table, 0).map_err(|e| CliError::Usage(e.to_string()))?,
        FormatArg::Firecracker => to_firecracker(db, &table),
        _ => table.to_text(),
    };
    Ok(Output { text, code: 0 })
}
