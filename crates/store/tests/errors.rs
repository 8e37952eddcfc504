//! Bad stores and bad servers: each a typed error with a one-line message,
//! and the store left as it was.

mod common;

use std::fs;
use std::path::Path;

use common::{report, Fixture};
use cpumodel_map::Database;
use cpumodel_store::{Filter, Location, OpenMode, Store, StoreError, SCHEMA_VERSION};

both_backends!(
    newer_schema_is_refused_unchanged,
    corrupt_rows_are_errors_not_panics
);

/// Every file of `dir` with its length and digest.
fn snapshot(dir: &Path) -> Vec<(String, usize, [u8; 32])> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = fs::read(e.path()).unwrap_or_default();
            let text: String = bytes.iter().map(|b| char::from(*b)).collect();
            (
                e.file_name().to_string_lossy().into_owned(),
                bytes.len(),
                common::sha256(&text),
            )
        })
        .collect();
    out.sort();
    out
}

fn one_line(e: &StoreError) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "{s:?}");
    s
}

fn newer_schema_is_refused_unchanged(f: &Fixture) {
    let db = Database::embedded();
    {
        let mut s = f.open();
        s.import(&db, &[report(&db, "h", &[], 1, "a", "Haswell", &[], &[])])
            .unwrap();
    }
    f.raw_sql("UPDATE schema_version SET version = 99");
    let before = f.location.path().map(|p| snapshot(p.parent().unwrap()));
    for mode in [OpenMode::CreateIfMissing, OpenMode::MustExist] {
        let e = Store::open(&f.location, mode).err().expect("refused");
        assert!(
            matches!(e, StoreError::NewerSchema { found: 99, .. }),
            "{e}"
        );
        assert_eq!(
            one_line(&e),
            format!(
                "{}: the store's schema version 99 is newer than this cpumodel's ({SCHEMA_VERSION}); use a newer cpumodel",
                f.location
            )
        );
    }
    if let Some(p) = f.location.path() {
        let after = snapshot(p.parent().unwrap());
        let names = |s: &[(String, usize, [u8; 32])]| {
            s.iter().map(|f| (f.0.clone(), f.1)).collect::<Vec<_>>()
        };
        assert_eq!(names(&after), names(before.as_ref().unwrap()));
        assert_eq!(Some(after), before);
    }
    if let Some(mut c) = f.pg_client() {
        let v: i64 = c
            .query_one("SELECT version FROM schema_version", &[])
            .unwrap()
            .get(0);
        assert_eq!(v, 99);
    }
}

fn corrupt_rows_are_errors_not_panics(f: &Fixture) {
    let db = Database::embedded();
    let mut s = f.open();
    s.import(
        &db,
        &[report(&db, "h", &["g"], 1, "a", "Haswell", &[], &[])],
    )
    .unwrap();
    let bytes = if f.is_postgres() {
        "'\\xffffffffffffffffffffffff'::bytea"
    } else {
        "X'FFFFFFFFFFFFFFFFFFFFFFFF'"
    };
    f.raw_sql(&format!("UPDATE profiles SET features = {bytes}"));
    let e = s.profile_counts(&db, &Filter::all(), 1).unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    assert!(one_line(&e).contains("is not in the feature table"), "{e}");
    assert!(s.current_hosts(&db, &Filter::all()).is_err());
    // Host rows still read: they need no feature set.
    assert_eq!(s.hosts(&Filter::all()).unwrap().len(), 1);

    let garbage = if f.is_postgres() {
        "'\\x00010203'::bytea"
    } else {
        "X'00010203'"
    };
    f.raw_sql(&format!("UPDATE documents SET body = {garbage}"));
    let e = s.current_documents(&Filter::all()).unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    assert!(one_line(&e).contains("the document of host \"h\""), "{e}");

    f.raw_sql("UPDATE reports SET view = 'sideways'");
    let e = s.history(&db, "h").unwrap_err();
    assert_eq!(
        one_line(&e),
        format!("{}: corrupt store: unknown view \"sideways\"", f.location)
    );

    f.raw_sql("UPDATE hosts SET current_profile = 12345");
    let e = s.current_hosts(&db, &Filter::all()).unwrap_err();
    assert!(
        one_line(&e).contains("profile 12345, which does not exist"),
        "{e}"
    );
}

#[test]
fn a_missing_file_is_an_error_for_queries_and_created_for_imports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/fleet.sqlite");
    let e = Store::open(&Location::Sqlite(path.clone()), OpenMode::MustExist)
        .err()
        .unwrap();
    assert_eq!(
        one_line(&e),
        format!("{}: no such fleet store", path.display())
    );
    assert!(!dir.path().join("a").exists());
    Store::open(&Location::Sqlite(path.clone()), OpenMode::CreateIfMissing).unwrap();
    Store::open(&Location::Sqlite(path), OpenMode::MustExist).unwrap();
}

