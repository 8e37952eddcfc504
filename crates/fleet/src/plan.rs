//! The questions an operator asks of a fleet.
//!
//! Every answer is computed per distinct [`Profile`], weighted by its number
//! of hosts, so a fleet of a million hosts costs what its few thousand
//! distinct CPUs cost. "Can run" means what libvirt's domain capabilities
//! mean by `usable='yes'`: the host provides every feature of the model.
//! Models are ranked newest first, where newest means most features (ties
//! keep the map's order, which lists a model's canonical name before its
//! versioned aliases).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cpumodel_cpudef::ops::ResolvedCpu;
use cpumodel_cpudef::{
    compare_resolved, BaselineAccumulator, BaselineError, BaselineOptions, Comparison, CpuDef,
    CpuKind, OpError,
};
use cpumodel_map::{
    Database, FeatureId, FeatureSet, ModelId, PsabiLevel, PsabiTable, MAX_FEATURES,
};
use serde::Serialize;

use crate::profile::{Profile, ProfileCount};
use crate::report::View;
use crate::table;

/// A question could not be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The store (or the chosen groups) holds no host.
    #[error("the fleet has no hosts")]
    NoHosts,
    /// No named model reaches the asked coverage.
    #[error("no named model runs on {percent}% of the {hosts} hosts")]
    NoModel {
        /// The asked coverage, as given.
        percent: String,
        /// The number of hosts.
        hosts: u64,
    },
    /// The guest CPU cannot be resolved.
    #[error("guest CPU: {0}")]
    Guest(OpError),
    /// The baseline failed.
    #[error(transparent)]
    Baseline(#[from] BaselineError),
}

/// Every model of `db`, newest (most features) first.
pub fn models_newest_first(db: &Database) -> Vec<ModelId> {
    let mut ids: Vec<ModelId> = (0..db.models().len()).map(ModelId::from_index).collect();
    ids.sort_by_key(|m| std::cmp::Reverse(db.model(*m).features.len()));
    ids
}

/// A feature that keeps hosts from running a model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Blocker {
    /// The feature's name.
    pub feature: String,
    /// How many hosts lack it.
    pub hosts: u64,
    /// The first of those hosts by name.
    pub sample_hosts: Vec<String>,
}

/// How much of the fleet can run one model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelCoverage {
    /// The model's name.
    pub model: String,
    /// Its vendor, when it has one.
    pub vendor: Option<String>,
    /// How many features it has.
    pub features: usize,
    /// Its x86-64 level (`None` below v1).
    pub psabi_level: Option<PsabiLevel>,
    /// How many hosts can run it.
    pub hosts: u64,
    /// How many cannot.
    pub blocked_hosts: u64,
    /// The features that block it, most hosts first.
    pub blockers: Vec<Blocker>,
}

/// `fleet models`: every model's coverage, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CoverageDocument {
    /// The number of hosts asked about.
    pub hosts: u64,
    /// One entry per model of the database.
    pub models: Vec<ModelCoverage>,
}

/// How many blockers and host names answers list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Blocking features listed per model.
    pub blockers: usize,
    /// Host names listed per blocking feature.
    pub sample_hosts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            blockers: 5,
            sample_hosts: 3,
        }
    }
}

/// Adds `name` to `names` (sorted, without repeats, at most `limit`) when
/// it is among the first `limit`.
fn keep_first<'a>(names: &mut Vec<&'a str>, name: &'a str, limit: usize) {
    if names.len() >= limit && names.last().is_none_or(|last| name >= *last) {
        return;
    }
    if let Err(at) = names.binary_search(&name) {
        names.insert(at, name);
        names.truncate(limit);
    }
}

/// The coverage of one model over `counts`.
///
/// Hosts are counted per missing feature first; host names are gathered
/// only for the features that make the list (each profile gives its
/// first `limits.sample_hosts`, and the first of all of those are kept).
fn model_coverage(
    db: &Database,
    table: &PsabiTable,
    counts: &[ProfileCount],
    model: ModelId,
    limits: Limits,
) -> ModelCoverage {
    let m = db.model(model);
    let mut hosts = 0;
    let mut blocked_hosts = 0;
    // Hosts lacking each feature, by feature index.
    let mut lacking = vec![0u64; MAX_FEATURES];
    for c in counts {
        let missing = m.features.difference(&c.profile.features);
        if missing.is_empty() {
            hosts += c.hosts;
            continue;
        }
        blocked_hosts += c.hosts;
        for f in missing.iter() {
            lacking[f.index()] += c.hosts;
        }
    }
    let mut blockers: Vec<(FeatureId, u64)> = m
        .features
        .iter()
        .filter(|f| lacking[f.index()] > 0)
        .map(|f| (f, lacking[f.index()]))
        .collect();
    // Most hosts first; the map's order among equals (the sort is stable).
    blockers.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    blockers.truncate(limits.blockers);
    ModelCoverage {
        model: m.name.to_string(),
        vendor: m.vendor.map(|v| db.vendor(v).name.to_string()),
        features: m.features.len(),
        psabi_level: table.assess(&m.features).level,
        hosts,
        blocked_hosts,
        blockers: blockers
            .into_iter()
            .map(|(f, n)| blocker(db, counts, f, n, limits))
            .collect(),
    }
}

