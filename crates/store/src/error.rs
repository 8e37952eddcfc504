//! The one error type of the store.

use std::path::PathBuf;

/// Everything that can go wrong opening, writing or reading a store.
///
/// Each message is one line naming the store's location (a PostgreSQL
/// password is never shown: see [`Location`](crate::Location)'s `Display`)
/// and the host, group or value concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A query named a store file that does not exist (only an import
    /// creates a store).
    #[error("{}: no such fleet store", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The file exists but is not an SQLite database.
    #[error("{}: not an SQLite database", path.display())]
    NotSqlite {
        /// The file.
        path: PathBuf,
    },
    /// The database exists but holds something other than a fleet store
    /// (tables of another program, or nothing at all when a store was
    /// expected).
    #[error("{location}: not a cpumodel fleet store ({why})")]
    NotAStore {
        /// The store's location, redacted.
        location: String,
        /// What was found instead.
        why: String,
    },
    /// The store was written by a newer cpumodel: its schema version is
    /// above [`SCHEMA_VERSION`](crate::SCHEMA_VERSION). Nothing was changed.
    #[error("{location}: the store's schema version {found} is newer than this cpumodel's ({known}); use a newer cpumodel")]
    NewerSchema {
        /// The store's location, redacted.
        location: String,
        /// The version in the store.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The database's content is damaged: SQLite reports corruption, or a
    /// row holds a value no import writes (a bad feature blob, an unknown
    /// view, a document that does not decompress).
    #[error("{location}: corrupt store: {what}")]
    Corrupt {
        /// The store's location, redacted.
        location: String,
        /// What is damaged.
        what: String,
    },
    /// The store file or its directory could not be created.
    #[error("{}: cannot create the store: {reason}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A `postgres://` location that does not parse.
    #[error("{location}: not a valid PostgreSQL URL: {reason}")]
    BadUrl {
        /// The URL, redacted.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The PostgreSQL server did not answer (refused, unreachable, timed
    /// out).
    #[error("{location}: cannot reach PostgreSQL: {reason}")]
    Unreachable {
        /// The URL, redacted.
        location: String,
        /// The connection error.
        reason: String,
    },
    /// The server refused the user or its password.
    #[error("{location}: PostgreSQL refused the login of user {user:?}: {reason}")]
    Auth {
        /// The URL, redacted.
        location: String,
        /// The user name from the URL.
        user: String,
        /// The server's message.
        reason: String,
    },
    /// The server has no database of that name.
    #[error("{location}: PostgreSQL has no database {database:?}")]
    NoDatabase {
        /// The URL, redacted.
        location: String,
        /// The database name from the URL.
        database: String,
    },
    /// A query's filter named a group that no host is in.
    #[error("{location}: no host is in group {group:?}")]
    UnknownGroup {
        /// The store's location, redacted.
        location: String,
        /// The group.
        group: String,
    },
    /// A host that the store has no report of.
    #[error("{location}: no host {host:?}")]
    UnknownHost {
        /// The store's location, redacted.
        location: String,
        /// The host.
        host: String,
    },
    /// No default location: neither `CPUMODEL_FLEET_DB` nor a data
    /// directory (`$XDG_DATA_HOME`, `$HOME`) is set.
    #[error("no default fleet store: set CPUMODEL_FLEET_DB or HOME, or pass --db")]
    NoDefaultLocation,
    /// Any other error the database reported.
    #[error("{location}: {message}")]
    Backend {
        /// The store's location, redacted.
        location: String,
        /// The database's message, on one line.
        message: String,
        /// A PostgreSQL SQLSTATE, when the server sent one.
        code: Option<String>,
    },
}

/// `text` on one line: line breaks become `; `.
pub(crate) fn one_line(text: &str) -> String {
    text.trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
