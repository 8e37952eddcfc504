//! The store's behaviour, run on SQLite and (when `CPUMODEL_TEST_POSTGRES`
//! names a server) on PostgreSQL.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{report, Fixture};
use cpumodel_map::{Database, FeatureSet};
use cpumodel_store::{Document, Filter, NewReport, StoreError, View};
use cpumodel_testenv::Mutator;

both_backends!(
    dedupe,
    history_current_and_previous,
    equal_times_prefer_the_later_import,
    groups_and_filters,
    unknown_group_and_host,
    drift_rows,
    profile_counts_match_a_brute_force_count,
    current_documents_are_verbatim,
    history_lists_every_report,
    guests,
    features_unknown_to_the_database_are_dropped,
    reopening_keeps_everything,
    empty_batches_and_empty_stores,
    concurrent_importers_lose_nothing,
);

fn dedupe(f: &Fixture) {
    let db = Database::embedded();
    let mut s = f.open();
    let a = report(&db, "a", &["r1"], 10, "x", "Westmere", &[], &[]);
    let o = s.import(&db, &[a.clone(), a.clone()]).unwrap();
    assert_eq!((o.added, o.unchanged), (1, 1));
    let o = s.import(&db, std::slice::from_ref(&a)).unwrap();
    assert_eq!((o.added, o.unchanged), (0, 1));
    // The same document for another host is another report.
    let mut b = a.clone();
    b.host = "b".into();
    let o = s.import(&db, &[b, a]).unwrap();
    assert_eq!((o.added, o.unchanged), (1, 1));
    let hosts = s.hosts(&Filter::all()).unwrap();
    assert_eq!(hosts.len(), 2);
    assert!(hosts.iter().all(|h| h.reports == 1));
}

fn history_current_and_previous(f: &Fixture) {
    let db = Database::embedded();
    let mut s = f.open();
    // Imported out of order: the newest by time is current whatever the
    // import order.
    s.import(
        &db,
        &[report(&db, "h", &[], 10, "t10", "Nehalem", &[], &[])],
    )
    .unwrap();
    s.import(
        &db,
        &[
            report(&db, "h", &[], 30, "t30", "Skylake-Client", &[], &[]),
            report(&db, "h", &[], 20, "t20", "Haswell", &[], &[]),
        ],
    )
    .unwrap();
    s.import(
        &db,
        &[report(&db, "h", &[], 15, "t15", "Westmere", &[], &[])],
    )
    .unwrap();
    let h = s.host("h").unwrap();
    assert_eq!(h.reports, 4);
    assert_eq!(h.last_report_us, 30);
    assert_eq!(h.model, "Skylake-Client");
    assert_eq!(h.vendor.as_deref(), Some("Intel"));
    let drift = s.drift(&db, &Filter::all()).unwrap();
    assert_eq!(drift.len(), 1);
    assert_eq!(drift[0].previous.model_name(&db), "Haswell");
    assert_eq!(drift[0].current.model_name(&db), "Skylake-Client");
    assert_eq!((drift[0].previous_us, drift[0].current_us), (20, 30));
    // A newer report moves both pointers.
    s.import(
        &db,
        &[report(&db, "h", &[], 40, "t40", "Icelake-Server", &[], &[])],
    )
    .unwrap();
    let drift = s.drift(&db, &Filter::all()).unwrap();
    assert_eq!(drift[0].previous.model_name(&db), "Skylake-Client");
    assert_eq!(drift[0].current.model_name(&db), "Icelake-Server");
}

fn equal_times_prefer_the_later_import(f: &Fixture) {
    let db = Database::embedded();
    let mut s = f.open();
    s.import(&db, &[report(&db, "h", &[], 5, "a", "Nehalem", &[], &[])])
        .unwrap();
    s.import(&db, &[report(&db, "h", &[], 5, "b", "Westmere", &[], &[])])
        .unwrap();
    assert_eq!(s.host("h").unwrap().model, "Westmere");
}

