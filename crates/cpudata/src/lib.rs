//! Raw x86 CPU data: CPUID leaves and feature MSRs.
//!
//! Everything cpumodel knows about a processor starts as the values its CPUID
//! instruction and feature MSRs return. This crate holds those values
//! ([`CpuData`]), the CPUID vocabulary every other crate shares ([`CpuidKey`],
//! [`Register`], [`CpuidEntry`], the vendor words), the set operations
//! libvirt's CPU driver defines on them, the libvirt `<cpudata>` file format,
//! and the walk over a processor's leaves ([`walk`]). It knows nothing about
//! named features or models; that is `cpumodel-map`'s job.
//!
//! The crate is pure: it executes no instruction and opens no file. The walk
//! asks a [`CpuidReader`]; the reader that executes CPUID on the live
//! processor, and the MSR device read, are in `cpumodel-kvm`, the crate at
//! the machine's edge.
//!
//! ```
//! use cpumodel_cpudata::{parse_cpudata, ItemKey};
//! let data = parse_cpudata("example.xml", "<cpudata arch='x86'>\
//!     <cpuid eax_in='0x0' eax='0xd' ebx='0x756e6547' ecx='0x6c65746e' edx='0x49656e69'/>\
//!     </cpudata>").unwrap();
//! assert_eq!(&data.vendor_string().unwrap(), b"GenuineIntel");
//! assert!(data.get(ItemKey::cpuid(0, 0)).is_some());
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cpudata;
mod cpuid;
mod document;
mod item;
pub mod walk;

pub use cpudata::{
    duplicate_items, format_cpudata, parse_cpudata, parse_cpudata_light, parse_cpudata_node,
    parse_item, read_cpudata, read_item,
};
pub use cpuid::{
    vendor_from_regs, vendor_to_regs, CpuidBit, CpuidEntry, CpuidKey, Register, VcpuState,
    APIC_BASE_ENABLE, APIC_DEFAULT_BASE, INDEXED_LEAVES,
};
pub use document::{CpuDataDocument, CpuidInput, ItemDocument, MsrInput};
pub use item::{CpuData, Item, ItemKey, Signature, SIGNATURE_MASK};
pub use walk::CpuidReader;
