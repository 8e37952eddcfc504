//! The JSON form of a verification run: what `cpumodel verify --format
//! json` prints.
//!
//! A run is the table that was meant, what KVM could not provide, the
//! guest's state, and the per-leaf and per-vCPU checks of [`crate::verify`].
//! The document gathers them under one [`serde::Serialize`] type, so a tool
//! reading the result does not depend on the command line's formatting.
//! The KVM device and its limits come from the caller (this crate touches
//! no device).

use cpumodel_cpudata::VcpuState;
use cpumodel_cpudef::Topology;
use serde::Serialize;

use crate::mask::{DroppedFeature, MaskReport};
use crate::table::CpuidTable;
use crate::verify::{LeafCheck, VcpuTopology, VerifyReport};

/// The KVM device a table was verified on, and its vCPU limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KvmDocument {
    /// The device path.
    pub device: String,
    /// `KVM_CAP_MAX_VCPUS`.
    pub max_vcpus: usize,
    /// `KVM_CAP_NR_VCPUS`.
    pub recommended_vcpus: usize,
}

/// A verification run as JSON. Fields are declared in the order their keys
/// are printed (by name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyDocument<'a> {
    /// The APIC ID of each vCPU.
    pub apic_ids: Vec<u32>,
    /// The features KVM could not provide (dropped from the table).
    pub dropped: &'a [DroppedFeature],
    /// The device and its limits.
    pub kvm: KvmDocument,
    /// One check per table entry.
    pub leaves: &'a [LeafCheck],
    /// The model.
    pub model: &'a str,
    /// The QEMU model the identity leaves come from.
    pub qemu_model: &'a str,
    /// `ok` or `mismatch`.
    pub result: &'static str,
    /// The vCPU state the run-time bits were checked against.
    pub state: VcpuState,
    /// The topology.
    pub topology: &'a Topology,
    /// The topology values each vCPU read.
    pub vcpus: &'a [VcpuTopology],
    /// The vendor string.
    pub vendor: String,
}

impl<'a> VerifyDocument<'a> {
    /// The document of a run of `table` on `kvm`, after `dropped` was
    /// masked out, with vCPU state `state` and checks `report`.
    pub fn new(
        table: &'a CpuidTable,
        kvm: KvmDocument,
        dropped: &'a MaskReport,
        state: VcpuState,
        report: &'a VerifyReport,
    ) -> Self {
        VerifyDocument {
            apic_ids: table.apic_ids(),
            dropped: &dropped.dropped,
            kvm,
            leaves: &report.leaves,
            model: &table.model,
            qemu_model: &table.qemu_model,
            result: if report.is_ok() { "ok" } else { "mismatch" },
            state,
            topology: &table.topology,
            vcpus: &report.vcpus,
            vendor: String::from_utf8_lossy(&table.vendor).into_owned(),
        }
    }
}
