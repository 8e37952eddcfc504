//! What the store's tests share: a fresh store on either backend, and
//! synthetic reports.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use cpumodel_map::{Database, FeatureSet};
use cpumodel_store::{Location, NewReport, OpenMode, Profile, Store, View};
use cpumodel_testenv::{unavailable, Need};
use sha2::{Digest, Sha256};

/// The environment variable with the URL of a PostgreSQL server the tests
/// may create databases on (`scripts/start-postgres.sh` prints it).
pub const PG_VAR: &str = "CPUMODEL_TEST_POSTGRES";

/// A fresh, empty store location, removed when dropped.
pub struct Fixture {
    pub location: Location,
    _dir: Option<tempfile::TempDir>,
    pg: Option<PgDatabase>,
}

impl Fixture {
    /// Opens (creating) the store.
    pub fn open(&self) -> Store {
        Store::open(&self.location, OpenMode::CreateIfMissing)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.location))
    }

    /// Opens the store for queries.
    pub fn open_existing(&self) -> Store {
        Store::open(&self.location, OpenMode::MustExist)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.location))
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// The server URL with another user, password or database.
    pub fn pg_url(&self, user: &str, password: &str, database: &str) -> Option<String> {
        let admin = std::env::var(PG_VAR).ok()?;
        let (_, rest) = admin.split_once("://")?;
        let at = rest.rfind('@')?;
        let host_end = rest[at..].find('/').map_or(rest.len(), |i| at + i);
        let host = &rest[at + 1..host_end];
        Some(format!("postgres://{user}:{password}@{host}/{database}"))
    }

    /// Runs `sql` on the store's database directly, behind the store's back.
    pub fn raw_sql(&self, sql: &str) {
        match &self.location {
            Location::Sqlite(path) => rusqlite::Connection::open(path)
                .and_then(|c| c.execute_batch(sql))
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Location::Postgres(_) => self
                .pg_client()
                .expect("client")
                .batch_execute(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// A direct client for the test database (PostgreSQL only).
    pub fn pg_client(&self) -> Option<postgres::Client> {
        let pg = self.pg.as_ref()?;
        Some(postgres::Client::connect(&pg.url, postgres::NoTls).expect("connect"))
    }
}

/// A store in a new temporary directory.
pub fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    Fixture {
        location: Location::Sqlite(dir.path().join("fleet.sqlite")),
        _dir: Some(dir),
        pg: None,
    }
}

/// A store in a new database of the test server, or `None` (after a
/// `skipped:` line) when there is no server.
pub fn postgres() -> Option<Fixture> {
    let Ok(admin) = std::env::var(PG_VAR) else {
        unavailable(Need::Postgres, format!("{PG_VAR} is not set"));
        return None;
    };
    let db = PgDatabase::create(&admin);
    Some(Fixture {
        location: Location::Postgres(db.url.clone()),
        _dir: None,
        pg: Some(db),
    })
}

/// A database created on the test server for one test and dropped after.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl PgDatabase {
    fn create(admin: &str) -> PgDatabase {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "cpumodel_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut c = postgres::Client::connect(admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{PG_VAR}={admin}: {e}"));
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let url = with_database(admin, &name);
        PgDatabase {
            admin: admin.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// `url` naming database `name`.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let at = rest.rfind('@').map_or(0, |i| i + 1);
    let path = rest[at..].find(['/', '?']).map_or(rest.len(), |i| at + i);
    let query = rest[path..].find('?').map_or("", |i| &rest[path + i..]);
    format!("{scheme}://{}/{name}{query}", &rest[..path])
}

/// Runs each named test function (taking `&Fixture`) on SQLite and, when a
/// server is given, on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&$crate::common::sqlite()); })*
        }
        mod postgres {
            $(#[test] fn $name() {
                if let Some(f) = $crate::common::postgres() { super::$name(&f); }
            })*
        }
    };
}

/// SHA-256 of `text`.
pub fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// A report of `host` at `time_us` with a document made of `tag` (the same
/// tag, the same document), decoded as `model` of the embedded database
/// minus `minus` and plus `plus` features.
#[allow(clippy::too_many_arguments)]
pub fn report(
    db: &Database,
    host: &str,
    groups: &[&str],
    time_us: i64,
    tag: &str,
    model: &str,
    minus: &[&str],
    plus: &[&str],
) -> NewReport {
    let id = db.find_model(model).expect("model");
    let m = db.model(id);
    let mut features: FeatureSet = m.features;
    for f in minus {
        features.remove(db.find_feature_exact(f).expect("feature"));
    }
    for f in plus {
        features.insert(db.find_feature_exact(f).expect("feature"));
    }
    let document = format!("<cpu><!-- {host} {tag} --><model>{model}</model></cpu>");
    NewReport {
        host: host.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        time_us,
        source: format!("{host}-{tag}.xml"),
        view: View::HostCpu,
        digest: sha256(&document),
        document: cpumodel_store::Document::Text(document),
        profile: Profile {
            vendor: m.vendor,
            model: Some(id),
            features,
        },
    }
}
