//! `cpumodel map diff OLD NEW`: what changed between two CPU maps, each an
//! embedded libvirt release or a cpu_map directory.

use std::fmt::Write as _;
use std::path::Path;

use cpumodel_cpudef::{map_changes, MapChanges};
use cpumodel_map::{load_cpu_map, Database, ModelChange, Release};

use crate::error::CliError;
use crate::shared::{json_text, Output, TextFormat};

/// Arguments of `cpumodel map`.
#[derive(Debug, clap::Args)]
pub struct MapCommandArgs {
    /// What to do with the maps.
    #[command(subcommand)]
    pub command: MapCommand,
}

/// Subcommands of `cpumodel map`.
#[derive(Debug, clap::Subcommand)]
pub enum MapCommand {
    /// Models and features added, removed and renamed from OLD to NEW, each
    /// model's changes, and which models' decode results can change.
    Diff(DiffArgs),
}

/// Arguments of `cpumodel map diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
    /// The older map: a release (9.0, 10.7, upstream) or a cpu_map directory.
    #[arg(value_name = "OLD")]
    pub old: String,
    /// The newer map: a release or a cpu_map directory.
    #[arg(value_name = "NEW")]
    pub new: String,
}

impl MapCommandArgs {
    /// Runs `cpumodel map`.
    ///
    /// # Errors
    /// An unknown release or a directory that is no cpu_map.
    pub fn run(&self) -> Result<Output, CliError> {
        match &self.command {
            MapCommand::Diff(a) => a.run(),
        }
    }
}

impl DiffArgs {
    fn run(&self) -> Result<Output, CliError> {
        let old = open_map(&self.old)?;
        let new = open_map(&self.new)?;
        let diff = map_changes(&old, &new);
        Ok(Output::ok(match self.format {
            TextFormat::Json => json_text(&diff),
            TextFormat::Text => text(&diff),
        }))
    }
}

/// A map named on the command line: an existing directory is a cpu_map,
/// anything else a release name.
pub fn open_map(spec: &str) -> Result<Database, CliError> {
    if Path::new(spec).is_dir() {
        return Ok(load_cpu_map(Path::new(spec))?);
    }
    let release = Release::find(spec)
        .map_err(|e| CliError::Usage(format!("{e} (or give a cpu_map directory)")))?;
    Ok(release.database())
}

/// One section: a title with its count, then one indented line per item.
fn section(out: &mut String, title: &str, items: &[String]) {
    let _ = writeln!(out, "{title}: {}", items.len());
    for i in items {
        let _ = writeln!(out, "  {i}");
    }
}

fn text(changes: &MapChanges) -> String {
    let d = &changes.map;
    let mut out = String::new();
    section(&mut out, "models added", &d.models_added);
    section(&mut out, "models removed", &d.models_removed);
    section(&mut out, "features added", &d.features_added);
    section(&mut out, "features removed", &d.features_removed);
    let renamed: Vec<String> = d
        .features_renamed
        .iter()
        .map(|r| format!("{} -> {}", r.old, r.new))
        .collect();
    section(&mut out, "features renamed", &renamed);
    section(&mut out, "features redefined", &d.features_redefined);
    let changed: Vec<String> = d.models_changed.iter().map(model_line).collect();
    section(&mut out, "models changed", &changed);
    let decode: Vec<String> = changes
        .decode_can_change
        .iter()
        .map(|c| {
            let mut parts = c.reasons.clone();
            if !c.now_decodes_as.is_empty() {
                parts.push(format!("now decodes as {}", c.now_decodes_as.join(" ")));
            }
            format!("{}: {}", c.model, parts.join("; "))
        })
        .collect();
    section(&mut out, "decode can change", &decode);
    out
}

/// `Name: +a -b; added list +c; removed list -d; signatures 6/94 -> 6/94
/// 6/78; decode host,guest -> host; vendor …; ancestor …`.
fn model_line(c: &ModelChange) -> String {
    let mut parts = Vec::new();
    let signed: Vec<String> = c
        .features_added
        .iter()
        .map(|f| format!("+{f}"))
        .chain(c.features_removed.iter().map(|f| format!("-{f}")))
        .collect();
    if !signed.is_empty() {
        parts.push(signed.join(" "));
    }
    if !c.added_list.is_empty() {
        parts.push(format!("added list {}", c.added_list.join(" ")));
    }
    if !c.removed_list.is_empty() {
        parts.push(format!("removed list {}", c.removed_list.join(" ")));
    }
    if let Some([o, n]) = &c.signatures {
        let sigs = |s: &[cpumodel_map::SignatureInfo]| {
            let v: Vec<String> = s
                .iter()
                .map(|s| match &s.steppings {
                    None => format!("{}/{}", s.family, s.model),
                    Some(st) => {
                        let st: Vec<String> = st.iter().map(u32::to_string).collect();
                        format!("{}/{}/{}", s.family, s.model, st.join(","))
                    }
                })
                .collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(" ")
            }
        };
        parts.push(format!("signatures {} -> {}", sigs(o), sigs(n)));
    }
    if let Some([o, n]) = &c.decode {
        let uses = |u: &cpumodel_map::DecodeUse| match (u.host, u.guest) {
            (true, true) => "host,guest",
            (true, false) => "host",
            (false, true) => "guest",
            (false, false) => "none",
        };
        parts.push(format!("decode {} -> {}", uses(o), uses(n)));
    }
    let or_none = |s: &Option<String>| s.clone().unwrap_or_else(|| "none".into());
    if let Some([o, n]) = &c.vendor {
        parts.push(format!("vendor {} -> {}", or_none(o), or_none(n)));
    }
    if let Some([o, n]) = &c.ancestor {
        parts.push(format!("ancestor {} -> {}", or_none(o), or_none(n)));
    }
    format!("{}: {}", c.name, parts.join("; "))
}
