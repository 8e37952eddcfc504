//! Exact answers over a small fleet built from the model database.

use cpumodel_cpudef::parse_known_cpus;
use cpumodel_fleet::{
    can_run, coverage, drift, history, recommend, CanRunAnswer, DriftRow, HistoryRow, Limits,
    PlanError, RecommendAnswer, Recommendation, View,
};
use cpumodel_map::{Database, PsabiLevel};

mod common;
use common::{fleet, profile};

const TWO: Limits = Limits {
    blockers: 2,
    sample_hosts: 3,
};

/// The recommendation of an answer that has one.
fn model(answer: RecommendAnswer) -> Recommendation {
    match answer {
        RecommendAnswer::Model(r) => r,
        RecommendAnswer::BelowLevel(s) => panic!("no model: {s:?}"),
    }
}

#[test]
fn recommends_the_newest_model_every_host_runs() {
    let db = Database::embedded();
    let r = model(recommend(&db, &fleet(&db), 100.0, None, TWO).unwrap());
    assert_eq!(
        r.to_text(),
        "model: Westmere
x86-64: v2
hosts: 4/4 (100.0%)
held back: Skylake-Client-noTSX-IBRS runs on 3/4 hosts, blocked by pclmuldq (1), fma (1)
  pclmuldq missing on 1 host: old-1
  fma missing on 1 host: old-1
held back: Broadwell-noTSX-IBRS runs on 3/4 hosts, blocked by pclmuldq (1), fma (1)
  pclmuldq missing on 1 host: old-1
  fma missing on 1 host: old-1
held back: Broadwell-noTSX runs on 3/4 hosts, blocked by pclmuldq (1), fma (1)
  pclmuldq missing on 1 host: old-1
  fma missing on 1 host: old-1

[libvirt]
cpu_mode = custom
cpu_models = Westmere
"
    );
}

#[test]
fn a_lower_coverage_leaves_hosts_out() {
    let db = Database::embedded();
    let r = model(recommend(&db, &fleet(&db), 75.0, None, TWO).unwrap());
    assert_eq!(r.model, "Skylake-Client-noTSX-IBRS");
    assert_eq!((r.hosts, r.total_hosts, r.percent.as_str()), (3, 4, "75.0"));
    let first = &r.held_back[0];
    assert_eq!(first.model, "Skylake-Client-IBRS");
    assert_eq!(
        serde_json::to_string(&first.blockers).unwrap(),
        r#"[{"feature":"hle","hosts":2,"sample_hosts":["old-1","sky-3"]},{"feature":"rtm","hosts":2,"sample_hosts":["old-1","sky-3"]}]"#
    );
    assert_eq!(
        model(recommend(&db, &fleet(&db), 75.1, None, TWO).unwrap()).model,
        "Westmere"
    );
}

#[test]
fn models_count_hosts_and_blockers() {
    let db = Database::embedded();
    let doc = coverage(&db, &fleet(&db), TWO);
    let line = |name: &str| {
        doc.to_text()
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap()
    };
    assert_eq!(
        line("Skylake-Client-IBRS"),
        "Skylake-Client-IBRS Intel v3 2/4 50.0% hle (2), rtm (2)"
    );
    assert_eq!(line("Westmere"), "Westmere Intel v2 4/4 100.0% -");
    assert_eq!(line("Nehalem"), "Nehalem Intel v2 4/4 100.0% -");
    assert_eq!(
        line("EPYC-Rome"),
        "EPYC-Rome AMD v3 0/4 0.0% clflushopt (4), clwb (4)"
    );
}