/// The feature `f` as a blocker of `hosts` hosts, with the first of the
/// hosts that lack it (each profile gives its first `limits.sample_hosts`).
fn blocker(
    db: &Database,
    counts: &[ProfileCount],
    f: FeatureId,
    hosts: u64,
    limits: Limits,
) -> Blocker {
    let mut sample_hosts: Vec<&str> = Vec::new();
    for c in counts.iter().filter(|c| !c.profile.features.contains(f)) {
        for h in c.sample_hosts.iter().take(limits.sample_hosts) {
            keep_first(&mut sample_hosts, h, limits.sample_hosts);
        }
    }
    Blocker {
        feature: db.feature_name(f).to_string(),
        hosts,
        sample_hosts: sample_hosts.into_iter().map(str::to_string).collect(),
    }
}

fn total_hosts(counts: &[ProfileCount]) -> u64 {
    counts.iter().map(|c| c.hosts).sum()
}

/// `fleet models`: for every model of `db`, newest first, how many hosts
/// can run it and the features that block it most often.
pub fn coverage(db: &Database, counts: &[ProfileCount], limits: Limits) -> CoverageDocument {
    let table = PsabiTable::new(db);
    CoverageDocument {
        hosts: total_hosts(counts),
        models: models_newest_first(db)
            .into_iter()
            .map(|m| model_coverage(db, &table, counts, m, limits))
            .collect(),
    }
}

/// `hosts` of `total` as a percentage with one decimal.
fn percent(hosts: u64, total: u64) -> String {
    if total == 0 {
        return "0.0".into();
    }
    // Tenths of a percent, rounded down so that 100.0 means every host.
    let tenths = u128::from(hosts) * 1000 / u128::from(total);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// `1 host`, `2 hosts`.
fn count_hosts(n: u64) -> String {
    if n == 1 {
        "1 host".into()
    } else {
        format!("{n} hosts")
    }
}

fn blockers_text(blockers: &[Blocker]) -> String {
    if blockers.is_empty() {
        return "-".into();
    }
    blockers
        .iter()
        .map(|b| format!("{} ({})", b.feature, b.hosts))
        .collect::<Vec<_>>()
        .join(", ")
}

impl CoverageDocument {
    /// A table: model, vendor, hosts that can run it, share, top blockers.
    pub fn to_text(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .models
            .iter()
            .map(|m| {
                vec![
                    m.model.clone(),
                    m.vendor.clone().unwrap_or_else(|| "-".into()),
                    level_text(m.psabi_level).into(),
                    format!("{}/{}", m.hosts, self.hosts),
                    format!("{}%", percent(m.hosts, self.hosts)),
                    blockers_text(&m.blockers),
                ]
            })
            .collect();
        table::render(
            &["MODEL", "VENDOR", "X86-64", "HOSTS", "SHARE", "BLOCKED BY"],
            &rows,
        )
    }
}

/// A newer model than the recommendation, and what keeps it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldBack {
    /// The newer model's name.
    pub model: String,
    /// How many hosts can run it.
    pub hosts: u64,
    /// How many cannot: the hosts that hold it back.
    pub blocked_hosts: u64,
    /// What those hosts lack, most hosts first.
    pub blockers: Vec<Blocker>,
}

/// `v3`, or `-` below v1.
fn level_text(level: Option<PsabiLevel>) -> &'static str {
    level.map_or("-", PsabiLevel::as_str)
}

/// `fleet recommend`: the newest model the fleet can run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recommendation {
    /// The recommended model.
    pub model: String,
    /// Its vendor, when it has one.
    pub vendor: Option<String>,
    /// Its x86-64 level (`None` below v1).
    pub psabi_level: Option<PsabiLevel>,
    /// How many hosts can run it.
    pub hosts: u64,
    /// How many hosts the fleet has.
    pub total_hosts: u64,
    /// The share of hosts that can run it, in percent with one decimal.
    pub percent: String,
    /// The newer models with the most coverage, and the hosts that hold
    /// them back.
    pub held_back: Vec<HeldBack>,
    /// The `[libvirt]` section of nova.conf that configures the model.
    pub nova_conf: String,
}

/// How many newer models [`recommend`] explains.
const HELD_BACK: usize = 3;

/// What [`recommend`] answers: a model, or why none reaches the asked
/// x86-64 level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RecommendAnswer {
    /// The newest model with the coverage (and the level, when asked).
    Model(Recommendation),
    /// No model of the asked level has the coverage.
    BelowLevel(LevelShortfall),
}

