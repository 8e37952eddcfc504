//! What several commands share: the output value, the libvirt release and
//! the `--cpu-map` flag,
//! the JSON rendering, the KVM device and the live machine's views, and
//! reading CPUs from files.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::ValueEnum;
use cpumodel_cpudef::{parse_known_cpus, CpuDef, CpuDocument};
use cpumodel_kvm::{MachineView, MachineViewError};
use cpumodel_map::{load_cpu_map, Database, PsabiTable, Release};
use serde::Serialize;

use crate::error::CliError;

/// A command's whole output and exit code: a failure never leaves partial
/// output behind.
pub struct Output {
    /// Everything for stdout.
    pub text: String,
    /// The exit code (0, or 1 for a negative answer).
    pub code: u8,
}

impl Output {
    /// A success with `text`.
    pub fn ok(text: String) -> Self {
        Output { text, code: 0 }
    }
}

/// Prepares standard output for a large answer: when it is a pipe, the
/// pipe is widened to 1 MiB, so that the reader is woken for every
/// megabyte instead of every 64 KiB (the 41 MB JSON of `fleet can-run` over
/// 100,000 hosts went from 63 to 43 ms through a pipe). Anything else
/// (a file, a terminal, a refusal) is left as it is.
pub fn widen_stdout_pipe() {
    let _ = rustix::pipe::fcntl_setpipe_size(std::io::stdout(), 1 << 20);
}

/// The release chosen with the global `--libvirt VERSION`, set once by
/// `main` right after parsing.
static RELEASE: OnceLock<&'static Release> = OnceLock::new();

/// Records the release every command answers as (`--libvirt`).
pub fn select_release(release: &'static Release) {
    let _ = RELEASE.set(release);
}

/// The libvirt release in use: `--libvirt VERSION`, else the newest.
pub fn release() -> &'static Release {
    RELEASE.get().copied().unwrap_or_else(Release::newest)
}

/// The model database flag, flattened into every command that reads the
/// database (and only those, so that `dump --cpu-map DIR` is no option).
#[derive(Debug, clap::Args)]
pub struct MapArgs {
    /// Use this libvirt cpu_map directory instead of the embedded map of
    /// the release (for example /usr/share/libvirt/cpu_map to match the
    /// local libvirt); `--libvirt` still chooses the behaviour.
    #[arg(long, value_name = "DIR")]
    pub cpu_map: Option<PathBuf>,
}

impl MapArgs {
    /// The database: the `--cpu-map` directory, or the embedded map of the
    /// selected release.
    ///
    /// The process ends right after the command, so the database is never
    /// freed: dropping its few hundred allocations one by one would only
    /// cost time.
    ///
    /// # Errors
    /// A cpu_map directory that cannot be loaded.
    pub fn load(&self) -> Result<&'static Database, CliError> {
        let db = match &self.cpu_map {
            Some(dir) => load_cpu_map(dir)?,
            None => release().database(),
        };
        Ok(Box::leak(Box::new(db)))
    }

    /// Which map and behaviour are in use, in words: `libvirt upstream
    /// (libvirt upstream commit …)`, or with `--cpu-map`, `cpu_map DIR with
    /// libvirt 9.0 behaviour`.
    pub fn describe(&self) -> String {
        match &self.cpu_map {
            Some(dir) => format!(
                "cpu_map {} with libvirt {} behaviour",
                dir.display(),
                release().name
            ),
            None => format!("libvirt {}", release()),
        }
    }
}

/// The formats of a command that answers in text or JSON (compare,
/// models, verify).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TextFormat {
    /// The answer as text, for people.
    Text,
    /// The same answer as JSON.
    Json,
}

/// The formats of a command whose answer is a libvirt XML document (decode,
/// baseline, expand, host, domcaps, dump).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum XmlFormat {
    /// libvirt's XML.
    Xml,
    /// The same document as JSON.
    Json,
}

