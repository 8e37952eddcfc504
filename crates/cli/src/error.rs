//! The one error type of the binary (every library error, plus file
//! access), and the one-line form of clap's usage errors.
//!
//! Every error cpumodel reports is one line on stderr,
//! `cpumodel: error: ...`, with exit code 2 and nothing on stdout, so a
//! script can show it as it is. clap's own rendering of a usage error spans
//! several lines (the message, a tip, the usage, a pointer to `--help`);
//! [`usage_line`] keeps its message and folds clap's suggestion or list of
//! valid values into the same line.

use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Anything that makes a command fail (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read or written.
    #[error("{}: {action}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// `cannot read` or `cannot write`.
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A CPU map could not be loaded.
    #[error(transparent)]
    Map(#[from] cpumodel_map::LoadMapError),
    /// A name is unknown.
    #[error(transparent)]
    Name(#[from] cpumodel_map::UnknownName),
    /// An XML input is malformed or invalid.
    #[error(transparent)]
    Input(#[from] cpumodel_cpudef::InputError),
    /// The KVM device could not be probed.
    #[error(transparent)]
    Kvm(#[from] cpumodel_kvm::KvmProbeError),
    /// The KVM guest of `verify` could not run.
    #[error(transparent)]
    KvmRun(#[from] cpumodel_kvm::KvmRunError),
    /// QMP replies are malformed or incomplete.
    #[error(transparent)]
    Qmp(#[from] cpumodel_qemu::QmpError),
    /// Decoding failed; the string names the input.
    #[error("{input}: {source}")]
    Decode {
        /// The input's name.
        input: String,
        /// The cause.
        #[source]
        source: cpumodel_cpudef::DecodeError,
    },
    /// A topology cannot exist.
    #[error(transparent)]
    Topology(#[from] cpumodel_cpudef::TopologyError),
    /// A guest CPU policy is invalid.
    #[error(transparent)]
    Policy(#[from] cpumodel_policy::PolicyError),
    /// A nova.conf is invalid.
    #[error(transparent)]
    NovaConf(#[from] cpumodel_policy::NovaConfError),
    /// A document is not a host CPU the fleet can store.
    #[error(transparent)]
    Report(#[from] cpumodel_fleet::ReportError),
    /// A fleet question cannot be answered.
    #[error(transparent)]
    Plan(#[from] cpumodel_fleet::PlanError),
    /// The fleet store failed.
    #[error(transparent)]
    Store(#[from] cpumodel_store::StoreError),
    /// The probe guest could not run.
    #[error(transparent)]
    Probe(#[from] cpumodel_probe::ProbeError),
    /// The request cannot be served as asked.
    #[error("{0}")]
    Usage(String),
}

/// Reads a whole file, naming it on failure.
pub fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::File {
        path: path.to_path_buf(),
        action: "cannot read",
        source,
    })
}

/// The one-line message of a clap usage error (without the `cpumodel:
/// error: ` prefix): clap's first line, the missing arguments when they
/// are what is wrong, and clap's closest valid value, argument or
/// subcommand ("did you mean") or the list of valid values.
pub fn usage_line(e: &clap::Error) -> String {
    let strings = |kind: ContextKind| -> Vec<String> {
        match e.get(kind) {
            Some(ContextValue::String(s)) => vec![s.clone()],
            Some(ContextValue::Strings(v)) => v.clone(),
            _ => Vec::new(),
        }
    };
    let quoted = |v: &[String]| {
        v.iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    // A bad topology count is the same one line in every command.
    if let Some(message) = crate::topology_args::one_line_error(e) {
        return message;
    }
    let mut line = match e.kind() {
        ErrorKind::MissingRequiredArgument => format!(
            "missing required argument {}",
            strings(ContextKind::InvalidArg).join(", ")
        ),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            "no command given; see 'cpumodel --help'".to_string()
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        }
    };
    let valid = strings(ContextKind::ValidValue);
    if !valid.is_empty() {
        line.push_str(&format!(" (possible values: {})", valid.join(", ")));
    }
    let suggested: Vec<String> = [
        ContextKind::SuggestedSubcommand,
        ContextKind::SuggestedArg,
        ContextKind::SuggestedValue,
    ]
    .into_iter()
    .flat_map(strings)
    .collect();
    if !suggested.is_empty() {
        line.push_str(&format!("; did you mean {}?", quoted(&suggested)));
    }
    if e.kind() == ErrorKind::MissingRequiredArgument {
        if let Some(usage) = e.get(ContextKind::Usage) {
            let usage = usage.to_string();
            let usage = usage.trim().trim_start_matches("Usage:").trim();
            line.push_str(&format!(" (usage: {usage})"));
        }
    }
    line
}
