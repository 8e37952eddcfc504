//! Properties of the operations and of the `<cpu>` format, checked on
//! generated inputs (proptest): hosts are random feature subsets of real
//! models of the embedded database, definitions are any that cpumodel writes.
//!
//! Case counts are kept small so that `cargo test --workspace` stays fast;
//! `PROPTEST_CASES=10000` runs more.

use std::sync::OnceLock;

use cpumodel_cpudef::{
    baseline, compare, decode, parse_cpus, BaselineOptions, Check, Comparison, CpuDef, CpuFeatures,
    CpuKind, DecodeOptions, Fallback, FeatureRef, Match, Mode, Policy, SignatureDef, Topology,
};
use cpumodel_map::{Database, FeatureId, FeatureSet, ModelId, VendorId};
use proptest::prelude::*;
use proptest::sample::select;

fn db() -> &'static Database {
    static DB: OnceLock<Database> = OnceLock::new();
    DB.get_or_init(Database::embedded)
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The models of one vendor that may describe a host.
fn vendor_models(vendor: VendorId) -> Vec<ModelId> {
    db().models()
        .iter()
        .enumerate()
        .filter(|(_, m)| m.vendor == Some(vendor) && m.decode_host)
        .map(|(i, _)| ModelId::from_index(i))
        .collect()
}

/// A vendor that has host models (Intel, AMD, ...).
fn vendor() -> impl Strategy<Value = VendorId> {
    let vendors: Vec<VendorId> = (0..db().vendors().len())
        .map(VendorId::from_index)
        .filter(|v| !vendor_models(*v).is_empty())
        .collect();
    select(vendors)
}

/// The features of a host of `vendor`: a real model of that vendor with
/// each feature kept with probability 9/10, among those a model describes.
fn host_features(vendor: VendorId) -> impl Strategy<Value = CpuFeatures> {
    select(vendor_models(vendor))
        .prop_flat_map(move |m| {
            let all: Vec<FeatureId> = db().model(m).features.iter().collect();
            proptest::collection::vec(proptest::bool::weighted(0.9), all.len()).prop_map(
                move |keep| {
                    let set = FeatureSet::from_ids(
                        all.iter().zip(keep).filter(|(_, k)| *k).map(|(f, _)| *f),
                    );
                    CpuFeatures::from_set(Some(vendor), set)
                },
            )
        })
        // Without the few features of the oldest model no model describes it.
        .prop_filter("a host has a model", |f| {
            decode(db(), f, &DecodeOptions::new(CpuKind::Host)).is_ok()
        })
}

/// A host `<cpu>` as cpumodel decodes it from its features.
fn host_cpu(features: &CpuFeatures) -> CpuDef {
    decode(db(), features, &DecodeOptions::new(CpuKind::Host))
        .expect("a subset of a real model decodes as a host")
        .to_cpu_def(db(), CpuKind::Host)
}

proptest! {
    #![proptest_config(config(24))]

    /// The baseline of any set of hosts of one vendor runs on each of them.
    ///
    /// Not with `--migratable`: libvirt's migratable decode drops every
    /// non-migratable feature from the result, disabled ones included, on
    /// the stated assumption that no model contains one; the newest map
    /// breaks it (SapphireRapids holds `xsaves`), so a migratable baseline
    /// of a host lacking such a feature asks for it through the model.
    /// cpumodel gives libvirt's answer there (README, "Behaviour worth
    /// knowing").
    #[test]
    fn the_baseline_runs_on_every_host(
        hosts in vendor().prop_flat_map(|v| proptest::collection::vec(host_features(v), 1..5)),
    ) {
        let db = db();
        let hosts: Vec<CpuDef> = hosts.iter().map(host_cpu).collect();
        let opts = BaselineOptions { expand_features: false, migratable: false , hypervisor_filter: &[] };
        let base = baseline(db, hosts.iter().map(|h| ("h.xml", h)), opts)
            .expect("hosts of one vendor have a baseline");
        for h in &hosts {
            let r = compare(db, h, &base).unwrap();
            prop_assert!(
                matches!(r.result, Comparison::Identical | Comparison::Superset),
                "{:?} on\n{}\nbaseline:\n{}", r, h.to_xml(), base.to_xml()
            );
        }
    }

    /// A host can run the guest CPU decoded from it.
    #[test]
    fn a_host_runs_its_own_guest_decode(features in vendor().prop_flat_map(host_features)) {
        let db = db();
        let host = host_cpu(&features);
        let guest = decode(db, &features, &DecodeOptions::new(CpuKind::Guest))
            .expect("a subset of a real model decodes as a guest")
            .to_cpu_def(db, CpuKind::Guest);
        let r = compare(db, &host, &guest).unwrap();
        prop_assert_ne!(
            r.result, Comparison::Incompatible,
            "{:?}\nhost:\n{}\nguest:\n{}", r, host.to_xml(), guest.to_xml()
        );
    }
}

/// A name: the embedded database's, or any text XML must escape.
fn name(db_names: Vec<String>) -> impl Strategy<Value = String> {
    let chars: Vec<char> = "aZ09-_. \t\n\r&<>'\"é".chars().collect();
    prop_oneof![
        select(db_names),
        proptest::collection::vec(select(chars), 1..8)
            .prop_map(|c| c.into_iter().collect::<String>())
            .prop_filter("not blank at its ends", |s| s.trim() == s && !s.is_empty()),
    ]
}

