//! Baselines a fleet of 1,000,000 host CPUs held in memory, to measure the
//! time and peak memory of a fleet-sized baseline:
//!
//! ```sh
//! /usr/bin/time -v cargo run --release -p cpumodel-cpudef --example baseline_million
//! ```
//!
//! Target: maximum resident set size ≤ 256 MiB. The hosts are real Intel
//! server models with random features added and removed (see
//! `support/fleet.rs`); an optional argument sets the number of hosts.

use std::time::Instant;

use cpumodel_cpudef::{BaselineAccumulator, BaselineOptions};
use cpumodel_map::Database;

mod support {
    pub mod fleet;
}

fn main() {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().expect("the argument is a number of hosts"),
        None => 1_000_000,
    };
    let db = Database::embedded();

    let start = Instant::now();
    let hosts = support::fleet::hosts(&db, n, 0x00c0_ffee);
    let generated = start.elapsed();

    let start = Instant::now();
    let mut acc = BaselineAccumulator::default();
    for h in &hosts {
        acc.add_features(h);
    }
    let cpu = acc
        .finish(&db, BaselineOptions::default())
        .expect("the fleet has a baseline");
    let baselined = start.elapsed();

    println!(
        "hosts: {} ({} MiB of feature sets)",
        hosts.len(),
        std::mem::size_of_val(hosts.as_slice()) >> 20
    );
    println!("model: {}", cpu.model.as_deref().unwrap_or("(none)"));
    println!("features listed: {}", cpu.features.len());
    println!("generate: {:.3} s", generated.as_secs_f64());
    println!("baseline: {:.3} s", baselined.as_secs_f64());
    print!("{}", cpu.to_xml());
}
