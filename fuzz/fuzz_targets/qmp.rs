//! QMP reply files (`query-cpu-definitions`, `query-cpu-model-expansion`):
//! parsing never panics, and what parses goes through the decode libvirt's
//! domain capabilities use without panicking.

#![no_main]

use cpumodel_cpudef::{decode, CpuFeatures, CpuKind, DecodeOptions, Scoring};
use cpumodel_fuzz::{db, text};
use cpumodel_qemu::{expansion_to_data, hypervisor_models, parse_replies, QemuNames};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    let Ok(replies) = parse_replies("r.json", text) else {
        return;
    };
    let db = db();
    for names in [QemuNames::Libvirt, QemuNames::WithAliases] {
        let models = replies
            .definitions
            .as_deref()
            .map(|defs| hypervisor_models(db, defs, names));
        let Some(exp) = &replies.expansion else {
            continue;
        };
        let Ok(data) = expansion_to_data(db, "r.json", exp, names) else {
            continue;
        };
        let Ok(features) = CpuFeatures::from_data(db, &data) else {
            continue;
        };
        for kind in [CpuKind::Host, CpuKind::Guest] {
            let mut opts = DecodeOptions::new(kind);
            opts.hypervisor = models.as_ref();
            for scoring in [Scoring::default(), Scoring::Intended] {
                opts.scoring = scoring;
                if let Ok(decoded) = decode(db, &features, &opts) {
                    let _ = decoded.to_cpu_def(db, kind).to_xml();
                }
            }
        }
    }
});