fn model_name() -> impl Strategy<Value = String> {
    name(db().models().iter().map(|m| m.name.to_string()).collect())
}

fn vendor_name() -> impl Strategy<Value = String> {
    name(db().vendors().iter().map(|v| v.name.to_string()).collect())
}

/// Features with distinct names, each with `policy`.
fn features(
    policy: impl Strategy<Value = Option<Policy>>,
) -> impl Strategy<Value = Vec<FeatureRef>> {
    let names = db().features().iter().map(|f| f.name.to_string()).collect();
    proptest::collection::vec((name(names), policy), 0..6).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|(n, _)| seen.insert(n.clone()));
        v.into_iter()
            .map(|(name, policy)| FeatureRef { name, policy })
            .collect()
    })
}

fn topology() -> impl Strategy<Value = Option<Topology>> {
    proptest::option::of(
        [1u32..4, 1..3, 1..3, 1..5, 1..3]
            .prop_map(|[s, d, c, k, t]| Topology::new(s, d, c, k, t).expect("small counts")),
    )
}

fn host_def() -> impl Strategy<Value = CpuDef> {
    (
        select(vec!["x86_64", "i686"]),
        model_name(),
        proptest::option::of(vendor_name()),
        proptest::option::of((1u32..300, 0u32..256, 0u32..16)),
        topology(),
        features(Just(None)),
    )
        .prop_map(|(arch, model, vendor, sig, topology, features)| {
            let mut cpu = CpuDef::new(CpuKind::Host);
            cpu.arch = Some(arch.to_string());
            cpu.model = Some(model);
            cpu.vendor = vendor;
            cpu.signature = sig.map(|(family, model, stepping)| SignatureDef {
                family,
                model,
                stepping,
            });
            cpu.topology = topology;
            cpu.features = features;
            cpu
        })
}

/// A 12-character vendor_id without commas.
fn vendor_id() -> impl Strategy<Value = String> {
    let chars: Vec<char> = "GenuineItlAMD &<>'\"".chars().collect();
    proptest::collection::vec(select(chars), 12).prop_map(|c| c.into_iter().collect())
}

fn guest_def() -> impl Strategy<Value = CpuDef> {
    let policy = proptest::option::of(select(Policy::ALL.to_vec()));
    (
        select(Mode::ALL.to_vec()),
        proptest::option::of(model_name()),
        (
            select(Match::ALL.to_vec()),
            proptest::option::of(select(Check::ALL.to_vec())),
            select(Fallback::ALL.to_vec()),
            proptest::option::of(any::<bool>()),
        ),
        proptest::option::of(vendor_name()),
        proptest::option::of(vendor_id()),
        topology(),
        features(policy.prop_map(|p| Some(p.unwrap_or(Policy::Require)))),
    )
        .prop_map(
            |(
                mode,
                model,
                (match_, check, fallback, migratable),
                vendor,
                vendor_id,
                topology,
                features,
            )| {
                let mut cpu = CpuDef::new(CpuKind::Guest);
                cpu.mode = mode;
                cpu.topology = topology;
                cpu.features = features;
                let named = matches!(mode, Mode::Custom | Mode::HostModel);
                if named {
                    cpu.model = model;
                    cpu.vendor_id = vendor_id;
                }
                if cpu.model.is_some() {
                    cpu.fallback = Some(fallback);
                    cpu.vendor = vendor;
                }
                // What the formatter writes, and so what reads back: match
                // and check only on a CPU with a mode attribute.
                if mode != Mode::Custom || cpu.model.is_some() {
                    cpu.check = check;
                }
                if mode == Mode::Custom && cpu.model.is_some() {
                    cpu.match_ = Some(match_);
                }
                if matches!(mode, Mode::HostPassthrough | Mode::Maximum) {
                    cpu.migratable = migratable;
                }
                if mode == Mode::Custom && cpu.model.is_none() {
                    cpu.features.clear();
                }
                cpu
            },
        )
}

proptest! {
    #![proptest_config(config(256))]

    /// Any definition cpumodel writes reads back to the same definition.
    #[test]
    fn written_cpus_read_back(cpu in prop_oneof![host_def(), guest_def()]) {
        let xml = cpu.to_xml();
        let back = parse_cpus(db(), "w.xml", &xml);
        prop_assert!(back.is_ok(), "{:?}\n{}", back, xml);
        let back = back.unwrap();
        prop_assert_eq!(back.len(), 1);
        prop_assert_eq!(&back[0].cpu, &cpu, "{}", xml);
        // Several written CPUs in one file, as fleet tools concatenate them
        // (empty elements `<cpu/>` do not make such a file, as in libvirt).
        prop_assume!(xml.contains("</cpu>"));
        let two = format!("{xml}{xml}");
        let both = parse_cpus(db(), "w.xml", &two).unwrap();
        prop_assert_eq!(both.len(), 2);
        prop_assert_eq!(&both[1].cpu, &cpu, "{}", two);
    }
}
