//! The fleet store: every host's CPU reports, kept in one database, for
//! `cpumodel fleet … --db LOCATION`.
//!
//! This crate is the I/O edge of fleet planning. It stores what the planner
//! (`cpumodel-fleet`) decoded from each host document and answers the
//! planner's questions with plain data; it decides nothing about CPUs
//! itself.
//!
//! # Backends, one schema
//!
//! A store is an SQLite file ([`Location::Sqlite`], bundled SQLite, no
//! system library) or a PostgreSQL database ([`Location::Postgres`], for
//! several control-plane nodes sharing one inventory). Both hold the same
//! tables, columns and constraints, created by one list of versioned
//! migrations (see [`SCHEMA_VERSION`]) and used by the same SQL: a
//! behaviour tested on one backend is the behaviour of the other, and a
//! store can move between them by re-importing its documents. Opening a
//! store applies the missing migrations in one transaction; a store whose
//! version is newer than this build is refused
//! ([`StoreError::NewerSchema`]) without a change. An SQLite file is checked
//! read-only first (header, tables, version), so that a file that is not an
//! SQLite database, a damaged one, another program's database or a newer
//! store is left byte for byte as it was.
//!
//! # What is stored
//!
//! - `hosts`: one row per host name, with its labels in `host_groups` (a
//!   host can be in several groups: zone, aggregate, cluster, rack).
//! - `reports`: the history. Each import of a host document is one report:
//!   time, source (file name), [`View`], the document and the decoded CPU.
//!   Importing the same document for the same host again adds nothing
//!   (the document's SHA-256 identifies it).
//! - `documents`: the original documents verbatim, zstd-compressed
//!   (with a dictionary trained on the store's own documents), each
//!   host's once per digest (`UNIQUE (host_id, digest)`). Keyed by host,
//!   a batch of new hosts appends its documents; one store-wide index of
//!   random digests had most of its pages rewritten by every batch of a
//!   large import.
//! - `profiles`: the distinct decoded CPUs (vendor, model name, feature
//!   set). A fleet has thousands of hosts but few kinds of CPU, so each
//!   report points to a shared profile; counting hosts per profile is then a
//!   `GROUP BY` over small integers, and a feature set is read once per
//!   profile, not once per host. Feature sets are bitsets over the store's
//!   own feature numbering (`features`), not the model database's, so that a
//!   store stays valid when a newer CPU map renumbers or adds features;
//!   reading maps the names back through the caller's [`Database`]
//!   (features this database does not know are dropped). Vendor and model
//!   are kept by name too and resolved the same way when read
//!   ([`Database::find_vendor`], [`Database::find_model_exact`]): a name
//!   this database does not know reads as `None`. The profiles the
//!   queries answer with are the planner's [`Profile`]s, re-exported here
//!   with [`View`], [`HostRow`], [`ProfileCount`] and [`DriftRow`], so the
//!   store and `cpumodel-fleet` share one definition of each.
//! - `guests`: recorded guest CPU definitions, for drift reports.
//!
//! # Current pointers
//!
//! A host's current CPU is its newest report (greatest time, then greatest
//! id), and drift compares it with the one before. Both are kept on the
//! host row (`current_report`, `current_profile`, `current_time_us` and
//! the same for `previous_*`, plus `report_count`), updated inside the
//! import transaction: the questions (hosts, models, recommend, baseline,
//! can-run, drift) read one row per host and never scan the history, which
//! is what makes them fast at a million hosts. On PostgreSQL the import
//! locks each touched host row (`FOR NO KEY UPDATE`) before reading and
//! moving the pointers, so concurrent importers of one host cannot lose a
//! report; on SQLite the whole import holds the write lock.
//!
//! # Writes
//!
//! [`Store::import`] writes one batch in one transaction: killing the
//! process at any moment keeps every batch committed before and none of the
//! interrupted one. SQLite runs in WAL mode with `synchronous = NORMAL`
//! (a committed batch survives a process crash; an operating-system crash
//! may lose the last batches, never corrupt the store) and a busy timeout,
//! so several importing processes on one file wait for each other instead
//! of failing. On PostgreSQL the import inserts in a fixed order (hosts,
//! documents, profiles, reports, then host rows in id order), so concurrent
//! importers do not deadlock; a deadlock or serialization failure reported
//! by the server is retried.
//!
//! ```
//! use cpumodel_map::Database;
//! use cpumodel_store::{Document, Filter, Location, NewReport, OpenMode, Profile, Store, View};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let location = Location::parse(dir.path().join("fleet.sqlite").to_str().unwrap());
//! let db = Database::embedded();
//! let mut store = Store::open(&location, OpenMode::CreateIfMissing).unwrap();
//! let westmere = db.find_model("Westmere").unwrap();
//! let report = NewReport {
//!     host: "node1".into(),
//!     groups: vec!["rack1".into()],
//!     time_us: 1_700_000_000_000_000,
//!     source: "node1.xml".into(),
//!     view: View::HostCpu,
//!     digest: [1; 32],
//!     document: Document::Text("<cpu>…</cpu>".into()),
//!     profile: Profile {
//!         vendor: db.find_vendor("Intel"),
//!         model: Some(westmere),
//!         features: db.model(westmere).features,
//!     },
//! };
//! assert_eq!(store.import(&db, &[report.clone()]).unwrap().added, 1);
//! assert_eq!(store.import(&db, &[report]).unwrap().unchanged, 1);
//! let hosts = store.hosts(&Filter::default()).unwrap();
//! assert_eq!(hosts[0].model, "Westmere");
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod conn;
mod dictionary;
mod error;
mod location;
mod schema;
mod store;