/// Renders one CPU definition in `format`; its JSON carries the CPU's
/// x86-64 level ([`CpuDocument`]).
///
/// # Errors
/// A model or feature name `db` does not define.
pub fn render_cpu(db: &Database, cpu: &CpuDef, format: XmlFormat) -> Result<Output, CliError> {
    Ok(Output::ok(match format {
        XmlFormat::Xml => cpu.to_xml(),
        XmlFormat::Json => json_text(&CpuDocument::new(db, &PsabiTable::new(db), cpu.clone())?),
    }))
}

/// Text that is safe inside an XML comment (no `--`).
pub fn comment_safe(s: &str) -> String {
    let mut out = s.to_string();
    while out.contains("--") {
        out = out.replace("--", "-\u{2010}");
    }
    out
}

/// A document as pretty-printed JSON with a final newline.
///
/// The document goes through [`serde_json::Value`], whose maps keep their
/// keys sorted by name (the workspace does not enable serde_json's
/// `preserve_order`): every JSON document cpumodel prints has its keys in
/// that order, at every level, whatever order a type declares its fields in.
pub fn json_text<T: Serialize + ?Sized>(doc: &T) -> String {
    let value = serde_json::to_value(doc).expect("cpumodel's documents serialize");
    let mut s = serde_json::to_string_pretty(&value).expect("JSON values always serialize");
    s.push('\n');
    s
}

/// The KVM device: `/dev/kvm`, or the path in `CPUMODEL_KVM_DEVICE` (which
/// lets tests point the probe at a missing or non-KVM file).
pub fn kvm_device() -> PathBuf {
    std::env::var_os("CPUMODEL_KVM_DEVICE")
        .filter(|p| !p.is_empty())
        .map_or_else(
            || PathBuf::from(cpumodel_kvm::DEFAULT_DEVICE),
            PathBuf::from,
        )
}

/// The live machine's CPUID, asked for as such; `what` names the command in
/// the error of a processor without CPUID.
///
/// # Errors
/// A processor architecture without CPUID.
pub fn raw_view(what: &str) -> Result<MachineView, CliError> {
    MachineView::raw().map_err(|e| machine_error(e, what))
}

/// KVM's view when the KVM device is usable, the raw CPUID otherwise (the
/// view says why); `what` names the command in the error.
///
/// # Errors
/// An unusable KVM device on a processor without CPUID to fall back to.
pub fn detected_view(what: &str) -> Result<MachineView, CliError> {
    MachineView::detect(&kvm_device()).map_err(|e| machine_error(e, what))
}

/// A failed read of the live machine, as the command's error.
fn machine_error(e: MachineViewError, what: &str) -> CliError {
    match e {
        MachineViewError::Kvm(e) => e.into(),
        MachineViewError::NoCpuid => CliError::Usage(format!(
            "{what} reads CPUID, which this processor architecture does not have"
        )),
    }
}

/// The first CPU definition in a file of any supported shape, Proxmox VE's
/// `cpu:` option and custom models included.
///
/// # Errors
/// An unreadable file, and everything [`parse_known_cpus`] rejects.
pub fn first_cpu(db: &Database, file: &Path) -> Result<CpuDef, CliError> {
    let text = crate::error::read_cpu_document(file)?;
    let name = file.display().to_string();
    if let Some(cpu) = proxmox_cpu(db, &name, &text)? {
        return Ok(cpu);
    }
    let mut cpus = parse_known_cpus(db, &name, &text)?;
    Ok(cpus.remove(0).cpu)
}

/// The first guest CPU of a Proxmox VE VM config or `cpu-models.conf`;
/// `None` for any other document.
///
/// # Errors
/// Whatever Proxmox refuses in it ([`cpumodel_policy::proxmox::read_proxmox`]).
pub fn proxmox_cpu(db: &Database, name: &str, text: &str) -> Result<Option<CpuDef>, CliError> {
    if !cpumodel_policy::proxmox::looks_like_proxmox(text) {
        return Ok(None);
    }
    let mut cpus = cpumodel_policy::proxmox::read_proxmox(db, name, text)?;
    Ok(Some(cpus.remove(0).1))
}

/// Expands directories (every file below them, in subdirectories too) and
/// glob patterns into a sorted list of files.
///
/// # Errors
/// An unreadable or empty directory, a bad pattern or one that matches no file.
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    InputFiles::new(inputs)?.collect()
}

