//! The guest CPUID table: any model of the embedded database, with any
//! features added or removed, any vendor string, physical address width and
//! topology, optionally masked by any KVM offer, builds or fails with an
//! error, and every export of a built table is valid JSON.

#![no_main]

use arbitrary::Arbitrary;
use cpumodel_cpudata::{CpuData, Item};
use cpumodel_cpuid::export::{firecracker::to_firecracker, kvm_json::to_kvm_json};
use cpumodel_cpuid::{build, CpuidSpec, Topology};
use cpumodel_fuzz::db;
use cpumodel_map::{FeatureId, ModelId};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    model: u16,
    add: Vec<u16>,
    remove: Vec<u16>,
    topology: [u16; 5],
    vendor: Option<[u8; 12]>,
    phys_bits: Option<u8>,
    /// `(leaf, subleaf, registers)` of a KVM offer to mask with.
    supported: Option<Vec<(u32, u32, [u32; 4])>>,
}

fuzz_target!(|input: Input| {
    let db = db();
    let model = ModelId::from_index(usize::from(input.model) % db.models().len());
    let [s, d, c, k, t] = input.topology.map(u32::from);
    let Ok(topology) = Topology::new(s, d, c, k, t) else {
        return;
    };
    let Ok(mut spec) = CpuidSpec::new(db, model, topology) else {
        return;
    };
    let feature = |i: u16| FeatureId::from_index(usize::from(i) % db.features().len());
    for &i in &input.add {
        spec.features.insert(feature(i));
    }
    for &i in &input.remove {
        spec.features.remove(feature(i));
    }
    if let Some(v) = input.vendor {
        spec.vendor = v;
    }
    if let Some(bits) = input.phys_bits {
        spec.phys_bits = u32::from(bits);
    }
    if let Some(items) = &input.supported {
        let supported: CpuData = items
            .iter()
            .map(|&(leaf, subleaf, [a, b, c, d])| Item::cpuid(leaf, subleaf, a, b, c, d))
            .collect();
        let _ = spec.mask(db, &supported);
    }
    let Ok(table) = build(db, &spec) else { return };
    let vcpus = table.vcpus();
    assert_eq!(vcpus, topology.vcpus());
    assert_eq!(table.apic_ids().len(), vcpus as usize);
    let _ = table.to_text();
    for vcpu in [0, vcpus - 1] {
        let json = to_kvm_json(&table, vcpu).expect("an existing vCPU exports");
        serde_json::from_str::<serde_json::Value>(&json).expect("KVM JSON is JSON");
    }
    assert!(to_kvm_json(&table, vcpus).is_err());
    let template = to_firecracker(db, &table);
    serde_json::from_str::<serde_json::Value>(&template).expect("the template is JSON");
});
