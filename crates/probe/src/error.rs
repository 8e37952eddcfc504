//! What can fail while probing.

use std::path::PathBuf;
use std::time::Duration;

use crate::image::TooManyQueries;
use crate::output::OutputError;

/// A probe could not produce what the guest saw.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The QEMU binary cannot be run.
    #[error("cannot run {}: {source} (install QEMU, e.g. apt-get install qemu-system-x86, or give --qemu PATH)", qemu.display())]
    QemuMissing {
        /// The binary.
        qemu: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// QEMU refused to start the guest (an unknown model or flag, an
    /// unusable accelerator): its message, on one line.
    #[error("QEMU refused -cpu {cpu}: {message}")]
    QemuRefused {
        /// The `-cpu` argument.
        cpu: String,
        /// QEMU's error lines, joined.
        message: String,
    },
    /// The guest did not finish in time; QEMU (or the domain) was stopped.
    #[error("the probe guest did not finish within {} s (-cpu {cpu}); QEMU was stopped", .limit.as_secs_f64())]
    Timeout {
        /// The `-cpu` argument.
        cpu: String,
        /// The limit.
        limit: Duration,
    },
    /// The guest's output is incomplete.
    #[error("-cpu {cpu}: {source}")]
    Output {
        /// The `-cpu` argument.
        cpu: String,
        /// What is wrong with it.
        #[source]
        source: OutputError,
    },
    /// The image cannot hold the queries.
    #[error(transparent)]
    Image(#[from] TooManyQueries),
    /// A temporary file could not be written or read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `virsh` cannot be run.
    #[error("cannot run {virsh}: {source} (install libvirt-clients)")]
    VirshMissing {
        /// The command.
        virsh: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// libvirt refused a request: `virsh`'s message on one line.
    #[error("libvirt ({uri}): virsh {action}: {message}")]
    Libvirt {
        /// The connection URI.
        uri: String,
        /// What was asked (`create`, `domstate`).
        action: &'static str,
        /// virsh's error lines, joined.
        message: String,
    },
    /// A process could not be waited for.
    #[error("{what}: {source}")]
    Process {
        /// The process.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
