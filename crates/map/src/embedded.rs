//! The database compiled into cpumodel, generated from libvirt's cpu_map.
//!
//! `data.rs` is written by `cargo xtask import-cpu-map DIR` (see
//! [`crate::codegen`]) and committed. It holds plain Rust constants, one
//! feature per line, so a change to the upstream map shows up as a readable
//! diff, and turning it into a [`Database`] involves no parsing at run time.

use std::borrow::Cow;

use cpumodel_data::{CpuData, Item};

use crate::db::{Alias, Database, Feature, Model, ModelSignature, Vendor, VendorId};
use crate::featureset::{FeatureId, FeatureSet};

#[allow(dead_code, clippy::unreadable_literal)]
#[rustfmt::skip]
mod data;

/// A vendor as written in the generated table.
pub(crate) struct VendorDef {
    pub name: &'static str,
    pub string: &'static [u8; 12],
}

/// A CPUID or MSR mask as written in the generated table.
pub(crate) enum ItemDef {
    Cpuid(u32, u32, [u32; 4]),
    Msr(u32, [u32; 2]),
}

/// A feature as written in the generated table.
pub(crate) struct FeatureDef {
    pub name: &'static str,
    pub migratable: bool,
    pub aliases: &'static [(&'static str, &'static str)],
    pub bits: &'static [ItemDef],
}

/// A model as written in the generated table: features already resolved
/// through its ancestors, as ids into the feature table.
pub(crate) struct ModelDef {
    pub name: &'static str,
    pub ancestor: Option<&'static str>,
    pub vendor: Option<&'static str>,
    pub decode: (bool, bool),
    pub signatures: &'static [(u32, u32, Option<u16>)],
    pub features: &'static [u16],
    pub removed: &'static [u16],
    pub added: &'static [u16],
}

/// Where the embedded database came from (the generator's header line).
pub const EMBEDDED_SOURCE: &str = data::SOURCE;

impl Database {
    /// The database compiled into cpumodel (libvirt's upstream cpu_map).
    pub fn embedded() -> Database {
        let vendors = data::VENDORS
            .iter()
            .map(|v| Vendor {
                name: Cow::Borrowed(v.name),
                string: *v.string,
            })
            .collect();
        let features = data::FEATURES
            .iter()
            .map(|f| Feature {
                name: Cow::Borrowed(f.name),
                aliases: f
                    .aliases
                    .iter()
                    .map(|(n, s)| Alias {
                        name: Cow::Borrowed(n),
                        source: Cow::Borrowed(s),
                    })
                    .collect(),
                migratable: f.migratable,
                data: f
                    .bits
                    .iter()
                    .map(|b| match *b {
                        ItemDef::Cpuid(leaf, sub, [a, b, c, d]) => {
                            Item::cpuid(leaf, sub, a, b, c, d)
                        }
                        ItemDef::Msr(index, [a, d]) => Item::msr(index, a, d),
                    })
                    .collect::<CpuData>(),
            })
            .collect();
        let ids = |v: &[u16]| v.iter().map(|i| FeatureId(*i)).collect::<Vec<_>>();
        let vendor_id = |name: &str| {
            data::VENDORS
                .iter()
                .position(|v| v.name == name)
                .map(|i| VendorId(i as u8))
        };
        let models = data::MODELS
            .iter()
            .map(|m| Model {
                name: Cow::Borrowed(m.name),
                vendor: m.vendor.and_then(vendor_id),
                ancestor: None,
                signatures: m
                    .signatures
                    .iter()
                    .map(|&(family, model, steppings)| ModelSignature {
                        family,
                        model,
                        steppings,
                    })
                    .collect(),
                features: FeatureSet::from_indices(m.features),
                removed: ids(m.removed),
                added: ids(m.added),
                decode_host: m.decode.0,
                decode_guest: m.decode.1,
            })
            .collect();
        let mut db = Database::from_parts(vendors, features, models);
        let ancestors: Vec<_> = data::MODELS
            .iter()
            .map(|m| m.ancestor.and_then(|a| db.find_model_exact(a)))
            .collect();
        db.set_ancestors(&ancestors);
        db
    }
}
