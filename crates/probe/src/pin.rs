//! Asking QEMU for exactly the table's CPU.
//!
//! A model name means different feature sets to libvirt's CPU map (which
//! the table follows) and to QEMU's own definition: QEMU's `Westmere` has
//! PCLMULQDQ and ARAT, the map's does not. Handed a bare model, QEMU gives
//! the guest its own set, and the comparison would only show that known
//! gap. So by default the probe states every CPUID feature of the map that
//! this QEMU knows explicitly — on when the table has it, off when not —
//! and the guest's CPUID then tests what QEMU does with exactly the
//! intended CPU. `cpumodel probe --no-pin` passes the CPU as `cpumodel
//! guest` writes it instead, showing the gap.

use cpumodel_cpudata::{CpuData, Item, ItemKey};
use cpumodel_cpuid::{CpuidTable, RUNTIME_FEATURES};
use cpumodel_map::{Database, FeatureId};

/// The explicit setting of every CPUID feature of `db` that `known` (QEMU's
/// spelling, from `cpumodel_qemu::feature_to_qemu`) accepts and that is not
/// in `already`: `true` when `table` has all its bits. Run-time features
/// (OSXSAVE, OSPKE), MSR features and hypervisor leaves are left alone.
pub fn pins(
    db: &Database,
    table: &CpuidTable,
    known: impl Fn(&str) -> bool,
    already: &[FeatureId],
) -> Vec<(FeatureId, bool)> {
    let data: CpuData = table
        .entries
        .iter()
        .map(|e| Item {
            key: ItemKey::Cpuid(e.key),
            regs: e.regs(),
        })
        .collect();
    db.features()
        .iter()
        .enumerate()
        .map(|(i, f)| (FeatureId::from_index(i), f))
        .filter(|(id, f)| {
            let cpuid_only = f.data.nonzero_items().all(|i| {
                matches!(i.key, ItemKey::Cpuid(k) if !(0x4000_0000..0x5000_0000).contains(&k.leaf))
            });
            !f.data.is_empty()
                && cpuid_only
                && !RUNTIME_FEATURES.contains(&f.name.as_ref())
                && !already.contains(id)
                && known(&cpumodel_qemu::feature_to_qemu(db, *id))
        })
        .map(|(id, f)| (id, data.contains(&f.data)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpumodel_cpuid::{build, CpuidSpec, Topology};

    #[test]
    fn features_are_pinned_to_the_table() {
        let db = &Database::embedded();
        let spec = CpuidSpec::new(
            db,
            db.find_model("Westmere").expect("model"),
            Topology::SINGLE,
        )
        .expect("spec");
        let table = build(db, &spec).expect("table");
        let id = |n: &str| db.find_feature_exact(n).expect(n);
        let pins = pins(db, &table, |q| q != "avx512f", &[id("sse4.2")]);
        let get = |n: &str| pins.iter().find(|p| p.0 == id(n)).map(|p| p.1);
        assert_eq!(get("pclmuldq"), Some(false));
        assert_eq!(get("arat"), Some(false));
        assert_eq!(get("sse4.1"), Some(true));
        // The table sets the hypervisor bit itself.
        assert_eq!(get("hypervisor"), Some(true));
        // Unknown to this QEMU, set already, or set at run time.
        assert_eq!(get("avx512f"), None);
        assert_eq!(get("sse4.2"), None);
        assert_eq!(get("osxsave"), None);
    }
}
