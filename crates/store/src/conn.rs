//! The two backends behind one small interface: run a statement with
//! parameters, read rows, take a transaction. Everything above it (the
//! import and the queries) is written once.
//!
//! Statements are written with PostgreSQL's `$1` placeholders; SQLite reads
//! them as `?1`. Both backends keep prepared statements per connection.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use rusqlite::{ErrorCode, OpenFlags};

use crate::error::one_line;
use crate::schema::{Dialect, MIGRATIONS, SCHEMA_VERSION, TABLES};
use crate::{OpenMode, StoreError};

/// How long an SQLite writer waits for another one before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a PostgreSQL connection attempt may take, unless the URL says.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Taken by the migration transaction on PostgreSQL, so that two processes
/// opening a new store do not both create it.
const MIGRATION_LOCK: i64 = 0x6370_756d_6f64_656c; // "cpumodel"

/// A statement parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    I64(i64),
    OptI64(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Blob(&'a [u8]),
}

impl Value<'_> {
    /// The PostgreSQL type of the value, for a parameter whose type the
    /// server cannot infer (a `VALUES` list).
    pub(crate) fn pg_type(&self) -> &'static str {
        match self {
            Value::I64(_) | Value::OptI64(_) => "BIGINT",
            Value::Text(_) | Value::OptText(_) => "TEXT",
            Value::Blob(_) => "BYTEA",
        }
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Value::I64(v) => v.to_sql(),
            Value::OptI64(v) => v.to_sql(),
            Value::Text(v) => v.to_sql(),
            Value::OptText(v) => v.to_sql(),
            Value::Blob(v) => v.to_sql(),
        }
    }
}

fn pg_param<'b>(v: &'b Value<'_>) -> &'b (dyn postgres::types::ToSql + Sync) {
    match v {
        Value::I64(v) => v,
        Value::OptI64(v) => v,
        Value::Text(v) => v,
        Value::OptText(v) => v,
        Value::Blob(v) => v,
    }
}

/// One result row.
pub(crate) struct Row<'r> {
    inner: RowInner<'r>,
    location: &'r str,
}

enum RowInner<'r> {
    Lite(&'r rusqlite::Row<'r>),
    Pg(&'r postgres::Row),
}

impl Row<'_> {
    fn get<T>(&self, i: usize) -> Result<T, StoreError>
    where
        T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>,
    {
        let r = match &self.inner {
            RowInner::Lite(r) => r.get::<_, T>(i).map_err(|e| e.to_string()),
            RowInner::Pg(r) => r.try_get::<_, T>(i).map_err(|e| e.to_string()),
        };
        r.map_err(|e| StoreError::Corrupt {
            location: self.location.to_owned(),
            what: format!("column {i}: {}", one_line(&e)),
        })
    }

    /// The store's location, redacted, for error messages.
    pub(crate) fn location(&self) -> &str {
        self.location
    }

    pub(crate) fn i64(&self, i: usize) -> Result<i64, StoreError> {
        self.get(i)
    }

    pub(crate) fn opt_i64(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get(i)
    }

    pub(crate) fn text(&self, i: usize) -> Result<String, StoreError> {
        self.get(i)
    }

    /// A text column, borrowed from the row: no allocation.
    pub(crate) fn str(&self, i: usize) -> Result<&str, StoreError> {
        let r = match &self.inner {
            RowInner::Lite(r) => r
                .get_ref(i)
                .map_err(|e| e.to_string())
                .and_then(|v| v.as_str().map_err(|e| e.to_string())),
            RowInner::Pg(r) => r.try_get::<_, &str>(i).map_err(|e| e.to_string()),
        };
        r.map_err(|e| StoreError::Corrupt {
            location: self.location.to_owned(),
            what: format!("column {i}: {}", one_line(&e)),
        })
    }

    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.get(i)
    }

    pub(crate) fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.get(i)
    }

    pub(crate) fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(i)
    }
}

/// A connection to either backend.
pub(crate) struct Conn {
    kind: Kind,
    /// The location as error messages show it (redacted).
    pub(crate) location: String,
}

enum Kind {
    Lite {
        conn: rusqlite::Connection,
        path: PathBuf,
    },
    Pg {
        client: Box<postgres::Client>,
        statements: HashMap<String, postgres::Statement>,
    },
}

