//! A synthetic fleet of Intel host CPUs for baseline benchmarks, shared by
//! `benches/ops.rs` and `examples/baseline_million.rs`.
//!
//! Every host starts from the features of one real model (chosen at random
//! among [`BASE_MODELS`]), gains up to three features other base models have,
//! and loses up to three features its model has beyond the models' common
//! floor. Hosts are therefore distinct-ish, and their baseline is the floor:
//! a real model, whatever the seed.

use cpumodel_map::{Database, FeatureId, FeatureSet};

/// The models hosts are derived from.
pub const BASE_MODELS: &[&str] = &[
    "Skylake-Server-noTSX-IBRS",
    "Cascadelake-Server-noTSX",
    "Icelake-Server-noTSX",
    "Cooperlake",
    "SapphireRapids",
];

/// splitmix64: small, fast, deterministic, and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        // n is tiny here, so the modulo bias does not matter.
        usize::try_from(self.next() % n as u64).expect("below n")
    }
}

/// `n` host feature sets, reproducible from `seed`.
pub fn hosts(db: &Database, n: usize, seed: u64) -> Vec<FeatureSet> {
    let bases: Vec<FeatureSet> = BASE_MODELS
        .iter()
        .map(|name| {
            let id = db.find_model(name).expect("base model in the database");
            db.model(id).features
        })
        .collect();
    let mut floor = bases[0];
    let mut union = FeatureSet::EMPTY;
    for b in &bases {
        floor.intersect_with(b);
        union.union_with(b);
    }
    // Per base model: the features a host may lose (beyond the floor).
    let removable: Vec<Vec<FeatureId>> = bases
        .iter()
        .map(|b| b.difference(&floor).iter().collect())
        .collect();
    let extras: Vec<FeatureId> = union.difference(&floor).iter().collect();

    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let which = rng.below(bases.len());
        let mut host = bases[which];
        for _ in 0..rng.below(4) {
            host.insert(extras[rng.below(extras.len())]);
        }
        let removable = &removable[which];
        if !removable.is_empty() {
            for _ in 0..rng.below(4) {
                host.remove(removable[rng.below(removable.len())]);
            }
        }
        out.push(host);
    }
    out
}
