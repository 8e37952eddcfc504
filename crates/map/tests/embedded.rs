//! Each committed embedded database must be exactly what the importer
//! writes for its release's cpu_map, and must round-trip through
//! [`Release::database`].

use std::path::Path;

use cpumodel_map::{codegen::generate_rust, load_cpu_map, Release};

/// Each release's committed file and the shared map it was generated from.
const COMMITTED: [(&str, &str, &str); 3] = [
    (
        "9.0",
        include_str!("../src/embedded/data_9_0.rs"),
        "cpu_map/libvirt-9.0",
    ),
    (
        "10.7",
        include_str!("../src/embedded/data_10_7.rs"),
        "conformance/libvirt-10.7/cpu_map",
    ),
    (
        "upstream",
        include_str!("../src/embedded/data_upstream.rs"),
        "cpu_map/libvirt-upstream",
    ),
];

#[test]
fn the_releases_are_the_committed_files_oldest_first() {
    let names: Vec<&str> = Release::all().iter().map(|r| r.name).collect();
    let committed: Vec<&str> = COMMITTED.iter().map(|c| c.0).collect();
    assert_eq!(names, committed);
    assert_eq!(Release::newest().name, "upstream");
}

#[test]
fn embedded_tables_round_trip_through_the_generator() {
    for (release, (name, text, _)) in Release::all().iter().zip(COMMITTED) {
        assert_eq!(release.name, name);
        assert_eq!(
            generate_rust(&release.database(), release.source(), release.origin()),
            text,
            "release {name}"
        );
    }
}

#[test]
fn embedded_tables_match_the_shared_cpu_maps() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    for (release, (name, text, dir)) in Release::all().iter().zip(COMMITTED) {
        let dir = shared.join(dir);
        if !dir.join("index.xml").exists() {
            cpumodel_testenv::unavailable(
                cpumodel_testenv::Need::Shared,
                format!(
                    "{} not found (the shared cpu_maps are not present)",
                    dir.display()
                ),
            );
            return;
        }
        let db = load_cpu_map(&dir).unwrap();
        assert_eq!(
            generate_rust(&db, release.source(), release.origin()),
            text,
            "run `cargo xtask import-cpu-map --release {name} {}`",
            dir.display()
        );
    }
}

#[test]
fn the_upstream_origin_is_the_one_its_directory_records() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cpu_map/libvirt-upstream");
    if let Some(origin) = cpumodel_map::read_map_origin(&dir) {
        assert_eq!(Release::newest().origin(), origin);
    }
}

/// libvirt 11 subtracts an ancestor's `removed` features from the models
/// derived from it, where 10.7 copies the ancestor's features as they are;
/// cpumodel does the latter for every release, which is only right while
/// no model inherits a feature its ancestor lists as removed.
#[test]
fn no_model_inherits_a_feature_its_ancestor_removed() {
    for release in Release::all() {
        let db = release.database();
        for m in db.models() {
            let Some(a) = m.ancestor else { continue };
            for f in &db.model(a).removed {
                assert!(
                    !m.features.contains(*f),
                    "{}: {} inherits {} which {} removed",
                    release.name,
                    m.name,
                    db.feature_name(*f),
                    db.model(a).name
                );
            }
        }
    }
}
