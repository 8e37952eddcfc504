//! `cpumodel verify`: build a model's CPUID table, run it in a real KVM
//! guest, and check that every vCPU sees the intended table.
//!
//! The steps: the model, flags and topology are validated as in `cpumodel
//! cpuid`; the table is masked by what KVM supports
//! (`KVM_GET_SUPPORTED_CPUID`), naming every dropped feature; the masked
//! table is built and applied to each vCPU of a KVM VM with
//! `KVM_SET_CPUID2`; a tiny real-mode guest program executes CPUID for every
//! leaf and subleaf of the table on each vCPU ([`cpumodel_kvm::guest`]); and
//! what each vCPU read is compared bit by bit with the intended table
//! ([`cpumodel_cpuid::verify`]).
//!
//! Exit codes: 0 when every vCPU saw the intended (masked) table, 1 on a
//! mismatch, 2 on an error (no usable KVM, a bad name, a topology KVM cannot
//! run).

use std::fmt::Write as _;
use std::path::Path;

use cpumodel_cpudata::{CpuidKey, VcpuState};
use cpumodel_cpuid::verify::{queries, verify, VcpuObservation, VerifyReport};
use cpumodel_cpuid::{build, CpuidTable, KvmDocument, MaskReport, VerifyDocument};
use cpumodel_kvm::{KvmRunError, VcpuRun, VmLimits};

use crate::error::CliError;
use crate::shared::{json_text, kvm_device, Output, TextFormat};

/// Arguments of `cpumodel verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The guest CPU.
    #[command(flatten)]
    pub cpu: super::cpuid::CpuSpecArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
}

impl VerifyArgs {
    /// Runs `cpumodel verify`.
    ///
    /// # Errors
    /// Unknown model or flag names (with suggestions), impossible
    /// topologies, an unusable KVM device (with the reason), a topology past
    /// KVM's vCPU limits (with the limit), and a guest that could not run.
    pub fn run(&self) -> Result<Output, CliError> {
        run(self)
    }
}

fn run(a: &VerifyArgs) -> Result<Output, CliError> {
    let db = a.cpu.map.load()?;
    let mut spec = a.cpu.spec(db)?;
    let device = kvm_device();
    let supported = cpumodel_kvm::probe_at(&device).map_err(KvmRunError::Device)?;
    let dropped = spec.mask(db, &supported);
    let table = build(db, &spec).map_err(|e| CliError::Usage(e.to_string()))?;
    let queries = queries(&table);
    let (limits, runs) = run_guest(&device, &table, &queries)?;
    // One run per vCPU, and a guest's vCPU count is a u32.
    let observations: Vec<VcpuObservation> =
        (0..).zip(runs).map(|(n, r)| observation(n, r)).collect();
    let report = verify(db, &table, &observations);
    let code = if report.is_ok() { 0 } else { 1 };
    let run = GuestRun {
        device: &device,
        limits,
        table: &table,
        dropped: &dropped,
        state: observations
            .first()
            .map_or(VcpuState::REAL_MODE, |o| o.state),
        report: &report,
    };
    let text = match a.format {
        TextFormat::Json => run.to_json(),
        TextFormat::Text => run.to_text(),
    };
    Ok(Output { text, code })
}

/// What one vCPU read, for the comparison.
fn observation(vcpu: u32, r: VcpuRun) -> VcpuObservation {
    VcpuObservation {
        vcpu,
        state: r.state,
        seen: r.results,
        stored: r.stored,
    }
}

/// Runs the CPUID guest with one vCPU per APIC ID of the table.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn run_guest(
    device: &Path,
    table: &CpuidTable,
    queries: &[CpuidKey],
) -> Result<(VmLimits, Vec<VcpuRun>), CliError> {
    use cpumodel_kvm::{CpuidGuest, GuestVcpu};

    let guest = CpuidGuest::open(device)?;
    let limits = guest.limits();
    let apic_ids = table.apic_ids();
    // Before building a CPUID per vCPU: a topology past KVM's limits is an
    // error that gives the limit.
    limits.check(device, &apic_ids, queries.len())?;
    let vcpus: Vec<GuestVcpu> = apic_ids
        .iter()
        .zip(0..)
        .map(|(&apic_id, n)| GuestVcpu {
            apic_id,
            cpuid: table.vcpu_entries(n),
        })
        .collect();
    Ok((limits, guest.run(&vcpus, queries)?))
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn run_guest(
    _device: &Path,
    _table: &CpuidTable,
    _queries: &[CpuidKey],
) -> Result<(VmLimits, Vec<VcpuRun>), CliError> {
    Err(KvmRunError::Unsupported.into())
}

/// Everything the output shows.
struct GuestRun<'a> {
    device: &'a Path,
    limits: VmLimits,
    table: &'a CpuidTable,
    dropped: &'a MaskReport,
    state: VcpuState,
    report: &'a VerifyReport,
}

impl GuestRun<'_> {
    fn to_text(&self) -> String {
        let t = self.table;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "model:    {} (QEMU {}), {}",
            t.model,
            t.qemu_model,
            String::from_utf8_lossy(&t.vendor)
        );
        let ids: Vec<String> = t.apic_ids().iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "topology: {} vCPU{}: {}; APIC IDs {}",
            t.vcpus(),
            if t.vcpus() == 1 { "" } else { "s" },
            t.topology,
            ids.join(" ")
        );
        let _ = writeln!(
            out,
            "kvm:      {}: at most {} vCPUs per VM ({} recommended)",
            self.device.display(),
            self.limits.max_vcpus,
            self.limits.recommended_vcpus
        );
        if self.dropped.is_empty() {
            let _ = writeln!(out, "KVM provides every feature of the model");
        } else {
            let _ = writeln!(
                out,
                "KVM cannot provide: {} (dropped from the table)",
                self.dropped.names().join(", ")
            );
        }
        let _ = writeln!(
            out,
            "guest:    real mode, CR4 {:#x}, XCR0 {:#x}, IA32_APIC_BASE {:#x}; CPUID on {} leaves per vCPU",
            self.state.cr4,
            self.state.xcr0,
            self.state.apic_base,
            self.report.leaves.len()
        );
        out.push_str(&self.report.to_text());
        out
    }

    fn to_json(&self) -> String {
        let kvm = KvmDocument {
            device: self.device.display().to_string(),
            max_vcpus: self.limits.max_vcpus,
            recommended_vcpus: self.limits.recommended_vcpus,
        };
        json_text(&VerifyDocument::new(
            self.table,
            kvm,
            self.dropped,
            self.state,
            self.report,
        ))
    }
}