#[test]
fn drift_names_what_changed() {
    let db = Database::embedded();
    let guest = parse_known_cpus(
        &db,
        "g.xml",
        "<cpu mode='custom' match='exact'><model>Skylake-Client-IBRS</model></cpu>",
    )
    .unwrap()
    .remove(0)
    .cpu;
    let rows = vec![DriftRow {
        host: "sky-3".into(),
        previous: profile(&db, "Skylake-Client-IBRS", &[]),
        current: profile(&db, "Skylake-Client-IBRS", &["hle", "rtm"]),
        previous_us: 1_700_000_000_000_000,
        current_us: 1_700_086_400_000_000,
    }];
    let doc = drift(&db, &rows, &[("sky-guest".into(), guest)]).unwrap();
    assert_eq!(
        doc.to_text(),
        "sky-3: Skylake-Client-IBRS -> Skylake-Client-IBRS
  gained: -
  lost: hle,rtm
  models lost: Skylake-Client-IBRS,Skylake-Client-v2,Skylake-Client,Skylake-Client-v1,Broadwell-IBRS,Broadwell-v3,Broadwell,Broadwell-v1,Haswell-IBRS,Haswell-v3,Haswell,Haswell-v1
  models gained: -
  guests broken: sky-guest
"
    );
}

#[test]
fn history_gives_each_report_its_changes() {
    let db = Database::embedded();
    let row = |day: i64, source: &str, profile| HistoryRow {
        time_us: 1_700_000_000_000_000 + day * 86_400_000_000,
        source: source.into(),
        view: View::RawCpuid,
        profile,
    };
    let sky = |without: &[&str]| profile(&db, "Skylake-Client-IBRS", without);
    let rows = [
        row(0, "a.xml", sky(&[])),
        row(1, "b.xml", sky(&["hle", "rtm"])),
        // Unchanged, then TSX back and a mitigation gone.
        row(2, "c.xml", sky(&["hle", "rtm"])),
        row(3, "d.xml", sky(&["spec-ctrl"])),
    ];
    let doc = history(&db, "sky-1", &rows);
    assert_eq!(
        doc.to_text(),
        "TIME                  VIEW       MODEL                GAINED   LOST       SOURCE
2023-11-14T22:13:20Z  raw-cpuid  Skylake-Client-IBRS  -        -          a.xml
2023-11-15T22:13:20Z  raw-cpuid  Skylake-Client-IBRS  -        hle,rtm    b.xml
2023-11-16T22:13:20Z  raw-cpuid  Skylake-Client-IBRS  -        -          c.xml
2023-11-17T22:13:20Z  raw-cpuid  Skylake-Client-IBRS  hle,rtm  spec-ctrl  d.xml
"
    );
    assert_eq!(doc.host, "sky-1");
    assert_eq!(doc.reports[0].gained, None);
    assert_eq!(doc.reports[2].lost, Some(vec![]));
    assert_eq!(doc.reports[3].vendor.as_deref(), Some("Intel"));
}

#[test]
fn an_empty_fleet_has_no_recommendation() {
    let db = Database::embedded();
    assert_eq!(
        recommend(&db, &[], 100.0, None, TWO),
        Err(PlanError::NoHosts)
    );
    assert_eq!(
        model(recommend(&db, &fleet(&db)[..1], 100.0, None, TWO).unwrap()).model,
        "Skylake-Client-IBRS"
    );
}

#[test]
fn a_level_the_fleet_reaches_picks_a_model_of_it() {
    let db = Database::embedded();
    let r = model(recommend(&db, &fleet(&db), 75.0, Some(PsabiLevel::V3), TWO).unwrap());
    assert_eq!(r.model, "Skylake-Client-noTSX-IBRS");
    assert_eq!(r.psabi_level, Some(PsabiLevel::V3));
    let r = model(recommend(&db, &fleet(&db), 100.0, Some(PsabiLevel::V2), TWO).unwrap());
    assert_eq!(r.model, "Westmere");
}

