//! What a test needs from the machine, and what happens when it is missing.
//!
//! Some tests need things a fresh clone does not have: the shared data
//! directory `../shared` (the libvirt conformance corpus and CPU maps), an
//! installed QEMU, a usable `/dev/kvm`, a PostgreSQL server. On a user's machine such a test
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
    /// Chromium (`chromium`), to load generated pages headless.
    Chromium,
    /// A PostgreSQL server for the fleet store's tests, named by the URL in
    /// `CPUMODEL_TEST_POSTGRES` (`scripts/start-postgres.sh` starts one).
    Postgres,
    /// A Python with OpenStack Nova installed, named by
    /// `CPUMODEL_NOVA_PYTHON`, for the differential test against Nova's code.
    Nova,
    /// QEMU's rendered x86 CPU model documentation (Debian's
    /// `qemu-system-common` installs it), whose table of x86-64 levels per
    /// model the level computation is checked against.
    QemuDoc,
}

impl Need {
    /// The resource's name in [`REQUIRE_VAR`].
    pub fn name(self) -> &'static str {
        match self {
            Need::Shared => "shared",
            Need::Qemu => "qemu",
            Need::Kvm => "kvm",
            Need::Chromium => "chromium",
            Need::Postgres => "postgres",
            Need::Nova => "nova",
            Need::QemuDoc => "qemu-doc",
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

/// The path of `rel` inside the shared data directory `../shared` beside
/// the repository, or `None` (after [`unavailable`]) when it is missing.
///
/// # Panics
///
/// When it is missing and the run requires [`Need::Shared`].
pub fn shared_path(rel: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel);
    if path.exists() {
        Some(path)
    } else {
        unavailable(Need::Shared, format!("../shared/{rel} not found"));
        None
    }
}

/// A small deterministic generator of mutated documents, for tests that
/// check two readers agree on damaged input.
///
/// The generator is xorshift64; each mutation makes one to `max_edits`
/// edits, each inserting, removing or replacing one byte with a byte of an
/// alphabet.
#[derive(Clone, Debug)]
pub struct Mutator {
    state: u64,
}

impl Mutator {
    /// A generator starting from `seed` (not zero).
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next number below `n` (`n` > 0; small, so the bias does not matter).
    pub fn below(&mut self, n: usize) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        // cast: a random number; on 32-bit targets its low half will do.
        #[allow(clippy::cast_possible_truncation)]
        let r = self.state as usize;
        r % n
    }

    /// `doc` with one to `max_edits` random one-byte edits; inserted and
    /// replacement bytes come from `alphabet`.
    pub fn mutate(&mut self, doc: &[u8], alphabet: &[u8], max_edits: usize) -> Vec<u8> {
        let mut doc = doc.to_vec();
        for _ in 0..1 + self.below(max_edits) {
            let pos = self.below(doc.len() + 1);
            let byte = alphabet[self.below(alphabet.len())];
            match self.below(3) {
                0 => doc.insert(pos, byte),
                1 if pos < doc.len() => {
                    doc.remove(pos);
                }
                _ if pos < doc.len() => doc[pos] = byte,
                _ => {}
            }
        }
        doc
    }
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
        assert!(requires("shared,postgres", Need::Postgres));
        assert!(!requires("postgresql", Need::Postgres));
        assert!(requires("qemu,qemu-doc", Need::QemuDoc));
        assert!(!requires("qemu", Need::QemuDoc));
    }

    #[test]
    fn mutations_are_deterministic_and_small() {
        let doc = b"<cpu/>";
        let mut a = Mutator::new(7);
        let mut b = Mutator::new(7);
        for _ in 0..100 {
            let m = a.mutate(doc, b"<>x", 2);
            assert_eq!(m, b.mutate(doc, b"<>x", 2));
            assert!(m.len().abs_diff(doc.len()) <= 2);
        }
    }
}
