//! `cpumodel dump`: this machine's CPUID leaves (or what KVM can give a
//! guest) as a `<cpudata>` dump. Reads no model database: `--cpu-map` is
//! accepted (hidden) and never opened.

use std::path::PathBuf;

use cpumodel_cpudata::{format_cpudata, CpuDataDocument};
use cpumodel_kvm::machine::HOST_CPUID_AVAILABLE;
use cpumodel_kvm::MachineView;

use crate::error::CliError;
use crate::shared::{json_text, kvm_device, raw_view, Output, XmlFormat};

/// Arguments of `cpumodel dump`.
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Write what KVM can give a guest instead (KVM_GET_SUPPORTED_CPUID
    /// and the feature MSRs of /dev/kvm).
    #[arg(long)]
    pub kvm: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = XmlFormat::Xml)]
    pub format: XmlFormat,

    /// Accepted, hidden and ignored, for scripts that give every command
    /// the same --cpu-map: a dump is raw CPUID, so no model database is
    /// read and the directory is never opened.
    #[arg(long, value_name = "DIR", hide = true)]
    pub cpu_map: Option<PathBuf>,
}

impl DumpArgs {
    /// Runs `cpumodel dump`.
    ///
    /// # Errors
    /// No CPUID on this architecture, an unusable KVM device (with
    /// `--kvm`), an unwritable output file.
    pub fn run(&self) -> Result<Output, CliError> {
        if !self.kvm && !HOST_CPUID_AVAILABLE {
            return Err(CliError::Usage(
                "dump reads CPUID, which this processor architecture does not have".into(),
            ));
        }
        let data = if self.kvm {
            MachineView::kvm(&kvm_device())?
        } else {
            raw_view("dump")?
        }
        .data;
        let text = match self.format {
            XmlFormat::Json => json_text(&CpuDataDocument::new(&data)),
            XmlFormat::Xml => format_cpudata(&data),
        };
        match &self.output {
            Some(path) => {
                std::fs::write(path, &text).map_err(|source| CliError::File {
                    path: path.clone(),
                    action: "cannot write",
                    source,
                })?;
                Ok(Output::ok(String::new()))
            }
            None => Ok(Output::ok(text)),
        }
    }
}
