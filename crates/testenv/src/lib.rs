//! What a test needs from the machine, and what happens when it is missing.
//!
//! Some tests need things a fresh clone does not have: the shared data
//! directory `../shared` (the libvirt conformance corpus and CPU maps), an
//! installed QEMU, a usable `/dev/kvm`. On a user's machine such a test
//! prints one `skipped: …` line and passes. In CI that would hide a broken
//! machine, so `.ci/run` sets [`REQUIRE_VAR`] to the resources it installed,
//! and a test that would skip for one of them fails instead.
//!
//! ```
//! use cpumodel_testenv::{unavailable, Need};
//! let shared = std::path::Path::new("../shared/nothing-here");
//! if !shared.exists() {
//!     // Prints "skipped: …", or panics when CI requires ../shared.
//!     # if std::env::var_os(cpumodel_testenv::REQUIRE_VAR).is_none() {
//!     unavailable(Need::Shared, "../shared/nothing-here not found");
//!     # }
//! }
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::fmt::Display;

/// The environment variable listing the resources a run requires:
/// comma-separated names from [`Need::name`] (`shared,qemu,kvm`).
pub const REQUIRE_VAR: &str = "CPUMODEL_REQUIRE";

/// A resource of the machine that some tests need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The shared data directory `../shared` beside the repository.
    Shared,
    /// `qemu-system-x86_64`.
    Qemu,
    /// A usable `/dev/kvm`.
    Kvm,
}

impl Need {
    /// The resource's name in [`REQUIRE_VAR`].
    pub fn name(self) -> &'static str {
        match self {
            Need::Shared => "shared",
            Need::Qemu => "qemu",
            Need::Kvm => "kvm",
        }
    }

    /// Whether this run requires the resource (it is named in
    /// [`REQUIRE_VAR`]).
    pub fn required(self) -> bool {
        std::env::var(REQUIRE_VAR).is_ok_and(|v| requires(&v, self))
    }
}

fn requires(list: &str, need: Need) -> bool {
    list.split(',').any(|n| n.trim() == need.name())
}

/// Reports that `need` is missing for the reason `why`: prints
/// `skipped: WHY` when the run does not require it.
///
/// # Panics
///
/// When the run requires `need` (see [`REQUIRE_VAR`]): a test that cannot
/// run in CI fails.
pub fn unavailable(need: Need, why: impl Display) {
    assert!(
        !need.required(),
        "{} is required ({}={}) but not available: {why}",
        need.name(),
        REQUIRE_VAR,
        std::env::var(REQUIRE_VAR).unwrap_or_default()
    );
    println!("skipped: {why}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_names_resources_exactly() {
        assert!(requires("shared,qemu", Need::Qemu));
        assert!(requires(" kvm ", Need::Kvm));
        assert!(!requires("shared,qemu", Need::Kvm));
        assert!(!requires("sharedx", Need::Shared));
        assert!(!requires("", Need::Shared));
    }
}
