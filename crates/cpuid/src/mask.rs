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

use cpumodel_cpudata::{CpuData, Item, ItemKey};
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
            .get(ItemKey::cpuid(0xd, 0))
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
                        key: ItemKey::cpuid(0xd, 0),
                        regs: {
                            let [low, high] = xsave::halves(lacking);
                            [low, 0, 0, high]
                        },
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

#[cfg(test)]
mod tests {
    use cpumodel_cpudata::{CpuData, Item, ItemKey};
    use cpumodel_map::Database;

    use crate::{build, CpuidSpec, Topology};

    /// What a host with every feature of `model` supports, less `remove`
    /// bits.
    fn host_like(db: &Database, model: &str, remove: &[Item]) -> CpuData {
        let m = db.model(db.find_model(model).unwrap());
        let mut d = db.features_to_data(&m.features);
        // The XSAVE components of such a host: everything up to AMX.
        d.add(Item::cpuid(0xd, 0, 0x0006_02ff, 0, 0, 0));
        let remove: CpuData = remove.iter().copied().collect();
        d.subtract(&remove);
        d
    }

    #[test]
    fn a_full_host_drops_nothing() {
        let db = Database::embedded();
        let model = db.find_model("Skylake-Server-v5").unwrap();
        let mut spec = CpuidSpec::new(&db, model, Topology::SINGLE).unwrap();
        let before = build(&db, &spec).unwrap();
        let report = spec.mask(&db, &host_like(&db, "Skylake-Server-v5", &[]));
        assert!(report.is_empty(), "{report}");
        assert_eq!(build(&db, &spec).unwrap(), before);
    }

    #[test]
    fn dropped_bits_are_reported_by_feature_name() {
        let db = Database::embedded();
        let model = db.find_model("Skylake-Server-v5").unwrap();
        let mut spec = CpuidSpec::new(&db, model, Topology::SINGLE).unwrap();
        // No AVX512BW in leaf 7, no PKRU state component.
        let supported = host_like(
            &db,
            "Skylake-Server-v5",
            &[
                Item::cpuid(7, 0, 0, 1 << 30, 0, 0),
                Item::cpuid(0xd, 0, 1 << 9, 0, 0, 0),
            ],
        );
        let report = spec.mask(&db, &supported);
        assert_eq!(report.names(), ["avx512bw", "pku"]);
        assert_eq!(
            report.to_string(),
            "avx512bw: CPUID.(EAX=0x7,ECX=0x0):EBX[30]\npku: CPUID.(EAX=0xd,ECX=0x0):EAX[9]\n"
        );
        // The rebuilt table is consistent: no AVX512BW bit, no PKRU state.
        let t = build(&db, &spec).unwrap();
        assert_eq!(t.get(7, 0).unwrap().ebx & (1 << 30), 0);
        assert_eq!(t.get(7, 0).unwrap().ecx & (1 << 3), 0);
        assert_eq!(t.get(0xd, 0).unwrap().regs(), [0xe7, 2688, 2688, 0]);
    }

    #[test]
    fn tsc_deadline_is_never_dropped_and_msr_features_are_ignored() {
        let db = Database::embedded();
        let model = db.find_model("Cascadelake-Server-v2").unwrap();
        let mut spec = CpuidSpec::new(&db, model, Topology::SINGLE).unwrap();
        // KVM reports neither the TSC deadline timer nor (here) any MSR.
        let supported = host_like(
            &db,
            "Cascadelake-Server-v2",
            &[Item::cpuid(1, 0, 0, 0, 1 << 24, 0)],
        );
        assert!(supported
            .items()
            .iter()
            .any(|i| matches!(i.key, ItemKey::Msr { .. })));
        let no_msrs: CpuData = supported
            .items()
            .iter()
            .filter(|i| matches!(i.key, ItemKey::Cpuid(_)))
            .copied()
            .collect();
        let report = spec.mask(&db, &no_msrs);
        assert!(report.is_empty(), "{report}");
        assert_ne!(
            build(&db, &spec).unwrap().get(1, 0).unwrap().ecx & (1 << 24),
            0
        );
    }

    #[test]
    fn an_old_host_drops_whole_generations() {
        let db = Database::embedded();
        let model = db.find_model("EPYC-Genoa").unwrap();
        let mut spec = CpuidSpec::new(&db, model, Topology::SINGLE).unwrap();
        let report = spec.mask(&db, &host_like(&db, "EPYC-Rome", &[]));
        let names = report.names();
        for f in ["avx512f", "avx512bw", "vaes", "la57", "auto-ibrs"] {
            assert!(names.contains(&f), "{f} not in {names:?}");
        }
        let t = build(&db, &spec).unwrap();
        // Without AVX-512 and with PKU from Genoa kept only if Rome had it.
        assert_eq!(t.get(0xd, 0).unwrap().eax & 0xe0, 0);
        // Genoa's extended level stays QEMU's 0x80000022: 0x8000001F exists.
        assert_eq!(t.get(0x8000_0000, 0).unwrap().eax, 0x8000_0022);
        assert_eq!(t.get(0x8000_001f, 0).unwrap().regs(), [0; 4]);
    }
}
