//! The JSON form of a `<cpudata>` dump.
//!
//! `cpumodel dump --format json` prints the same leaves and registers as the
//! XML dump, in a shape a script can read without an XML parser. The shape
//! belongs to the data, not to the command that prints it, so it is defined
//! here, next to the XML format, as a plain [`serde::Serialize`] type.

use serde::Serialize;

use crate::cpuid::CpuidKey;
use crate::item::{CpuData, ItemKey};

/// A dump as a JSON document: `{"arch": "x86", "items": [...]}` with every
/// non-zero item in data order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CpuDataDocument {
    /// The architecture, always `x86`.
    pub arch: &'static str,
    /// The non-zero items.
    pub items: Vec<ItemDocument>,
}

/// One item of a [`CpuDataDocument`]: its input registers and its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ItemDocument {
    /// A CPUID leaf: `{"cpuid": {"eax_in", "ecx_in"}, "eax", "ebx", "ecx", "edx"}`.
    Cpuid {
        /// The inputs.
        cpuid: CpuidInput,
        /// EAX.
        eax: u32,
        /// EBX.
        ebx: u32,
        /// ECX.
        ecx: u32,
        /// EDX.
        edx: u32,
    },
    /// A model-specific register: `{"eax", "edx", "msr": {"index"}}`.
    Msr {
        /// The low 32 bits.
        eax: u32,
        /// The high 32 bits.
        edx: u32,
        /// The register.
        msr: MsrInput,
    },
}

/// The inputs of a CPUID leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CpuidInput {
    /// EAX (the leaf).
    pub eax_in: u32,
    /// ECX (the subleaf).
    pub ecx_in: u32,
}

/// The index of a model-specific register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MsrInput {
    /// The MSR index.
    pub index: u32,
}

impl CpuDataDocument {
    /// The document of `data`.
    pub fn new(data: &CpuData) -> Self {
        let items = data
            .nonzero_items()
            .map(|i| match i.key {
                ItemKey::Cpuid(CpuidKey { leaf, subleaf }) => ItemDocument::Cpuid {
                    cpuid: CpuidInput {
                        eax_in: leaf,
                        ecx_in: subleaf,
                    },
                    eax: i.regs[0],
                    ebx: i.regs[1],
                    ecx: i.regs[2],
                    edx: i.regs[3],
                },
                ItemKey::Msr { index } => ItemDocument::Msr {
                    eax: i.regs[0],
                    edx: i.regs[1],
                    msr: MsrInput { index },
                },
            })
            .collect();
        CpuDataDocument { arch: "x86", items }
    }
}
