//! The one error type of the binary: every library error, plus file access.

use std::path::{Path, PathBuf};

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
