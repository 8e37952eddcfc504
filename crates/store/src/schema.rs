//! The schema: one list of migrations, shared by both backends.
//!
//! Each migration is SQL written once, with three words the backends spell
//! differently: `{ID}` (the surrogate key), `{BLOB}` (bytes) and `{NAME}`
//! (text compared byte by byte, so that sorting and uniqueness of host,
//! group and guest names is the same on both: SQLite's default `BINARY`
//! collation, PostgreSQL's `"C"`). A migration that rebuilds a table adds
//! the few statements only PostgreSQL needs (SQLite cannot drop a
//! constraint, and rebuilds the table instead; PostgreSQL keeps foreign
//! keys by table, not by name): the schema they leave is the same.

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = 3;

/// One step of the schema.
pub(crate) struct Migration {
    /// PostgreSQL only, before `sql`.
    pub(crate) postgres_before: &'static str,
    /// Both backends.
    pub(crate) sql: &'static str,
    /// PostgreSQL only, after `sql`.
    pub(crate) postgres_after: &'static str,
}

impl Migration {
    /// A migration both backends run as written.
    const fn common(sql: &'static str) -> Migration {
        Migration {
            postgres_before: "",
            sql,
            postgres_after: "",
        }
    }

    /// The SQL `dialect` runs.
    pub(crate) fn spelled(&self, dialect: Dialect) -> String {
        let text = match dialect {
            Dialect::Sqlite => self.sql.to_owned(),
            Dialect::Postgres => [self.postgres_before, self.sql, self.postgres_after].concat(),
        };
        spell(&text, dialect)
    }
}

/// Migration `i` takes a store from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    // 1: the first schema.
    Migration::common(
        "
CREATE TABLE features (
    id {ID},
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE profiles (
    id {ID},
    digest {BLOB} NOT NULL UNIQUE,
    vendor TEXT,
    model TEXT NOT NULL,
    features {BLOB} NOT NULL
);
CREATE TABLE documents (
    id {ID},
    digest {BLOB} NOT NULL UNIQUE,
    encoding TEXT NOT NULL,
    size BIGINT NOT NULL,
    body {BLOB} NOT NULL
);
CREATE TABLE hosts (
    id {ID},
    name {NAME} NOT NULL UNIQUE,
    report_count BIGINT NOT NULL DEFAULT 0,
    current_report BIGINT,
    current_time_us BIGINT,
    current_profile BIGINT,
    previous_report BIGINT,
    previous_time_us BIGINT,
    previous_profile BIGINT
);
CREATE INDEX hosts_current_profile ON hosts (current_profile, name);
CREATE TABLE host_groups (
    host_id BIGINT NOT NULL REFERENCES hosts (id),
    name {NAME} NOT NULL,
    PRIMARY KEY (host_id, name)
);
CREATE INDEX host_groups_name ON host_groups (name, host_id);
CREATE TABLE reports (
    id {ID},
    host_id BIGINT NOT NULL REFERENCES hosts (id),
    time_us BIGINT NOT NULL,
    source TEXT NOT NULL,
    view TEXT NOT NULL,
    document_id BIGINT NOT NULL REFERENCES documents (id),
    profile_id BIGINT NOT NULL REFERENCES profiles (id),
    UNIQUE (host_id, document_id)
);
CREATE TABLE guests (
    name {NAME} PRIMARY KEY,
    cpu_xml TEXT NOT NULL
);
",
    ),
    // 2: zstd dictionaries trained on a store's own documents, which shrink
    // the near-identical documents of a fleet about fourfold.
    Migration::common(
        "
CREATE TABLE dictionaries (
    id {ID},
    digest {BLOB} NOT NULL UNIQUE,
    body {BLOB} NOT NULL
);
ALTER TABLE documents ADD COLUMN dictionary_id BIGINT REFERENCES dictionaries (id);
",
    ),
    // 3: documents are a host's, unique per host and digest instead of per
    // digest. Looking up a random SHA-256 in one store-wide index dirtied
    // most of that index's pages in every import batch once it outgrew the
    // page cache (a million-host import spent 40–47 % of its time there); a
    // batch's new hosts have new, ascending ids, so their documents are
    // appended. A document two hosts share is now kept once for each.
    Migration {
        postgres_before: "ALTER TABLE reports DROP CONSTRAINT reports_document_id_fkey;",
        sql: "
CREATE TABLE host_documents (
    id {ID},
    host_id BIGINT NOT NULL REFERENCES hosts (id),
    digest {BLOB} NOT NULL,
    encoding TEXT NOT NULL,
    size BIGINT NOT NULL,
    body {BLOB} NOT NULL,
    dictionary_id BIGINT REFERENCES dictionaries (id),
    UNIQUE (host_id, digest)
);
INSERT INTO host_documents (host_id, digest, encoding, size, body, dictionary_id)
    SELECT r.host_id, d.digest, d.encoding, d.size, d.body, d.dictionary_id
    FROM reports r JOIN documents d ON d.id = r.document_id
    ORDER BY r.host_id, d.digest;
UPDATE reports SET document_id = (
    SELECT n.id FROM host_documents n JOIN documents d ON d.digest = n.digest
    WHERE d.id = reports.document_id AND n.host_id = reports.host_id
);
DROP TABLE documents;
ALTER TABLE host_documents RENAME TO documents;
",
        // The names PostgreSQL gave the new table's parts follow it.
        postgres_after: "
ALTER TABLE reports ADD CONSTRAINT reports_document_id_fkey
    FOREIGN KEY (document_id) REFERENCES documents (id);
ALTER TABLE documents RENAME CONSTRAINT host_documents_pkey TO documents_pkey;
ALTER TABLE documents RENAME CONSTRAINT host_documents_host_id_digest_key
    TO documents_host_id_digest_key;
ALTER TABLE documents RENAME CONSTRAINT host_documents_host_id_fkey TO documents_host_id_fkey;
ALTER TABLE documents RENAME CONSTRAINT host_documents_dictionary_id_fkey
    TO documents_dictionary_id_fkey;
ALTER SEQUENCE host_documents_id_seq RENAME TO documents_id_seq;
",
    },
];

/// The tables of the schema, to tell a store from a foreign database.
pub(crate) const TABLES: &[&str] = &[
    "schema_version",
    "features",
    "profiles",
    "documents",
    "hosts",
    "host_groups",
    "reports",
    "guests",
    "dictionaries",
];

/// Which backend a migration is spelled for.
#[derive(Clone, Copy)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// `sql` with the words `dialect` spells its own way.
fn spell(sql: &str, dialect: Dialect) -> String {
    let (id, blob, name) = match dialect {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY", "BLOB", "TEXT"),
        Dialect::Postgres => (
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            "BYTEA",
            "TEXT COLLATE \"C\"",
        ),
    };
    sql.replace("{ID}", id)
        .replace("{BLOB}", blob)
        .replace("{NAME}", name)
}
