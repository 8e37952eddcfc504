//! A host's CPU reduced to what fleet questions need.

use cpumodel_cpudef::{ops::ResolvedCpu, CpuDef, CpuKind, OpError};
use cpumodel_map::{Database, FeatureSet, ModelId, VendorId};

/// A distinct host CPU: vendor, decoded model and every feature it provides.
///
/// Many hosts of a fleet share one profile (same hardware, BIOS and
/// microcode), so stores keep each profile once and questions are answered
/// per profile, weighted by its number of hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Profile {
    /// The CPU vendor, when known.
    pub vendor: Option<VendorId>,
    /// The named model the CPU decoded as (`None` when the store names a
    /// model this database does not define).
    pub model: Option<ModelId>,
    /// Every feature the CPU provides: the model's and the extra ones.
    pub features: FeatureSet,
}

impl Profile {
    /// The profile of a host `<cpu>` definition.
    ///
    /// # Errors
    /// An unknown vendor, model or feature name, or no model at all.
    pub fn from_cpu(db: &Database, cpu: &CpuDef) -> Result<Profile, OpError> {
        let resolved = ResolvedCpu::new(db, cpu)?;
        let model = resolved.model.ok_or(OpError::NoModel)?;
        let vendor = match &cpu.vendor {
            Some(name) => Some(
                db.find_vendor(name)
                    .ok_or_else(|| OpError::UnknownVendor(name.clone()))?,
            ),
            None => db.model(model).vendor,
        };
        Ok(Profile {
            vendor,
            model: Some(model),
            features: resolved.all,
        })
    }

    /// The profile as a host `<cpu>`: vendor, model and the features beyond
    /// the model's, in map order.
    pub fn to_cpu_def(&self, db: &Database) -> CpuDef {
        let mut cpu = CpuDef::new(CpuKind::Host);
        cpu.vendor = self.vendor.map(|v| db.vendor(v).name.to_string());
        let mut extra = self.features;
        if let Some(m) = self.model {
            cpu.model = Some(db.model(m).name.to_string());
            extra = extra.difference(&db.model(m).features);
        }
        for f in extra.iter() {
            cpu.set_feature(db.feature_name(f), None);
        }
        cpu
    }

    /// True when the CPU provides every feature of `model` (domain
    /// capabilities' `usable='yes'`).
    pub fn can_run(&self, db: &Database, model: ModelId) -> bool {
        self.features.is_superset(&db.model(model).features)
    }

    /// The model's name, or `-` when unknown.
    pub fn model_name<'d>(&self, db: &'d Database) -> &'d str {
        self.model.map_or("-", |m| &db.model(m).name)
    }

    /// The vendor's name, or `-` when unknown.
    pub fn vendor_name<'d>(&self, db: &'d Database) -> &'d str {
        self.vendor.map_or("-", |v| &db.vendor(v).name)
    }
}

/// How many current hosts have one profile, with a few of their names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileCount {
    /// The profile.
    pub profile: Profile,
    /// The number of hosts whose current report has it.
    pub hosts: u64,
    /// The first of those hosts by name, as many as the query asked for.
    pub sample_hosts: Vec<String>,
}
