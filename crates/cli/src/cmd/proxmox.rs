//! `cpumodel proxmox GUEST --name NAME`: a guest `<cpu>` as a custom CPU
//! model of Proxmox VE's `/etc/pve/virtual-guest/cpu-models.conf`.

use std::path::PathBuf;

use cpumodel_policy::proxmox::ProxmoxModel;

use crate::error::CliError;
use crate::shared::{first_cpu, json_text, MapArgs, Output, TextFormat};

/// Arguments of `cpumodel proxmox`.
#[derive(Debug, clap::Args)]
pub struct ProxmoxArgs {
    /// The guest CPU: any document holding a <cpu> (a Proxmox VM config or
    /// cpu-models.conf too).
    #[arg(value_name = "GUEST")]
    pub guest: PathBuf,
    /// The custom model's name (VMs use it as `cpu: custom-NAME`).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The physical address bits reported to the guest (8 to 64, or host).
    #[arg(long, value_name = "BITS")]
    pub phys_bits: Option<String>,
    /// Output format: the cpu-models.conf section, or JSON.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

impl ProxmoxArgs {
    /// Runs `cpumodel proxmox`.
    ///
    /// # Errors
    /// An unreadable or invalid guest, one without a Proxmox form, an
    /// invalid name or phys-bits.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let cpu = first_cpu(db, &self.guest)?;
        let model = ProxmoxModel::from_cpu(db, &self.name, &cpu, self.phys_bits.as_deref())
            .map_err(|e| CliError::Usage(format!("{}: {e}", self.guest.display())))?;
        Ok(Output::ok(match self.format {
            TextFormat::Text => model.to_conf(),
            TextFormat::Json => json_text(&model),
        }))
    }
}
