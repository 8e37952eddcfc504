//! The databases compiled into cpumodel, one per libvirt release, generated
//! from each release's cpu_map.
//!
//! Each `data_*.rs` is written by `cargo xtask import-cpu-map --release
//! NAME DIR` (see [`crate::codegen`]) and committed. It holds plain Rust
//! constants, one feature per line, so a change to a map shows up as a
//! readable diff, and turning it into a [`Database`] involves no parsing at
//! run time. Names are string literals, which the compiler stores once for
//! every table that repeats them.

use std::borrow::Cow;

use cpumodel_cpudata::{CpuData, Item};

use crate::db::{Alias, Database, Feature, Model, ModelId, ModelSignature, Vendor, VendorId};
use crate::featureset::{FeatureId, FeatureSet};

#[allow(dead_code, clippy::unreadable_literal)]
#[rustfmt::skip]
mod data_10_7;
#[allow(dead_code, clippy::unreadable_literal)]
#[rustfmt::skip]
mod data_9_0;
#[allow(dead_code, clippy::unreadable_literal)]
#[rustfmt::skip]
mod data_upstream;

/// The generated tables of one release's map.
pub(crate) struct MapData {
    /// The map directory and its size, as the importer described it.
    pub source: &'static str,
    /// The libvirt the map was taken from.
    pub origin: &'static str,
    pub vendors: &'static [VendorDef],
    pub features: &'static [FeatureDef],
    pub models: &'static [ModelDef],
}

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

/// A model as written in the generated table: ancestor and vendor as
/// indices, features already resolved through its ancestors, as indices
/// into the feature table.
pub(crate) struct ModelDef {
    pub name: &'static str,
    pub ancestor: Option<u16>,
    pub vendor: Option<u8>,
    pub decode: (bool, bool),
    pub signatures: &'static [(u32, u32, Option<u16>)],
    pub features: &'static [u16],
    pub removed: &'static [u16],
    pub added: &'static [u16],
}

/// The generated maps, oldest release first.
pub(crate) const MAPS: [(&str, &MapData); 3] = [
    ("9.0", &data_9_0::MAP),
    ("10.7", &data_10_7::MAP),
    ("upstream", &data_upstream::MAP),
];

impl MapData {
    /// The tables as a [`Database`].
    pub(crate) fn database(&self) -> Database {
        let vendors = self
            .vendors
            .iter()
            .map(|v| Vendor {
                name: Cow::Borrowed(v.name),
                string: *v.string,
            })
            .collect();
        let features = self
            .features
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
        let models = self
            .models
            .iter()
            .map(|m| Model {
                name: Cow::Borrowed(m.name),
                vendor: m.vendor.map(VendorId),
                ancestor: m.ancestor.map(ModelId),
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
        Database::from_parts(vendors, features, models)
    }
}

impl Database {
    /// The database of the newest embedded libvirt release (libvirt's
    /// upstream cpu_map); [`crate::Release`] gives the others.
    pub fn embedded() -> Database {
        crate::Release::newest().database()
    }
}
