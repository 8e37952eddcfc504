//! What `cpumodel models` and `cpumodel model` print as JSON.
//!
//! A model's summary and its full description are facts of the database,
//! so their shapes are defined here as [`serde::Serialize`] types, with the
//! names already resolved (vendor, ancestor and feature names instead of
//! ids). The text forms of the command line are written from the same
//! values, so the two forms cannot disagree.

use serde::Serialize;

use crate::db::{Database, ModelId};
use crate::featureset::FeatureId;
use crate::psabi::{PsabiFields, PsabiTable};

/// One line of the model list: `{"ancestor", "features", "name",
/// "psabi_level", "psabi_missing", "vendor"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelSummary {
    /// The model this one was defined relative to.
    pub ancestor: Option<String>,
    /// The number of features of the model (its ancestor's included).
    pub features: usize,
    /// The model name.
    pub name: String,
    /// The model's x86-64 level and what the next level needs.
    #[serde(flatten)]
    pub psabi: PsabiFields,
    /// The vendor's name, when the model is vendor specific.
    pub vendor: Option<String>,
}

impl ModelSummary {
    /// The summary of every model, in map order.
    pub fn all(db: &Database) -> Vec<ModelSummary> {
        let table = PsabiTable::new(db);
        (0..db.models().len())
            .map(|i| ModelSummary::with_table(db, &table, ModelId::from_index(i)))
            .collect()
    }

    /// The summary of one model.
    pub fn new(db: &Database, id: ModelId) -> Self {
        ModelSummary::with_table(db, &PsabiTable::new(db), id)
    }

    fn with_table(db: &Database, table: &PsabiTable, id: ModelId) -> Self {
        let m = db.model(id);
        ModelSummary {
            ancestor: m.ancestor.map(|a| db.model(a).name.to_string()),
            features: m.features.len(),
            name: m.name.to_string(),
            psabi: table.fields(db, &db.guest_model_features(id)),
            vendor: m.vendor.map(|v| db.vendor(v).name.to_string()),
        }
    }
}

/// Everything about one model, names resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// Features the hypervisor always enabled but which were added to the
    /// definition later.
    pub added: Vec<String>,
    /// The model this one was defined relative to.
    pub ancestor: Option<String>,
    /// Whether decode may choose the model for a host and for a guest CPU.
    pub decode: DecodeUse,
    /// Every feature of the model, in map order.
    pub features: Vec<String>,
    /// The model name.
    pub name: String,
    /// The model's x86-64 level and what the next level needs.
    #[serde(flatten)]
    pub psabi: PsabiFields,
    /// Features the model dropped relative to its first definition.
    pub removed: Vec<String>,
    /// The processor signatures the model corresponds to.
    pub signatures: Vec<SignatureInfo>,
    /// The vendor's name, when the model is vendor specific.
    pub vendor: Option<String>,
}

/// Where decode may choose a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DecodeUse {
    /// When describing a guest CPU.
    pub guest: bool,
    /// When describing a host CPU.
    pub host: bool,
}

/// A processor signature with its steppings listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SignatureInfo {
    /// CPU family.
    pub family: u32,
    /// CPU model number.
    pub model: u32,
    /// The matching steppings in increasing order; `None` matches all.
    pub steppings: Option<Vec<u32>>,
}

impl ModelInfo {
    /// The description of one model.
    pub fn new(db: &Database, id: ModelId) -> Self {
        let m = db.model(id);
        let names = |ids: &[FeatureId]| -> Vec<String> {
            ids.iter()
                .map(|f| db.feature_name(*f).to_string())
                .collect()
        };
        ModelInfo {
            added: names(&m.added),
            ancestor: m.ancestor.map(|a| db.model(a).name.to_string()),
            decode: DecodeUse {
                guest: m.decode_guest,
                host: m.decode_host,
            },
            features: db.feature_names(&m.features).map(str::to_string).collect(),
            name: m.name.to_string(),
            psabi: PsabiTable::new(db).fields(db, &db.guest_model_features(id)),
            removed: names(&m.removed),
            signatures: m
                .signatures
                .iter()
                .map(|s| SignatureInfo {
                    family: s.family,
                    model: s.model,
                    steppings: s
                        .steppings
                        .map(|bits| (0..16).filter(|b| bits & (1 << b) != 0).collect()),
                })
                .collect(),
            vendor: m.vendor.map(|v| db.vendor(v).name.to_string()),
        }
    }
}
