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
//!    and [`mod@compare`] names every difference (pure).
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
//! let probe = plan.finish(&db, &spec, &table, &bytes, "").unwrap();
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

use cpumodel_cpudata::{CpuData, CpuidBit, CpuidKey, ItemKey, VcpuState};
use cpumodel_cpuid::verify::queries;
use cpumodel_cpuid::{build, CpuidSpec, CpuidTable};
use cpumodel_map::{Database, FeatureId, FeatureSet};

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
    /// with `table`, the table of `spec`.
    ///
    /// # Errors
    /// [`OutputError`] when the output is not one answer per query.
    pub fn finish(
        &self,
        db: &Database,
        spec: &CpuidSpec,
        table: &CpuidTable,
        bytes: &[u8],
        stderr: &str,
    ) -> Result<Probe, OutputError> {
        let answers = GuestAnswers::parse(&self.queries, bytes)?;
        let seen = answers.to_cpudata(&queries(table));
        let warnings = parse_warnings(db, stderr);
        let effective =
            effective_table(db, spec, table, &warnings).unwrap_or_else(|| table.clone());
        let report = compare(db, table, &effective, &GUEST_STATE, &seen, &warnings);
        Ok(Probe {
            seen,
            warnings,
            report,
        })
    }
}

/// The table of `spec` without the features QEMU said it filtered: what
/// the guest should see once QEMU has removed them, with everything that
/// follows from them (XSAVE components and sizes, AMD's copies of leaf 1
/// bits) rebuilt. `None` when nothing was filtered or the rebuild fails.
pub fn effective_table(
    db: &Database,
    spec: &CpuidSpec,
    table: &CpuidTable,
    warnings: &QemuWarnings,
) -> Option<CpuidTable> {
    let mut spec = spec.clone();
    let mut removed = FeatureSet::default();
    for f in &warnings.filtered {
        let by_name = cpumodel_qemu::feature_from_qemu(db, &f.qemu_name);
        let by_bit = f.bit.and_then(|b| feature_of_bit(db, b));
        if let Some(id) = by_name.or(by_bit).filter(|id| spec.features.contains(*id)) {
            spec.features.remove(id);
            removed.insert(id);
        }
    }
    if removed.is_empty() {
        return None;
    }
    let mut rebuilt = build(db, &spec).ok()?;
    // QEMU raises the maximum leaves and leaf 7's maximum subleaf before it
    // filters features: they, and the leaves they make exist, stay (without
    // the filtered bits).
    let removed_bits = db.features_to_data(&removed);
    for e in &table.entries {
        let keep_max = matches!((e.key.leaf, e.key.subleaf), (0 | 0x8000_0000 | 7, 0));
        match rebuilt.entries.iter_mut().find(|r| r.key == e.key) {
            Some(r) if keep_max => r.eax = e.eax,
            Some(_) => {}
            None => {
                let mut regs = e.regs();
                if let Some(item) = removed_bits.get(ItemKey::Cpuid(e.key)) {
                    for (r, m) in regs.iter_mut().zip(item.regs) {
                        *r &= !m;
                    }
                }
                let mut kept = *e;
                kept.set_regs(regs);
                rebuilt.entries.push(kept);
            }
        }
    }
    // QEMU picks the XSAVE state components (leaf 0xD) before it filters
    // features, so they stay those of the whole CPU; only the feature bits
    // of subleaf 1 EAX go with the filtered features.
    let xsave_features = rebuilt.get(0xd, 1).map(|e| e.eax);
    rebuilt.entries.retain(|e| e.key.leaf != 0xd);
    rebuilt
        .entries
        .extend(table.entries.iter().filter(|e| e.key.leaf == 0xd).map(|e| {
            let mut e = *e;
            if e.key.subleaf == 1 {
                e.eax = xsave_features.unwrap_or(e.eax);
            }
            e
        }));
    rebuilt.entries.sort_by_key(|e| e.key);
    Some(rebuilt)
}

/// The first CPU-map feature holding `bit`.
fn feature_of_bit(db: &Database, bit: CpuidBit) -> Option<FeatureId> {
    db.features()
        .iter()
        .position(|f| {
            f.data
                .get(ItemKey::Cpuid(bit.key))
                .is_some_and(|i| i.regs[bit.register.index()] & (1 << bit.bit) != 0)
        })
        .map(FeatureId::from_index)
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