#[test]
fn a_file_that_is_not_sqlite_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut page = b"SQLite format 3\0".to_vec();
    page.extend(std::iter::repeat_n(0xa5u8, 8192));
    for (name, bytes) in [
        ("text.sqlite", b"<cpu mode='host-passthrough'/>\n".to_vec()),
        ("short.sqlite", b"SQLite".to_vec()),
        ("damaged.sqlite", page),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, &bytes).unwrap();
        for mode in [OpenMode::CreateIfMissing, OpenMode::MustExist] {
            let e = Store::open(&Location::Sqlite(path.clone()), mode)
                .err()
                .expect(name);
            assert!(
                matches!(e, StoreError::NotSqlite { .. } | StoreError::Corrupt { .. }),
                "{name}: {e}"
            );
            if name != "damaged.sqlite" {
                assert_eq!(
                    one_line(&e),
                    format!("{}: not an SQLite database", path.display())
                );
            }
            assert_eq!(fs::read(&path).unwrap(), bytes, "{name}");
        }
    }
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        3,
        "no -wal or -shm files"
    );
    let e = Store::open(
        &Location::Sqlite(dir.path().to_owned()),
        OpenMode::CreateIfMissing,
    )
    .err()
    .unwrap();
    assert!(matches!(e, StoreError::NotSqlite { .. }));
}

#[test]
fn another_programs_database_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let before = snapshot(dir.path());
    for mode in [OpenMode::CreateIfMissing, OpenMode::MustExist] {
        let e = Store::open(&Location::Sqlite(path.clone()), mode)
            .err()
            .unwrap();
        assert_eq!(
            one_line(&e),
            format!(
                "{}: not a cpumodel fleet store (it has a table \"t\" but no schema_version)",
                path.display()
            )
        );
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn an_empty_file_becomes_a_store_only_on_import() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.sqlite");
    fs::write(&path, b"").unwrap();
    let e = Store::open(&Location::Sqlite(path.clone()), OpenMode::MustExist)
        .err()
        .unwrap();
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
    assert_eq!(fs::read(&path).unwrap(), b"");
    Store::open(&Location::Sqlite(path.clone()), OpenMode::CreateIfMissing).unwrap();
    Store::open(&Location::Sqlite(path), OpenMode::MustExist).unwrap();
}

#[test]
fn an_unreachable_server_is_named_without_its_password() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("postgres://fleet:s3cret@127.0.0.1:{port}/fleet");
    let e = Store::open(&Location::parse(&url), OpenMode::MustExist)
        .err()
        .unwrap();
    assert!(matches!(e, StoreError::Unreachable { .. }), "{e}");
    assert_eq!(
        one_line(&e),
        format!("postgres://fleet:***@127.0.0.1:{port}/fleet: cannot reach PostgreSQL: Connection refused (os error 111)")
    );
}

#[test]
fn a_bad_url_is_named_without_its_password() {
    let e = Store::open(
        &Location::parse("postgres://u:s3cret@h:notaport/db"),
        OpenMode::MustExist,
    )
    .err()
    .unwrap();
    assert!(matches!(e, StoreError::BadUrl { .. }), "{e}");
    let s = one_line(&e);
    assert!(
        s.starts_with("postgres://u:***@h:notaport/db: not a valid PostgreSQL URL: "),
        "{s}"
    );
    assert!(!s.contains("s3cret"));
}

#[test]
fn a_wrong_password_and_a_missing_database_are_named() {
    let Some(f) = common::postgres() else { return };
    let url = f.pg_url("cpumodel_test", "wrong", "postgres").unwrap();
    let e = Store::open(&Location::parse(&url), OpenMode::MustExist)
        .err()
        .unwrap();
    let redacted = url.replace(":wrong@", ":***@");
    assert_eq!(
        one_line(&e),
        format!("{redacted}: PostgreSQL refused the login of user \"cpumodel_test\": password authentication failed for user \"cpumodel_test\"")
    );
    let url = f
        .pg_url("cpumodel_test", "cpumodel_test", "no_such_database")
        .unwrap();
    let e = Store::open(&Location::parse(&url), OpenMode::MustExist)
        .err()
        .unwrap();
    assert_eq!(
        one_line(&e),
        format!(
            "{}: PostgreSQL has no database \"no_such_database\"",
            url.replace(":cpumodel_test@", ":***@")
        )
    );
    // An empty database is not a store for queries, and becomes one on import.
    let e = Store::open(&f.location, OpenMode::MustExist).err().unwrap();
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
    f.open();
    f.open_existing();
}
