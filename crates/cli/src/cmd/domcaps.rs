//! `cpumodel domcaps`: the CPU part of libvirt's domain capabilities,
//! from what /dev/kvm can give a guest.

use cpumodel_cpudef::{domain_cpu_caps, DomainCapsDocument};

use crate::error::CliError;
use crate::shared::{json_text, kvm_device, MapArgs, Output, XmlFormat};

/// Arguments of `cpumodel domcaps`.
#[derive(Debug, clap::Args)]
pub struct DomcapsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = XmlFormat::Xml)]
    pub format: XmlFormat,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

impl DomcapsArgs {
    /// Runs `cpumodel domcaps`.
    ///
    /// # Errors
    /// An unusable KVM device, KVM data no model fits.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let device = kvm_device();
        let view = cpumodel_kvm::MachineView::kvm(&device)?;
        let caps = domain_cpu_caps(db, &view.data).map_err(|source| CliError::Decode {
            input: format!("KVM at {}", device.display()),
            source,
        })?;
        Ok(Output::ok(match self.format {
            XmlFormat::Json => json_text(&DomainCapsDocument::new(&caps)),
            XmlFormat::Xml => caps.to_xml(),
        }))
    }
}
