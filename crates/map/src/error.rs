//! Errors of the model database.

use std::fmt;
use std::path::PathBuf;

use cpumodel_xml::XmlError;

/// What kind of name was not found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// A CPU feature name.
    Feature,
    /// A CPU model name.
    Model,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Feature => "CPU feature",
            NameKind::Model => "CPU model",
        })
    }
}

/// A model or feature name the database does not define.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct UnknownName {
    /// Feature or model.
    pub kind: NameKind,
    /// The name as given.
    pub name: String,
    /// The closest known names, best first.
    pub suggestions: Vec<String>,
    /// Why a name that means something elsewhere is not a feature here (a
    /// Linux flag that is no CPUID bit of the map).
    pub note: Option<String>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.len() > crate::suggest::MAX_SUGGEST_LEN {
            // Quote a prefix only: the message stays short whatever was given.
            let mut end = 64;
            while !self.name.is_char_boundary(end) {
                end -= 1;
            }
            return write!(
                f,
                "unknown {} '{}...' ({} bytes; no suggestions for names over {} bytes)",
                self.kind,
                &self.name[..end],
                self.name.len(),
                crate::suggest::MAX_SUGGEST_LEN
            );
        }
        write!(f, "unknown {} '{}'", self.kind, self.name)?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        if !self.suggestions.is_empty() {
            let list: Vec<String> = self.suggestions.iter().map(|s| format!("'{s}'")).collect();
            write!(f, "; did you mean {}?", list.join(", "))?;
        }
        Ok(())
    }
}

/// Loading a libvirt cpu_map directory failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadMapError {
    /// A file could not be read.
    #[error("{}: cannot read CPU map file: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file is malformed or refers to something undefined.
    #[error(transparent)]
    Xml(#[from] XmlError),
}
