//! `cpumodel expand FILE`: a `<cpu>` with every feature of its model
//! listed explicitly.

use std::path::PathBuf;

use crate::error::CliError;
use crate::names::NamesArgs;
use crate::shared::{first_cpu, MapArgs, Output, XmlFormat};

/// Arguments of `cpumodel expand`.
#[derive(Debug, clap::Args)]
pub struct ExpandArgs {
    /// The CPU definition.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = XmlFormat::Xml)]
    pub format: XmlFormat,
    /// Feature names.
    #[command(flatten)]
    pub names: NamesArgs,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

impl ExpandArgs {
    /// Runs `cpumodel expand`.
    ///
    /// # Errors
    /// An unreadable or invalid file, a CPU that cannot be expanded.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let cpu = first_cpu(db, &self.file)?;
        let expanded = cpumodel_cpudef::expand(db, &cpu)
            .map_err(|e| CliError::Usage(format!("{}: {e}", self.file.display())))?;
        self.names.render(db, &expanded, self.format, None)
    }
}
