//! `--names`: the vocabulary feature names are printed in, and the notes a
//! decode from a partial source (`/proc/cpuinfo`, `lscpu`, a Firecracker
//! template) carries about what that source could not show.
//!
//! Names are chosen at the last moment, when a document is printed: every
//! computation works on libvirt's names, and `--names linux` only changes
//! the spelling of each feature Linux's `/proc/cpuinfo` has a name for
//! (joined by CPUID bit, see `cpumodel_map::Database::linux_name`).

use clap::ValueEnum;
use cpumodel_cpudef::{CpuDef, CpuDocument, CpuFeatures, Decoded, PartialSource};
use cpumodel_map::{Database, PsabiTable};
use serde::Serialize;

use crate::error::CliError;
use crate::shared::{comment_safe, json_text, Output, XmlFormat};

/// The vocabularies feature names can be printed in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Names {
    /// libvirt's names (`tsc-deadline`).
    #[default]
    Libvirt,
    /// Linux's /proc/cpuinfo names (`tsc_deadline_timer`); a feature Linux
    /// has no name for keeps libvirt's.
    Linux,
}

/// The `--names` flag of every command that prints feature names.
#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    /// Print feature names as libvirt spells them, or as Linux's
    /// /proc/cpuinfo does (features without a Linux name keep libvirt's).
    #[arg(long, value_enum, default_value_t = Names::Libvirt)]
    pub names: Names,
}

impl NamesArgs {
    /// The printed name of the libvirt feature `name` (unchanged when it is
    /// no feature of `db`).
    pub fn name(&self, db: &Database, name: &str) -> String {
        match (self.names, db.find_feature_exact(name)) {
            (Names::Linux, Some(id)) => db.display_name(id, true).to_string(),
            _ => name.to_string(),
        }
    }

    /// Every name of `names` printed this way.
    pub fn names(&self, db: &Database, names: &mut [String]) {
        if self.names == Names::Linux {
            for n in names {
                *n = self.name(db, n);
            }
        }
    }

    /// The features of `cpu` renamed.
    pub fn rename(&self, db: &Database, cpu: &mut CpuDef) {
        if self.names == Names::Linux {
            for f in &mut cpu.features {
                f.name = self.name(db, &f.name);
            }
        }
    }

    /// The features of a CPU document renamed, its level's missing ones
    /// too.
    pub fn rename_document(&self, db: &Database, doc: &mut CpuDocument) {
        self.rename(db, &mut doc.cpu);
        if let Some(p) = &mut doc.psabi {
            self.names(db, &mut p.psabi_missing);
        }
    }

    /// A CPU definition as its command prints it (XML, or JSON with its
    /// x86-64 level), names in this vocabulary, with the notes of a partial
    /// source.
    ///
    /// # Errors
    /// An unknown name in `cpu` (the level is computed from it).
    pub fn render(
        &self,
        db: &Database,
        cpu: &CpuDef,
        format: XmlFormat,
        notes: Option<&PartialNotes>,
    ) -> Result<Output, CliError> {
        Ok(Output::ok(match format {
            XmlFormat::Xml => {
                let mut cpu = cpu.clone();
                self.rename(db, &mut cpu);
                let mut out = notes.map(PartialNotes::comments).unwrap_or_default();
                out.push_str(&cpu.to_xml());
                out
            }
            XmlFormat::Json => {
                let mut doc = CpuDocument::new(db, &PsabiTable::new(db), cpu.clone())?;
                self.rename_document(db, &mut doc);
                json_text(&Noted { doc, notes })
            }
        }))
    }
}

/// A CPU document with the notes of its partial source beside its fields.
#[derive(Serialize)]
struct Noted<'a> {
    #[serde(flatten)]
    doc: CpuDocument,
    #[serde(flatten)]
    notes: Option<&'a PartialNotes>,
}

/// What a decode from a partial source could not determine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartialNotes {
    /// The source (`/proc/cpuinfo`, `lscpu`, `Firecracker template`).
    pub source: &'static str,
    /// Every feature of the map the source cannot show, present or absent:
    /// the decode counted them as absent.
    pub undetermined: Vec<String>,
    /// Flag names the kernel's table does not know (a newer kernel's),
    /// left out.
    pub unknown_flags: Vec<String>,
    /// The model the decode gives if every undetermined feature is
    /// present, when that is another model.
    pub if_present: Option<IfPresent>,
}

/// The model a partial source's CPU could be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IfPresent {
    /// The model.
    pub model: String,
    /// Its undetermined features: the ones that decide it.
    pub needs: Vec<String>,
}

impl PartialNotes {
    /// The notes of `decoded`, decoded from `cpu` of a partial `source`;
    /// `upper` is the decode of the same CPU with every undetermined
    /// feature present.
    pub fn new(
        db: &Database,
        names: &NamesArgs,
        source: &PartialSource,
        cpu: &CpuFeatures,
        decoded: &Decoded,
        upper: Option<&Decoded>,
    ) -> Self {
        let name = |id| names.name(db, db.feature_name(id));
        PartialNotes {
            source: source.source,
            undetermined: cpu.undetermined.iter().map(name).collect(),
            unknown_flags: source.unknown_flags.clone(),
            if_present: upper
                .filter(|u| u.model != decoded.model)
                .map(|u| IfPresent {
                    model: db.model(u.model).name.to_string(),
                    needs: db
                        .model(u.model)
                        .features
                        .intersection(&cpu.undetermined)
                        .iter()
                        .map(name)
                        .collect(),
                }),
        }
    }

    /// The notes as XML comments, one per line, before the document.
    fn comments(&self) -> String {
        let mut out = if self.undetermined.is_empty() {
            format!(
                "<!-- {} shows every feature of the CPU map -->\n",
                self.source
            )
        } else {
            format!(
                "<!-- {} cannot show {} features of the CPU map; decoded as absent: {} -->\n",
                self.source,
                self.undetermined.len(),
                self.undetermined.join(" ")
            )
        };
        if let Some(p) = &self.if_present {
            out.push_str(&format!(
                "<!-- with every undetermined feature present it would be {}, which needs {} -->\n",
                p.model,
                p.needs.join(" ")
            ));
        }
        if !self.unknown_flags.is_empty() {
            out.push_str(&format!(
                "<!-- flags unknown to the kernel table, left out: {} -->\n",
                comment_safe(&self.unknown_flags.join(" "))
            ));
        }
        out
    }
}
