//! `cpumodel cpuid`: the guest CPUID table of a model, as text, as KVM's
//! entry list in JSON, or as a Firecracker custom CPU template.
//!
//! The model, flags and topology are validated by the guest policy
//! (`cpumodel_policy::build`), so names get the same suggestions and
//! topologies the same checks as in `cpumodel guest`.

use std::path::PathBuf;

use clap::ValueEnum;
use cpumodel_cpudef::Mode;
use cpumodel_cpuid::export::{firecracker::to_firecracker, kvm_json::to_kvm_json};
use cpumodel_cpuid::{build, CpuidSpec};
use cpumodel_map::Database;
use cpumodel_policy::{CpuMode, PolicyInput};

use crate::error::{read, CliError};
use crate::shared::{MapArgs, Output};
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
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

impl CpuSpecArgs {
    /// Validates the model, flags and topology and builds the table's spec,
    /// as a custom-mode guest policy (so names get suggestions and
    /// topologies Nova's checks).
    ///
    /// # Errors
    /// Unknown names (with suggestions), impossible topologies and models
    /// without a QEMU definition.
    pub fn spec(&self, db: &Database) -> Result<CpuidSpec, CliError> {
        let input = PolicyInput {
            mode: CpuMode::Cpu(Mode::Custom),
            models: vec![self.model.clone()],
            flags: self.flags.clone(),
            required: Vec::new(),
            vcpus: self.topology.vcpus,
            specs: Default::default(),
            explicit: self.topology.explicit()?,
        };
        let guest = cpumodel_policy::build(db, &input, None)?;
        CpuidSpec::from_guest(db, &guest).map_err(|e| CliError::Usage(e.to_string()))
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
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The formats of `cpuid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per leaf and subleaf, then the per-vCPU APIC IDs.
    Text,
    /// KVM's CPUID entry list (vCPU 0) as JSON.
    KvmJson,
    /// A Firecracker custom CPU template.
    Firecracker,
}

impl CpuidArgs {
    /// Runs `cpumodel cpuid`.
    ///
    /// # Errors
    /// Unknown model or flag names (with suggestions), impossible
    /// topologies, models without a QEMU definition and unreadable
    /// `--kvm-supported` files.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.cpu.map.load()?;
        let mut spec = self.cpu.spec(db)?;
        let usage = |e: cpumodel_cpuid::BuildCpuidError| CliError::Usage(e.to_string());
        if let Some(path) = &self.kvm_supported {
            let name = path.display().to_string();
            let supported = cpumodel_cpudata::parse_cpudata(&name, &read(path)?)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let report = spec.mask(db, &supported);
            for d in &report.dropped {
                let bits: Vec<String> = d.missing.iter().map(ToString::to_string).collect();
                crate::error::warn(&format_args!(
                    "{name}: KVM lacks {} ({}); dropped",
                    d.name,
                    bits.join(" ")
                ));
            }
        }
        let table = build(db, &spec).map_err(usage)?;
        let text = match self.format {
            Format::KvmJson => {
                to_kvm_json(&table, 0).map_err(|e| CliError::Usage(e.to_string()))?
            }
            Format::Firecracker => to_firecracker(db, &table),
            Format::Text => table.to_text(),
        };
        Ok(Output::ok(text))
    }
}
