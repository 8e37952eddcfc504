//! Where a store lives.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// The environment variable naming the default store (a file path or a
/// `postgres://` URL).
pub const DB_ENV_VAR: &str = "CPUMODEL_FLEET_DB";

/// Where a store lives: an SQLite file, or a PostgreSQL server.
///
/// `Display` shows the path, or the URL with its password replaced by
/// `***`, so that every error message can name the store safely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://user:password@host:port/db`).
    Postgres(String),
}

impl Location {
    /// `postgres://…` and `postgresql://…` are PostgreSQL URLs; anything
    /// else is an SQLite file path.
    pub fn parse(text: &str) -> Location {
        let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Location::Postgres(text.to_owned())
        } else {
            Location::Sqlite(PathBuf::from(text))
        }
    }

    /// The default store: [`DB_ENV_VAR`] when set and not empty, else
    /// `$XDG_DATA_HOME/cpumodel/fleet.sqlite`, else
    /// `~/.local/share/cpumodel/fleet.sqlite` (the platform's data
    /// directory elsewhere).
    ///
    /// # Errors
    /// [`StoreError::NoDefaultLocation`] when none of these is known.
    pub fn from_env_or_default() -> Result<Location, StoreError> {
        if let Some(v) = std::env::var_os(DB_ENV_VAR).filter(|v| !v.is_empty()) {
            return Ok(match v.to_str() {
                Some(s) => Location::parse(s),
                None => Location::Sqlite(PathBuf::from(v)),
            });
        }
        Self::default_file().map(Location::Sqlite)
    }

    /// The default SQLite file, ignoring [`DB_ENV_VAR`].
    ///
    /// # Errors
    /// [`StoreError::NoDefaultLocation`] when the data directory is unknown.
    pub fn default_file() -> Result<PathBuf, StoreError> {
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(dirs::data_dir)
            .ok_or(StoreError::NoDefaultLocation)?;
        Ok(data.join("cpumodel").join("fleet.sqlite"))
    }

    /// The SQLite path, when this is a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// `url` with the password of its user part and any `password=` parameter
/// replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***{host}"),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_the_rest_are_files() {
        assert_eq!(
            Location::parse("postgres://h/db"),
            Location::Postgres("postgres://h/db".into())
        );
        assert_eq!(
            Location::parse("PostgreSQL://h/db"),
            Location::Postgres("PostgreSQL://h/db".into())
        );
        assert_eq!(
            Location::parse("fleet.sqlite"),
            Location::Sqlite("fleet.sqlite".into())
        );
        assert_eq!(Location::parse("p"), Location::Sqlite("p".into()));
    }

    #[test]
    fn passwords_never_show() {
        let l = Location::parse("postgres://u:s3cret@h:5432/db?password=s3cret&sslmode=disable");
        assert_eq!(
            l.to_string(),
            "postgres://u:***@h:5432/db?password=***&sslmode=disable"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h"), "postgres://h");
        assert_eq!(redact("postgres://u:p:q@w@h/x"), "postgres://u:***@h/x");
    }
}
