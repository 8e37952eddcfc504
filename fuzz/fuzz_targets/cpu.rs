//! `<cpu>` in every document shape: `parse_cpus` and `parse_known_cpus`
//! give the same CPUs on the light path and on roxmltree's, adding a
//! document to a baseline equals parsing it then adding each CPU, the
//! operations never panic on what parses, and each CPU written as XML reads
//! back to the same definition.

#![no_main]

use cpumodel_cpudef::{
    add_cpus_to_baseline, compare, expand, parse_cpus, parse_known_cpus, AddCpusError,
    BaselineAccumulator, BaselineOptions, CpuDef, CpuKind, InputError, Mode, Policy, SourcedCpu,
};
use cpumodel_fuzz::{db, text};
use cpumodel_map::Database;
use libfuzzer_sys::fuzz_target;

fn parse(db: &Database, known: bool, text: &str) -> Result<Vec<SourcedCpu>, InputError> {
    if known {
        parse_known_cpus(db, "c.xml", text)
    } else {
        parse_cpus(db, "c.xml", text)
    }
}

/// The features as they are written: guest policies default to require.
fn features(cpu: &CpuDef) -> Vec<(String, Option<Policy>)> {
    let guest = cpu.kind == CpuKind::Guest;
    cpu.features
        .iter()
        .map(|f| {
            let policy = guest.then(|| f.policy.unwrap_or(Policy::Require));
            (f.name.clone(), policy)
        })
        .collect()
}

/// `cpu.to_xml()` reads back to the same definition.
fn round_trip(db: &Database, known: bool, cpu: &CpuDef) {
    let xml = cpu.to_xml();
    let back = match parse(db, known, &xml) {
        Ok(mut v) if v.len() == 1 => v.remove(0).cpu,
        other => panic!("written CPU does not read back: {other:?}\n{xml}"),
    };
    assert_eq!(back.kind, cpu.kind, "{xml}");
    assert_eq!(back.mode, cpu.mode, "{xml}");
    if matches!(cpu.mode, Mode::Custom | Mode::HostModel) {
        assert_eq!(back.model, cpu.model, "{xml}");
        assert_eq!(back.vendor, cpu.vendor, "{xml}");
    }
    if cpu.kind == CpuKind::Host {
        assert_eq!(
            back.arch.as_deref(),
            Some(cpu.arch.as_deref().unwrap_or("x86_64"))
        );
        assert_eq!(back.signature, cpu.signature.filter(|s| s.family != 0));
    }
    assert_eq!(back.topology, cpu.topology, "{xml}");
    assert_eq!(features(&back), features(cpu), "{xml}");
    assert_eq!(
        back.to_xml(),
        xml,
        "written XML is not read back as written"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    let db = db();
    for known in [false, true] {
        let Ok(cpus) = parse(db, known, text) else {
            continue;
        };
        // A comment outside the light tree's subset after the document
        // sends it to roxmltree, which must read the same CPUs.
        let slow = format!("{text}\n<!-- \u{e9} -->\n");
        assert_eq!(
            parse(db, known, &slow).as_ref(),
            Ok(&cpus),
            "light path and roxmltree disagree"
        );
        for c in &cpus {
            round_trip(db, known, &c.cpu);
        }
        if known {
            for c in cpus.iter().take(8) {
                let _ = expand(db, &c.cpu);
                let _ = compare(db, &cpus[0].cpu, &c.cpu);
            }
        }
    }

    let mut fast = BaselineAccumulator::default();
    let added = add_cpus_to_baseline(&mut fast, db, "c.xml", text);
    let mut slow = BaselineAccumulator::default();
    let one_by_one = parse_cpus(db, "c.xml", text)
        .map_err(AddCpusError::from)
        .and_then(|cpus| {
            cpus.iter()
                .try_for_each(|c| slow.add(db, &c.origin, &c.cpu))
                .map_err(AddCpusError::from)
        });
    assert_eq!(
        added, one_by_one,
        "adding a document differs from parsing then adding"
    );
    if added.is_ok() {
        assert_eq!(fast.len(), slow.len());
        for opts in [
            BaselineOptions::default(),
            BaselineOptions {
                expand_features: true,
                migratable: true,
                hypervisor_filter: &["cmt", "osxsave"],
            },
        ] {
            assert_eq!(fast.finish(db, opts), slow.finish(db, opts));
        }
    } else {
        assert!(fast.is_empty(), "the accumulator changed on error");
    }
});
