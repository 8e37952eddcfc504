//! `cpumodel labels HOST`: the CPU labels KubeVirt's node-labeller would
//! put on the node, as `key=value` lines or a JSON object.

use std::path::{Path, PathBuf};

use cpumodel_cpudef::{
    domain_cpu_caps_of, looks_like_cpu_info, parse_host, parse_known_cpus, CpuFeatures, HostInput,
    Policy,
};
use cpumodel_kubevirt::{
    facts_from_caps, node_labels, read_domain_capabilities, read_supported_features, KubevirtError,
    LabelOptions, NodeCpuFacts,
};
use cpumodel_map::Database;

use crate::error::{read_cpu_document, CliError};
use crate::shared::{json_text, MapArgs, Output, TextFormat};

/// Arguments of `cpumodel labels`.
#[derive(Debug, clap::Args)]
pub struct LabelsArgs {
    /// The node: `virsh domcapabilities` output (read as KubeVirt reads
    /// it), or any host document cpumodel reads (a <cpudata> dump,
    /// capabilities, a host <cpu>, Nova's cpu_info), whose domain
    /// capabilities are computed.
    #[arg(value_name = "HOST")]
    pub host: PathBuf,
    /// The node's supported features: `virsh hypervisor-cpu-baseline
    /// --features` output, as KubeVirt's node-labeller.sh writes it
    /// (supported_features.xml). Without it, a domcapabilities document's
    /// host-model CPU expanded; for other documents, every feature the host
    /// has.
    #[arg(long, value_name = "FILE")]
    pub supported_features: Option<PathBuf>,
    /// KubeVirt's obsoleteCPUModels, comma-separated (replaces KubeVirt's
    /// default list; an empty value obsoletes nothing).
    #[arg(long, value_name = "LIST")]
    pub obsolete_cpu_models: Option<String>,
    /// Output format: `key=value` lines, or one JSON object.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

impl LabelsArgs {
    /// Runs `cpumodel labels`.
    ///
    /// # Errors
    /// Unreadable or invalid documents, a host no model fits.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let name = self.host.display().to_string();
        let text = read_cpu_document(&self.host)?;
        let mut facts = node_facts(db, &name, &text)?;
        if let Some(path) = &self.supported_features {
            facts.supported_features = supported_features(path)?;
        }
        let opts = match &self.obsolete_cpu_models {
            Some(list) => LabelOptions {
                obsolete: list
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            },
            None => LabelOptions::default(),
        };
        let labels = node_labels(&facts, &opts);
        Ok(Output::ok(match self.format {
            TextFormat::Json => json_text(&labels),
            TextFormat::Text => labels.iter().map(|(k, v)| format!("{k}={v}\n")).collect(),
        }))
    }
}

/// The node-labeller's facts of the document `text`.
fn node_facts(db: &Database, name: &str, text: &str) -> Result<NodeCpuFacts, CliError> {
    if !looks_like_cpu_info(text) {
        match read_domain_capabilities(name, text) {
            Ok(mut facts) => {
                facts.supported_features = host_model_features(db, name, text, &facts)?;
                return Ok(facts);
            }
            Err(KubevirtError::NotDomainCapabilities { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let decode_error = |source| CliError::Decode {
        input: name.to_string(),
        source,
    };
    let features = match parse_host(db, name, text)? {
        HostInput::Dump { data, .. } => CpuFeatures::from_data(db, &data).map_err(decode_error)?,
        HostInput::Cpu(cpu) => {
            let resolved = cpumodel_cpudef::ops::ResolvedCpu::new(db, &cpu)?;
            let vendor = match &cpu.vendor {
                Some(v) => db.find_vendor(v),
                None => resolved.model.and_then(|m| db.model(m).vendor),
            };
            CpuFeatures::from_set(vendor, resolved.all)
        }
    };
    let caps = domain_cpu_caps_of(db, &features).map_err(decode_error)?;
    let supported = db
        .feature_names(&features.full)
        .map(str::to_string)
        .collect();
    Ok(facts_from_caps(&caps, supported))
}

/// What `virsh hypervisor-cpu-baseline --features` gives for the
/// document's host-model CPU: every feature of the CPU expanded (its
/// model's and the required ones, without the disabled ones).
fn host_model_features(
    db: &Database,
    name: &str,
    text: &str,
    facts: &NodeCpuFacts,
) -> Result<Vec<String>, CliError> {
    if facts.host_model.is_none() {
        return Ok(Vec::new());
    }
    let cpu = parse_known_cpus(db, name, text)?.remove(0).cpu;
    let expanded =
        cpumodel_cpudef::expand(db, &cpu).map_err(|e| CliError::Usage(format!("{name}: {e}")))?;
    Ok(expanded
        .features
        .into_iter()
        .filter(|f| f.policy.unwrap_or(Policy::Require) == Policy::Require)
        .map(|f| f.name)
        .collect())
}

fn supported_features(path: &Path) -> Result<Vec<String>, CliError> {
    let text = crate::error::read(path)?;
    Ok(read_supported_features(&path.display().to_string(), &text)?)
}
