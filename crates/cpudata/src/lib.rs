//! Raw x86 CPU data: CPUID leaves and feature MSRs.
//!
//! Everything cpumodel knows about a processor starts as the values its CPUID
//! instruction and feature MSRs return. This crate holds those values
//! ([`CpuData`]), the set operations libvirt's CPU driver defines on them,
//! the libvirt `<cpudata>` file format, and the walk that reads the live
//! processor. It knows nothing about named features or models; that is
//! `cpumodel-map`'s job.
//!
//! ```
//! use cpumodel_cpudata::{parse_cpudata, ItemKey};
//! let data = parse_cpudata("example.xml", "<cpudata arch='x86'>\
//!     <cpuid eax_in='0x0' eax='0xd' ebx='0x756e6547' ecx='0x6c65746e' edx='0x49656e69'/>\
//!     </cpudata>").unwrap();
//! assert_eq!(&data.vendor_string().unwrap(), b"GenuineIntel");
//! assert!(data.get(ItemKey::Cpuid { leaf: 0, subleaf: 0 }).is_some());
//! ```

#![deny(missing_docs)]

mod cpudata;
pub mod host;
mod item;

pub use cpudata::{format_cpudata, parse_cpudata, parse_cpudata_node, parse_item, read_item};
pub use item::{vendor_bytes, CpuData, Item, ItemKey, Signature, SIGNATURE_MASK};
