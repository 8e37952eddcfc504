//! The Linux flag table joined to libvirt's maps by CPUID bit: every
//! `<alias source='linux'>` libvirt's upstream map gives must be the feature
//! the bit join finds for that cpuinfo name, and the reverse.

use cpumodel_map::{find_linux_flag, load_cpu_map, Database, FeatureId};

/// Linux aliases of a map that the bit join does not give, with the reason.
/// Empty: every alias libvirt's upstream map carries agrees with the table.
const EXCEPTIONS: &[(&str, &str)] = &[];

fn check_aliases(db: &Database) -> usize {
    let mut checked = 0;
    for (i, f) in db.features().iter().enumerate() {
        for alias in f.aliases.iter().filter(|a| a.source == "linux") {
            if EXCEPTIONS.iter().any(|(n, _)| *n == alias.name) {
                continue;
            }
            let flag = find_linux_flag(&alias.name)
                .unwrap_or_else(|| panic!("'{}' is no cpuinfo flag", alias.name));
            assert_eq!(
                db.find_linux_feature(&alias.name),
                Some(FeatureId::from_index(i)),
                "{} ({:?})",
                alias.name,
                flag
            );
            assert_eq!(db.linux_name(FeatureId::from_index(i)), Some(&*alias.name));
            checked += 1;
        }
    }
    checked
}

#[test]
fn linux_aliases_of_the_upstream_map_agree_with_the_bit_join() {
    let Some(dir) = cpumodel_testenv::shared_path("cpu_map/libvirt-upstream") else {
        return;
    };
    let db = load_cpu_map(&dir).unwrap();
    assert_eq!(check_aliases(&db), 3, "cqm, md_clear, arch_capabilities");
}

#[test]
fn linux_aliases_of_the_embedded_map_agree_with_the_bit_join() {
    assert_eq!(check_aliases(&Database::embedded()), 3);
}

#[test]
fn linux_names_resolve_in_every_map() {
    let db = Database::embedded();
    for (linux, libvirt) in [
        ("tsc_deadline_timer", "tsc-deadline"),
        ("sha_ni", "sha-ni"),
        ("avx512_vnni", "avx512vnni"),
        ("cqm", "cmt"),
        ("TSC_DEADLINE_TIMER", "tsc-deadline"),
    ] {
        let id = db.find_feature(linux).unwrap();
        assert_eq!(db.feature_name(id), libvirt, "{linux}");
    }
    // A libvirt name wins over the Linux flag of the same spelling.
    let ssbd = db.find_feature("ssbd").unwrap();
    assert_eq!(db.feature_name(ssbd), "ssbd");
    assert_eq!(
        db.find_feature("constant_tsc").unwrap_err().to_string(),
        "unknown CPU feature 'constant_tsc' (Linux flag X86_FEATURE_CONSTANT_TSC is a bit Linux defines itself, not a CPUID bit); did you mean 'tsc'?"
    );
    assert_eq!(
        db.find_feature("avx512_vnn").unwrap_err().to_string(),
        "unknown CPU feature 'avx512_vnn'; did you mean 'avx512_vnni', 'avx512vnni', 'avx'?"
    );
    let Some(dir) = cpumodel_testenv::shared_path("cpu_map/libvirt-9.0") else {
        return;
    };
    let old = load_cpu_map(&dir).unwrap();
    let id = old.find_feature("tsc_deadline_timer").unwrap();
    assert_eq!(old.feature_name(id), "tsc-deadline");
}
