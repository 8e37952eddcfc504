//! The fleet store's speed: importing synthetic host reports into SQLite
//! (and PostgreSQL when `CPUMODEL_TEST_POSTGRES` names a server), and the
//! planner's queries over a million hosts.
//!
//! Reports are random feature perturbations (fixed seed) of a few real
//! models of the embedded database; each document is a real 3 KB
//! `<cpudata>` dump made distinct per host. Run:
//!
//! ```text
//! cargo bench -p cpumodel-store --bench import
//! CPUMODEL_BENCH_HOSTS=1000000 cargo bench -p cpumodel-store --bench import -- queries
//! ```
//!
//! Store sizes (bytes per report) are printed to standard error.

use std::time::{Duration, Instant};

use cpumodel_map::Database;
use cpumodel_store::{Filter, Location, NewReport, OpenMode, Profile, Store, View};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};
use sha2::{Digest, Sha256};

const DUMP: &str = include_str!("../../cpudef/benches/data/this-host.xml");
const MODELS: [&str; 6] = [
    "Skylake-Server-IBRS",
    "Cascadelake-Server",
    "Icelake-Server",
    "Haswell-noTSX",
    "EPYC-Rome",
    "EPYC-Milan",
];
const TOGGLES: [&str; 12] = [
    "hle",
    "rtm",
    "md-clear",
    "pcid",
    "invpcid",
    "ssbd",
    "spec-ctrl",
    "stibp",
    "avx512f",
    "avx2",
    "xsaves",
    "pku",
];

/// xorshift64: a fixed-seed generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // cast: a random number; its low bits will do.
        #[allow(clippy::cast_possible_truncation)]
        let r = self.0 as usize;
        r % n
    }
}

/// Generates reports: host `first..`, one report each.
struct Fleet {
    db: Database,
    rng: Rng,
    bases: Vec<Profile>,
}

impl Fleet {
    fn new() -> Fleet {
        let db = Database::embedded();
        let bases = MODELS
            .iter()
            .map(|m| {
                let id = db.find_model(m).unwrap();
                let m = db.model(id);
                Profile {
                    vendor: m.vendor,
                    model: Some(id),
                    features: m.features,
                }
            })
            .collect();
        Fleet {
            db,
            rng: Rng(0x00c0_ffee),
            bases,
        }
    }

    fn report(&mut self, host: usize, time_us: i64, small: bool) -> NewReport {
        let mut profile = self.bases[self.rng.below(self.bases.len())];
        let model = profile.model_name(&self.db).to_owned();
        let mut mask = 0u32;
        for _ in 0..self.rng.below(3) {
            let t = self.rng.below(TOGGLES.len());
            mask |= 1 << t;
            if let Some(f) = self.db.find_feature_exact(TOGGLES[t]) {
                profile.features.remove(f);
            }
        }
        let name = format!("host{host:07}");
        let document = if small {
            format!("<cpu><!-- {name} {mask:x} --><model>{model}</model></cpu>")
        } else {
            DUMP.replacen(
                "<cpudata arch='x86'>\n",
                &format!("<cpudata arch='x86'>\n  <!-- {name} -->\n  <cpuid eax_in='0x00000007' ecx_in='0x00000001' eax='0x{mask:08x}' ebx='0x00000000' ecx='0x00000000' edx='0x00000000'/>\n"),
                1,
            )
        };
        NewReport {
            groups: vec![format!("az{}", host % 10), format!("rack{}", host % 97)],
            host: name,
            time_us,
            source: "bench.xml".into(),
            view: View::RawCpuid,
            digest: Sha256::digest(document.as_bytes()).into(),
            document: cpumodel_store::Document::Text(document),
            profile,
        }
    }

    fn batch(&mut self, first: usize, n: usize, small: bool) -> Vec<NewReport> {
        (first..first + n)
            .map(|h| self.report(h, i64::try_from(h).unwrap(), small))
            .collect()
    }
}

