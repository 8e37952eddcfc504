//! `cpumodel guest`: a guest CPU policy (Nova's settings, flavor and image
//! topology) turned into the guest `<cpu>` or QEMU's `-cpu` argument.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use cpumodel_cpudef::{decode, parse_host, CpuFeatures, CpuKind, DecodeOptions, HostInput, Mode};
use cpumodel_kvm::ViewSource;
use cpumodel_map::Database;
use cpumodel_policy::{
    build, parse_nova_conf, parse_specs, CpuMode, GuestDocument, HostCpu, PolicyInput,
};

use crate::error::{read, CliError};
use crate::shared::{detected_view, json_text, MapArgs, Output};
use crate::topology_args::TopologyArgs;

/// Arguments of `cpumodel guest`.
#[derive(Debug, clap::Args)]
pub struct GuestArgs {
    /// CPU mode: none, host-model, host-passthrough, custom or maximum
    /// (default: the nova.conf's, else host-model).
    #[arg(long)]
    pub mode: Option<String>,
    /// A CPU model for custom mode; repeat for an ordered list.
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
    /// An extra flag: +name or name requires it, -name disables it
    /// (case-insensitive; the last setting of a feature wins).
    #[arg(long = "flag", value_name = "F", allow_hyphen_values = true)]
    pub flags: Vec<String>,
    /// A feature the chosen model must have: the first listed model that
    /// has all of them is used.
    #[arg(long = "require-feature", value_name = "F")]
    pub required: Vec<String>,
    /// A flavor extra spec (hw:cpu_sockets=2, hw:cpu_max_threads=1,
    /// trait:HW_CPU_X86_AVX2=required, ...).
    #[arg(long = "spec", value_name = "KEY=VALUE")]
    pub specs: Vec<String>,
    /// An image property (hw_cpu_sockets=2, hw_cpu_max_cores=4, ...).
    #[arg(long = "image-prop", value_name = "KEY=VALUE")]
    pub image_props: Vec<String>,
    /// Check the policy against this host and resolve host-model from it:
    /// a <cpudata> dump, capabilities, a host <cpu>, /proc/cpuinfo, lscpu
    /// or a Firecracker template.
    #[arg(long, value_name = "FILE")]
    pub host: Option<PathBuf>,
    /// Read cpu_mode, cpu_models, cpu_model_extra_flags and virt_type from
    /// the [libvirt] section of this nova.conf; command-line values win.
    #[arg(long, value_name = "FILE")]
    pub nova_conf: Option<PathBuf>,
    /// The vCPU count and topology; with either, the <cpu> gets a
    /// <topology>.
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Xml)]
    pub format: Format,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

/// The formats of `guest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The libvirt <cpu> element.
    Xml,
    /// {cpu, mode, qemu} as JSON.
    Json,
    /// QEMU's -cpu argument.
    Qemu,
}

