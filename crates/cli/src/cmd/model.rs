//! `cpumodel model NAME`: one model's features and signatures, as text,
//! JSON or a libvirt `<cpu>`.

use std::fmt::Write as _;

use clap::ValueEnum;
use cpumodel_cpudef::{CpuDef, CpuKind, Policy};
use cpumodel_map::{ModelInfo, PsabiFields, PsabiLevel};

use crate::error::CliError;
use crate::names::NamesArgs;
use crate::shared::{json_text, MapArgs, Output};

/// Arguments of `cpumodel model`.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// The model name (case-insensitive).
    pub name: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Feature names.
    #[command(flatten)]
    pub names: NamesArgs,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

/// The formats of `model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Name, vendor, ancestor, decode use, signatures and features.
    Text,
    /// The same as JSON.
    Json,
    /// A guest <cpu> requiring every feature of the model.
    Xml,
}

impl ModelArgs {
    /// Runs `cpumodel model`.
    ///
    /// # Errors
    /// A `--cpu-map` that cannot be loaded, an unknown model name.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let mut info = ModelInfo::new(db, db.find_model(&self.name)?);
        for list in [
            &mut info.features,
            &mut info.removed,
            &mut info.added,
            &mut info.psabi.psabi_missing,
        ] {
            self.names.names(db, list);
        }
        Ok(Output::ok(match self.format {
            Format::Json => json_text(&info),
            Format::Xml => {
                let mut cpu = CpuDef::new(CpuKind::Guest);
                cpu.model = Some(info.name.clone());
                cpu.vendor = info.vendor.clone();
                for f in &info.features {
                    cpu.set_feature(f, Some(Policy::Require));
                }
                cpu.to_xml()
            }
            Format::Text => text(&info),
        }))
    }
}

fn text(m: &ModelInfo) -> String {
    let sigs: Vec<String> = m
        .signatures
        .iter()
        .map(|s| match &s.steppings {
            None => format!("family {} model {}", s.family, s.model),
            Some(list) => {
                let list: Vec<String> = list.iter().map(ToString::to_string).collect();
                format!(
                    "family {} model {} stepping {}",
                    s.family,
                    s.model,
                    list.join(",")
                )
            }
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "name:       {}", m.name);
    let _ = writeln!(out, "vendor:     {}", m.vendor.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "ancestor:   {}", m.ancestor.as_deref().unwrap_or("-"));
    let decode = match (m.decode.host, m.decode.guest) {
        (true, true) => "host, guest",
        (true, false) => "host",
        (false, true) => "guest",
        (false, false) => "never",
    };
    let _ = writeln!(out, "decode:     {decode}");
    let _ = writeln!(
        out,
        "signatures: {}",
        if sigs.is_empty() {
            "-".to_string()
        } else {
            sigs.join("; ")
        }
    );
    let _ = writeln!(out, "x86-64:     {}", psabi_text(&m.psabi));
    let _ = writeln!(out, "removed:    {}", list_or_dash(&m.removed));
    let _ = writeln!(out, "added:      {}", list_or_dash(&m.added));
    let _ = writeln!(out, "features ({}):", m.features.len());
    for f in &m.features {
        let _ = writeln!(out, "  {f}");
    }
    out
}

/// `v3 (v4 needs avx512f avx512dq ...)`, `v4`, or `- (v1 needs ...)`.
pub(crate) fn psabi_text(p: &PsabiFields) -> String {
    match p.psabi_level.map_or(Some(PsabiLevel::V1), PsabiLevel::next) {
        Some(next) => format!(
            "{} ({next} needs {})",
            p.level_text(),
            p.psabi_missing.join(" ")
        ),
        None => p.level_text().to_string(),
    }
}

fn list_or_dash(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(" ")
    }
}
