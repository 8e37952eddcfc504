//! Decode and database benchmarks for `cpumodel-cpudef`.
//!
//! What is measured, and the target for each:
//!
//! - `embedded_database_ready`: building the compiled-in CPU model database
//!   with `Database::embedded()`. Target: ≤ 100 µs.
//! - `decode_host`: decoding the already-parsed features of
//!   `benches/data/this-host.xml` (a `<cpudata>` dump of the benchmark
//!   machine, written by `cpumodel dump`) as a host CPU against the embedded
//!   database. Target: ≤ 20 µs.
//! - `decode_guest`: the same, decoded as a guest CPU. Target: ≤ 20 µs.
//! - `parse_and_decode_guest`: parsing the dump text
//!   (`host_features_from_cpudata`) and then decoding it as a guest CPU. No
//!   separate target; it shows what parsing adds to `decode_guest`.
//!
//! Run with `cargo bench -p cpumodel-cpudef --bench decode`.

use std::hint::black_box;

use cpumodel_cpudef::{decode, host_features_from_cpudata, CpuKind, DecodeOptions};
use cpumodel_map::Database;
use criterion::{criterion_group, criterion_main, Criterion};

const FIXTURE_NAME: &str = "benches/data/this-host.xml";
const FIXTURE: &str = include_str!("data/this-host.xml");

fn embedded_database(c: &mut Criterion) {
    c.bench_function("embedded_database_ready", |b| {
        b.iter(|| black_box(Database::embedded()))
    });
}

fn decode_fixture(c: &mut Criterion) {
    let db = Database::embedded();
    let (_, features) = host_features_from_cpudata(&db, FIXTURE_NAME, FIXTURE)
        .expect("the fixture is a valid <cpudata> dump");

    for (name, kind) in [
        ("decode_host", CpuKind::Host),
        ("decode_guest", CpuKind::Guest),
    ] {
        let opts = DecodeOptions::new(kind);
        decode(&db, &features, &opts).expect("the fixture decodes");
        c.bench_function(name, |b| {
            b.iter(|| decode(black_box(&db), black_box(&features), black_box(&opts)))
        });
    }

    let opts = DecodeOptions::new(CpuKind::Guest);
    c.bench_function("parse_and_decode_guest", |b| {
        b.iter(|| {
            let (_, features) =
                host_features_from_cpudata(&db, FIXTURE_NAME, black_box(FIXTURE)).unwrap();
            decode(&db, &features, &opts).unwrap()
        })
    });
}

criterion_group!(benches, embedded_database, decode_fixture);
criterion_main!(benches);
