//! The JSON form of a guest CPU: what `cpumodel guest --format json`
//! prints.
//!
//! The document carries the guest CPU in both forms management tools use
//! (the libvirt `<cpu>` definition and QEMU's `-cpu` argument), computed
//! once from the same [`GuestCpu`], so the two cannot disagree.

use cpumodel_cpudef::CpuDef;
use cpumodel_map::Database;
use serde::Serialize;

use crate::policy::{CpuMode, GuestCpu};

/// A guest CPU as JSON: `{"cpu", "mode", "qemu"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GuestDocument {
    /// The libvirt `<cpu>` definition.
    pub cpu: CpuDef,
    /// The mode as given.
    pub mode: CpuMode,
    /// QEMU's `-cpu` argument.
    pub qemu: String,
}

impl GuestDocument {
    /// The document of `guest`, names from `db`.
    pub fn new(db: &Database, guest: &GuestCpu) -> Self {
        GuestDocument {
            cpu: guest.to_cpu_def(db),
            mode: guest.mode,
            qemu: guest.qemu_arg(db),
        }
    }
}
