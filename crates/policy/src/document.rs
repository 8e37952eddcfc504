//! The JSON form of a guest CPU: what `cpumodel guest --format json`
//! prints.
//!
//! The document carries the guest CPU in both forms management tools use
//! (the libvirt `<cpu>` definition and QEMU's `-cpu` argument), computed
//! once from the same [`GuestCpu`], so the two cannot disagree.

use cpumodel_cpudef::{CpuDocument, OpError};
use cpumodel_map::{Database, PsabiTable};
use serde::Serialize;

use crate::policy::{CpuMode, GuestCpu};

/// A guest CPU as JSON: `{"cpu", "mode", "qemu"}`, where `cpu` carries
/// the guest's x86-64 level (see [`CpuDocument`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GuestDocument {
    /// The libvirt `<cpu>` definition, with its x86-64 level.
    pub cpu: CpuDocument,
    /// The mode as given.
    pub mode: CpuMode,
    /// QEMU's `-cpu` argument.
    pub qemu: String,
}

impl GuestDocument {
    /// The document of `guest`, names from `db`.
    ///
    /// # Errors
    /// A model or feature name of the guest that `db` does not define.
    pub fn new(db: &Database, guest: &GuestCpu) -> Result<Self, OpError> {
        Ok(GuestDocument {
            cpu: CpuDocument::new(db, &PsabiTable::new(db), guest.to_cpu_def(db))?,
            mode: guest.mode,
            qemu: guest.qemu_arg(db),
        })
    }
}
