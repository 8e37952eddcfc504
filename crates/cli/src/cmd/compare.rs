//! `cpumodel compare HOST CPU`: can the host run the guest CPU?

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cpumodel_cpudef::{
    compare_identity, compare_resolved, parse_cpus, CompareDocument, CompareResult, Comparison,
    CpuDef, ResolvedCpu,
};

use crate::error::CliError;
use crate::names::NamesArgs;
use crate::shared::{first_cpu, json_text, MapArgs, Output, TextFormat};

/// Arguments of `cpumodel compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The host: capabilities, a host <cpu>, a <cpudata> dump,
    /// /proc/cpuinfo, lscpu or a Firecracker template.
    #[arg(value_name = "HOST.xml")]
    pub host: PathBuf,
    /// The guest <cpu> (or any document holding one).
    #[arg(value_name = "CPU.xml")]
    pub cpu: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
    /// Feature names.
    #[command(flatten)]
    pub names: NamesArgs,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

impl CompareArgs {
    /// Runs `cpumodel compare`; exit 1 when the guest is incompatible.
    ///
    /// # Errors
    /// Unreadable or invalid inputs.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let r = match self.compare_without_names(db)? {
            Some(r) => r,
            None => {
                let h = first_cpu(db, &self.host)?;
                let c = first_cpu(db, &self.cpu)?;
                let resolve = |def: &CpuDef, file: &Path| {
                    ResolvedCpu::new(db, def)
                        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))
                };
                compare_resolved(&h, &resolve(&h, &self.host)?, &c, &resolve(&c, &self.cpu)?)
            }
        };
        let code = u8::from(r.result == Comparison::Incompatible);
        let mut doc = CompareDocument::new(db, &r);
        self.names.names(db, &mut doc.blockers);
        let text = match self.format {
            TextFormat::Json => json_text(&doc),
            TextFormat::Text => {
                let mut out = format!("{}\n", doc.result);
                for b in &doc.blockers {
                    let _ = writeln!(out, "{b}");
                }
                out
            }
        };
        Ok(Output { text, code })
    }

    /// The verdict libvirt reaches before it looks up any name (no host
    /// model, another architecture or vendor), from the documents read
    /// without checking their names; `None` when the names decide.
    fn compare_without_names(
        &self,
        db: &cpumodel_map::Database,
    ) -> Result<Option<CompareResult>, CliError> {
        let read = |file: &Path| -> Result<CpuDef, CliError> {
            let text = crate::error::read_cpu_document(file)?;
            let name = file.display().to_string();
            if let Some(cpu) = crate::shared::proxmox_cpu(db, &name, &text)? {
                return Ok(cpu);
            }
            Ok(parse_cpus(db, &name, &text)?.remove(0).cpu)
        };
        let h = read(&self.host)?;
        cpumodel_cpudef::check_x86(&h)
            .map_err(|e| CliError::Usage(format!("{}: {e}", self.host.display())))?;
        Ok(compare_identity(&h, &read(&self.cpu)?))
    }
}