fn groups_and_filters(f: &Fixture) {
    let db = Database::embedded();
    let mut s = f.open();
    s.import(
        &db,
        &[
            report(&db, "n1", &["az1", "rack1"], 1, "a", "Westmere", &[], &[]),
            report(&db, "n2", &["az1"], 1, "a", "Haswell", &[], &[]),
            report(&db, "n3", &["az2"], 1, "a", "Haswell", &[], &[]),
        ],
    )
    .unwrap();
    // Groups accumulate over imports.
    s.import(
        &db,
        &[report(&db, "n3", &["rack1"], 2, "b", "Haswell", &[], &[])],
    )
    .unwrap();
    let names = |rows: Vec<cpumodel_store::HostRow>| -> Vec<String> {
        rows.into_iter().map(|h| h.name).collect()
    };
    let all = s.hosts(&Filter::all()).unwrap();
    assert_eq!(all[0].groups, ["az1", "rack1"]);
    assert_eq!(all[2].groups, ["az2", "rack1"]);
    assert_eq!(
        names(s.hosts(&Filter::groups(["az1"])).unwrap()),
        ["n1", "n2"]
    );
    assert_eq!(
        names(s.hosts(&Filter::groups(["rack1"])).unwrap()),
        ["n1", "n3"]
    );
    assert_eq!(
        names(s.hosts(&Filter::groups(["az2", "rack1"])).unwrap()),
        ["n1", "n3"]
    );
    let counts = s.profile_counts(&db, &Filter::groups(["az1"]), 5).unwrap();
    assert_eq!(counts.len(), 2);
    assert!(counts.iter().all(|c| c.hosts == 1));
    let (profiles, hosts) = s.current_hosts(&db, &Filter::groups(["rack1"])).unwrap();
    assert_eq!(hosts.len(), 2);
    assert_eq!(profiles[hosts[0].1].model_name(&db), "Westmere");
    assert_eq!(profiles[hosts[1].1].model_name(&db), "Haswell");
    let docs = s.current_documents(&Filter::groups(["az2"])).unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].host, "n3");
}

fn unknown_group_and_host(f: &Fixture) {
    let db = Database::embedded();
    let mut s = f.open();
    s.import(
        &db,
        &[report(&db, "n1", &["az1"], 1, "a", "Westmere", &[], &[])],
    )
    .unwrap();
    let loc = f.location.to_string();
    let filter = Filter::groups(["az1", "az9"]);
    let e = s.hosts(&filter).unwrap_err();
    assert!(matches!(e, StoreError::UnknownGroup { .. }));
    assert_eq!(e.to_string(), format!("{loc}: no host is in group \"az9\""));
    assert!(s.profile_counts(&db, &filter, 1).is_err());
    assert!(s.current_hosts(&db, &filter).is_err());
    assert!(s.drift(&db, &filter).is_err());
    assert!(s.current_documents(&filter).is_err());
    let e = s.host("n2").unwrap_err();
    assert_eq!(e.to_string(), format!("{loc}: no host \"n2\""));
    assert!(matches!(
        s.history(&db, "n2"),
        Err(StoreError::UnknownHost { .. })
    ));
}

fn drift_rows(f: &Fixture) {
    let db = Database::embedded();
    let mut s = f.open();
    s.import(
        &db,
        &[
            // TSX switched off by a microcode update.
            report(&db, "tsx", &[], 1, "a", "Skylake-Client", &[], &[]),
            report(
                &db,
                "tsx",
                &[],
                2,
                "b",
                "Skylake-Client",
                &["hle", "rtm"],
                &[],
            ),
            // A new document, the same CPU: no drift.
            report(&db, "same", &[], 1, "a", "Haswell", &[], &[]),
            report(&db, "same", &[], 2, "b", "Haswell", &[], &[]),
            // One report: no drift.
            report(&db, "one", &[], 1, "a", "Haswell", &[], &[]),
            // A mitigation bit appearing.
            report(&db, "md", &[], 7, "a", "Cascadelake-Server", &[], &[]),
            report(
                &db,
                "md",
                &[],
                9,
                "b",
                "Cascadelake-Server",
                &[],
                &["md-clear"],
            ),
        ],
    )
    .unwrap();
    let drift = s.drift(&db, &Filter::all()).unwrap();
    let hosts: Vec<&str> = drift.iter().map(|d| d.host.as_str()).collect();
    assert_eq!(hosts, ["md", "tsx"]);
    let hle = db.find_feature_exact("hle").unwrap();
    assert!(drift[1].previous.features.contains(hle));
    assert!(!drift[1].current.features.contains(hle));
    let md = db.find_feature_exact("md-clear").unwrap();
    assert_eq!(
        drift[0]
            .current
            .features
            .difference(&drift[0].previous.features),
        FeatureSet::from_ids([md])
    );
}

