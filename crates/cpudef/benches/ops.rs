//! Compare and baseline benchmarks for `cpumodel-cpudef`.
//!
//! What is measured, and the target for each:
//!
//! - `compare_resolved`: can a Cascadelake host (model plus a few extra
//!   features) run a Skylake-Server guest with `require`/`disable`/`optional`
//!   features, both already resolved against the embedded database. This is
//!   the per-pair cost when checking a fleet. Target: ≤ 1 µs.
//! - `compare_with_resolve`: the same, resolving both names-based
//!   definitions first (`compare`). No separate target; it shows what name
//!   resolution adds.
//! - `baseline_1m`: a `BaselineAccumulator` fed 1,000,000 distinct-ish host
//!   feature sets (real Intel server models with random features added and
//!   removed, generated before timing; see `examples/support/fleet.rs`), then
//!   `finish`. Target: ≤ 1 s.
//!
//! Run with `cargo bench -p cpumodel-cpudef --bench ops`.

use std::hint::black_box;

use cpumodel_cpudef::{
    compare, compare_resolved, parse_cpus, BaselineAccumulator, BaselineOptions, Comparison,
    CpuDef, ResolvedCpu,
};
use cpumodel_map::Database;
use criterion::{criterion_group, criterion_main, Criterion};

#[path = "../examples/support/fleet.rs"]
mod fleet;

const HOST: &str = "<cpu>
  <arch>x86_64</arch>
  <model>Cascadelake-Server</model>
  <vendor>Intel</vendor>
  <feature name='ss'/>
  <feature name='vmx'/>
  <feature name='pdcm'/>
  <feature name='hypervisor'/>
  <feature name='tsc_adjust'/>
  <feature name='umip'/>
  <feature name='md-clear'/>
  <feature name='stibp'/>
  <feature name='arch-capabilities'/>
  <feature name='ssbd'/>
  <feature name='xsaves'/>
</cpu>";

const GUEST: &str = "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Skylake-Server-IBRS</model>
  <vendor>Intel</vendor>
  <feature policy='require' name='ss'/>
  <feature policy='require' name='vmx'/>
  <feature policy='require' name='md-clear'/>
  <feature policy='optional' name='umip'/>
  <feature policy='disable' name='hle'/>
  <feature policy='disable' name='rtm'/>
  <feature policy='forbid' name='avx512vnni'/>
</cpu>";

fn one(db: &Database, text: &str) -> CpuDef {
    let mut cpus = parse_cpus(db, "bench", text).expect("the benchmark CPU parses");
    assert_eq!(cpus.len(), 1);
    cpus.remove(0).cpu
}

fn compare_pair(c: &mut Criterion) {
    let db = Database::embedded();
    let host = one(&db, HOST);
    let guest = one(&db, GUEST);
    let h = ResolvedCpu::new(&db, &host).expect("host resolves");
    let g = ResolvedCpu::new(&db, &guest).expect("guest resolves");
    // The guest forbids a feature Cascadelake has: an incompatible verdict
    // with blockers exercises the whole comparison.
    let r = compare_resolved(&host, &h, &guest, &g);
    assert_eq!(r.result, Comparison::Incompatible, "{r:?}");

    c.bench_function("compare_resolved", |b| {
        b.iter(|| {
            compare_resolved(
                black_box(&host),
                black_box(&h),
                black_box(&guest),
                black_box(&g),
            )
        })
    });
    c.bench_function("compare_with_resolve", |b| {
        b.iter(|| compare(black_box(&db), black_box(&host), black_box(&guest)).unwrap())
    });
}

fn baseline_million(c: &mut Criterion) {
    let db = Database::embedded();
    let hosts = fleet::hosts(&db, 1_000_000, 0x00c0_ffee);
    let run = |hosts: &[_]| {
        let mut acc = BaselineAccumulator::default();
        for h in hosts {
            acc.add_features(h);
        }
        acc.finish(&db, BaselineOptions::default())
            .expect("the fleet has a baseline")
    };
    let cpu = run(&hosts);
    assert!(cpu.model.is_some());

    let mut group = c.benchmark_group("baseline");
    group.sample_size(10);
    group.bench_function("baseline_1m", |b| b.iter(|| run(black_box(&hosts))));
    group.finish();
}

criterion_group!(benches, compare_pair, baseline_million);
criterion_main!(benches);