#[test]
fn a_level_the_fleet_misses_names_the_hosts_and_features() {
    let db = Database::embedded();
    let answer = recommend(&db, &fleet(&db), 100.0, Some(PsabiLevel::V3), TWO).unwrap();
    assert_eq!(
        answer.to_text(),
        "no model of x86-64 v3 runs on enough hosts
hosts below v3: 1/4
  fma missing on 1 host: old-1
  movbe missing on 1 host: old-1
  xsave missing on 1 host: old-1
  avx missing on 1 host: old-1
  f16c missing on 1 host: old-1
  bmi1 missing on 1 host: old-1
  avx2 missing on 1 host: old-1
  bmi2 missing on 1 host: old-1
  abm missing on 1 host: old-1
best model of v3 or above: Skylake-Client-noTSX-IBRS runs on 3/4 hosts, blocked by pclmuldq (1), fma (1)
"
    );
    let RecommendAnswer::BelowLevel(s) = answer else {
        panic!("a recommendation")
    };
    assert_eq!(
        serde_json::to_value(&s).unwrap()["missing"][0],
        serde_json::json!({"feature": "fma", "hosts": 1, "sample_hosts": ["old-1"]})
    );
    // Every host of v4 or above: none, and no v4 model runs anywhere.
    let answer = recommend(&db, &fleet(&db), 50.0, Some(PsabiLevel::V4), TWO).unwrap();
    let RecommendAnswer::BelowLevel(s) = answer else {
        panic!("a recommendation")
    };
    assert_eq!((s.hosts_below, s.total_hosts), (4, 4));
    assert_eq!(s.missing[0].feature, "avx512f");
    assert_eq!(s.missing[0].sample_hosts, ["old-1", "sky-1", "sky-2"]);
}

#[test]
fn times_are_rfc3339() {
    assert_eq!(
        cpumodel_fleet::format_time(1_700_000_000_123_456),
        "2023-11-14T22:13:20Z"
    );
}

/// `CanRunAnswer` renders exactly as the `CanRunDocument` of the same hosts:
/// text and JSON, with names that need escaping, unsorted input, a refusal
/// without features (another vendor) and answers with no accepted or no
/// blocked host.
#[test]
fn can_run_answer_renders_as_the_document() {
    let db = Database::embedded();
    let profiles = [
        profile(&db, "Skylake-Client-IBRS", &[]),
        profile(&db, "Skylake-Client-IBRS", &["hle", "rtm"]),
        profile(&db, "Westmere", &[]),
        profile(&db, "EPYC-Rome", &[]),
    ];
    let guests = [
        "<cpu mode='custom' match='exact'><model>Skylake-Client-IBRS</model></cpu>",
        "<cpu mode='custom' match='exact'><vendor>Intel</vendor><model>Nehalem</model></cpu>",
        "<cpu mode='custom' match='exact'><model>Westmere</model></cpu>",
        "<cpu mode='custom' match='exact'><model>Icelake-Server</model></cpu>",
    ];
    let names = [
        "sky-2",
        "sky-1",
        "tab\there",
        "quote\"back\\slash",
        "b\u{1}ell",
        "été-long-name",
        "old-1",
        "amd-1",
    ];
    let hosts: Vec<(String, usize)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), [0, 0, 1, 1, 2, 2, 2, 3][i]))
        .collect();
    for xml in guests {
        let guest = parse_known_cpus(&db, "g.xml", xml).unwrap().remove(0).cpu;
        for hosts in [hosts.clone(), hosts[..2].to_vec(), hosts[6..].to_vec()] {
            let doc = can_run(&db, &guest, &profiles, &hosts).unwrap();
            let answer = CanRunAnswer::new(&db, &guest, &profiles, hosts.clone()).unwrap();
            assert_eq!(answer.to_document(), doc, "{xml}");
            assert_eq!(answer.accepted(), doc.accepted.len());
            let mut text = Vec::new();
            answer.write_text(&mut text).unwrap();
            assert_eq!(String::from_utf8(text).unwrap(), doc.to_text(), "{xml}");
            let mut json = Vec::new();
            answer.write_json(&mut json).unwrap();
            let value = serde_json::to_value(&doc).unwrap();
            let expected = serde_json::to_string_pretty(&value).unwrap() + "\n";
            assert_eq!(String::from_utf8(json).unwrap(), expected, "{xml}");
        }
    }
}