/// Why no model of an x86-64 level runs on enough of the fleet: the hosts
/// below the level and what they lack, and the model of the level that
/// the most hosts can run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LevelShortfall {
    /// The level asked for.
    pub min_level: PsabiLevel,
    /// Always `false`: scripts tell this answer from a recommendation by it.
    pub level_reached: bool,
    /// How many hosts the fleet has.
    pub total_hosts: u64,
    /// How many hosts' CPUs are below the level.
    pub hosts_below: u64,
    /// The level's requirements those hosts lack, most hosts first.
    pub missing: Vec<Blocker>,
    /// The model of the level (or above) that the most hosts can run, and
    /// what blocks it; `None` when the database has no such model.
    pub best_model: Option<HeldBack>,
}

/// `fleet recommend`: the newest model that at least `min_percent` of the
/// hosts can run (every host at 100), of `min_level` or above when given.
///
/// # Errors
/// [`PlanError::NoHosts`] for an empty fleet, [`PlanError::NoModel`] when
/// no model reaches the coverage (without a level; with one, the answer
/// is a [`LevelShortfall`]).
pub fn recommend(
    db: &Database,
    counts: &[ProfileCount],
    min_percent: f64,
    min_level: Option<PsabiLevel>,
    limits: Limits,
) -> Result<RecommendAnswer, PlanError> {
    let total = total_hosts(counts);
    if total == 0 {
        return Err(PlanError::NoHosts);
    }
    let table = PsabiTable::new(db);
    // cast: host counts are far below 2^52, where f64 stays exact.
    #[allow(clippy::cast_precision_loss)]
    let enough = |hosts: u64| hosts as f64 * 100.0 >= min_percent * total as f64;
    let order: Vec<ModelId> = models_newest_first(db)
        .into_iter()
        .filter(|m| min_level <= table.assess(&db.model(*m).features).level)
        .collect();
    let mut newer = Vec::new();
    for (rank, &m) in order.iter().enumerate() {
        let cov = model_coverage(db, &table, counts, m, limits);
        if !enough(cov.hosts) {
            newer.push((rank, m, cov));
            continue;
        }
        // The newer models that most hosts can run (then the newest).
        newer.sort_by_key(|(rank, _, c)| (std::cmp::Reverse(c.hosts), *rank));
        let chosen = db.model(m);
        let mut seen = std::collections::HashSet::new();
        let nova_conf = format!(
            "[libvirt]\ncpu_mode = custom\ncpu_models = {}\n",
            chosen.name
        );
        return Ok(RecommendAnswer::Model(Recommendation {
            model: cov.model,
            vendor: cov.vendor,
            psabi_level: cov.psabi_level,
            hosts: cov.hosts,
            total_hosts: total,
            percent: percent(cov.hosts, total),
            held_back: newer
                .into_iter()
                .filter(|(_, _, c)| c.hosts > 0)
                // A versioned alias with the same features says nothing new.
                .filter(|(_, id, _)| seen.insert(db.model(*id).features))
                .take(HELD_BACK)
                .map(|(_, _, c)| c.into())
                .collect(),
            nova_conf,
        }));
    }
    match min_level {
        Some(level) => Ok(RecommendAnswer::BelowLevel(shortfall(
            db, &table, counts, level, newer, limits,
        ))),
        None => Err(PlanError::NoModel {
            percent: format!("{min_percent}"),
            hosts: total,
        }),
    }
}

impl From<ModelCoverage> for HeldBack {
    fn from(c: ModelCoverage) -> Self {
        HeldBack {
            model: c.model,
            hosts: c.hosts,
            blocked_hosts: c.blocked_hosts,
            blockers: c.blockers,
        }
    }
}

/// The hosts below `level` and what they lack, and the best of the
/// `candidates` (every model of the level, with its coverage).
fn shortfall(
    db: &Database,
    table: &PsabiTable,
    counts: &[ProfileCount],
    level: PsabiLevel,
    candidates: Vec<(usize, ModelId, ModelCoverage)>,
    limits: Limits,
) -> LevelShortfall {
    let mut hosts_below = 0;
    let mut lacking: BTreeMap<cpumodel_map::PsabiMissing, u64> = BTreeMap::new();
    for c in counts {
        let missing = table.missing(level, &c.profile.features);
        if !missing.is_empty() {
            hosts_below += c.hosts;
        }
        for m in missing {
            *lacking.entry(m).or_default() += c.hosts;
        }
    }
    let mut missing: Vec<_> = lacking.into_iter().collect();
    // Most hosts first; map order (then psABI names) among equals.
    missing.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    let best_model = candidates
        .into_iter()
        .min_by_key(|(rank, _, c)| (std::cmp::Reverse(c.hosts), *rank))
        .map(|(_, _, c)| c.into());
    LevelShortfall {
        min_level: level,
        level_reached: false,
        total_hosts: total_hosts(counts),
        hosts_below,
        missing: missing
            .into_iter()
            .map(|(m, n)| match m {
                cpumodel_map::PsabiMissing::Feature(f) => blocker(db, counts, f, n, limits),
                // No host has a bit the map has no feature for.
                cpumodel_map::PsabiMissing::Undefined(name) => Blocker {
                    feature: name.to_string(),
                    hosts: n,
                    sample_hosts: counts
                        .iter()
                        .flat_map(|c| c.sample_hosts.iter().take(limits.sample_hosts))
                        .take(limits.sample_hosts)
                        .cloned()
                        .collect(),
                },
            })
            .collect(),
        best_model,
    }
}

