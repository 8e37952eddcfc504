//! The guest CPU policy: what an operator configures, validated before any
//! guest starts, and resolved into the CPU the guest will see.
//!
//! The rules follow OpenStack Nova's libvirt driver (`cpu_mode`,
//! `cpu_models`, `cpu_model_extra_flags`, required CPU traits) with two
//! deterministic choices where Nova leaves the outcome open:
//!
//! - a flag given several times (`+x` and `-x`) takes the **last** setting
//!   (Nova collects flags in an unordered set);
//! - features are listed in CPU map order.

use std::fmt;

use cpumodel_cpudef::{
    compare, decode, CpuDef, CpuFeatures, CpuKind, DecodeOptions, Fallback, Match, Mode, Policy,
    Topology,
};
use cpumodel_map::{Database, FeatureId, FeatureSet, ModelId, UnknownName};

use crate::specs::{ParsedSpecs, SpecError};
use crate::topology::{self, NovaTopologyError};

/// The CPU mode of a policy: Nova's `cpu_mode`, which is either `none` (no
/// `<cpu>` element: the hypervisor's default CPU) or one of libvirt's
/// `<cpu mode=...>` values (Nova's `host-model`, `host-passthrough` and
/// `custom`, plus libvirt's `maximum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuMode {
    /// No CPU element: the hypervisor's default CPU.
    None,
    /// A `<cpu>` element in this mode.
    Cpu(Mode),
}

impl CpuMode {
    /// Parses Nova's / libvirt's spelling: `none` or a [`Mode`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(CpuMode::None),
            _ => Mode::parse(s).map(CpuMode::Cpu),
        }
    }

    /// The spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CpuMode::None => "none",
            CpuMode::Cpu(mode) => mode.as_str(),
        }
    }
}

impl From<Mode> for CpuMode {
    fn from(mode: Mode) -> Self {
        CpuMode::Cpu(mode)
    }
}

impl fmt::Display for CpuMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for CpuMode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Everything an operator states about a guest CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyInput {
    /// The mode.
    pub mode: CpuMode,
    /// Models for custom mode, in order of preference.
    pub models: Vec<String>,
    /// Extra flags: `+f` or `f` requires, `-f` disables.
    pub flags: Vec<String>,
    /// Features the chosen model must have (Nova's required CPU traits).
    pub required: Vec<String>,
    /// The vCPU count.
    pub vcpus: Option<u32>,
    /// Flavor extra specs and image properties.
    pub specs: ParsedSpecs,
    /// An explicit topology (`--sockets` ...), instead of one chosen by
    /// Nova's rules; it must hold [`PolicyInput::vcpus`] when both are given.
    pub explicit: Option<Topology>,
}

/// A host the policy is checked against, and host-model is resolved from.
#[derive(Clone, Debug)]
pub struct HostCpu {
    /// The host as a CPU definition (decoded or read from capabilities).
    pub def: CpuDef,
    /// Its features for decoding host-model, when known from raw data.
    pub features: Option<CpuFeatures>,
}

