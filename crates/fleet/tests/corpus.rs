//! Fleet answers over the real CPUs of the libvirt conformance corpus,
//! checked against the one-shot operations on the same documents.

use cpumodel_cpudef::{
    baseline, compare, domain_cpu_caps, host_features_from_cpudata, parse_cpus, parse_known_cpus,
    BaselineOptions, Comparison, CpuDef,
};
use cpumodel_fleet::{
    can_run, coverage, read_host_report, HostReport, Limits, Profile, ProfileCount, View,
};
use cpumodel_map::Database;

/// Every raw CPUID dump the corpus decodes as a host: (file name, text).
fn dumps() -> Option<Vec<(String, String)>> {
    let dir = cpumodel_testenv::shared_path("conformance/libvirt-10.7")?;
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut out: Vec<(String, String)> = manifest["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["op"] == "decode" && c["type"] == "host")
        .map(|c| {
            let input = c["input"].as_str().unwrap();
            let name = input.rsplit('/').next().unwrap().to_string();
            (name, std::fs::read_to_string(dir.join(input)).unwrap())
        })
        .collect();
    out.sort();
    assert!(out.len() > 20, "the corpus holds {} dumps", out.len());
    Some(out)
}

fn reports(db: &Database, dumps: &[(String, String)]) -> Vec<(String, HostReport)> {
    dumps
        .iter()
        .map(|(name, text)| (name.clone(), read_host_report(db, name, text).expect(name)))
        .collect()
}

#[test]
fn profiles_hold_what_domcaps_counts_as_usable() {
    let Some(dumps) = dumps() else { return };
    let db = Database::embedded();
    for (name, report) in reports(&db, &dumps) {
        assert_eq!(report.view, View::RawCpuid, "{name}");
        let text = &dumps.iter().find(|d| d.0 == name).unwrap().1;
        let (data, features) = host_features_from_cpudata(&db, &name, text).unwrap();
        assert_eq!(report.profile.features, features.full, "{name}");
        let caps = domain_cpu_caps(&db, &data).unwrap();
        for (i, m) in caps.custom.iter().enumerate() {
            let id = cpumodel_map::ModelId::from_index(i);
            assert_eq!(
                report.profile.can_run(&db, id),
                m.usable,
                "{name} {}",
                m.name
            );
        }
        // The profile written back as a <cpu> is the decoded CPU.
        assert_eq!(
            Profile::from_cpu(&db, &report.profile.to_cpu_def(&db)).unwrap(),
            report.profile
        );
    }
}

fn counts(reports: &[(String, HostReport)]) -> Vec<ProfileCount> {
    let mut out: Vec<ProfileCount> = Vec::new();
    for (name, r) in reports {
        match out.iter_mut().find(|c| c.profile == r.profile) {
            Some(c) => {
                c.hosts += 1;
                c.sample_hosts.push(name.clone());
            }
            None => out.push(ProfileCount {
                profile: r.profile,
                hosts: 1,
                sample_hosts: vec![name.clone()],
            }),
        }
    }
    out
}

#[test]
fn baseline_matches_the_one_shot_baseline() {
    let Some(dumps) = dumps() else { return };
    let db = Database::embedded();
    let reports = reports(&db, &dumps);
    // Per vendor, since a baseline refuses mixed vendors.
    for vendor in ["Intel", "AMD"] {
        let docs: Vec<&(String, String)> = dumps
            .iter()
            .filter(|(n, _)| {
                reports
                    .iter()
                    .any(|(rn, r)| rn == n && r.profile.vendor_name(&db) == vendor)
            })
            .collect();
        assert!(docs.len() > 3, "{vendor}");
        let cpus: Vec<(String, CpuDef)> = docs
            .iter()
            .map(|(n, t)| (n.clone(), parse_cpus(&db, n, t).unwrap().remove(0).cpu))
            .collect();
        for opts in [
            BaselineOptions::default(),
            BaselineOptions {
                expand_features: true,
                migratable: true,
                hypervisor_filter: &[],
            },
        ] {
            let expected = baseline(&db, cpus.iter().map(|(n, c)| (n.as_str(), c)), opts).unwrap();
            let mine: Vec<(String, HostReport)> = reports
                .iter()
                .filter(|(_, r)| r.profile.vendor_name(&db) == vendor)
                .cloned()
                .collect();
            let got = cpumodel_fleet::baseline(&db, &counts(&mine), opts).unwrap();
            assert_eq!(got.to_xml(), expected.to_xml(), "{vendor} {opts:?}");
        }
    }
}

#[test]
fn can_run_matches_compare() {
    let Some(dumps) = dumps() else { return };
    let db = Database::embedded();
    let reports = reports(&db, &dumps);
    let profiles: Vec<Profile> = reports.iter().map(|(_, r)| r.profile).collect();
    let hosts: Vec<(String, usize)> = reports
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.clone(), i))
        .collect();
    for guest_xml in [
        "<cpu mode='custom' match='exact'><model fallback='forbid'>Westmere</model></cpu>",
        "<cpu mode='custom' match='exact'><model>Skylake-Client-IBRS</model><feature policy='require' name='avx512f'/></cpu>",
        "<cpu mode='custom' match='exact'><model>EPYC-Rome</model><feature policy='forbid' name='svm'/></cpu>",
        "<cpu mode='custom' match='strict'><vendor>Intel</vendor><model>Nehalem</model></cpu>",
    ] {
        let guest = parse_known_cpus(&db, "guest.xml", guest_xml).unwrap().remove(0).cpu;
        let doc = can_run(&db, &guest, &profiles, &hosts).unwrap();
        assert_eq!(doc.accepted.len() + doc.blocked.len(), reports.len());
        for (name, r) in &reports {
            let one = compare(&db, &r.cpu, &guest).unwrap();
            let names: Vec<String> = one
                .blockers
                .iter()
                .map(|f| db.feature_name(*f).to_string())
                .collect();
            if one.result == Comparison::Incompatible {
                assert_eq!(doc.blocked.get(name), Some(&names), "{name} {guest_xml}");
            } else {
                assert!(doc.accepted.contains(name), "{name} {guest_xml}");
            }
        }
    }
}

#[test]
fn coverage_counts_every_usable_host() {
    let Some(dumps) = dumps() else { return };
    let db = Database::embedded();
    let reports = reports(&db, &dumps);
    let doc = coverage(&db, &counts(&reports), Limits::default());
    assert_eq!(doc.hosts, reports.len() as u64);
    assert_eq!(doc.models.len(), db.models().len());
    for m in &doc.models {
        let id = db.find_model(&m.model).unwrap();
        let usable = reports
            .iter()
            .filter(|(_, r)| r.profile.can_run(&db, id))
            .count();
        assert_eq!(m.hosts, usable as u64, "{}", m.model);
        assert_eq!(m.hosts + m.blocked_hosts, doc.hosts);
    }
    // Newest first: feature counts never grow down the list.
    assert!(doc
        .models
        .windows(2)
        .all(|w| w[0].features >= w[1].features));
}