impl RecommendAnswer {
    /// The answer as text ([`Recommendation::to_text`] or
    /// [`LevelShortfall::to_text`]).
    pub fn to_text(&self) -> String {
        match self {
            RecommendAnswer::Model(r) => r.to_text(),
            RecommendAnswer::BelowLevel(s) => s.to_text(),
        }
    }
}

impl LevelShortfall {
    /// What keeps the fleet below the level, host by host feature, and the
    /// best model of the level.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "no model of x86-64 {} runs on enough hosts\nhosts below {}: {}/{}\n",
            self.min_level, self.min_level, self.hosts_below, self.total_hosts
        );
        for b in &self.missing {
            let _ = writeln!(
                out,
                "  {} missing on {}: {}",
                b.feature,
                count_hosts(b.hosts),
                table::list(&b.sample_hosts)
            );
        }
        if let Some(h) = &self.best_model {
            let _ = writeln!(
                out,
                "best model of {} or above: {} runs on {}/{} hosts, blocked by {}",
                self.min_level,
                h.model,
                h.hosts,
                self.total_hosts,
                blockers_text(&h.blockers)
            );
        }
        out
    }
}

impl Recommendation {
    /// The model, its coverage, what holds newer models back, and the
    /// nova.conf section.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "model: {}\nx86-64: {}\nhosts: {}/{} ({}%)\n",
            self.model,
            level_text(self.psabi_level),
            self.hosts,
            self.total_hosts,
            self.percent
        );
        for h in &self.held_back {
            let _ = writeln!(
                out,
                "held back: {} runs on {}/{} hosts, blocked by {}",
                h.model,
                h.hosts,
                self.total_hosts,
                blockers_text(&h.blockers)
            );
            for b in &h.blockers {
                let _ = writeln!(
                    out,
                    "  {} missing on {}: {}",
                    b.feature,
                    count_hosts(b.hosts),
                    table::list(&b.sample_hosts)
                );
            }
        }
        out.push('\n');
        out.push_str(&self.nova_conf);
        out
    }
}

/// libvirt's baseline of the fleet's current CPUs: the same `<cpu>` as
/// `cpumodel baseline` over the hosts' documents. Each profile counts once
/// (a baseline is an intersection) and is named by its first host.
///
/// # Errors
/// See [`BaselineError`]; [`PlanError::NoHosts`] for an empty fleet.
pub fn baseline(
    db: &Database,
    counts: &[ProfileCount],
    opts: BaselineOptions,
) -> Result<CpuDef, PlanError> {
    if counts.is_empty() {
        return Err(PlanError::NoHosts);
    }
    let mut acc = BaselineAccumulator::default();
    for c in counts {
        let origin = c.sample_hosts.first().map_or("a host", String::as_str);
        acc.add(db, origin, &c.profile.to_cpu_def(db))?;
    }
    Ok(acc.finish(db, opts)?)
}

/// `fleet can-run`: the hosts that accept a guest CPU, and what blocks
/// the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CanRunDocument {
    /// Hosts that can start the guest, sorted by name.
    pub accepted: Vec<String>,
    /// For every other host, the features that block the guest (empty when
    /// the reason is not a feature, such as a vendor mismatch).
    pub blocked: BTreeMap<String, Vec<String>>,
    /// For every blocked host, libvirt's reason.
    pub reasons: BTreeMap<String, String>,
}

/// A profile as the host side of a comparison.
fn host_side(db: &Database, p: &Profile) -> (CpuDef, ResolvedCpu) {
    let mut cpu = CpuDef::new(CpuKind::Host);
    cpu.vendor = p.vendor.map(|v| db.vendor(v).name.to_string());
    cpu.model = p.model.map(|m| db.model(m).name.to_string());
    let resolved = ResolvedCpu {
        model: p.model,
        all: p.features,
        require: p.features,
        ..ResolvedCpu::default()
    };
    (cpu, resolved)
}

/// `fleet can-run`: compares `guest` with every profile once (libvirt's
/// compare, as `cpumodel compare` does) and sorts the hosts by the answer.
/// `hosts` pairs each host name with an index into `profiles`.
///
/// For many hosts, [`CanRunAnswer`] gives the same answer and renders it
/// without a map entry per host.
///
/// # Errors
/// [`PlanError::Guest`] when the guest names an unknown model or feature.
pub fn can_run(
    db: &Database,
    guest: &CpuDef,
    profiles: &[Profile],
    hosts: &[(String, usize)],
) -> Result<CanRunDocument, PlanError> {
    let verdicts = can_run_verdicts(db, guest, profiles)?;
    let mut doc = CanRunDocument::default();
    for (name, index) in hosts {
        match verdicts.get(*index) {
            Some(None) => doc.accepted.push(name.clone()),
            Some(Some(v)) => {
                doc.blocked.insert(name.clone(), v.features.clone());
                doc.reasons.insert(name.clone(), v.reason.clone());
            }
            None => {}
        }
    }
    doc.accepted.sort();
    Ok(doc)
}