impl GuestArgs {
    /// Runs `cpumodel guest`.
    ///
    /// # Errors
    /// An invalid policy (one line naming the setting), unreadable or
    /// invalid `--host` and `--nova-conf` files.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let g = self;
        let conf = match &g.nova_conf {
            Some(path) => {
                let name = path.display().to_string();
                let conf = parse_nova_conf(&name, &read(path)?)?;
                for w in &conf.warnings {
                    crate::error::warn(w);
                }
                // The file's names, where they are used, are checked with
                // their line.
                let models_used =
                    g.models.is_empty() && g.mode.as_deref().is_none_or(|m| m == "custom");
                conf.check_names(db, &name, models_used, g.flags.is_empty())?;
                Some(conf)
            }
            None => None,
        };
        let mode = match (&g.mode, &conf) {
            (Some(m), _) => CpuMode::parse(m).ok_or_else(|| {
                CliError::Usage(format!(
                    "--mode {m}: unknown mode (expected none, host-model, host-passthrough, custom or maximum)"
                ))
            })?,
            (None, Some(c)) => c.effective_mode(),
            (None, None) => CpuMode::Cpu(Mode::HostModel),
        };
        let pick = |cli: &Vec<String>, conf_value: Option<&Vec<String>>| {
            if cli.is_empty() {
                conf_value.cloned().unwrap_or_default()
            } else {
                cli.clone()
            }
        };
        // Where the file sets the mode, Nova's start-up checks apply first.
        if let (None, Some(c), Some(path)) = (&g.mode, &conf, &g.nova_conf) {
            c.check_startup(&path.display().to_string())?;
        }
        // virt_type lxc or parallels with mode none: Nova writes no <cpu>
        // and reads no topology.
        if g.mode.is_none() && conf.as_ref().is_some_and(|c| !c.emits_cpu_element()) {
            return Ok(Output::ok(match self.format {
                Format::Xml | Format::Qemu => String::new(),
                Format::Json => "null\n".to_string(),
            }));
        }
        let specs =
            parse_specs(&g.specs, &g.image_props).map_err(cpumodel_policy::PolicyError::from)?;
        for w in &specs.warnings {
            crate::error::warn(w);
        }
        // Nova applies the file's flags only where it has a CPU mode.
        let conf_flags = conf
            .as_ref()
            .filter(|_| g.mode.is_none())
            .map(cpumodel_policy::NovaConf::effective_flags)
            .or_else(|| conf.as_ref().map(|c| c.extra_flags.clone()));
        let input = PolicyInput {
            mode,
            // The nova.conf's models belong to its custom mode: a --mode
            // other than custom given on the command line leaves them out.
            models: pick(
                &g.models,
                conf.as_ref()
                    .filter(|_| g.mode.is_none() || mode == CpuMode::Cpu(Mode::Custom))
                    .map(|c| &c.cpu_models),
            ),
            flags: pick(&g.flags, conf_flags.as_ref()),
            required: g.required.clone(),
            vcpus: g.topology.vcpus,
            specs,
            explicit: g.topology.explicit()?,
        };
        let host = match &g.host {
            Some(path) => Some(host_from_file(db, path)?),
            None if mode == CpuMode::Cpu(Mode::HostModel) => Some(live_host(db)?),
            None => None,
        };
        let cpu = build(db, &input, host.as_ref())?;

        Ok(Output::ok(match self.format {
            Format::Xml => cpu.to_cpu_def(db).to_xml(),
            Format::Qemu => format!("{}\n", cpu.qemu_arg(db)),
            Format::Json => json_text(&GuestDocument::new(db, &cpu)?),
        }))
    }
}

/// The host of `--host`: a dump is decoded (and keeps its features for
/// host-model), any other document gives its first CPU.
pub(crate) fn host_from_file(db: &Database, path: &Path) -> Result<HostCpu, CliError> {
    let name = path.display().to_string();
    match parse_host(db, &name, &crate::error::read_cpu_document(path)?)? {
        HostInput::Dump { features, .. } => {
            let def = decode(db, &features, &DecodeOptions::new(CpuKind::Host))
                .map_err(|source| CliError::Decode {
                    input: name,
                    source,
                })?
                .to_cpu_def(db, CpuKind::Host);
            Ok(HostCpu {
                def,
                features: Some(features),
            })
        }
        HostInput::Cpu(def) => Ok(HostCpu {
            def,
            features: None,
        }),
    }
}

/// This machine as guests see it: KVM's view when /dev/kvm is usable (as
/// `cpumodel host` shows), the processor's own CPUID otherwise.
pub(crate) fn live_host(db: &Database) -> Result<HostCpu, CliError> {
    let view = detected_view("guest")?;
    let input = match &view.source {
        ViewSource::Kvm { device } => format!("what KVM at {} offers", device.display()),
        ViewSource::Raw { .. } => "this machine's CPUID".to_string(),
    };
    let data = view.data;
    let features = CpuFeatures::from_data(db, &data).map_err(|source| CliError::Decode {
        input: input.clone(),
        source,
    })?;
    let def = decode(db, &features, &DecodeOptions::new(CpuKind::Host))
        .map_err(|source| CliError::Decode { input, source })?
        .to_cpu_def(db, CpuKind::Host);
    Ok(HostCpu {
        def,
        features: Some(features),
    })
}
