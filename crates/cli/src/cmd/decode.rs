//! `cpumodel decode`: a `<cpudata>` dump, or QEMU's QMP replies, as a CPU
//! model plus features.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use cpumodel_cpudef::{
    decode, read_host_data, CpuDef, CpuFeatures, CpuKind, DecodeOptions, Scoring,
};
use cpumodel_map::Database;
use cpumodel_qemu::QemuNames;

use crate::error::{read, CliError};
use crate::names::{NamesArgs, PartialNotes};
use crate::shared::{MapArgs, Output, XmlFormat};

/// Arguments of `cpumodel decode`.
#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// Decode as a guest CPU (features may be disabled) instead of a host CPU.
    #[arg(long)]
    pub guest: bool,

    /// Only consider the models in this file of QEMU QMP replies
    /// (query-cpu-definitions); their unavailable features count as missing.
    #[arg(long, value_name = "FILE")]
    pub qemu_models: Option<PathBuf>,

    /// Compute the host-model CPU from QEMU QMP replies (the
    /// "model-expansion" reply of `host`, restricted by "definitions"
    /// when present) instead of a dump.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["qemu_models", "cpudata"])]
    pub qemu_replies: Option<PathBuf>,

    /// Also match QEMU feature names through the CPU map's qemu aliases,
    /// whatever the release does (libvirt 10.8 and later always do; 10.7
    /// and older do not).
    #[arg(long)]
    pub qemu_aliases: bool,

    /// Candidate scoring.
    #[arg(long, value_enum, default_value = "libvirt")]
    pub scoring: ScoringArg,

    /// Output format.
    #[arg(long, value_enum, default_value_t = XmlFormat::Xml)]
    pub format: XmlFormat,

    /// Feature names.
    #[command(flatten)]
    pub names: NamesArgs,

    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,

    /// The <cpudata> dump, or /proc/cpuinfo, lscpu (text or --json), a
    /// Firecracker CPU template or fingerprint (which show only some bits:
    /// the output names the features they cannot show).
    #[arg(value_name = "CPUDATA.xml", required_unless_present = "qemu_replies")]
    pub cpudata: Option<PathBuf>,
}

/// Candidate scoring in decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScoringArg {
    /// Exactly libvirt's scoring, quirk included (default).
    Libvirt,
    /// Penalise every disabled feature, as libvirt's comments intend.
    Intended,
}

impl DecodeArgs {
    /// Runs `cpumodel decode`.
    ///
    /// # Errors
    /// Unreadable or invalid inputs, and data no model fits.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let names = if self.qemu_aliases || crate::shared::release().behaviour.qemu_aliases {
            QemuNames::WithAliases
        } else {
            QemuNames::Libvirt
        };
        let scoring = match self.scoring {
            ScoringArg::Libvirt => Scoring::Libvirt,
            ScoringArg::Intended => Scoring::Intended,
        };
        let kind = if self.guest {
            CpuKind::Guest
        } else {
            CpuKind::Host
        };
        let (cpu, notes) = match (&self.qemu_replies, &self.cpudata) {
            (Some(replies), _) => (
                decode_qemu_replies(db, replies, kind, names, scoring)?,
                None,
            ),
            (None, Some(file)) => decode_file(
                db,
                file,
                kind,
                self.qemu_models.as_deref(),
                names,
                scoring,
                &self.names,
            )?,
            (None, None) => {
                return Err(CliError::Usage(
                    "decode needs a CPUDATA.xml file or --qemu-replies".into(),
                ))
            }
        };
        self.names.render(db, &cpu, self.format, notes.as_ref())
    }
}

fn decode_options<'a>(kind: CpuKind, scoring: Scoring) -> DecodeOptions<'a> {
    let mut opts = DecodeOptions::new(kind);
    opts.scoring = scoring;
    opts
}

fn decode_file(
    db: &Database,
    file: &Path,
    kind: CpuKind,
    qemu_models: Option<&Path>,
    names: QemuNames,
    scoring: Scoring,
    print: &NamesArgs,
) -> Result<(CpuDef, Option<PartialNotes>), CliError> {
    let text = crate::error::read_cpu_document(file)?;
    let input = file.display().to_string();
    let host = read_host_data(db, &input, &text)?;
    let hv = match qemu_models {
        Some(path) => {
            let name = path.display().to_string();
            let replies = cpumodel_qemu::parse_replies(&name, &read(path)?)?;
            let defs = replies
                .definitions
                .ok_or(cpumodel_qemu::QmpError::MissingReply {
                    file: name,
                    id: "definitions",
                })?;
            Some(cpumodel_qemu::hypervisor_models(db, &defs, names))
        }
        None => None,
    };
    let mut opts = decode_options(kind, scoring);
    opts.hypervisor = hv.as_ref();
    let decoded = decode(db, &host.features, &opts).map_err(|source| CliError::Decode {
        input: input.clone(),
        source,
    })?;
    // A partial source: what it could not show, and what the CPU would be
    // with all of that present.
    let notes = host.partial.as_ref().map(|source| {
        let upper = decode(db, &host.features.assuming_undetermined(), &opts).ok();
        PartialNotes::new(db, print, source, &host.features, &decoded, upper.as_ref())
    });
    let mut cpu = decoded.to_cpu_def(db, kind);
    if host.partial.is_some() && host.features.signature == 0 {
        // A flags line without family and model shows no signature.
        cpu.signature = None;
    }
    Ok((cpu, notes))
}

fn decode_qemu_replies(
    db: &Database,
    file: &Path,
    kind: CpuKind,
    names: QemuNames,
    scoring: Scoring,
) -> Result<CpuDef, CliError> {
    let input = file.display().to_string();
    let replies = cpumodel_qemu::parse_replies(&input, &read(file)?)?;
    let exp = replies
        .expansion
        .as_ref()
        .ok_or(cpumodel_qemu::QmpError::MissingReply {
            file: input.clone(),
            id: "model-expansion",
        })?;
    let data = cpumodel_qemu::expansion_to_data(db, &input, exp, names)?;
    let features = CpuFeatures::from_data(db, &data).map_err(|source| CliError::Decode {
        input: format!("{input}: reply 'model-expansion'"),
        source,
    })?;
    let hv = replies
        .definitions
        .as_deref()
        .map(|d| cpumodel_qemu::hypervisor_models(db, d, names));
    let mut opts = decode_options(kind, scoring);
    opts.hypervisor = hv.as_ref();
    let decoded =
        decode(db, &features, &opts).map_err(|source| CliError::Decode { input, source })?;
    Ok(decoded.to_cpu_def(db, kind))
}