/// Why a profile refuses a guest.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Refusal {
    /// The features that block it.
    features: Vec<String>,
    /// libvirt's reason.
    reason: String,
}

/// `guest` compared with each profile: `None` where it is accepted.
fn can_run_verdicts(
    db: &Database,
    guest: &CpuDef,
    profiles: &[Profile],
) -> Result<Vec<Option<Refusal>>, PlanError> {
    let g = ResolvedCpu::new(db, guest).map_err(PlanError::Guest)?;
    Ok(profiles
        .iter()
        .map(|p| {
            let (cpu, h) = host_side(db, p);
            let r = compare_resolved(&cpu, &h, guest, &g);
            (r.result == Comparison::Incompatible).then(|| Refusal {
                features: r
                    .blockers
                    .iter()
                    .map(|f| db.feature_name(*f).to_string())
                    .collect(),
                reason: r.reason.unwrap_or_default(),
            })
        })
        .collect())
}

/// `fleet can-run` kept per profile: each distinct CPU is compared with the
/// guest once, and each host only points to its CPU's verdict. It renders
/// exactly as the [`CanRunDocument`] of the same hosts
/// ([`CanRunDocument::to_text`], and its JSON), straight into a writer, so
/// that answering for a million hosts holds their names and nothing per
/// host beside them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanRunAnswer {
    /// Per profile: `None` when it accepts the guest.
    verdicts: Vec<Option<Refusal>>,
    /// Host names, sorted, each with the index of its profile.
    hosts: Vec<(String, usize)>,
}

/// A JSON string literal, escaped as `serde_json` escapes it.
fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..0x20 => b"",
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[plain..i]);
        plain = i + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(&s.as_bytes()[plain..]);
    out.push(b'"');
}

