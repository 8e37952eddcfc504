//! The KVM entry list as JSON: an array of `{function, index, flags, eax,
//! ebx, ecx, edx}` objects with decimal numbers, one entry per line, in the
//! order `KVM_SET_CPUID2` takes them.

use std::fmt::Write as _;

use crate::error::ExportCpuidError;
use crate::table::{kvm_flags, CpuidTable};

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
            e.key.leaf,
            e.key.subleaf,
            kvm_flags(e.key),
            e.eax,
            e.ebx,
            e.ecx,
            e.edx
        );
        out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use cpumodel_map::Database;

    use super::*;
    use crate::{build, CpuidSpec, Topology};

    #[test]
    fn entry_list_of_a_486_with_two_vcpus() {
        let db = Database::embedded();
        let topo = Topology::new(2, 1, 1, 1, 1).unwrap();
        let spec = CpuidSpec::new(&db, db.find_model("486").unwrap(), topo).unwrap();
        let table = build(&db, &spec).unwrap();
        assert_eq!(
            to_kvm_json(&table, 1).unwrap(),
            r#"[
  {"function": 0, "index": 0, "flags": 0, "eax": 1, "ebx": 1970169159, "ecx": 1818588270, "edx": 1231384169},
  {"function": 1, "index": 0, "flags": 0, "eax": 1152, "ebx": 16779264, "ecx": 2147483648, "edx": 11}
]
"#
        );
        assert_eq!(
            to_kvm_json(&table, 2).unwrap_err().to_string(),
            "vCPU 2 does not exist: the table describes 2 vCPUs"
        );
    }
}