/// The files a command's inputs name, one at a time, in the order
/// [`collect_inputs`] lists them: a directory's files are found while they
/// are read, so a million-file directory tree never lies in memory as one
/// list (only the listings of the directories being walked do).
pub struct InputFiles {
    /// What is left of the inputs, last first.
    todo: Vec<Source>,
}

/// One input, or what is left of it.
enum Source {
    /// A file until it is given: a path that is no directory and no
    /// pattern, or a directory's first file, found while it was checked.
    File(Option<PathBuf>),
    /// A pattern's matches, sorted.
    Matches(std::vec::IntoIter<PathBuf>),
    /// A directory's entries still to walk, sorted by name.
    Directory {
        dir: PathBuf,
        entries: std::vec::IntoIter<(std::ffi::OsString, Option<std::fs::FileType>)>,
    },
}

impl InputFiles {
    /// Checks the inputs before anything is read: patterns are expanded,
    /// and every directory must hold a file somewhere below it.
    ///
    /// # Errors
    /// An unreadable or empty directory, a bad pattern or one that matches
    /// no file.
    pub fn new(inputs: &[PathBuf]) -> Result<InputFiles, CliError> {
        // Each input's own stack of sources (its next file on top).
        let mut stacks: Vec<Vec<Source>> = Vec::with_capacity(inputs.len());
        for input in inputs {
            let s = input.to_string_lossy();
            if input.is_dir() {
                // Walked to its first file, which goes back on top: the
                // walk goes on from there, nothing is listed twice.
                let mut walk = InputFiles {
                    todo: vec![Source::listing(input)?],
                };
                match walk.next() {
                    Some(Err(e)) => return Err(e),
                    Some(Ok(first)) => walk.todo.push(Source::File(Some(first))),
                    None => {
                        return Err(CliError::Usage(format!(
                            "{}: directory holds no files",
                            input.display()
                        )))
                    }
                }
                stacks.push(walk.todo);
            } else if !input.exists() && s.contains(['*', '?', '[']) {
                let paths = glob::glob(&s)
                    .map_err(|e| CliError::Usage(format!("{s}: invalid glob pattern: {e}")))?;
                let mut found: Vec<_> = paths
                    .filter_map(Result::ok)
                    .filter(|p| p.is_file())
                    .collect();
                found.sort();
                if found.is_empty() {
                    return Err(CliError::Usage(format!(
                        "{s}: no file matches this pattern"
                    )));
                }
                stacks.push(vec![Source::Matches(found.into_iter())]);
            } else {
                stacks.push(vec![Source::File(Some(input.clone()))]);
            }
        }
        // The first input's stack on top.
        let todo = stacks.into_iter().rev().flatten().collect();
        Ok(InputFiles { todo })
    }
}

impl Source {
    /// `dir`'s entries, sorted by name. The entry types come from the
    /// directory listing, so a plain file costs no `stat`.
    fn listing(dir: &Path) -> Result<Source, CliError> {
        let entries = std::fs::read_dir(dir).map_err(|source| CliError::File {
            path: dir.to_path_buf(),
            action: "cannot read directory",
            source,
        })?;
        let mut entries: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| (e.file_name(), e.file_type().ok()))
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(Source::Directory {
            dir: dir.to_path_buf(),
            entries: entries.into_iter(),
        })
    }
}

/// Every file below a directory in path order (each directory's entries
/// sorted by name, subdirectories walked where they sort), following no
/// symbolic link to a directory.
impl Iterator for InputFiles {
    type Item = Result<PathBuf, CliError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let next = match self.todo.last_mut()? {
                Source::File(path) => path.take(),
                Source::Matches(paths) => paths.next(),
                Source::Directory { dir, entries } => match entries.next() {
                    None => None,
                    Some((name, kind)) => {
                        let path = dir.join(name);
                        match kind {
                            Some(t) if t.is_dir() => match Source::listing(&path) {
                                Ok(listing) => {
                                    self.todo.push(listing);
                                    continue;
                                }
                                Err(e) => return Some(Err(e)),
                            },
                            Some(t) if t.is_file() => Some(path),
                            // A symbolic link (or an unknown type): a file if
                            // it leads to one.
                            _ if path.is_file() => Some(path),
                            _ => continue,
                        }
                    }
                },
            };
            match next {
                Some(path) => return Some(Ok(path)),
                // This source is done.
                None => {
                    self.todo.pop();
                }
            }
        }
    }
}