pub use cpumodel_fleet::{DriftRow, HistoryRow, HostRow, Profile, ProfileCount, View};
pub use cpumodel_map::{Database, FeatureSet};
pub use dictionary::{DocumentDictionary, DICTIONARY_SAMPLES};
pub use error::StoreError;
pub use location::{Location, DB_ENV_VAR};
pub use schema::SCHEMA_VERSION;
pub use store::{compress_document, Store};

/// Whether opening may create a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file (and its directories) or the schema when missing: for
    /// imports.
    CreateIfMissing,
    /// The store must exist: for queries, so that a mistyped path is an
    /// error rather than a new empty store.
    MustExist,
}

/// One host document to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReport {
    /// The host's name.
    pub host: String,
    /// Groups to add the host to (kept with the groups it already has).
    pub groups: Vec<String>,
    /// When the document was taken, in microseconds since the Unix epoch.
    pub time_us: i64,
    /// Where it came from (a file name, `-`).
    pub source: String,
    /// What it shows of the CPU.
    pub view: View,
    /// SHA-256 of `document`, computed by the caller: with the host, the
    /// identity of a report.
    pub digest: [u8; 32],
    /// The document: its text, or the text already compressed.
    pub document: Document,
    /// The CPU decoded from it, numbered by the [`Database`] given to
    /// [`Store::import`]. The store keeps it by name: the vendor's and the
    /// model's names in that database, and a `None` model as the name `-`
    /// (what [`Profile::model_name`] shows), which reads back as `None`.
    pub profile: Profile,
}

/// A report's document, as the caller hands it to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Document {
    /// The text, verbatim: the store compresses it when it is new.
    Text(String),
    /// The text compressed by [`compress_document`] or
    /// [`DocumentDictionary::compress`], on the caller's own threads beside
    /// other work; the text itself need not be kept.
    Compressed {
        /// The compressed text.
        bytes: Vec<u8>,
        /// The text's length in bytes.
        size: usize,
        /// The dictionary it was compressed with, if any; the store keeps
        /// it beside the document.
        dictionary: Option<DocumentDictionary>,
    },
}

impl Document {
    /// The text's length in bytes.
    pub fn size(&self) -> usize {
        match self {
            Document::Text(t) => t.len(),
            Document::Compressed { size, .. } => *size,
        }
    }
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Reports stored.
    pub added: u64,
    /// Reports that were already there (same host and document).
    pub unchanged: u64,
}

/// Which hosts a query covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Hosts in at least one of these groups; empty means every host. A
    /// group no host is in is an error ([`StoreError::UnknownGroup`]), so a
    /// typo never answers about nothing.
    pub groups: Vec<String>,
}

impl Filter {
    /// Every host.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// The hosts of `groups`.
    pub fn groups(groups: impl IntoIterator<Item = impl Into<String>>) -> Filter {
        Filter {
            groups: groups.into_iter().map(Into::into).collect(),
        }
    }
}

/// A host's current document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentDocument {
    /// The host.
    pub host: String,
    /// Where the document came from.
    pub source: String,
    /// What it shows.
    pub view: View,
    /// The report's time (µs since the epoch).
    pub time_us: i64,
    /// The document, as imported.
    pub document: String,
}

/// A recorded guest CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guest {
    /// Its name.
    pub name: String,
    /// The guest's `<cpu>` definition.
    pub cpu_xml: String,
}
