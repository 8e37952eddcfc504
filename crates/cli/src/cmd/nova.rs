//! `cpumodel nova`: OpenStack Nova's libvirt driver on a compute host.
//!
//! - `nova check --nova-conf FILE [--host FILE]`: would nova-compute start
//!   with this `[libvirt]` CPU configuration? Exit 0 when it would, 1 with
//!   Nova's exception and message (on one line) and the cause when not.
//! - `nova traits HOST [--nova-conf FILE]`: the `HW_CPU_X86_*` traits Nova
//!   reports to Placement for the host.
//!
//! The rules are in `cpumodel-nova`; this file reads the files and prints.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use cpumodel_map::Database;
use cpumodel_nova::{reported_traits, startup_check};
use cpumodel_policy::{parse_nova_conf, NovaConf};
use serde::Serialize;

use crate::cmd::guest::{host_from_file, live_host};
use crate::error::{read, CliError};
use crate::shared::{json_text, MapArgs, Output, TextFormat};

/// Arguments of `cpumodel nova`.
#[derive(Debug, clap::Args)]
pub struct NovaArgs {
    /// What to ask.
    #[command(subcommand)]
    pub command: NovaCommand,
}

/// The `nova` subcommands.
#[derive(Debug, Subcommand)]
pub enum NovaCommand {
    /// Would nova-compute start with this nova.conf on this host? Follows
    /// Nova's start-up check of cpu_mode, cpu_models and
    /// cpu_model_extra_flags (model names against libvirt's models, each
    /// model with the flags compared with the host CPU). Exit 0 when it
    /// would start, 1 when not (with Nova's message and the cause).
    Check(CheckArgs),

    /// The HW_CPU_X86_* traits Nova's libvirt driver reports to Placement
    /// for HOST, one per line (sorted).
    Traits(TraitsArgs),
}

/// Arguments of `cpumodel nova check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The nova.conf whose [libvirt] cpu_mode, cpu_models,
    /// cpu_model_extra_flags and virt_type are checked.
    #[arg(long, value_name = "FILE")]
    pub nova_conf: PathBuf,
    /// The host: a <cpudata> dump (best from `cpumodel dump --kvm`, what the
    /// hypervisor offers), capabilities, a host <cpu> or Nova's cpu_info
    /// JSON. Default: this machine, as guests see it.
    #[arg(long, value_name = "FILE")]
    pub host: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
    /// The model database (libvirt's models and features).
    #[command(flatten)]
    pub map: MapArgs,
}

/// Arguments of `cpumodel nova traits`.
#[derive(Debug, clap::Args)]
pub struct TraitsArgs {
    /// The host: a <cpudata> dump, capabilities, a host <cpu> or Nova's
    /// cpu_info JSON.
    #[arg(value_name = "HOST")]
    pub host: PathBuf,
    /// A nova.conf whose [libvirt] settings choose the features (default:
    /// none, which means host-model with virt_type kvm).
    #[arg(long, value_name = "FILE")]
    pub nova_conf: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

/// The JSON of `nova traits`.
#[derive(Serialize)]
struct TraitsDocument {
    /// The traits, sorted.
    traits: Vec<&'static str>,
}

impl NovaArgs {
    /// Runs `cpumodel nova`.
    ///
    /// # Errors
    /// Unreadable or invalid inputs (nova.conf, host).
    pub fn run(&self) -> Result<Output, CliError> {
        match &self.command {
            NovaCommand::Check(a) => a.run(),
            NovaCommand::Traits(a) => a.run(),
        }
    }
}

/// Reads the `[libvirt]` section of a nova.conf.
fn read_conf(path: &Path) -> Result<NovaConf, CliError> {
    Ok(parse_nova_conf(&path.display().to_string(), &read(path)?)?)
}

/// The host CPU of `--host`, or this machine.
fn host_cpu(db: &Database, host: Option<&Path>) -> Result<cpumodel_cpudef::CpuDef, CliError> {
    Ok(match host {
        Some(path) => host_from_file(db, path)?.def,
        None => live_host(db)?.def,
    })
}

/// Nova's message on one line: its blank lines become single spaces.
fn joined(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl CheckArgs {
    /// Runs `cpumodel nova check`: exit 1 when nova-compute would not start.
    ///
    /// # Errors
    /// Unreadable or invalid nova.conf and host files.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let conf = read_conf(&self.nova_conf)?;
        let host = host_cpu(db, self.host.as_deref())?;
        let check = startup_check(db, &conf, &host)?;
        let code = u8::from(!check.starts);
        let text = match self.format {
            TextFormat::Json => json_text(&check),
            TextFormat::Text => {
                let mut out = String::new();
                match (&check.exception, &check.message) {
                    (Some(exception), Some(message)) => {
                        let _ = writeln!(
                            out,
                            "nova-compute would not start: {exception}: {}",
                            joined(message)
                        );
                        let _ = writeln!(out, "cause: {}", check.note);
                    }
                    _ => {
                        let _ = writeln!(out, "nova-compute would start: {}", check.note);
                    }
                }
                out
            }
        };
        Ok(Output { text, code })
    }
}

impl TraitsArgs {
    /// Runs `cpumodel nova traits`.
    ///
    /// # Errors
    /// Unreadable or invalid host and nova.conf files, a cpu_models entry
    /// libvirt does not know.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let conf = match &self.nova_conf {
            Some(path) => read_conf(path)?,
            // An empty configuration: Nova's defaults.
            None => parse_nova_conf("nova.conf", "")?,
        };
        let host = host_cpu(db, Some(&self.host))?;
        let traits = reported_traits(db, &conf, &host)?;
        Ok(Output::ok(match self.format {
            TextFormat::Json => json_text(&TraitsDocument { traits }),
            TextFormat::Text => traits.iter().map(|t| format!("{t}\n")).collect(),
        }))
    }
}
