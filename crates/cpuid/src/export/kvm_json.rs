//! The KVM entry list as JSON: an array of `{function, index, flags, eax,
//! ebx, ecx, edx}` objects with decimal numbers, one entry per line, in the
//! order `KVM_SET_CPUID2` takes them.

use std::fmt::Write as _;

use crate::error::ExportCpuidError;
use crate::table::CpuidTable;

/// The entries of vCPU `vcpu` as a JSON array.
///
/// # Errors
/// [`ExportCpuidError::NoSuchVcpu`] when the table has no such vCPU.
pub fn to_kvm_json(table: &CpuidTable, vcpu: u32) -> Result<String, ExportCpuidError> {
    if vcpu >= table.vcpus() {
        return Err(ExportCpuidError::NoSuchVcpu {
            vcpu,
            vcpus: table.vcpus(),
        });
    }
    let entries = table.vcpu_entries(vcpu);
    let mut out = String::from("[\n");
    for (i, e) in entries.iter().enumerate() {
        let _ = write!(
            out,
            "  {{\"function\": {}, \"index\": {}, \"flags\": {}, \"eax\": {}, \"ebx\": {}, \"ecx\": {}, \"edx\": {}}}",
            e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx
        );
        out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    Ok(out)
}