/// A random fleet: hosts over a few real models, each report dropping or
/// adding a few of a small set of features, several reports per host.
fn random_fleet(db: &Database, seed: u64, hosts: usize, reports: usize) -> Vec<NewReport> {
    let models = [
        "Westmere",
        "Haswell",
        "Skylake-Server",
        "EPYC-Rome",
        "Cascadelake-Server",
    ];
    let toggles = [
        "hle", "rtm", "md-clear", "avx512f", "pcid", "invpcid", "ssbd",
    ];
    let groups = ["az1", "az2", "az3", "rack1", "rack2"];
    let mut rng = Mutator::new(seed);
    (0..reports)
        .map(|i| {
            let h = rng.below(hosts);
            let model = models[h % models.len()];
            let mut minus = Vec::new();
            let mut plus = Vec::new();
            for _ in 0..rng.below(3) {
                let t = toggles[rng.below(toggles.len())];
                if rng.below(2) == 0 {
                    minus.push(t);
                } else {
                    plus.push(t);
                }
            }
            minus.retain(|m| !plus.contains(m));
            let g = [groups[h % 3], groups[3 + rng.below(2)]];
            let time = i64::try_from(rng.below(50)).unwrap();
            report(
                db,
                &format!("host{h:03}"),
                &g,
                time,
                &format!("r{i}"),
                model,
                &minus,
                &plus,
            )
        })
        .collect()
}

/// The current report of each host as the store defines it: greatest time,
/// then the one imported last.
fn brute_current(reports: &[NewReport]) -> BTreeMap<String, &NewReport> {
    let mut cur: BTreeMap<String, (i64, usize, &NewReport)> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (i, r) in reports.iter().enumerate() {
        if !seen.insert((r.host.clone(), r.digest)) {
            continue;
        }
        let e = cur.entry(r.host.clone()).or_insert((r.time_us, i, r));
        if (r.time_us, i) >= (e.0, e.1) {
            *e = (r.time_us, i, r);
        }
    }
    cur.into_iter().map(|(h, (_, _, r))| (h, r)).collect()
}

fn profile_counts_match_a_brute_force_count(f: &Fixture) {
    let db = Database::embedded();
    let mut s = f.open();
    let fleet = random_fleet(&db, 42, 120, 600);
    for chunk in fleet.chunks(97) {
        s.import(&db, chunk).unwrap();
    }
    for filter in [
        Filter::all(),
        Filter::groups(["az2"]),
        Filter::groups(["az1", "rack2"]),
    ] {
        let current = brute_current(&fleet);
        let mut expected: BTreeMap<(Option<String>, String, Vec<u16>), Vec<String>> =
            BTreeMap::new();
        let member = |r: &NewReport| {
            filter.groups.is_empty()
                || fleet
                    .iter()
                    .filter(|o| o.host == r.host)
                    .any(|o| o.groups.iter().any(|g| filter.groups.contains(g)))
        };
        for (host, r) in &current {
            if !member(r) {
                continue;
            }
            let key = (
                r.profile.vendor.map(|v| db.vendor(v).name.to_string()),
                r.profile.model_name(&db).to_owned(),
                r.profile.features.iter().map(|f| f.0).collect(),
            );
            expected.entry(key).or_default().push(host.clone());
        }
        let counts = s.profile_counts(&db, &filter, 3).unwrap();
        let got: BTreeMap<_, _> = counts
            .iter()
            .map(|c| {
                (
                    (
                        c.profile.vendor.map(|v| db.vendor(v).name.to_string()),
                        c.profile.model_name(&db).to_owned(),
                        c.profile.features.iter().map(|f| f.0).collect::<Vec<_>>(),
                    ),
                    (c.hosts, c.sample_hosts.clone()),
                )
            })
            .collect();
        assert_eq!(got.len(), counts.len(), "profiles are distinct");
        let want: BTreeMap<_, _> = expected
            .into_iter()
            .map(|(k, hosts)| {
                let n = hosts.len() as u64;
                (k, (n, hosts.into_iter().take(3).collect::<Vec<_>>()))
            })
            .collect();
        assert_eq!(got, want, "filter {filter:?}");
        assert!(counts.windows(2).all(|w| w[0].hosts >= w[1].hosts));

        // current_hosts agrees host by host.
        let (profiles, hosts) = s.current_hosts(&db, &filter).unwrap();
        let want_hosts: Vec<(&String, FeatureSet)> = current
            .iter()
            .filter(|(_, r)| member(r))
            .map(|(h, r)| (h, r.profile.features))
            .collect();
        let got_hosts: Vec<(&String, FeatureSet)> = hosts
            .iter()
            .map(|(h, i)| (h, profiles[*i].features))
            .collect();
        assert_eq!(got_hosts, want_hosts);
        let listed: Vec<String> = s
            .hosts(&filter)
            .unwrap()
            .into_iter()
            .map(|h| h.name)
            .collect();
        assert_eq!(
            listed,
            want_hosts.iter().map(|h| h.0.clone()).collect::<Vec<_>>()
        );
    }
    // Report counts and last times, host by host.
    for h in s.hosts(&Filter::all()).unwrap() {
        let mine: BTreeSet<_> = fleet
            .iter()
            .filter(|r| r.host == h.name)
            .map(|r| r.digest)
            .collect();
        assert_eq!(h.reports, mine.len() as u64, "{}", h.name);
        let last = fleet
            .iter()
            .filter(|r| r.host == h.name)
            .map(|r| r.time_us)
            .max();
        assert_eq!(Some(h.last_report_us), last);
    }
}

