//! The committed embedded database must be exactly what the importer writes
//! for the upstream cpu_map, and must round-trip through `Database::embedded`.

use std::path::Path;

use cpumodel_map::{
    codegen::generate_rust, load_cpu_map, read_map_origin, Database, EMBEDDED_ORIGIN,
    EMBEDDED_SOURCE,
};

const COMMITTED: &str = include_str!("../src/embedded/data.rs");

#[test]
fn embedded_tables_round_trip_through_the_generator() {
    assert_eq!(
        generate_rust(&Database::embedded(), EMBEDDED_SOURCE, EMBEDDED_ORIGIN),
        COMMITTED
    );
}

#[test]
fn embedded_tables_match_the_upstream_cpu_map() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cpu_map/libvirt-upstream");
    if !dir.join("index.xml").exists() {
        cpumodel_testenv::unavailable(
            cpumodel_testenv::Need::Shared,
            format!(
                "{} not found (the shared upstream cpu_map is not present)",
                dir.display()
            ),
        );
        return;
    }
    let db = load_cpu_map(&dir).unwrap();
    let origin = read_map_origin(&dir).expect("the upstream copy records its origin");
    assert_eq!(
        generate_rust(&db, EMBEDDED_SOURCE, &origin),
        COMMITTED,
        "run `cargo xtask import-cpu-map {}`",
        dir.display()
    );
}