impl CanRunAnswer {
    /// Compares `guest` with every profile once. `hosts` pairs each host
    /// name with an index into `profiles` (indexes out of range are left
    /// out); names are expected to be unique, as a store's are.
    ///
    /// # Errors
    /// [`PlanError::Guest`] when the guest names an unknown model or feature.
    pub fn new(
        db: &Database,
        guest: &CpuDef,
        profiles: &[Profile],
        mut hosts: Vec<(String, usize)>,
    ) -> Result<CanRunAnswer, PlanError> {
        let verdicts = can_run_verdicts(db, guest, profiles)?;
        hosts.retain(|(_, i)| *i < verdicts.len());
        if !hosts.is_sorted_by(|a, b| a.0 <= b.0) {
            hosts.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(CanRunAnswer { verdicts, hosts })
    }

    /// How many hosts accept the guest.
    pub fn accepted(&self) -> usize {
        self.hosts
            .iter()
            .filter(|(_, i)| self.verdicts[*i].is_none())
            .count()
    }

    /// The same answer as a [`CanRunDocument`].
    pub fn to_document(&self) -> CanRunDocument {
        let mut doc = CanRunDocument::default();
        for (name, i) in &self.hosts {
            match &self.verdicts[*i] {
                None => doc.accepted.push(name.clone()),
                Some(v) => {
                    doc.blocked.insert(name.clone(), v.features.clone());
                    doc.reasons.insert(name.clone(), v.reason.clone());
                }
            }
        }
        doc
    }

    /// Writes [`CanRunDocument::to_text`] of the same hosts.
    ///
    /// # Errors
    /// The writer's.
    pub fn write_text(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        // The third column per blocked profile: the features, else the
        // reason.
        let joined: Vec<Option<String>> = self
            .verdicts
            .iter()
            .map(|v| {
                v.as_ref().map(|v| {
                    if v.features.is_empty() {
                        v.reason.clone()
                    } else {
                        v.features.join(",")
                    }
                })
            })
            .collect();
        let name_width = self
            .hosts
            .iter()
            .map(|(n, _)| n.chars().count())
            .fold("HOST".len(), usize::max);
        let any_accepted = self.hosts.iter().any(|(_, i)| self.verdicts[*i].is_none());
        let status_width = self
            .hosts
            .iter()
            .any(|(_, i)| self.verdicts[*i].is_some())
            .then_some("blocked".len())
            .into_iter()
            .chain(any_accepted.then_some("accepted".len()))
            .fold("GUEST".len(), usize::max);
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
        let line = |buf: &mut Vec<u8>, cells: [&str; 3]| {
            let start = buf.len();
            for (cell, width) in cells.iter().zip([name_width, status_width]) {
                buf.extend_from_slice(cell.as_bytes());
                let pad = width + 2 - cell.chars().count();
                buf.resize(buf.len() + pad, b' ');
            }
            buf.extend_from_slice(cells[2].as_bytes());
            // As `table::render`: trailing white space goes (a line that
            // ends in a visible ASCII character has none).
            if !buf.last().is_some_and(u8::is_ascii_graphic) {
                let kept = std::str::from_utf8(&buf[start..])
                    .map_or(buf.len() - start, |l| l.trim_end().len());
                buf.truncate(start + kept);
            }
            buf.push(b'\n');
        };
        line(&mut buf, ["HOST", "GUEST", "BLOCKED BY"]);
        for (name, i) in &self.hosts {
            let cells = match &joined[*i] {
                None => [name.as_str(), "accepted", "-"],
                Some(j) => [name.as_str(), "blocked", j.as_str()],
            };
            line(&mut buf, cells);
            if buf.len() >= 1 << 16 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        out.write_all(&buf)
    }

    /// Writes the JSON of the [`CanRunDocument`] of the same hosts, as
    /// `serde_json`'s pretty printer does (keys in order), and a line feed.
    ///
    /// # Errors
    /// The writer's.
    pub fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        // What follows each blocked host's key, and its reason, per profile.
        let fragments: Vec<Option<(Vec<u8>, Vec<u8>)>> = self
            .verdicts
            .iter()
            .map(|v| {
                v.as_ref().map(|v| {
                    let mut features = Vec::new();
                    if v.features.is_empty() {
                        features.extend_from_slice(b"[]");
                    } else {
                        features.extend_from_slice(b"[");
                        for (k, f) in v.features.iter().enumerate() {
                            features.extend_from_slice(if k == 0 {
                                b"\n      "
                            } else {
                                b",\n      "
                            });
                            json_string(&mut features, f);
                        }
                        features.extend_from_slice(b"\n    ]");
                    }
                    let mut reason = Vec::new();
                    json_string(&mut reason, &v.reason);
                    (features, reason)
                })
            })
            .collect();
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
        let mut flush = |buf: &mut Vec<u8>, force: bool| -> std::io::Result<()> {
            if force || buf.len() >= 1 << 16 {
                out.write_all(buf)?;
                buf.clear();
            }
            Ok(())
        };
        // One section: `"key": [` or `{`, an entry per chosen host, closed.
        let mut section = |buf: &mut Vec<u8>,
                           key: &str,
                           (open, close): (&[u8], &[u8]),
                           entry: &dyn Fn(&mut Vec<u8>, &str, usize) -> bool|
         -> std::io::Result<()> {
            buf.extend_from_slice(b"  \"");
            buf.extend_from_slice(key.as_bytes());
            buf.extend_from_slice(b"\": ");
            buf.extend_from_slice(open);
            let mut any = false;
            for (name, i) in &self.hosts {
                let start = buf.len();
                buf.extend_from_slice(if any { b",\n    " } else { b"\n    " });
                if entry(buf, name, *i) {
                    any = true;
                    flush(buf, false)?;
                } else {
                    buf.truncate(start);
                }
            }
            if any {
                buf.extend_from_slice(b"\n  ");
            }
            buf.extend_from_slice(close);
            Ok(())
        };
        buf.extend_from_slice(b"{\n");
        section(&mut buf, "accepted", (b"[", b"]"), &|buf, name, i| {
            if fragments[i].is_some() {
                return false;
            }
            json_string(buf, name);
            true
        })?;
        buf.extend_from_slice(b",\n");
        section(&mut buf, "blocked", (b"{", b"}"), &|buf, name, i| {
            let Some((features, _)) = &fragments[i] else {
                return false;
            };
            json_string(buf, name);
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(features);
            true
        })?;
        buf.extend_from_slice(b",\n");
        section(&mut buf, "reasons", (b"{", b"}"), &|buf, name, i| {
            let Some((_, reason)) = &fragments[i] else {
                return false;
            };
            json_string(buf, name);
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(reason);
            true
        })?;
        buf.extend_from_slice(b"\n}\n");
        flush(&mut buf, true)
    }
}

impl CanRunDocument {
    /// One line per host: `accepted`, or `blocked:` and the features.
    pub fn to_text(&self) -> String {
        let mut rows: Vec<Vec<String>> = self
            .accepted
            .iter()
            .map(|h| vec![h.clone(), "accepted".into(), "-".into()])
            .collect();
        for (h, features) in &self.blocked {
            let why = if features.is_empty() {
                self.reasons.get(h).cloned().unwrap_or_default()
            } else {
                features.join(",")
            };
            rows.push(vec![h.clone(), "blocked".into(), why]);
        }
        rows.sort();
        table::render(&["HOST", "GUEST", "BLOCKED BY"], &rows)
    }
}

/// A host whose newest report differs from the one before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftRow {
    /// The host.
    pub host: String,
    /// The profile of the report before the newest.
    pub previous: Profile,
    /// The profile of the newest report.
    pub current: Profile,
    /// When the previous report was made, in microseconds since the epoch.
    pub previous_us: i64,
    /// When the newest report was made.
    pub current_us: i64,
}