fn current_documents_are_verbatim(f: &Fixture) {
    let db = Database::embedded();
    let mut s = f.open();
    let mut big = report(&db, "b", &[], 3, "x", "Haswell", &[], &[]);
    let big_text = format!(
        "<cpudata>\n{}</cpudata>\n",
        "  <cpuid eax_in='0x00000000' ecx_in='0x00' eax='0x0000000d'/>\n".repeat(300)
    );
    big.document = Document::Text(big_text.clone());
    big.digest = common::sha256(&big_text);
    big.view = View::RawCpuid;
    let old = report(&db, "b", &[], 1, "old", "Haswell", &[], &[]);
    // One document handed over compressed, as `fleet import` does.
    let mut a = report(&db, "a", &[], 1, "y", "Haswell", &[], &[]);
    let Document::Text(a_text) = a.document.clone() else {
        unreachable!("report() gives text")
    };
    a.document = Document::Compressed {
        bytes: cpumodel_store::compress_document(&a_text).unwrap(),
        size: a_text.len(),
        dictionary: None,
    };
    // And one compressed with a dictionary trained on a fleet's documents,
    // which the store keeps beside it.
    let fleet: Vec<String> = (0..cpumodel_store::DICTIONARY_SAMPLES)
        .map(|i| {
            format!(
                "<cpudata>\n<!-- host: n{i} -->\n{}</cpudata>\n",
                "  <cpuid eax_in='0x00000001' ecx_in='0x00' eax='0x000306a9'/>\n".repeat(i % 9 + 1)
            )
        })
        .collect();
    let dict = cpumodel_store::DocumentDictionary::train(
        &fleet.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .unwrap();
    let mut c = report(&db, "c", &[], 1, "z", "Haswell", &[], &[]);
    c.document = Document::Compressed {
        bytes: dict.compress(&fleet[5]).unwrap(),
        size: fleet[5].len(),
        dictionary: Some(dict.clone()),
    };
    c.digest = common::sha256(&fleet[5]);
    s.import(&db, &[big.clone(), old, a.clone(), c]).unwrap();
    let docs = s.current_documents(&Filter::all()).unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[2].document, fleet[5]);
    assert_eq!(
        (docs[0].host.as_str(), docs[0].document.as_str()),
        ("a", a_text.as_str())
    );
    assert_eq!(docs[1].document, big_text);
    assert_eq!(docs[1].source, big.source);
    assert_eq!(docs[1].view, View::RawCpuid);
    assert_eq!(docs[1].time_us, 3);
}

fn history_lists_every_report(f: &Fixture) {
    let db = Database::embedded();
    let mut s = f.open();
    s.import(
        &db,
        &[
            report(&db, "h", &[], 9, "b", "Haswell", &[], &[]),
            report(&db, "h", &[], 3, "a", "Westmere", &[], &[]),
        ],
    )
    .unwrap();
    let h = s.history(&db, "h").unwrap();
    let got: Vec<(i64, &str)> = h
        .iter()
        .map(|r| (r.time_us, r.profile.model_name(&db)))
        .collect();
    assert_eq!(got, [(3, "Westmere"), (9, "Haswell")]);
}

fn guests(f: &Fixture) {
    let mut s = f.open();
    assert!(s.guests().unwrap().is_empty());
    s.add_guest("web", "<cpu><model>Haswell</model></cpu>")
        .unwrap();
    s.add_guest("db", "<cpu><model>Westmere</model></cpu>")
        .unwrap();
    s.add_guest("web", "<cpu><model>Skylake-Client</model></cpu>")
        .unwrap();
    let g = s.guests().unwrap();
    let got: Vec<(&str, &str)> = g
        .iter()
        .map(|g| (g.name.as_str(), g.cpu_xml.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("db", "<cpu><model>Westmere</model></cpu>"),
            ("web", "<cpu><model>Skylake-Client</model></cpu>")
        ]
    );
}

