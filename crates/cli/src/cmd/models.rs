//! `cpumodel models`: the model list, as a table or JSON.

use std::fmt::Write as _;

use cpumodel_map::ModelSummary;

use crate::error::CliError;
use crate::shared::{json_text, MapArgs, Output, TextFormat};

/// Arguments of `cpumodel models`.
#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

impl ModelsArgs {
    /// Runs `cpumodel models`.
    ///
    /// # Errors
    /// A `--cpu-map` that cannot be loaded.
    ///
    /// The text form starts with a `#` line naming the release and map in
    /// use.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let models = ModelSummary::all(db);
        Ok(Output::ok(match self.format {
            TextFormat::Json => json_text(&models),
            TextFormat::Text => format!("# {}\n{}", self.map.describe(), table(&models)),
        }))
    }
}

fn table(models: &[ModelSummary]) -> String {
    let width = models
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    // Ancestors are model names, but the column is at least as wide as its header.
    let awidth = width.max("ANCESTOR".len());
    let mut out = format!(
        "{:<width$}  {:<20}  {:<awidth$}  FEATURES  X86-64\n",
        "NAME", "VENDOR", "ANCESTOR"
    );
    for m in models {
        let _ = writeln!(
            out,
            "{:<width$}  {:<20}  {:<awidth$}  {:<8}  {}",
            m.name,
            m.vendor.as_deref().unwrap_or("-"),
            m.ancestor.as_deref().unwrap_or("-"),
            m.features,
            m.psabi.level_text()
        );
    }
    out
}
