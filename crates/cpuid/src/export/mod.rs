//! The forms a CPUID table leaves cpumodel in: KVM's entry list as JSON and
//! a Firecracker custom CPU template. (The `kvm_bindings::CpuId` a Rust VMM
//! hands to `KVM_SET_CPUID2` is made from [`CpuidTable::vcpu_entries`](crate::CpuidTable::vcpu_entries)
//! by `cpumodel_kvm::kvm_cpuid`, at the ioctl boundary.)

pub mod firecracker;
pub mod kvm_json;