/// What changed on one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostDrift {
    /// The host.
    pub host: String,
    /// When the previous report was made (microseconds since the epoch).
    pub previous_us: i64,
    /// When the newest report was made.
    pub current_us: i64,
    /// The model the previous report decoded as.
    pub previous_model: String,
    /// The model the newest report decoded as.
    pub current_model: String,
    /// Features the host gained, in map order.
    pub gained: Vec<String>,
    /// Features the host lost, in map order.
    pub lost: Vec<String>,
    /// Models it could run before and cannot now, newest first.
    pub models_lost: Vec<String>,
    /// Models it can run now and could not before, newest first.
    pub models_gained: Vec<String>,
    /// Recorded guest CPUs it accepted before and refuses now.
    pub guests_broken: Vec<String>,
}

/// `fleet drift`: every host whose CPU changed between its last two reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DriftDocument {
    /// One entry per changed host, sorted by name.
    pub hosts: Vec<HostDrift>,
}

fn names(db: &Database, set: &FeatureSet) -> Vec<String> {
    db.feature_names(set).map(str::to_string).collect()
}

/// The features `after` has and `before` lacks, and those `before` has and
/// `after` lacks, in map order: what a host gained and lost.
fn gained_and_lost(
    db: &Database,
    before: &FeatureSet,
    after: &FeatureSet,
) -> (Vec<String>, Vec<String>) {
    (
        names(db, &after.difference(before)),
        names(db, &before.difference(after)),
    )
}

/// `fleet drift`: what each change gained and lost, and which models and
/// recorded guest CPUs (`guests`: name and definition) it breaks.
///
/// # Errors
/// [`PlanError::Guest`] when a recorded guest names an unknown model or
/// feature.
pub fn drift(
    db: &Database,
    rows: &[DriftRow],
    guests: &[(String, CpuDef)],
) -> Result<DriftDocument, PlanError> {
    let guests: Vec<(&str, &CpuDef, ResolvedCpu)> = guests
        .iter()
        .map(|(n, g)| {
            Ok((
                n.as_str(),
                g,
                ResolvedCpu::new(db, g).map_err(PlanError::Guest)?,
            ))
        })
        .collect::<Result<_, PlanError>>()?;
    let order = models_newest_first(db);
    let accepts = |p: &Profile, g: &CpuDef, r: &ResolvedCpu| {
        let (cpu, h) = host_side(db, p);
        compare_resolved(&cpu, &h, g, r).result != Comparison::Incompatible
    };
    let mut hosts: Vec<HostDrift> = rows
        .iter()
        .map(|r| {
            let (gained, lost) = gained_and_lost(db, &r.previous.features, &r.current.features);
            HostDrift {
                host: r.host.clone(),
                previous_us: r.previous_us,
                current_us: r.current_us,
                previous_model: r.previous.model_name(db).to_string(),
                current_model: r.current.model_name(db).to_string(),
                gained,
                lost,
                models_lost: order
                    .iter()
                    .filter(|m| r.previous.can_run(db, **m) && !r.current.can_run(db, **m))
                    .map(|m| db.model(*m).name.to_string())
                    .collect(),
                models_gained: order
                    .iter()
                    .filter(|m| !r.previous.can_run(db, **m) && r.current.can_run(db, **m))
                    .map(|m| db.model(*m).name.to_string())
                    .collect(),
                guests_broken: guests
                    .iter()
                    .filter(|(_, g, gr)| accepts(&r.previous, g, gr) && !accepts(&r.current, g, gr))
                    .map(|(n, _, _)| n.to_string())
                    .collect(),
            }
        })
        .collect();
    hosts.sort_by(|a, b| a.host.cmp(&b.host));
    Ok(DriftDocument { hosts })
}

impl DriftDocument {
    /// One paragraph per changed host.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for h in &self.hosts {
            let _ = writeln!(
                out,
                "{}: {} -> {}",
                h.host, h.previous_model, h.current_model
            );
            let _ = writeln!(out, "  gained: {}", table::list(&h.gained));
            let _ = writeln!(out, "  lost: {}", table::list(&h.lost));
            let _ = writeln!(out, "  models lost: {}", table::list(&h.models_lost));
            let _ = writeln!(out, "  models gained: {}", table::list(&h.models_gained));
            let _ = writeln!(out, "  guests broken: {}", table::list(&h.guests_broken));
        }
        out
    }
}

/// One report of a host's history, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    /// When (µs since the epoch).
    pub time_us: i64,
    /// Where the document came from.
    pub source: String,
    /// What it shows.
    pub view: View,
    /// The CPU, resolved against the caller's [`Database`].
    pub profile: Profile,
}

/// One report of `fleet history`, with what changed since the one before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// When the document was taken, RFC 3339 UTC.
    pub time: String,
    /// The same, in microseconds since the epoch.
    pub time_us: i64,
    /// What the document shows.
    pub view: View,
    /// The vendor of the CPU, when the database knows it.
    pub vendor: Option<String>,
    /// The model the CPU decoded as.
    pub model: String,
    /// Features this report has and the one before lacked, in map order;
    /// `None` for the first report.
    pub gained: Option<Vec<String>>,
    /// Features the report before had and this one lacks.
    pub lost: Option<Vec<String>>,
    /// Where the document came from.
    pub source: String,
}

