//! What the fleet crate's integration tests share: profiles made from the
//! model database, and the small fleet whose answers they check exactly.

use cpumodel_fleet::{Profile, ProfileCount};
use cpumodel_map::{Database, FeatureSet};

/// The profile of a host with `model`'s features, minus `without`.
pub fn profile(db: &Database, model: &str, without: &[&str]) -> Profile {
    let m = db.find_model(model).unwrap();
    let mut features: FeatureSet = db.model(m).features;
    for f in without {
        features.remove(db.find_feature(f).unwrap());
    }
    Profile {
        vendor: db.model(m).vendor,
        model: Some(m),
        features,
    }
}

/// `profile` held by `hosts`, all of them samples.
pub fn count(profile: Profile, hosts: &[&str]) -> ProfileCount {
    ProfileCount {
        profile,
        hosts: hosts.len() as u64,
        sample_hosts: hosts.iter().map(|h| h.to_string()).collect(),
    }
}

/// Three Skylake hosts (`sky-1`, `sky-2`, and `sky-3` with TSX switched
/// off), and a Westmere (`old-1`).
pub fn fleet(db: &Database) -> Vec<ProfileCount> {
    vec![
        count(profile(db, "Skylake-Client-IBRS", &[]), &["sky-1", "sky-2"]),
        count(
            profile(db, "Skylake-Client-IBRS", &["hle", "rtm"]),
            &["sky-3"],
        ),
        count(profile(db, "Westmere", &[]), &["old-1"]),
    ]
}
