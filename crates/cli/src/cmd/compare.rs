//! `cpumodel compare HOST CPU`: can the host run the guest CPU?

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cpumodel_cpudef::{compare_resolved, CompareDocument, Comparison, CpuDef, ResolvedCpu};

use crate::error::CliError;
use crate::shared::{first_cpu, json_text, MapArgs, Output, TextFormat};

/// Arguments of `cpumodel compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The host: capabilities, a host <cpu>, or a <cpudata> dump.
    #[arg(value_name = "HOST.xml")]
    pub host: PathBuf,
    /// The guest <cpu> (or any document holding one).
    #[arg(value_name = "CPU.xml")]
    pub cpu: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
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
        let h = first_cpu(db, &self.host)?;
        let c = first_cpu(db, &self.cpu)?;
        cpumodel_cpudef::check_x86(&h)
            .map_err(|e| CliError::Usage(format!("{}: {e}", self.host.display())))?;
        let resolve = |def: &CpuDef, file: &Path| {
            ResolvedCpu::new(db, def)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))
        };
        let r = compare_resolved(&h, &resolve(&h, &self.host)?, &c, &resolve(&c, &self.cpu)?);
        let code = u8::from(r.result == Comparison::Incompatible);
        let doc = CompareDocument::new(db, &r);
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
}
