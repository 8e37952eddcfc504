//! Masking a guest CPU by what the host's KVM can provide.
//!
//! KVM silently ignores CPUID bits it cannot virtualize, so a table is
//! first cut down to what `KVM_GET_SUPPORTED_CPUID` reports. The cut is made
//! feature by feature: a feature whose CPUID bits are not all supported is
//! dropped whole and named in the report, and the table is then rebuilt
//! from the remaining features, so that everything derived from features
//! (maximum leaves, XSAVE components and sizes) stays consistent.
//!
//! A feature that needs XSAVE state (AVX, MPX, AVX-512, PKU, AMX) is also
//! dropped when KVM does not offer its state components in CPUID.(EAX=0xD,
//! ECX=0).EAX/EDX.
//!
//! KVM reports the TSC deadline timer through `KVM_CAP_TSC_DEADLINE_TIMER`
//! rather than CPUID; VMMs with an in-kernel local APIC (every VMM this
//! table is for) provide it, so it is never dropped.

use std::fmt;

use cpumodel_data::{CpuData, Item, ItemKey};
use cpumodel_map::Database;

use crate::build::{CpuidSpec, RUNTIME_FEATURES};
use crate::xsave;

/// Features KVM provides without listing them in its supported CPUID.
pub const KVM_IMPLIED: &[&str] = &["tsc-deadline"];

/// One feature the mask removed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DroppedFeature {
    /// The feature's name in the CPU map.
    pub name: String,
    /// Its CPUID bits KVM does not offer.
    pub missing: Vec<MissingBits>,
}

/// Bits of one CPUID leaf that KVM does not offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MissingBits {
    /// The leaf and subleaf.
    pub key: ItemKey,
    /// The missing bits, `[eax, ebx, ecx, edx]`.
    pub regs: [u32; 4],
}

impl fmt::Display for MissingBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = ["EAX", "EBX", "ECX", "EDX"];
        let mut first = true;
        for (r, bits) in self.regs.iter().enumerate().filter(|(_, b)| **b != 0) {
            for bit in (0..32).filter(|b| bits & (1 << b) != 0) {
                if !first {
                    f.write_str(" ")?;
                }
                first = false;
                write!(f, "{}:{}[{bit}]", self.key, names[r])?;
            }
        }
        Ok(())
    }
}

/// What a mask removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MaskReport {
    /// Dropped features, in CPU map order.
    pub dropped: Vec<DroppedFeature>,
}

impl MaskReport {
    /// True when nothing was dropped.
    pub fn is_empty(&self) -> bool {
        self.dropped.is_empty()
    }

    /// The dropped features' names.
    pub fn names(&self) -> Vec<&str> {
        self.dropped.iter().map(|d| d.name.as_str()).collect()
    }
}

impl fmt::Display for MaskReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.dropped {
            let bits: Vec<String> = d.missing.iter().map(ToString::to_string).collect();
            writeln!(f, "{}: {}", d.name, bits.join(" "))?;
        }
        Ok(())
    }
}

impl CpuidSpec {
    /// Removes every feature the host's KVM cannot provide, given its
    /// supported CPUID (`KVM_GET_SUPPORTED_CPUID` as [`CpuData`]; MSR items
    /// in it are ignored), and reports them by name. Build the table after
    /// masking.
    pub fn mask(&mut self, db: &Database, supported: &CpuData) -> MaskReport {
        let xcr0 = supported
            .get(ItemKey::Cpuid {
                leaf: 0xd,
                subleaf: 0,
            })
            .map(|i| u64::from(i.regs[0]) | (u64::from(i.regs[3]) << 32));
        let mut report = MaskReport::default();
        for id in self.features.iter().collect::<Vec<_>>() {
            let f = db.feature(id);
            if f.is_msr()
                || KVM_IMPLIED.contains(&f.name.as_ref())
                || RUNTIME_FEATURES.contains(&f.name.as_ref())
            {
                continue;
            }
            let mut missing: Vec<MissingBits> = f
                .data
                .nonzero_items()
                .filter_map(|want| missing_bits(want, supported))
                .collect();
            if let Some(xcr0) = xcr0 {
                let comps = xsave::COMPONENTS
                    .iter()
                    .filter(|c| c.feature == Some(f.name.as_ref()))
                    .fold(0u64, |m, c| m | (1 << c.bit));
                let lacking = comps & !xcr0;
                if lacking != 0 {
                    missing.push(MissingBits {
                        key: ItemKey::Cpuid {
                            leaf: 0xd,
                            subleaf: 0,
                        },
                        regs: [lacking as u32, 0, 0, (lacking >> 32) as u32],
                    });
                }
            }
            if !missing.is_empty() {
                self.features.remove(id);
                report.dropped.push(DroppedFeature {
                    name: f.name.to_string(),
                    missing,
                });
            }
        }
        report
    }
}

fn missing_bits(want: &Item, supported: &CpuData) -> Option<MissingBits> {
    let have = supported.get(want.key).map_or([0; 4], |i| i.regs);
    let mut regs = [0; 4];
    for ((m, w), h) in regs.iter_mut().zip(want.regs).zip(have) {
        *m = w & !h;
    }
    (regs != [0; 4]).then_some(MissingBits {
        key: want.key,
        regs,
    })
}
