//! Proof across the real stack: does a real QEMU give a guest the CPU
//! cpumodel says it will?
//!
//! `cpumodel cpuid` and `cpumodel verify` build the guest's CPUID table
//! themselves and apply it with `KVM_SET_CPUID2`; a libvirt guest instead
//! gets its CPUID from QEMU, which turns a `-cpu` argument into a table
//! with its own code and filters what the accelerator cannot give. This
//! crate boots a guest in that real QEMU (directly, [`qemu`], or through a
//! real libvirt, [`libvirt`]) and compares what the guest read with the
//! table cpumodel builds for the same CPU:
//!
//! 1. [`image`] builds the guest: a 64 KiB firmware image that executes
//!    CPUID for every leaf and subleaf worth asking and writes the answers
//!    to an I/O port (pure);
//! 2. [`qemu`] runs it and collects the answers and QEMU's warnings (the
//!    edge; [`libvirt`] the same through `virsh`);
//! 3. [`output`] turns the answers into the `<cpudata>` of the CPU the
//!    guest saw, [`warnings`] reads which features QEMU said it filtered,
//!    and [`compare`] names every difference (pure).
//!
//! ```
//! use cpumodel_cpudata::VcpuState;
//! use cpumodel_cpuid::verify::expected_entries;
//! use cpumodel_cpuid::{build, CpuidSpec, Topology};
//! use cpumodel_map::Database;
//!
//! let db = Database::embedded();
//! let spec = CpuidSpec::new(&db, db.find_model("Westmere").unwrap(), Topology::SINGLE).unwrap();
//! let table = build(&db, &spec).unwrap();
//! let plan = cpumodel_probe::Plan::new(&table, cpumodel_probe::image::DEBUGCON_PORT).unwrap();
//! // A guest that read exactly the table (what QEMU would print).
//! let state = VcpuState::REAL_MODE;
//! let entries = expected_entries(&table, 0, &state);
//! let bytes: Vec<u8> = plan
//!     .queries
//!     .iter()
//!     .map(|k| entries.iter().find(|e| e.answers(*k)).map_or([0; 4], |e| e.regs()))
//!     .flat_map(|r| r.into_iter().flat_map(u32::to_le_bytes))
//!     .collect();
//! let probe = plan.finish(&db, &table, &bytes, "").unwrap();
//! assert!(probe.report.is_ok());
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod compare;
mod error;
pub mod image;
pub mod libvirt;
pub mod output;
pub mod pin;
pub mod qemu;
pub mod warnings;

use cpumodel_cpudata::{CpuData, CpuidKey, VcpuState};
use cpumodel_cpuid::verify::queries;
use cpumodel_cpuid::CpuidTable;
use cpumodel_map::Database;

pub use compare::{compare, ProbeReport};
pub use error::ProbeError;
pub use output::{GuestAnswers, OutputError};
pub use qemu::{Accel, QemuProbe};
pub use warnings::{parse_warnings, QemuWarnings};

/// The state of the probe guest's vCPU while it runs CPUID: right out of
/// reset, in real mode, with its local APIC enabled.
pub const GUEST_STATE: VcpuState = VcpuState::REAL_MODE;

/// What to ask the guest, and the image that asks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The queries, in image order.
    pub queries: Vec<CpuidKey>,
    /// The firmware image.
    pub image: Vec<u8>,
}

impl Plan {
    /// The sweep over every leaf plus the table's keys, as an image that
    /// writes to `port`.
    ///
    /// # Errors
    /// [`ProbeError::Image`] when the queries do not fit the image.
    pub fn new(table: &CpuidTable, port: u16) -> Result<Self, ProbeError> {
        let queries = image::sweep(&queries(table));
        let image = image::image(&queries, port)?;
        Ok(Plan { queries, image })
    }

    /// What the guest's output `bytes` and QEMU's `stderr` say, compared
    /// with `table`.
    ///
    /// # Errors
    /// [`OutputError`] when the output is not one answer per query.
    pub fn finish(
        &self,
        db: &Database,
        table: &CpuidTable,
        bytes: &[u8],
        stderr: &str,
    ) -> Result<Probe, OutputError> {
        let answers = GuestAnswers::parse(&self.queries, bytes)?;
        let seen = answers.to_cpudata(&queries(table));
        let warnings = parse_warnings(stderr);
        let report = compare(db, table, &GUEST_STATE, &seen, &warnings);
        Ok(Probe {
            seen,
            warnings,
            report,
        })
    }
}

/// The result of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The CPUID the guest saw.
    pub seen: CpuData,
    /// What QEMU said.
    pub warnings: QemuWarnings,
    /// The comparison with the table.
    pub report: ProbeReport,
}
