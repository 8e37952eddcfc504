//! The forms a CPUID table leaves cpumodel in: KVM's entry list as JSON, a
//! Firecracker custom CPU template, and `kvm_bindings::CpuId` for Rust VMMs.

pub mod firecracker;
#[cfg(target_arch = "x86_64")]
pub mod kvm;
pub mod kvm_json;
