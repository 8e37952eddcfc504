//! The x86 CPU model database.
//!
//! A CPU model such as `Skylake-Client-IBRS` is a name for a set of CPU
//! features, and a feature such as `avx2` is a name for a CPUID or MSR bit.
//! libvirt keeps these definitions in its `cpu_map` directory; this crate
//! loads such a directory ([`load_cpu_map`]) or uses the copy compiled into
//! cpumodel ([`Database::embedded`]), and answers name lookups with
//! suggestions for typos.
//!
//! Features are numbered in map order, and sets of features are fixed-size
//! bitsets ([`FeatureSet`]), so everything built on top (decode, compare,
//! baseline) is word-wise set arithmetic.
//!
//! ```
//! use cpumodel_map::Database;
//! let db = Database::embedded();
//! let westmere = db.model(db.find_model("westmere").unwrap());
//! let aes = db.find_feature("AES").unwrap();
//! assert!(westmere.features.contains(aes));
//! assert_eq!(
//!     db.find_model("Westmeer").unwrap_err().to_string(),
//!     "unknown CPU model 'Westmeer'; did you mean 'Westmere'?"
//! );
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod codegen;
mod db;
mod diff;
mod document;
mod embedded;
mod error;
mod featureset;
mod linux;
mod load;
mod origin;
pub mod psabi;
mod qemu;
mod release;
mod suggest;

pub use db::{Alias, Database, Feature, Model, ModelId, ModelSignature, Vendor, VendorId};
pub use diff::{MapDiff, ModelChange, Rename};
pub use document::{DecodeUse, ModelInfo, ModelSummary, SignatureInfo};
pub use error::{LoadMapError, NameKind, UnknownName};
pub use featureset::{FeatureId, FeatureSet, MAX_FEATURES};
pub use linux::{
    bit_item, find_linux_flag, linux_flag_of_bit, linux_flags, linux_shown_bits, CapabilityWord,
    LinuxFlag, LINUX_KERNEL,
};
pub use load::{load_cpu_map, MAX_MAP_FILE_BYTES};
pub use origin::read_map_origin;
pub use psabi::{PsabiAssessment, PsabiFields, PsabiLevel, PsabiMissing, PsabiTable, UnknownLevel};
pub use qemu::QEMU_DEFINITIONS_VERSION;
pub use release::{Behaviour, Release, UnknownRelease};
pub use suggest::{closest, MAX_SUGGEST_LEN};
