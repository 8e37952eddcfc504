//! The database compiled into cpumodel, generated from libvirt's cpu_map.
//!
//! `data.rs` is written by `cargo xtask import-cpu-map DIR` (see
//! [`crate::codegen`]) and committed. It holds plain Rust constants, one
//! feature per line, so a change to the upstream map shows up as a readable
//! diff, and turning it into a [`Database`] involves no parsing at run time.

use std::borrow::Cow;

use cpumodel_cpudata::{CpuData, Item};

use crate::db::{Alias, Database, Feature, Model, ModelId, ModelSignature, Vendor, VendorId};
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

/// The libvirt the embedded database was taken from (`libvirt upstream
/// commit <hash>` or `libvirt <version>`), as the importer read it from the
/// map directory; `cpumodel --version` prints it.
pub const EMBEDDED_ORIGIN: &str = data::ORIGIN;

/// The number of embedded models.
const MODEL_COUNT: usize = data::MODELS.len();

/// Each model's features as a set, computed by the compiler.
static MODEL_FEATURES: [FeatureSet; MODEL_COUNT] = {
    let mut sets = [FeatureSet::EMPTY; MODEL_COUNT];
    let mut i = 0;
    while i < MODEL_COUNT {
        sets[i] = FeatureSet::from_indices(data::MODELS[i].features);
        i += 1;
    }
    sets
};

/// Each model's ancestor, by index, computed by the compiler.
static ANCESTORS: [Option<u16>; MODEL_COUNT] = {
    let mut ancestors = [None; MODEL_COUNT];
    let mut i = 0;
    while i < MODEL_COUNT {
        if let Some(name) = data::MODELS[i].ancestor {
            let mut j = 0;
            while j < MODEL_COUNT {
                if const_str_eq(data::MODELS[j].name, name) {
                    // cast: j < MODEL_COUNT, which a test keeps below u16::MAX.
                    #[allow(clippy::cast_possible_truncation)]
                    let j = j as u16;
                    ancestors[i] = Some(j);
                    break;
                }
                j += 1;
            }
        }
        i += 1;
    }
    ancestors
};

/// Each model's vendor, by index, computed by the compiler.
static MODEL_VENDORS: [Option<u8>; MODEL_COUNT] = {
    let mut vendors = [None; MODEL_COUNT];
    let mut i = 0;
    while i < MODEL_COUNT {
        if let Some(name) = data::MODELS[i].vendor {
            let mut j = 0;
            while j < data::VENDORS.len() {
                if const_str_eq(data::VENDORS[j].name, name) {
                    // cast: j < VENDORS.len(), a handful.
                    #[allow(clippy::cast_possible_truncation)]
                    let j = j as u8;
                    vendors[i] = Some(j);
                    break;
                }
                j += 1;
            }
        }
        i += 1;
    }
    vendors
};

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

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
        let models = data::MODELS
            .iter()
            .enumerate()
            .map(|(i, m)| Model {
                name: Cow::Borrowed(m.name),
                vendor: MODEL_VENDORS[i].map(VendorId),
                ancestor: ANCESTORS[i].map(ModelId),
                signatures: m
                    .signatures
                    .iter()
                    .map(|&(family, model, steppings)| ModelSignature {
                        family,
                        model,
                        steppings,
                    })
                    .collect(),
                features: MODEL_FEATURES[i],
                removed: ids(m.removed),
                added: ids(m.added),
                decode_host: m.decode.0,
                decode_guest: m.decode.1,
            })
            .collect();
        Database::from_parts(vendors, features, models)
    }
}