/// `fleet history HOST`: every report of one host, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryDocument {
    /// The host.
    pub host: String,
    /// Its reports, oldest first; the last is its current CPU.
    pub reports: Vec<HistoryEntry>,
}

/// `fleet history`: `rows` (one host's reports, oldest first) with the
/// features each gained and lost against the one before.
pub fn history(db: &Database, host: &str, rows: &[HistoryRow]) -> HistoryDocument {
    let mut before: Option<&Profile> = None;
    let reports = rows
        .iter()
        .map(|r| {
            let p = &r.profile;
            let changes = before.map(|b| gained_and_lost(db, &b.features, &p.features));
            before = Some(p);
            let (gained, lost) = changes.unzip();
            HistoryEntry {
                time: format_time(r.time_us),
                time_us: r.time_us,
                view: r.view,
                vendor: p.vendor.map(|v| db.vendor(v).name.to_string()),
                model: p.model_name(db).to_string(),
                gained,
                lost,
                source: r.source.clone(),
            }
        })
        .collect();
    HistoryDocument {
        host: host.to_owned(),
        reports,
    }
}

impl HistoryDocument {
    /// A table, one report per line; `-` where nothing changed or there is
    /// nothing to compare with.
    pub fn to_text(&self) -> String {
        let changes =
            |f: &Option<Vec<String>>| f.as_deref().map_or_else(|| "-".into(), table::list);
        let rows: Vec<Vec<String>> = self
            .reports
            .iter()
            .map(|r| {
                vec![
                    r.time.clone(),
                    r.view.as_str().to_owned(),
                    r.model.clone(),
                    changes(&r.gained),
                    changes(&r.lost),
                    r.source.clone(),
                ]
            })
            .collect();
        table::render(
            &["TIME", "VIEW", "MODEL", "GAINED", "LOST", "SOURCE"],
            &rows,
        )
    }
}

/// One host of `fleet hosts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostRow {
    /// The host's name.
    pub name: String,
    /// Its groups, sorted.
    pub groups: Vec<String>,
    /// The vendor of its current CPU.
    pub vendor: Option<String>,
    /// The model its current CPU decoded as.
    pub model: String,
    /// How many reports the store holds for it.
    pub reports: u64,
    /// When the newest was made (microseconds since the epoch).
    pub last_report_us: i64,
}

/// One host of `fleet hosts`, with the x86-64 level of its current CPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostLevelRow {
    /// The host.
    #[serde(flatten)]
    pub host: HostRow,
    /// Its current CPU's x86-64 level (`None` below v1, or when the
    /// store's profile of it is unknown).
    pub psabi_level: Option<PsabiLevel>,
}

/// `rows` with the level of each host's current CPU: `current` is what
/// the store gives as each host's current profile (`current_hosts`), the
/// profiles and each host's index into them.
pub fn host_levels(
    db: &Database,
    rows: Vec<HostRow>,
    profiles: &[Profile],
    current: &[(String, usize)],
) -> Vec<HostLevelRow> {
    let table = PsabiTable::new(db);
    let levels: Vec<Option<PsabiLevel>> = profiles
        .iter()
        .map(|p| table.assess(&p.features).level)
        .collect();
    let by_name: BTreeMap<&str, usize> = current.iter().map(|(h, i)| (h.as_str(), *i)).collect();
    rows.into_iter()
        .map(|host| HostLevelRow {
            psabi_level: by_name
                .get(host.name.as_str())
                .and_then(|i| levels.get(*i).copied().flatten()),
            host,
        })
        .collect()
}

/// `fleet hosts` as a table.
pub fn hosts_text(rows: &[HostLevelRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let h = &r.host;
            vec![
                h.name.clone(),
                table::list(&h.groups),
                h.vendor.clone().unwrap_or_else(|| "-".into()),
                h.model.clone(),
                level_text(r.psabi_level).into(),
                h.reports.to_string(),
                format_time(h.last_report_us),
            ]
        })
        .collect();
    table::render(
        &[
            "NAME",
            "GROUPS",
            "VENDOR",
            "MODEL",
            "X86-64",
            "REPORTS",
            "LAST REPORT",
        ],
        &rows,
    )
}

/// Microseconds since the epoch as an RFC 3339 UTC time to the second
/// (`2026-12-02T18:30:00Z`); `-` when out of range.
pub fn format_time(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us - us.rem_euclid(1_000_000))
        .map_or_else(|_| "-".into(), |t| t.to_string())
}

/// Reads an RFC 3339 time (`2026-12-02T18:30:00Z`, any offset) as
/// microseconds since the epoch, the unit reports are stored in.
///
/// # Errors
/// The text is not an RFC 3339 time; the message says why.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t: jiff::Timestamp = text
        .parse()
        .map_err(|_| format!("'{text}' is not an RFC 3339 time such as 2026-12-02T18:30:00Z"))?;
    Ok(t.as_microsecond())
}
