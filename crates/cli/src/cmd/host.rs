//! `cpumodel host`: this machine's CPU model and the host-model guest
//! `<cpu>`, from the hypervisor view when KVM is usable, the raw CPUID view
//! otherwise (the output says which, and why).

use clap::ValueEnum;
use cpumodel_cpudef::{
    cpu_psabi, decode, CpuDocument, CpuFeatures, CpuKind, DecodeOptions, HostDocument, NovaCpuInfo,
    NovaTopology,
};
use cpumodel_kvm::ViewSource;
use cpumodel_map::PsabiTable;

use crate::error::CliError;
use crate::names::NamesArgs;
use crate::shared::{comment_safe, detected_view, json_text, raw_view, MapArgs, Output};

/// The formats of `host`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The host CPU and the host-model guest CPU as libvirt XML.
    Xml,
    /// The same as JSON, with the view.
    Json,
    /// The cpu_info JSON OpenStack Nova stores for this compute node: arch,
    /// model, vendor, topology (from sysfs) and every feature.
    NovaCpuInfo,
}

/// Arguments of `cpumodel host`.
#[derive(Debug, clap::Args)]
pub struct HostArgs {
    /// Show the raw CPUID view even when KVM is usable.
    #[arg(long)]
    pub raw: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Xml)]
    pub format: Format,
    /// Feature names.
    #[command(flatten)]
    pub names: NamesArgs,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

impl HostArgs {
    /// Runs `cpumodel host`.
    ///
    /// # Errors
    /// No CPUID on this architecture (and no KVM), data no model fits.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        // The hypervisor view unless asked for raw, or unless KVM is
        // unusable (then say why).
        let machine = if self.raw {
            raw_view("host")?
        } else {
            detected_view("host")?
        };
        let data = machine.data;
        let (device, kvm_unusable, comment, input, host_model) = match machine.source {
            ViewSource::Kvm { device } => {
                let input = format!("KVM at {}", device.display());
                let caps = cpumodel_cpudef::domain_cpu_caps(db, &data).map_err(|source| {
                    CliError::Decode {
                        input: input.clone(),
                        source,
                    }
                })?;
                let comment = format!(
                    "hypervisor: what KVM at {} can give a guest",
                    comment_safe(&device.display().to_string())
                );
                let device = Some(device.display().to_string());
                (device, None, comment, input, Some(caps.host_model))
            }
            ViewSource::Raw { kvm_unusable } => {
                let reason = kvm_unusable.map(|e| e.reason());
                let comment = match &reason {
                    Some(r) => format!(
                        "raw CPUID of this machine (KVM not usable: {})",
                        comment_safe(r)
                    ),
                    None => "raw CPUID of this machine".to_string(),
                };
                let input = "this machine's CPUID".to_string();
                (None, reason, comment, input, None)
            }
        };
        let features = CpuFeatures::from_data(db, &data).map_err(|source| CliError::Decode {
            input: input.clone(),
            source,
        })?;
        let host = decode(db, &features, &DecodeOptions::new(CpuKind::Host))
            .map_err(|source| CliError::Decode {
                input: input.clone(),
                source,
            })?
            .to_cpu_def(db, CpuKind::Host);
        let guest = match host_model {
            Some(cpu) => cpu,
            None => decode(db, &features, &DecodeOptions::new(CpuKind::Guest))
                .map_err(|source| CliError::Decode {
                    input: input.clone(),
                    source,
                })?
                .to_cpu_def(db, CpuKind::Guest),
        };
        let table = PsabiTable::new(db);
        Ok(Output::ok(match self.format {
            Format::NovaCpuInfo => {
                let t = cpumodel_kvm::host_topology();
                let topology = NovaTopology {
                    cells: t.cells,
                    cores: t.cores,
                    sockets: t.sockets,
                    threads: t.threads,
                };
                let info = NovaCpuInfo::from_host(db, &host, topology)
                    .map_err(|e| CliError::Usage(format!("{input}: {e}")))?;
                json_text(&info)
            }
            Format::Json => {
                let mut host = CpuDocument::new(db, &table, host)?;
                let mut guest = CpuDocument::new(db, &table, guest)?;
                self.names.rename_document(db, &mut host);
                self.names.rename_document(db, &mut guest);
                json_text(&match device {
                    Some(device) => HostDocument::hypervisor(device, host, guest),
                    None => HostDocument::raw(kvm_unusable, host, guest),
                })
            }
            Format::Xml => {
                let level = |cpu| -> Result<String, CliError> {
                    Ok(cpu_psabi(db, &table, cpu)?.map_or(String::new(), |p| {
                        format!(" (x86-64 level: {})", p.level_text())
                    }))
                };
                let (host_level, guest_level) = (level(&host)?, level(&guest)?);
                let (mut host, mut guest) = (host, guest);
                self.names.rename(db, &mut host);
                self.names.rename(db, &mut guest);
                let mut out = format!("<!-- view: {comment} -->\n<!-- host CPU{host_level} -->\n");
                out.push_str(&host.to_xml());
                out.push_str(&format!("<!-- host-model guest CPU{guest_level} -->\n"));
                out.push_str(&guest.to_xml());
                out
            }
        }))
    }
}
