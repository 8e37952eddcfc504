//! Reading host documents into reports: the CPU-bound half of
//! `fleet import` (the store's writes are benchmarked in cpumodel-store).

use cpumodel_fleet::read_host_report;
use cpumodel_map::Database;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn corpus() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/libvirt-10.7/cputestdata");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: {} not found", dir.display());
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("x86_64-cpuid-")
                && n.ends_with(".xml")
                && !n.contains("baseline")
                && !["-host.xml", "-guest.xml", "-json.xml"]
                    .iter()
                    .any(|s| n.ends_with(s))
        })
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn read(c: &mut Criterion) {
    let db = Database::embedded();
    let docs = corpus();
    if docs.is_empty() {
        return;
    }
    let mut g = c.benchmark_group("read_host_report");
    g.throughput(Throughput::Elements(docs.len() as u64));
    g.bench_function("corpus dumps", |b| {
        b.iter(|| {
            for (name, text) in &docs {
                read_host_report(&db, name, text).unwrap();
            }
        })
    });
    g.bench_function("parse_cpudata only", |b| {
        b.iter(|| {
            for (name, text) in &docs {
                cpumodel_cpudata::parse_cpudata(name, text).unwrap();
            }
        })
    });
    g.bench_function("roxmltree only", |b| {
        b.iter(|| {
            for (_, text) in &docs {
                roxmltree::Document::parse(text).unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, read);
criterion_main!(benches);