/// Why a policy is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Models were listed for a mode that does not use them.
    #[error("CPU models ({models}) are only allowed with mode 'custom', not '{mode}'")]
    ModelsWithoutCustom {
        /// The mode.
        mode: CpuMode,
        /// The listed models.
        models: String,
    },
    /// Flags were given for mode none, which has no CPU to change.
    #[error("CPU flags ({0}) are not allowed with mode 'none'")]
    FlagsWithModeNone(String),
    /// Custom mode without a model.
    #[error("mode 'custom' needs at least one CPU model")]
    CustomWithoutModel,
    /// A model or flag name is unknown.
    #[error("{0}")]
    UnknownName(#[from] UnknownName),
    /// A flag is empty or only a sign.
    #[error("invalid CPU flag '{0}': expected +name, -name or name")]
    BadFlag(String),
    /// No listed model has the required features.
    #[error("no listed CPU model has the required features: {0}")]
    RequiredNotCovered(String),
    /// A non-custom mode cannot provide the required features.
    #[error("the required features are not provided: {0}")]
    RequiredNotProvided(String),
    /// The host cannot run the policy.
    #[error("the host cannot run this CPU policy: {0}")]
    HostCannotRun(String),
    /// Topology inputs are inconsistent.
    #[error("{0}")]
    Topology(#[from] NovaTopologyError),
    /// A spec or property is invalid.
    #[error("{0}")]
    Spec(#[from] SpecError),
    /// Explicit topology does not match the vCPU count.
    #[error("topology {}×{}×{}×{}×{} (sockets×dies×clusters×cores×threads) holds {} vCPUs, not {vcpus}", .topology.sockets(), .topology.dies(), .topology.clusters(), .topology.cores(), .topology.threads(), .topology.vcpus())]
    TopologyMismatch {
        /// The explicit topology.
        topology: Topology,
        /// The requested vCPU count.
        vcpus: u32,
    },
    /// Explicit topology combined with flavor/image topology specs.
    #[error("give either explicit --sockets/--cores/... or hw: topology specs, not both")]
    TopologyTwice,
    /// Topology specs without a vCPU count.
    #[error("topology specs need a vCPU count (--vcpus)")]
    SpecsWithoutVcpus,
    /// host-model needs a host.
    #[error("host-model needs a host to resolve against")]
    NoHost,
    /// Decoding the host failed.
    #[error("cannot resolve host-model: {0}")]
    Decode(String),
}

/// A validated policy: the guest CPU in resolved form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestCpu {
    /// The mode as given.
    pub mode: CpuMode,
    /// The mode the guest CPU ends up with (host-model resolves to custom).
    pub resolved_mode: CpuMode,
    /// The model, for custom (and resolved host-model).
    pub model: Option<ModelId>,
    /// Features with their policy, in map order.
    pub features: Vec<(FeatureId, Policy)>,
    /// The topology, when a vCPU count or explicit values were given.
    pub topology: Option<Topology>,
}

fn resolve_flag(db: &Database, flag: &str) -> Result<(FeatureId, Policy), PolicyError> {
    let (name, policy) = match flag.strip_prefix('-') {
        Some(rest) => (rest, Policy::Disable),
        None => (flag.strip_prefix('+').unwrap_or(flag), Policy::Require),
    };
    if name.is_empty() || name.starts_with(['+', '-']) {
        return Err(PolicyError::BadFlag(flag.to_string()));
    }
    Ok((find_feature_any(db, name)?, policy))
}

/// Checks one flag (`+name`, `-name` or `name`) as [`build`] reads it.
///
/// # Errors
/// An empty or sign-only flag, or an unknown feature name.
pub(crate) fn check_flag(db: &Database, flag: &str) -> Result<(), PolicyError> {
    resolve_flag(db, flag.trim()).map(|_| ())
}

/// A feature by map name or by any alias (so `sse3` finds `pni`), ignoring case.
pub fn find_feature_any(db: &Database, name: &str) -> Result<FeatureId, UnknownName> {
    db.find_feature(name).or_else(|e| {
        db.features()
            .iter()
            .position(|f| f.aliases.iter().any(|a| a.name.eq_ignore_ascii_case(name)))
            .map(FeatureId::from_index)
            .ok_or(e)
    })
}

/// Flags in order, the last setting of each feature winning.
fn resolve_flags(db: &Database, flags: &[String]) -> Result<Vec<(FeatureId, Policy)>, PolicyError> {
    let mut out: Vec<(FeatureId, Policy)> = Vec::new();
    for f in flags {
        let (id, policy) = resolve_flag(db, f.trim())?;
        match out.iter_mut().find(|(x, _)| *x == id) {
            Some(entry) => entry.1 = policy,
            None => out.push((id, policy)),
        }
    }
    out.sort_by_key(|(id, _)| *id);
    Ok(out)
}

/// Validates a policy and resolves it into the guest CPU.
///
/// # Errors
/// See [`PolicyError`].
pub fn build(
    db: &Database,
    input: &PolicyInput,
    host: Option<&HostCpu>,
) -> Result<GuestCpu, PolicyError> {
    let custom = input.mode == CpuMode::Cpu(Mode::Custom);
    if !custom && !input.models.is_empty() {
        return Err(PolicyError::ModelsWithoutCustom {
            mode: input.mode,
            models: input.models.join(", "),
        });
    }
    if custom && input.models.is_empty() {
        return Err(PolicyError::CustomWithoutModel);
    }
    let models: Vec<ModelId> = input
        .models
        .iter()
        .map(|m| db.find_model(m.trim()))
        .collect::<Result<_, _>>()?;
    let flags = resolve_flags(db, &input.flags)?;
    let mut required = FeatureSet::new();
    for r in input
        .required
        .iter()
        .chain(input.specs.required_features.iter())
    {
        required.insert(find_feature_any(db, r)?);
    }
    let topology = choose_topology(input)?;

    let (resolved_mode, model, features) = match input.mode {
        CpuMode::Cpu(Mode::Custom) => {
            let chosen = models
                .iter()
                .copied()
                .find(|m| db.model(*m).features.is_superset(&required))
                .ok_or_else(|| {
                    let missing: Vec<String> = models
                        .iter()
                        .map(|m| {
                            let missing = required.difference(&db.model(*m).features);
                            let lack: Vec<&str> = db.feature_names(&missing).collect();
                            format!("{} lacks {}", db.model(*m).name, lack.join(" "))
                        })
                        .collect();
                    PolicyError::RequiredNotCovered(missing.join("; "))
                })?;
            if let Some(h) = host {
                check_custom_on_host(db, &models, &flags, h)?;
            }
            (input.mode, Some(chosen), flags)
        }
        CpuMode::Cpu(Mode::HostModel) => {
            let h = host.ok_or(PolicyError::NoHost)?;
            check_flags_on_host(db, &flags, h)?;
            let features = match &h.features {
                Some(f) => *f,
                None => host_features_from_def(db, &h.def)?,
            };
            // The CPU libvirt starts a host-model guest with: the host-model
            // without the features that block migration (invtsc, ...).
            let mut opts = DecodeOptions::new(CpuKind::Guest);
            opts.migratable = true;
            let decoded =
                decode(db, &features, &opts).map_err(|e| PolicyError::Decode(e.to_string()))?;
            let mut list: Vec<(FeatureId, Policy)> = decoded
                .require
                .iter()
                .map(|f| (*f, Policy::Require))
                .chain(decoded.disable.iter().map(|f| (*f, Policy::Disable)))
                .collect();
            for (id, p) in &flags {
                match list.iter_mut().find(|(x, _)| x == id) {
                    Some(e) => e.1 = *p,
                    None => list.push((*id, *p)),
                }
            }
            list.sort_by_key(|(id, _)| *id);
            let gets = apply_flags(db.model(decoded.model).features, &list);
            require_provided(
                db,
                &required,
                &gets,
                &format!("the host-model CPU ({})", db.model(decoded.model).name),
            )?;
            (CpuMode::Cpu(Mode::Custom), Some(decoded.model), list)
        }
        CpuMode::Cpu(Mode::HostPassthrough | Mode::Maximum) => {
            if let Some(h) = host {
                check_flags_on_host(db, &flags, h)?;
                let gets = apply_flags(host_features_from_def(db, &h.def)?.full, &flags);
                require_provided(db, &required, &gets, "the host CPU")?;
            }
            (input.mode, None, flags)
        }
        CpuMode::None => {
            if !input.flags.is_empty() {
                return Err(PolicyError::FlagsWithModeNone(input.flags.join(", ")));
            }
            if !required.is_empty() {
                let names: Vec<&str> = db.feature_names(&required).collect();
                return Err(PolicyError::RequiredNotProvided(format!(
                    "mode 'none' leaves the CPU to the hypervisor and cannot promise {}",
                    names.join(" ")
                )));
            }
            (CpuMode::None, None, Vec::new())
        }
    };
    Ok(GuestCpu {
        mode: input.mode,
        resolved_mode,
        model,
        features,
        topology,
    })
}

/// `base` with the flags applied: required ones added, disabled ones removed.
fn apply_flags(mut base: FeatureSet, flags: &[(FeatureId, Policy)]) -> FeatureSet {
    for (id, p) in flags {
        p.apply(&mut base, *id);
    }
    base
}

/// Required features must be among what the guest gets.
fn require_provided(
    db: &Database,
    required: &FeatureSet,
    gets: &FeatureSet,
    what: &str,
) -> Result<(), PolicyError> {
    let missing = required.difference(gets);
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = db.feature_names(&missing).collect();
    Err(PolicyError::RequiredNotProvided(format!(
        "{what} lacks {}",
        names.join(" ")
    )))
}

fn host_features_from_def(db: &Database, def: &CpuDef) -> Result<CpuFeatures, PolicyError> {
    let r = cpumodel_cpudef::ResolvedCpu::new(db, def)
        .map_err(|e| PolicyError::Decode(e.to_string()))?;
    let vendor = def.vendor.as_deref().and_then(|v| db.find_vendor(v));
    Ok(CpuFeatures::from_set(vendor, r.all))
}

fn flag_cpu(db: &Database, model: Option<ModelId>, flags: &[(FeatureId, Policy)]) -> CpuDef {
    let mut cpu = CpuDef::new(CpuKind::Guest);
    cpu.match_ = Some(Match::Exact);
    cpu.model = model.map(|m| db.model(m).name.to_string());
    for (id, p) in flags {
        cpu.set_feature(db.feature_name(*id), Some(*p));
    }
    cpu
}

fn check_custom_on_host(
    db: &Database,
    models: &[ModelId],
    flags: &[(FeatureId, Policy)],
    host: &HostCpu,
) -> Result<(), PolicyError> {
    let mut problems = Vec::new();
    let host_all = host_features_from_def(db, &host.def)?.full;
    for m in models {
        let model = db.model(*m);
        let cpu = flag_cpu(db, Some(*m), &[]);
        let r = compare(db, &host.def, &cpu).map_err(|e| PolicyError::Decode(e.to_string()))?;
        if r.result == cpumodel_cpudef::Comparison::Incompatible {
            let names: Vec<&str> = r.blockers.iter().map(|f| db.feature_name(*f)).collect();
            let why = if names.is_empty() {
                r.reason.unwrap_or_default()
            } else {
                names.join(" ")
            };
            problems.push(format!("model {} blocked by {why}", model.name));
        }
    }
    for (id, p) in flags {
        if *p == Policy::Require && !host_all.contains(*id) {
            problems.push(format!(
                "flag +{} not provided by the host",
                db.feature_name(*id)
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PolicyError::HostCannotRun(problems.join("; ")))
    }
}

fn check_flags_on_host(
    db: &Database,
    flags: &[(FeatureId, Policy)],
    host: &HostCpu,
) -> Result<(), PolicyError> {
    check_custom_on_host(db, &[], flags, host)
}

fn choose_topology(input: &PolicyInput) -> Result<Option<Topology>, PolicyError> {
    if let Some(t) = input.explicit {
        if input.specs.has_topology() {
            return Err(PolicyError::TopologyTwice);
        }
        if let Some(v) = input.vcpus {
            if t.vcpus() != v {
                return Err(PolicyError::TopologyMismatch {
                    topology: t,
                    vcpus: v,
                });
            }
        }
        return Ok(Some(t));
    }
    match input.vcpus {
        None if input.specs.has_topology() => Err(PolicyError::SpecsWithoutVcpus),
        None => Ok(None),
        Some(v) => Ok(Some(topology::best(v, &input.specs.topology, true)?)),
    }
}

impl GuestCpu {
    /// The guest `<cpu>` element libvirt would start the guest with.
    pub fn to_cpu_def(&self, db: &Database) -> CpuDef {
        let mut cpu = CpuDef::new(CpuKind::Guest);
        cpu.topology = self.topology;
        match self.resolved_mode {
            CpuMode::None => {}
            CpuMode::Cpu(Mode::Custom) => {
                cpu.mode = Mode::Custom;
                cpu.match_ = Some(Match::Exact);
                cpu.model = self.model.map(|m| db.model(m).name.to_string());
                cpu.fallback = Some(Fallback::Forbid);
                cpu.vendor = self
                    .model
                    .and_then(|m| db.model(m).vendor)
                    .map(|v| db.vendor(v).name.to_string());
                if self.mode == CpuMode::Cpu(Mode::Custom) {
                    cpu.vendor = None;
                }
            }
            CpuMode::Cpu(mode @ (Mode::HostPassthrough | Mode::Maximum)) => {
                cpu.mode = mode;
                cpu.check = Some(cpumodel_cpudef::Check::None);
                cpu.migratable = Some(true);
            }
            CpuMode::Cpu(Mode::HostModel) => unreachable!("host-model is resolved to custom"),
        }
        for (id, p) in &self.features {
            cpu.set_feature(db.feature_name(*id), Some(*p));
        }
        cpu
    }

    /// The QEMU `-cpu` argument: `Model,feat=on,feat=off`, `host,migratable=on`,
    /// `max`, or QEMU's default model for mode none.
    pub fn qemu_arg(&self, db: &Database) -> String {
        let mut arg = match self.resolved_mode {
            CpuMode::None => "qemu64".to_string(),
            CpuMode::Cpu(Mode::Custom) => self
                .model
                .map(|m| db.model(m).name.to_string())
                .unwrap_or_else(|| "qemu64".into()),
            CpuMode::Cpu(Mode::HostPassthrough) => "host,migratable=on".to_string(),
            CpuMode::Cpu(Mode::Maximum) => "max".to_string(),
            CpuMode::Cpu(Mode::HostModel) => unreachable!("host-model is resolved to custom"),
        };
        for (id, p) in &self.features {
            let on = matches!(p, Policy::Require | Policy::Force);
            arg.push_str(&format!(
                ",{}={}",
                cpumodel_qemu::feature_to_qemu(db, *id),
                if on { "on" } else { "off" }
            ));
        }
        arg
    }
}
