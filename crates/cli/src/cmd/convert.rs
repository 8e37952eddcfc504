//! `cpumodel convert --to-libvirt VERSION CPU.xml`: a guest `<cpu>`
//! rewritten so that another libvirt release accepts it and the guest gets
//! the same features.

use std::path::PathBuf;

use cpumodel_cpudef::convert;
use cpumodel_map::{load_cpu_map, Release};

use crate::error::{warn, CliError};
use crate::shared::{first_cpu, render_cpu, MapArgs, Output, XmlFormat};

/// Arguments of `cpumodel convert`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to_libvirt", "to_cpu_map"])))]
pub struct ConvertArgs {
    /// The release to write the CPU for (9.0, 10.7, upstream).
    #[arg(long, value_name = "VERSION")]
    pub to_libvirt: Option<String>,
    /// The cpu_map directory to write the CPU for.
    #[arg(long, value_name = "DIR")]
    pub to_cpu_map: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = XmlFormat::Xml)]
    pub format: XmlFormat,
    /// The map the CPU is written for (default: the `--libvirt` release).
    #[command(flatten)]
    pub map: MapArgs,
    /// The CPU definition.
    #[arg(value_name = "CPU.xml")]
    pub file: PathBuf,
}

impl ConvertArgs {
    /// Runs `cpumodel convert`: the converted CPU on stdout, each feature
    /// that had to be dropped on stderr; exit 1 when the converted CPU does
    /// not give the guest exactly the same features.
    ///
    /// # Errors
    /// An unknown target, an invalid CPU, a vendor the target lacks.
    pub fn run(&self) -> Result<Output, CliError> {
        let from = self.map.load()?;
        let (to, target) = match (&self.to_libvirt, &self.to_cpu_map) {
            (Some(name), _) => {
                let release = Release::find(name).map_err(|e| CliError::Usage(e.to_string()))?;
                (release.database(), format!("libvirt {}", release.name))
            }
            (None, Some(dir)) => (load_cpu_map(dir)?, format!("cpu_map {}", dir.display())),
            (None, None) => unreachable!("clap requires a target"),
        };
        let cpu = first_cpu(from, &self.file)?;
        let converted = convert(from, &cpu, &to)
            .map_err(|e| CliError::Usage(format!("{}: {e}", self.file.display())))?;
        for name in &converted.lost {
            warn(&format!(
                "dropped feature '{name}': {target} does not know it, so the converted guest lacks it"
            ));
        }
        for name in &converted.dropped_disabled {
            warn(&format!(
                "dropped disabled feature '{name}': {target} does not know it, so no model of it enables it"
            ));
        }
        let mut out = render_cpu(&to, &converted.cpu, self.format)?;
        if !converted.lost.is_empty() {
            out.code = 1;
        }
        Ok(out)
    }
}