fn file_size(path: &std::path::Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// Benchmarks `name/batch`: importing `batch` new hosts at a time into
/// `store`, numbered from 0 on; gives how many hosts were imported.
fn bench_new_hosts(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    fleet: &mut Fleet,
    db: &Database,
    store: &mut Store,
    batch: usize,
) -> usize {
    let mut next = 0;
    g.throughput(Throughput::Elements(batch as u64));
    g.bench_function(format!("{name}/{batch}"), |b| {
        b.iter_batched(
            || {
                let r = fleet.batch(next, batch, false);
                next += batch;
                r
            },
            |reports| assert_eq!(store.import(db, &reports).unwrap().added, batch as u64),
            BatchSize::PerIteration,
        );
    });
    next
}

fn import(c: &mut Criterion) {
    let mut fleet = Fleet::new();
    let db = Database::embedded();
    let mut g = c.benchmark_group("import");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for batch in [1_000, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.sqlite");
        let mut store =
            Store::open(&Location::Sqlite(path.clone()), OpenMode::CreateIfMissing).unwrap();
        let next = bench_new_hosts(&mut g, "sqlite", &mut fleet, &db, &mut store, batch);
        // Re-importing the same documents: the dedupe path.
        let again = fleet.batch(0, batch, false);
        drop(store);
        let mut store = Store::open(&Location::Sqlite(path.clone()), OpenMode::MustExist).unwrap();
        store.import(&db, &again).unwrap();
        g.bench_function(format!("sqlite-unchanged/{batch}"), |b| {
            b.iter(|| assert_eq!(store.import(&db, &again).unwrap().added, 0));
        });
        drop(store);
        eprintln!(
            "sqlite store: {next} reports, {} bytes, {} bytes per report",
            file_size(&path),
            file_size(&path) / (next as u64).max(1)
        );
    }
    if let Ok(admin) = std::env::var("CPUMODEL_TEST_POSTGRES") {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        client
            .batch_execute("DROP DATABASE IF EXISTS cpumodel_bench WITH (FORCE)")
            .unwrap();
        client
            .batch_execute("CREATE DATABASE cpumodel_bench")
            .unwrap();
        let url = format!("{}/cpumodel_bench", admin.rsplit_once('/').unwrap().0);
        let mut store = Store::open(&Location::Postgres(url), OpenMode::CreateIfMissing).unwrap();
        let next = bench_new_hosts(&mut g, "postgres", &mut fleet, &db, &mut store, 1_000);
        drop(store);
        let size: i64 = client
            .query_one("SELECT pg_database_size('cpumodel_bench')", &[])
            .unwrap()
            .get(0);
        eprintln!("postgres store: {next} reports, {size} bytes (whole database)");
        client
            .batch_execute("DROP DATABASE cpumodel_bench WITH (FORCE)")
            .unwrap();
    }
    g.finish();
}

fn queries(c: &mut Criterion) {
    let hosts: usize = std::env::var("CPUMODEL_BENCH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut fleet = Fleet::new();
    let db = Database::embedded();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.sqlite");
    let location = Location::Sqlite(path.clone());
    {
        let mut store = Store::open(&location, OpenMode::CreateIfMissing).unwrap();
        let t = Instant::now();
        for first in (0..hosts).step_by(10_000) {
            let n = 10_000.min(hosts - first);
            store.import(&db, &fleet.batch(first, n, true)).unwrap();
        }
        eprintln!(
            "built a store of {hosts} hosts (small documents) in {:.1} s: {} bytes",
            t.elapsed().as_secs_f64(),
            file_size(&path)
        );
    }
    let mut store = Store::open(&location, OpenMode::MustExist).unwrap();
    let mut g = c.benchmark_group("queries");
    g.sample_size(10);
    let all = Filter::all();
    let az = Filter::groups(["az3"]);
    g.bench_function(format!("profile_counts/{hosts}"), |b| {
        b.iter(|| store.profile_counts(&db, &all, 5).unwrap().len());
    });
    g.bench_function(format!("profile_counts-group/{hosts}"), |b| {
        b.iter(|| store.profile_counts(&db, &az, 5).unwrap().len());
    });
    g.bench_function(format!("current_hosts/{hosts}"), |b| {
        b.iter(|| store.current_hosts(&db, &all).unwrap().1.len());
    });
    g.bench_function(format!("current_hosts-group/{}", hosts / 10), |b| {
        b.iter(|| store.current_hosts(&db, &az).unwrap().1.len());
    });
    g.bench_function(format!("open/{hosts}"), |b| {
        b.iter(|| Store::open(&location, OpenMode::MustExist).unwrap());
    });
    g.finish();
}

criterion_group!(benches, import, queries);
criterion_main!(benches);