fn features_unknown_to_the_database_are_dropped(f: &Fixture) {
    let db = Database::embedded();
    let mut s = f.open();
    let r = report(&db, "h", &[], 1, "a", "Haswell", &[], &[]);
    s.import(&db, std::slice::from_ref(&r)).unwrap();
    // An older map: without avx2, and numbered differently.
    let mut features: Vec<_> = db
        .features()
        .iter()
        .filter(|f| f.name != "avx2")
        .cloned()
        .collect();
    features.reverse();
    let old = Database::from_parts(db.vendors().to_vec(), features, Vec::new());
    let (profiles, _) = s.current_hosts(&old, &Filter::all()).unwrap();
    let want: BTreeSet<&str> = db
        .feature_names(&r.profile.features)
        .filter(|n| *n != "avx2")
        .collect();
    let got: BTreeSet<&str> = old.feature_names(&profiles[0].features).collect();
    assert_eq!(got, want);
    // That map has no models: the stored model name reads as `None`; the
    // vendor is still known.
    assert_eq!(profiles[0].model, None);
    assert_eq!(profiles[0].vendor_name(&old), "Intel");
    // And a report imported with that map mixes with the first (its `None`
    // model stored as `-`).
    let mut r2 = r.clone();
    r2.host = "g".into();
    r2.profile = profiles[0];
    s.import(&old, &[r2]).unwrap();
    let (profiles, hosts) = s.current_hosts(&db, &Filter::all()).unwrap();
    assert_eq!(hosts.len(), 2);
    let avx2 = db.find_feature_exact("avx2").unwrap();
    assert!(!profiles[hosts[0].1].features.contains(avx2));
    assert!(profiles[hosts[1].1].features.contains(avx2));
    assert_eq!(profiles[hosts[0].1].model, None);
    assert_eq!(profiles[hosts[1].1].model_name(&db), "Haswell");
    assert_eq!(s.host("g").unwrap().model, "-");
}

fn reopening_keeps_everything(f: &Fixture) {
    let db = Database::embedded();
    let fleet = random_fleet(&db, 7, 30, 100);
    {
        let mut s = f.open();
        s.import(&db, &fleet).unwrap();
    }
    let mut again = f.open_existing();
    assert_eq!(
        again.hosts(&Filter::all()).unwrap().len(),
        brute_current(&fleet).len()
    );
    let o = again.import(&db, &fleet).unwrap();
    assert_eq!(o.added, 0);
}

fn empty_batches_and_empty_stores(f: &Fixture) {
    let db = Database::embedded();
    let mut s = f.open();
    assert_eq!(s.import(&db, &[]).unwrap(), Default::default());
    assert!(s.hosts(&Filter::all()).unwrap().is_empty());
    assert!(s.profile_counts(&db, &Filter::all(), 3).unwrap().is_empty());
    assert!(s.drift(&db, &Filter::all()).unwrap().is_empty());
    let (p, h) = s.current_hosts(&db, &Filter::all()).unwrap();
    assert!(p.is_empty() && h.is_empty());
    assert!(matches!(
        s.hosts(&Filter::groups(["x"])),
        Err(StoreError::UnknownGroup { .. })
    ));
}

fn concurrent_importers_lose_nothing(f: &Fixture) {
    let db = Database::embedded();
    let fleet = random_fleet(&db, 99, 200, 3000);
    // Three importers: two overlapping halves and one interleaved third.
    let parts: Vec<Vec<NewReport>> = vec![
        fleet[..2000].to_vec(),
        fleet[1000..].to_vec(),
        fleet.iter().step_by(3).cloned().collect(),
    ];
    std::thread::scope(|scope| {
        for part in &parts {
            let db = &db;
            scope.spawn(move || {
                let mut s = f.open();
                for chunk in part.chunks(50) {
                    s.import(db, chunk).unwrap();
                }
            });
        }
    });
    let mut s = f.open_existing();
    let distinct: BTreeSet<_> = fleet.iter().map(|r| (r.host.clone(), r.digest)).collect();
    let hosts = s.hosts(&Filter::all()).unwrap();
    let total: u64 = hosts.iter().map(|h| h.reports).sum();
    assert_eq!(total, distinct.len() as u64);
    // Each host's current report is the newest; ties (equal times) may
    // resolve either way under concurrency, so compare times.
    for h in &hosts {
        let newest = fleet
            .iter()
            .filter(|r| r.host == h.name)
            .map(|r| r.time_us)
            .max();
        assert_eq!(Some(h.last_report_us), newest, "{}", h.name);
        let history = s.history(&db, &h.name).unwrap();
        assert_eq!(history.len() as u64, h.reports);
    }
    // Nothing stored twice: a re-import adds nothing.
    assert_eq!(s.import(&db, &fleet).unwrap().added, 0);
}