/// The flags of libvirt's baseline, shared by `baseline` and `fleet
/// baseline`.
#[derive(Debug, clap::Args)]
pub struct BaselineFlags {
    /// List every feature of the resulting model explicitly.
    #[arg(long)]
    pub expand_features: bool,
    /// Drop features that block live migration.
    #[arg(long)]
    pub migratable: bool,
    /// Give the CPU driver's own answer (what libvirt's CPU tests check),
    /// without the QEMU driver's feature filter that `virsh cpu-baseline`
    /// applies (cmt, mbm_local, mbm_total, osxsave, ospke and, after 10.7,
    /// three VMX features QEMU never supported).
    #[arg(long)]
    pub no_hypervisor_filter: bool,
}

impl BaselineFlags {
    /// The baseline's options.
    pub fn options(&self) -> cpumodel_cpudef::BaselineOptions {
        cpumodel_cpudef::BaselineOptions {
            expand_features: self.expand_features,
            migratable: self.migratable,
            hypervisor_filter: if self.no_hypervisor_filter {
                &[]
            } else {
                release().behaviour.hypervisor_filter
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input file in order, as paths relative to `root`.
    fn walk(root: &Path, inputs: &[&str]) -> Result<Vec<String>, String> {
        let inputs: Vec<PathBuf> = inputs.iter().map(|i| root.join(i)).collect();
        let files = InputFiles::new(&inputs).map_err(|e| e.to_string())?;
        files
            .map(|f| {
                let f = f.map_err(|e| e.to_string())?;
                Ok(f.strip_prefix(root)
                    .expect("below root")
                    .display()
                    .to_string())
            })
            .collect()
    }

    #[test]
    fn input_files_walk_directories_in_path_order_and_check_inputs_first() {
        let root = tempfile::tempdir().expect("temporary directory");
        let root = root.path();
        for dir in ["d/a/sub", "d/a/empty", "hollow/inner"] {
            std::fs::create_dir_all(root.join(dir)).expect("mkdir");
        }
        for file in ["d/b.xml", "d/c.xml", "d/a/z.xml", "d/a/sub/m.xml"] {
            std::fs::write(root.join(file), "x").expect("write");
        }
        std::os::unix::fs::symlink(root.join("d/b.xml"), root.join("d/link.xml")).expect("link");
        std::os::unix::fs::symlink(root.join("d/a"), root.join("d/to-a")).expect("link");
        assert_eq!(
            walk(root, &["d"]).unwrap(),
            [
                "d/a/sub/m.xml",
                "d/a/z.xml",
                "d/b.xml",
                "d/c.xml",
                "d/link.xml"
            ]
        );
        assert_eq!(
            walk(root, &["d/c.xml", "d/*.xml", "d/a", "missing.xml"]).unwrap(),
            [
                "d/c.xml",
                "d/b.xml",
                "d/c.xml",
                "d/link.xml",
                "d/a/sub/m.xml",
                "d/a/z.xml",
                "missing.xml"
            ]
        );
        // Checked before the first file is given: a later input's error
        // comes first.
        let hollow = root.join("hollow").display().to_string();
        assert_eq!(
            walk(root, &["d", "hollow"]).unwrap_err(),
            format!("{hollow}: directory holds no files")
        );
        let pattern = root.join("d/*.txt").display().to_string();
        assert_eq!(
            walk(root, &["d", "d/*.txt"]).unwrap_err(),
            format!("{pattern}: no file matches this pattern")
        );
        let inputs = [root.join("d")];
        assert_eq!(
            collect_inputs(&inputs).unwrap(),
            InputFiles::new(&inputs)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        );
    }
}