/// `sql` with `$N` placeholders spelled `?N` for SQLite.
fn lite_sql(sql: &str) -> String {
    let mut bytes = sql.as_bytes().to_vec();
    for i in 1..bytes.len() {
        if bytes[i - 1] == b'$' && bytes[i].is_ascii_digit() {
            bytes[i - 1] = b'?';
        }
    }
    // Only ASCII bytes were replaced by ASCII bytes.
    String::from_utf8(bytes).unwrap_or_else(|_| sql.to_owned())
}

impl Conn {
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.kind, Kind::Pg { .. })
    }

    fn lite_error(location: &str, path: &Path, e: &rusqlite::Error) -> StoreError {
        if let rusqlite::Error::SqliteFailure(f, msg) = e {
            match f.code {
                ErrorCode::NotADatabase => {
                    return StoreError::NotSqlite {
                        path: path.to_owned(),
                    }
                }
                ErrorCode::DatabaseCorrupt => {
                    return StoreError::Corrupt {
                        location: location.to_owned(),
                        what: one_line(
                            msg.as_deref().unwrap_or("database disk image is malformed"),
                        ),
                    }
                }
                _ => {}
            }
        }
        StoreError::Backend {
            location: location.to_owned(),
            message: one_line(&e.to_string()),
            code: None,
        }
    }

    fn pg_error(location: &str, e: &postgres::Error) -> StoreError {
        match e.as_db_error() {
            Some(db) => StoreError::Backend {
                location: location.to_owned(),
                message: one_line(db.message()),
                code: Some(db.code().code().to_owned()),
            },
            None => StoreError::Backend {
                location: location.to_owned(),
                message: one_line(&innermost(e)),
                code: None,
            },
        }
    }

    /// The error for a backend failure.
    fn error(&self, e: BackendError<'_>) -> StoreError {
        match (e, &self.kind) {
            (BackendError::Lite(e), Kind::Lite { path, .. }) => {
                Self::lite_error(&self.location, path, e)
            }
            (BackendError::Lite(e), Kind::Pg { .. }) => StoreError::Backend {
                location: self.location.clone(),
                message: e.to_string(),
                code: None,
            },
            (BackendError::Pg(e), _) => Self::pg_error(&self.location, e),
        }
    }

    /// Runs statements without parameters or results (DDL, transaction
    /// control).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let r = match &mut self.kind {
            Kind::Lite { conn, .. } => conn.execute_batch(sql).map_err(BackendErrorOwned::Lite),
            Kind::Pg { client, .. } => client.batch_execute(sql).map_err(BackendErrorOwned::Pg),
        };
        r.map_err(|e| self.error(e.as_ref()))
    }

    /// Runs one statement; the number of rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64, StoreError> {
        let r = match &mut self.kind {
            Kind::Lite { conn, .. } => conn
                .prepare_cached(&lite_sql(sql))
                .and_then(|mut s| s.execute(rusqlite::params_from_iter(params.iter())))
                .map(|n| n as u64)
                .map_err(BackendErrorOwned::Lite),
            Kind::Pg { client, statements } => {
                let params: Vec<_> = params.iter().map(pg_param).collect();
                pg_statement(client, statements, sql)
                    .and_then(|s| client.execute(&s, &params))
                    .map_err(BackendErrorOwned::Pg)
            }
        };
        r.map_err(|e| self.error(e.as_ref()))
    }

    /// Runs a query, calling `f` for each row.
    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let Conn { kind, location } = self;
        let mut failed: Option<StoreError> = None;
        let r = match kind {
            Kind::Lite { conn, .. } => (|| {
                let mut s = conn.prepare_cached(&lite_sql(sql))?;
                let mut rows = s.query(rusqlite::params_from_iter(params.iter()))?;
                while let Some(r) = rows.next()? {
                    let row = Row {
                        inner: RowInner::Lite(r),
                        location,
                    };
                    if let Err(e) = f(&row) {
                        failed = Some(e);
                        break;
                    }
                }
                Ok(())
            })()
            .map_err(BackendErrorOwned::Lite),
            Kind::Pg { client, statements } => (|| {
                let s = pg_statement(client, statements, sql)?;
                let mut rows = client.query_raw(&s, params.iter().map(pg_param))?;
                while let Some(r) = rows.next()? {
                    let row = Row {
                        inner: RowInner::Pg(&r),
                        location,
                    };
                    if let Err(e) = f(&row) {
                        failed = Some(e);
                        break;
                    }
                }
                Ok(())
            })()
            .map_err(BackendErrorOwned::Pg),
        };
        if let Some(e) = failed {
            return Err(e);
        }
        r.map_err(|e| self.error(e.as_ref()))
    }

    /// The first row of a query, read by `f`.
    pub(crate) fn query_one<T>(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut f = Some(f);
        let mut out = None;
        self.query(sql, params, |row| {
            if let Some(f) = f.take() {
                out = Some(f(row)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Starts a write transaction: on SQLite `BEGIN IMMEDIATE` takes the
    /// write lock now (waiting up to the busy timeout for another writer),
    /// so the transaction never fails half-way for a lock.
    pub(crate) fn begin_write(&mut self) -> Result<(), StoreError> {
        match self.kind {
            Kind::Lite { .. } => self.batch("BEGIN IMMEDIATE"),
            Kind::Pg { .. } => self.batch("BEGIN"),
        }
    }

    /// Starts a read transaction: one snapshot for every statement of a
    /// query, whatever importers commit meanwhile.
    pub(crate) fn begin_read(&mut self) -> Result<(), StoreError> {
        match self.kind {
            Kind::Lite { .. } => self.batch("BEGIN"),
            Kind::Pg { .. } => self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
        }
    }

    pub(crate) fn commit(&mut self) -> Result<(), StoreError> {
        self.batch("COMMIT")
    }

    /// Rolls back; errors are ignored (the transaction may already be gone
    /// with the connection).
    pub(crate) fn rollback(&mut self) {
        let _ = self.batch("ROLLBACK");
    }

    /// Runs `f` inside a read transaction.
    pub(crate) fn read<T>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.begin_read()?;
        match f(self) {
            Ok(v) => {
                self.commit()?;
                Ok(v)
            }
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// The tables of the database (of the current schema on PostgreSQL).
    fn tables(&mut self) -> Result<Vec<String>, StoreError> {
        let sql = match self.kind {
            Kind::Lite { .. } => "SELECT name FROM sqlite_master WHERE type = 'table'",
            Kind::Pg { .. } => {
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()"
            }
        };
        let mut out = Vec::new();
        self.query(sql, &[], |r| {
            out.push(r.text(0)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The store's schema version: `None` when the database holds no store.
    ///
    /// # Errors
    /// [`StoreError::NotAStore`] when it holds tables but no store.
    fn schema_version(&mut self) -> Result<Option<i64>, StoreError> {
        let tables = self.tables()?;
        if tables.iter().any(|t| t == "schema_version") {
            let v = self.query_one("SELECT MAX(version) FROM schema_version", &[], |r| {
                r.opt_i64(0)
            })?;
            return Ok(Some(v.flatten().unwrap_or(0)));
        }
        // A PostgreSQL database may hold other programs' tables beside a
        // store; an SQLite file is one program's.
        let foreign: Vec<&String> = match self.kind {
            Kind::Lite { .. } => tables
                .iter()
                .filter(|t| !t.starts_with("sqlite_"))
                .collect(),
            Kind::Pg { .. } => tables
                .iter()
                .filter(|t| TABLES.contains(&t.as_str()))
                .collect(),
        };
        if let Some(t) = foreign.first() {
            return Err(StoreError::NotAStore {
                location: self.location.clone(),
                why: format!("it has a table {t:?} but no schema_version"),
            });
        }
        Ok(None)
    }

    /// Brings the schema to [`SCHEMA_VERSION`], in one transaction; changes
    /// nothing when the store is newer, or holds no store and `mode` is
    /// [`OpenMode::MustExist`].
    pub(crate) fn migrate(&mut self, mode: OpenMode) -> Result<(), StoreError> {
        // The common case reads only: the store is current.
        if self.checked_version(mode)? == SCHEMA_VERSION {
            return Ok(());
        }
        // SQLite rebuilds a table by creating its successor, copying, and
        // dropping the old one, which its foreign keys would refuse: they
        // are off for the migration (a pragma that only works outside a
        // transaction) and checked whole before the commit.
        let lite = matches!(self.kind, Kind::Lite { .. });
        if lite {
            self.batch("PRAGMA foreign_keys = OFF")?;
        }
        self.begin_write()?;
        let r = self.migrate_in_transaction(mode).and_then(|()| {
            if lite {
                self.check_foreign_keys()?;
            }
            self.commit()
        });
        if r.is_err() {
            self.rollback();
        }
        if lite {
            let on = self.batch("PRAGMA foreign_keys = ON");
            return r.and(on);
        }
        r
    }

    /// Fails when a row of an SQLite store points to no row.
    fn check_foreign_keys(&mut self) -> Result<(), StoreError> {
        let mut broken = None;
        self.query("PRAGMA foreign_key_check", &[], |r| {
            broken.get_or_insert(format!(
                "a row of {} points to no row of {}",
                r.text(0)?,
                r.text(2)?
            ));
            Ok(())
        })?;
        match broken {
            Some(what) => Err(StoreError::Corrupt {
                location: self.location.clone(),
                what,
            }),
            None => Ok(()),
        }
    }

    fn checked_version(&mut self, mode: OpenMode) -> Result<i64, StoreError> {
        match self.schema_version()? {
            Some(v) if v > SCHEMA_VERSION => Err(StoreError::NewerSchema {
                location: self.location.clone(),
                found: v,
                known: SCHEMA_VERSION,
            }),
            Some(v) => Ok(v),
            None if mode == OpenMode::MustExist => Err(StoreError::NotAStore {
                location: self.location.clone(),
                why: "it is empty; an import creates the store".into(),
            }),
            None => Ok(-1),
        }
    }

    fn migrate_in_transaction(&mut self, mode: OpenMode) -> Result<(), StoreError> {
        let dialect = match self.kind {
            Kind::Lite { .. } => Dialect::Sqlite,
            Kind::Pg { .. } => {
                self.execute(
                    "SELECT pg_advisory_xact_lock($1)",
                    &[Value::I64(MIGRATION_LOCK)],
                )?;
                Dialect::Postgres
            }
        };
        // Again under the lock: another process may have migrated.
        let mut version = self.checked_version(mode)?;
        if version < 0 {
            self.batch("CREATE TABLE schema_version (version BIGINT NOT NULL)")?;
            self.batch("INSERT INTO schema_version (version) VALUES (0)")?;
            version = 0;
        }
        // cast: 0 <= version < SCHEMA_VERSION, a small number.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        for migration in &MIGRATIONS[version as usize..] {
            self.batch(&migration.spelled(dialect))?;
        }
        self.execute(
            "UPDATE schema_version SET version = $1",
            &[Value::I64(SCHEMA_VERSION)],
        )?;
        Ok(())
    }
}

fn pg_statement(
    client: &mut postgres::Client,
    statements: &mut HashMap<String, postgres::Statement>,
    sql: &str,
) -> Result<postgres::Statement, postgres::Error> {
    if let Some(s) = statements.get(sql) {
        return Ok(s.clone());
    }
    let s = client.prepare(sql)?;
    statements.insert(sql.to_owned(), s.clone());
    Ok(s)
}

enum BackendError<'e> {
    Lite(&'e rusqlite::Error),
    Pg(&'e postgres::Error),
}

enum BackendErrorOwned {
    Lite(rusqlite::Error),
    Pg(postgres::Error),
}

impl BackendErrorOwned {
    fn as_ref(&self) -> BackendError<'_> {
        match self {
            BackendErrorOwned::Lite(e) => BackendError::Lite(e),
            BackendErrorOwned::Pg(e) => BackendError::Pg(e),
        }
    }
}

/// The message of the innermost cause of `e`.
fn innermost(e: &dyn std::error::Error) -> String {
    let mut e = e;
    while let Some(s) = e.source() {
        e = s;
    }
    e.to_string()
}

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Opens an SQLite store, checking before anything is written that the file
/// is an SQLite database holding a store this build can read.
pub(crate) fn open_sqlite(path: &Path, mode: OpenMode) -> Result<Conn, StoreError> {
    let location = path.display().to_string();
    let other = |e: &std::io::Error| StoreError::Backend {
        location: location.clone(),
        message: one_line(&e.to_string()),
        code: None,
    };
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(StoreError::NotSqlite {
                path: path.to_owned(),
            })
        }
        Ok(m) if m.len() == 0 => {
            // SQLite takes an empty file for an empty database.
            if mode == OpenMode::MustExist {
                return Err(StoreError::NotAStore {
                    location,
                    why: "the file is empty; an import creates the store".into(),
                });
            }
        }
        Ok(_) => {
            let mut header = [0u8; 16];
            let mut f = fs::File::open(path).map_err(|e| other(&e))?;
            let n = read_up_to(&mut f, &mut header).map_err(|e| other(&e))?;
            if n < header.len() || &header != SQLITE_MAGIC {
                return Err(StoreError::NotSqlite {
                    path: path.to_owned(),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if mode == OpenMode::MustExist {
                return Err(StoreError::Missing {
                    path: path.to_owned(),
                });
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir).map_err(|e| StoreError::Create {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
            }
        }
        Err(e) => return Err(other(&e)),
    }
    // Created only when missing: an existing file is opened without
    // SQLITE_OPEN_CREATE.
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if !path.exists() {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(|e| {
        match Conn::lite_error(&location, path, &e) {
            StoreError::Backend { message, .. } => StoreError::Create {
                path: path.to_owned(),
                reason: message,
            },
            e => e,
        }
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| Conn::lite_error(&location, path, &e))?;
    let mut conn = Conn {
        kind: Kind::Lite {
            conn,
            path: path.to_owned(),
        },
        location,
    };
    // Read before anything is written (not even the switch to WAL): a
    // damaged file, another program's database or a newer store is refused
    // as it was. A connection that only reads leaves no files behind, where
    // a read-only one would leave `-wal` and `-shm` files beside a WAL
    // database.
    conn.checked_version(mode)?;
    if let Kind::Lite { conn: lite, path } = &conn.kind {
        sqlite_setup(lite).map_err(|e| Conn::lite_error(&conn.location, path, &e))?;
    }
    conn.migrate(mode)?;
    Ok(conn)
}

/// WAL (readers never wait for the writer; a commit is one append),
/// `synchronous = NORMAL` (durable across process crashes; the WAL is
/// synced at checkpoints), foreign keys checked, a 16 MiB page cache (a
/// larger one made no query faster and held an import of 1,000,000 hosts
/// above 256 MiB).
fn sqlite_setup(lite: &rusqlite::Connection) -> rusqlite::Result<()> {
    let mode: String = lite.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        switch_to_wal(lite)?;
    }
    lite.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;",
    )?;
    lite.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Switches a new store to WAL. The switch needs the database to itself,
/// and SQLite answers "busy" at once, without calling the busy handler,
/// while another connection has it open: importers creating one store
/// together do. The switch is retried for as long as the busy timeout.
fn switch_to_wal(lite: &rusqlite::Connection) -> rusqlite::Result<()> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match lite.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && start.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

fn read_up_to(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Connects to a PostgreSQL store, telling an unreachable server, a refused
/// login and a missing database apart.
pub(crate) fn open_postgres(url: &str, mode: OpenMode) -> Result<Conn, StoreError> {
    let location = crate::location::redact(url);
    let mut config: postgres::Config =
        url.parse()
            .map_err(|e: postgres::Error| StoreError::BadUrl {
                location: location.clone(),
                reason: one_line(&innermost(&e)),
            })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_user().is_none() {
        // libpq's default: the operating system user.
        let user = std::env::var("USER").unwrap_or_else(|_| "postgres".into());
        config.user(&user);
    }
    let user = config.get_user().unwrap_or_default().to_owned();
    let database = config.get_dbname().unwrap_or(&user).to_owned();
    let client = config
        .connect(postgres::NoTls)
        .map_err(|e| match e.as_db_error() {
            Some(db)
                if *db.code() == SqlState::INVALID_PASSWORD
                    || *db.code() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
            {
                StoreError::Auth {
                    location: location.clone(),
                    user: user.clone(),
                    reason: one_line(db.message()),
                }
            }
            Some(db) if *db.code() == SqlState::INVALID_CATALOG_NAME => StoreError::NoDatabase {
                location: location.clone(),
                database: database.clone(),
            },
            Some(_) => Conn::pg_error(&location, &e),
            None => StoreError::Unreachable {
                location: location.clone(),
                reason: one_line(&innermost(&e)),
            },
        })?;
    let mut conn = Conn {
        kind: Kind::Pg {
            client: Box::new(client),
            statements: HashMap::new(),
        },
        location,
    };
    conn.migrate(mode)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_spelled_for_sqlite() {
        assert_eq!(
            super::lite_sql("a = $1 AND b = $12, '$x' $"),
            "a = ?1 AND b = ?12, '$x' $"
        );
    }
}
