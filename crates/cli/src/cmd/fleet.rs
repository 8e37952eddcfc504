//! `cpumodel fleet …`: every host's CPU in one store, and the questions
//! that pick one CPU model for the whole fleet.
//!
//! The store is `cpumodel-store` (an SQLite file, or a PostgreSQL server
//! for several control-plane nodes); the answers come from
//! `cpumodel-fleet`. This module only reads the inputs, batches them into
//! the store's transactions and renders the answers.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use cpumodel_fleet::{
    CanRunAnswer, GroupProfiles, HostReader, Limits, ProfileCount, RecommendAnswer,
};
use cpumodel_map::{Database, PsabiLevel};
use cpumodel_store::{
    Document, DocumentDictionary, Filter, Location, NewReport, OpenMode, Store, DICTIONARY_SAMPLES,
};
use indicatif::ProgressBar;

use crate::error::{read, CliError};
use crate::shared::{
    first_cpu, json_text, render_cpu, BaselineFlags, InputFiles, MapArgs, Output, TextFormat,
    XmlFormat,
};

/// Arguments of `cpumodel fleet`.
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// What to do with the fleet.
    #[command(subcommand)]
    pub command: FleetCommand,
}

/// The fleet subcommands.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Store host CPU documents: <cpudata> dumps (also `dump --kvm`), virsh
    /// capabilities, virsh domcapabilities, a host <cpu>, /proc/cpuinfo,
    /// lscpu (text or --json) or a Firecracker CPU template or fingerprint
    /// (these show only some bits: what they cannot show counts as
    /// absent). Inputs are
    /// files, directories (every file below), quoted glob patterns or `-`
    /// for standard input. Importing the same document again adds nothing.
    Import(ImportArgs),
    /// List the hosts: groups, vendor, model, reports, last report time.
    Hosts(ListArgs),
    /// libvirt's baseline of the hosts' current CPUs (the same <cpu> as
    /// `cpumodel baseline` over their documents).
    Baseline(BaselineArgs),
    /// For every named model, newest first, how many hosts can run it and
    /// the features that block it most often.
    Models(ListArgs),
    /// The hosts that accept a guest CPU, and what blocks it on the others.
    /// Exit 1 when no host accepts it.
    CanRun(CanRunArgs),
    /// The newest named model that every host (or a share of them) can run,
    /// what holds newer ones back, and the nova.conf section for it.
    Recommend(RecommendArgs),
    /// Hosts whose newest report gained or lost features against the one
    /// before, and the models and recorded guest CPUs that breaks.
    Drift(ListArgs),
    /// Every report of one host, oldest first, with the features each
    /// gained and lost against the one before.
    History(HistoryArgs),
    /// Record a guest CPU under a name; `fleet drift` checks it.
    AddGuest(AddGuestArgs),
    /// Write one self-contained HTML page: model coverage, a CPU × feature
    /// heatmap by group, drift.
    Report(ReportArgs),
}

impl FleetArgs {
    /// Runs the fleet subcommand.
    ///
    /// # Errors
    /// Whatever the subcommand reports.
    pub fn run(&self) -> Result<Output, CliError> {
        match &self.command {
            FleetCommand::Import(a) => a.run(),
            FleetCommand::Hosts(a) => a.hosts(),
            FleetCommand::Baseline(a) => a.run(),
            FleetCommand::Models(a) => a.models(),
            FleetCommand::CanRun(a) => a.run(),
            FleetCommand::Recommend(a) => a.run(),
            FleetCommand::Drift(a) => a.drift(),
            FleetCommand::History(a) => a.run(),
            FleetCommand::AddGuest(a) => a.run(),
            FleetCommand::Report(a) => a.run(),
        }
    }
}

/// Where the store is.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The store: an SQLite file or a postgres:// URL. Default:
    /// $CPUMODEL_FLEET_DB, else $XDG_DATA_HOME/cpumodel/fleet.sqlite
    /// (~/.local/share/cpumodel/fleet.sqlite).
    #[arg(long, value_name = "FILE|URL")]
    pub db: Option<String>,
}

impl StoreArgs {
    fn open(&self, mode: OpenMode) -> Result<Store, CliError> {
        let location = match &self.db {
            Some(text) => Location::parse(text),
            None => Location::from_env_or_default()?,
        };
        Ok(Store::open(&location, mode)?)
    }
}

/// The groups a question is narrowed to.
#[derive(Debug, clap::Args)]
pub struct GroupArgs {
    /// Only hosts of this group (repeat for several: a host of any).
    #[arg(long = "group", value_name = "NAME")]
    pub groups: Vec<String>,
}

impl GroupArgs {
    fn filter(&self) -> Filter {
        Filter::groups(self.groups.iter().cloned())
    }
}

/// What every fleet question reads: the store, the groups it is narrowed
/// to, and the model database.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The groups.
    #[command(flatten)]
    pub groups: GroupArgs,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
}

impl QueryArgs {
    /// The model database, and the distinct current CPUs of the groups'
    /// hosts with their counts and the first `samples` host names.
    fn profile_counts(
        &self,
        samples: usize,
    ) -> Result<(&'static Database, Vec<ProfileCount>), CliError> {
        let db = self.map.load()?;
        let counts = self.store.open(OpenMode::MustExist)?.profile_counts(
            db,
            &self.groups.filter(),
            samples,
        )?;
        Ok((db, counts))
    }
}

/// What `fleet import` does with an input that is not a host CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BadInput {
    /// Stop with its error; the batches stored before it stay stored, and
    /// nothing of its own batch is written.
    Fail,
    /// Report it on stderr, store the rest, exit 1 at the end.
    Skip,
}

/// Arguments of `fleet import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Add the hosts to this group (repeat for several).
    #[arg(long = "group", value_name = "NAME")]
    pub groups: Vec<String>,
    /// The host's name (else the document's `<!-- host: NAME -->`, else the
    /// file name without .xml).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// The time of the reports, RFC 3339 (`2026-12-02T18:30:00Z`): when
    /// the documents were collected. Default: now.
    #[arg(long, value_name = "TIME", value_parser = cpumodel_fleet::parse_time)]
    pub time: Option<i64>,
    /// What to do with an input that is not a host CPU: `fail` stops at
    /// it (the batches before it stay stored, nothing of its own batch is
    /// written, exit 2); `skip` reports it on stderr, stores the rest and
    /// exits 1.
    #[arg(long, value_enum, default_value_t = BadInput::Fail)]
    pub on_bad_input: BadInput,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
    /// Files, directories, quoted glob patterns, or `-` for standard input.
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<PathBuf>,
}

/// Reports per transaction.
const BATCH: usize = 10000;

/// One input: its name and where to read it.
enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "-".into(),
        }
    }

    fn read(&self) -> Result<String, CliError> {
        match self {
            Input::File(p) => read(p),
            Input::Stdin => crate::error::read_stdin(),
        }
    }

    /// The host name a file's name gives.
    fn stem(&self) -> Option<String> {
        match self {
            Input::File(p) => Path::new(p)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned()),
            Input::Stdin => None,
        }
    }
}

/// Microseconds since the epoch, now.
fn now_us() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl ImportArgs {
    /// Reads one input into a report for the store.
    fn report(
        &self,
        reader: &HostReader<'_>,
        dictionary: Option<&DocumentDictionary>,
        input: &Input,
        time_us: i64,
    ) -> Result<NewReport, CliError> {
        let name = input.name();
        let text = input.read()?;
        let r = reader.read(&name, &text)?;
        let host = self
            .host
            .clone()
            .or(r.host)
            .or_else(|| input.stem())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{name}: the document names no host; give --host NAME"
                ))
            })?;
        // Compressed here, on the reader threads, beside the parsing; the
        // store's writer then only writes.
        let compressed = match dictionary {
            Some(d) => d.compress(&text),
            None => cpumodel_store::compress_document(&text),
        }
        .map_err(|source| CliError::File {
            path: PathBuf::from(&name),
            action: "cannot compress",
            source,
        })?;
        Ok(NewReport {
            host,
            groups: self.groups.clone(),
            time_us,
            source: name,
            view: r.view,
            digest: r.digest,
            // Only the compressed document stays in memory with the batch.
            document: Document::Compressed {
                bytes: compressed,
                size: text.len(),
                dictionary: dictionary.cloned(),
            },
            profile: r.profile,
        })
    }

    /// Reads a batch of inputs on every core, in order, on rayon's
    /// threads: they live as long as the process, so each keeps its
    /// allocator heap from batch to batch (threads started per batch left
    /// their freed memory behind them, and a million-host import peaked
    /// higher for it).
    fn read_batch(
        &self,
        reader: &HostReader<'_>,
        dictionary: Option<&DocumentDictionary>,
        inputs: Vec<Result<Input, CliError>>,
        time_us: i64,
    ) -> Vec<Result<NewReport, CliError>> {
        use rayon::prelude::*;
        inputs
            .into_par_iter()
            .with_min_len(64)
            .map(|i| self.report(reader, dictionary, &i?, time_us))
            .collect()
    }

    /// A progress bar on a terminal for an import of 1,000 inputs or more
    /// (counted by walking the inputs once more, without keeping them);
    /// nothing otherwise.
    fn progress(&self, stdin: bool, files: &[PathBuf]) -> Result<ProgressBar, CliError> {
        if !std::io::stderr().is_terminal() {
            return Ok(ProgressBar::hidden());
        }
        let total = InputFiles::new(files)?.count() + usize::from(stdin);
        if total < 1000 {
            return Ok(ProgressBar::hidden());
        }
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "cpumodel: importing {bar:40} {human_pos}/{human_len} ({eta} left)",
            )
            .expect("a valid template"),
        );
        Ok(bar)
    }

    /// Runs `fleet import`.
    ///
    /// # Errors
    /// An unusable store, an unreadable or bad input (with `--on-bad-input
    /// fail`), a database error.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let stdin = self.inputs.iter().any(|i| i.as_os_str() == "-");
        let files: Vec<PathBuf> = self
            .inputs
            .iter()
            .filter(|i| i.as_os_str() != "-")
            .cloned()
            .collect();
        // Found while the import goes on: a million paths are never held
        // at once. Checked here, before anything is read or stored.
        let walk = InputFiles::new(&files)?;
        let mut inputs = std::iter::once(Ok(Input::Stdin))
            .take(usize::from(stdin))
            .chain(walk.map(|f| f.map(Input::File)));
        // The store is opened (and created) once the first batch has been
        // read: an input that fails before then leaves no store behind.
        let mut store: Option<Store> = None;
        let progress = self.progress(stdin, &files)?;
        let time_us = self.time.unwrap_or_else(now_us);
        // Identical machines' documents differ only in their prologue:
        // each distinct CPU is parsed and decoded once.
        let reader = HostReader::new(db);
        let first: Vec<_> = inputs.by_ref().take(BATCH).collect();
        // A fleet's documents are near copies: compressed with a dictionary
        // trained on the first of them they take a quarter of the space.
        let dictionary = train_dictionary(&first);
        let dictionary = dictionary.as_ref();
        let (mut added, mut unchanged, mut skipped) = (0u64, 0u64, 0u64);
        // Reading (parsing, decoding, hashing) the next batch goes on while
        // this thread writes the current one.
        std::thread::scope(|s| -> Result<(), CliError> {
            let (tx, rx) = std::sync::mpsc::sync_channel(0);
            let reader = &reader;
            s.spawn(move || {
                let mut batch = first;
                while !batch.is_empty() {
                    let len = batch.len();
                    let reports = self.read_batch(reader, dictionary, batch, time_us);
                    if tx.send((len, reports)).is_err() {
                        break;
                    }
                    batch = inputs.by_ref().take(BATCH).collect();
                }
            });
            // Returning early drops `rx`: the reader stops at its next batch.
            for (len, results) in rx {
                let mut reports = Vec::with_capacity(len);
                for r in results {
                    match r {
                        Ok(r) => reports.push(r),
                        Err(e) if self.on_bad_input == BadInput::Skip && skippable(&e) => {
                            progress.suspend(|| crate::error::warn(&format_args!("{e}; skipped")));
                            skipped += 1;
                        }
                        Err(e) if added + unchanged > 0 => {
                            return Err(CliError::Usage(format!(
                                "{e} (the {} reports before its batch are stored)",
                                added + unchanged
                            )))
                        }
                        Err(e) => return Err(e),
                    }
                }
                let store = match &mut store {
                    Some(store) => store,
                    None => store.insert(self.store.open(OpenMode::CreateIfMissing)?),
                };
                let outcome = store.import(db, &reports)?;
                added += outcome.added;
                unchanged += outcome.unchanged;
                progress.inc(len as u64);
            }
            Ok(())
        })?;
        progress.finish_and_clear();
        let mut text = format!("stored {added} new reports, {unchanged} already stored");
        if skipped > 0 {
            text.push_str(&format!(", {skipped} inputs skipped"));
        }
        text.push('\n');
        Ok(Output {
            text,
            code: u8::from(skipped > 0),
        })
    }
}

/// A dictionary trained on the first [`DICTIONARY_SAMPLES`] input files,
/// when there are that many; unreadable ones are left to the import, which
/// reports them.
fn train_dictionary(inputs: &[Result<Input, CliError>]) -> Option<DocumentDictionary> {
    let samples: Vec<String> = inputs
        .iter()
        .filter_map(|i| match i {
            Ok(i @ Input::File(_)) => Some(i),
            _ => None,
        })
        .take(DICTIONARY_SAMPLES)
        .filter_map(|i| i.read().ok())
        .collect();
    DocumentDictionary::train(&samples.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Errors that concern one input, which `--on-bad-input skip` passes over.
fn skippable(e: &CliError) -> bool {
    matches!(
        e,
        CliError::File { .. } | CliError::Report(_) | CliError::Usage(_)
    )
}

/// Arguments of the questions that only list (`hosts`, `models`, `drift`).
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The store, the groups and the model database.
    #[command(flatten)]
    pub query: QueryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
}

/// Renders a document as text or JSON.
fn render<T: serde::Serialize>(
    format: TextFormat,
    doc: &T,
    text: impl FnOnce(&T) -> String,
) -> Output {
    Output::ok(match format {
        TextFormat::Text => text(doc),
        TextFormat::Json => json_text(doc),
    })
}

/// The guest CPUs the store records, parsed.
fn recorded_guests(
    store: &mut Store,
    db: &Database,
) -> Result<Vec<(String, cpumodel_cpudef::CpuDef)>, CliError> {
    store
        .guests()?
        .into_iter()
        .map(|g| {
            let mut cpus = cpumodel_cpudef::parse_known_cpus(db, &g.name, &g.cpu_xml)?;
            Ok((g.name, cpus.remove(0).cpu))
        })
        .collect()
}

impl ListArgs {
    /// `fleet hosts`.
    ///
    /// # Errors
    /// The store's.
    pub fn hosts(&self) -> Result<Output, CliError> {
        let db = self.query.map.load()?;
        let filter = self.query.groups.filter();
        let mut store = self.query.store.open(OpenMode::MustExist)?;
        let rows = store.hosts(&filter)?;
        let (profiles, current) = store.current_hosts(db, &filter)?;
        let rows = cpumodel_fleet::host_levels(db, rows, &profiles, &current);
        Ok(render(self.format, &rows, |r| {
            cpumodel_fleet::hosts_text(r)
        }))
    }

    /// `fleet models`.
    ///
    /// # Errors
    /// The store's.
    pub fn models(&self) -> Result<Output, CliError> {
        let limits = Limits::default();
        let (db, counts) = self.query.profile_counts(limits.sample_hosts)?;
        let doc = cpumodel_fleet::coverage(db, &counts, limits);
        Ok(render(
            self.format,
            &doc,
            cpumodel_fleet::CoverageDocument::to_text,
        ))
    }

    /// `fleet drift`.
    ///
    /// # Errors
    /// The store's, or a recorded guest the database cannot resolve.
    pub fn drift(&self) -> Result<Output, CliError> {
        let db = self.query.map.load()?;
        let mut store = self.query.store.open(OpenMode::MustExist)?;
        let rows = store.drift(db, &self.query.groups.filter())?;
        let guests = recorded_guests(&mut store, db)?;
        let doc = cpumodel_fleet::drift(db, &rows, &guests)?;
        Ok(render(
            self.format,
            &doc,
            cpumodel_fleet::DriftDocument::to_text,
        ))
    }
}

/// Arguments of `fleet baseline`.
#[derive(Debug, clap::Args)]
pub struct BaselineArgs {
    /// The store, the groups and the model database.
    #[command(flatten)]
    pub query: QueryArgs,
    /// The baseline's flags.
    #[command(flatten)]
    pub flags: BaselineFlags,
    /// Output format.
    #[arg(long, value_enum, default_value_t = XmlFormat::Xml)]
    pub format: XmlFormat,
}

impl BaselineArgs {
    /// Runs `fleet baseline`.
    ///
    /// # Errors
    /// The store's, or a fleet without a common CPU.
    pub fn run(&self) -> Result<Output, CliError> {
        let (db, counts) = self.query.profile_counts(1)?;
        let opts = self.flags.options();
        let cpu = cpumodel_fleet::baseline(db, &counts, opts)?;
        render_cpu(db, &cpu, self.format)
    }
}

/// Arguments of `fleet can-run`.
#[derive(Debug, clap::Args)]
pub struct CanRunArgs {
    /// The store, the groups and the model database.
    #[command(flatten)]
    pub query: QueryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
    /// The guest <cpu> (or any document holding one).
    #[arg(value_name = "GUEST.xml")]
    pub guest: PathBuf,
}

impl CanRunArgs {
    /// Runs `fleet can-run`; exit 1 when no host accepts the guest.
    ///
    /// The answer has a line per host, so it is written to standard output
    /// here, as it is rendered, rather than returned whole: what it holds
    /// per host is the host's name. As for every command, a closed standard
    /// output is not an error.
    ///
    /// # Errors
    /// An invalid guest CPU, the store's.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.query.map.load()?;
        let guest = first_cpu(db, &self.guest)?;
        let (profiles, hosts) = self
            .query
            .store
            .open(OpenMode::MustExist)?
            .current_hosts(db, &self.query.groups.filter())?;
        let answer = CanRunAnswer::new(db, &guest, &profiles, hosts)?;
        crate::shared::widen_stdout_pipe();
        let mut stdout = std::io::stdout().lock();
        let _ = match self.format {
            TextFormat::Text => answer.write_text(&mut stdout),
            TextFormat::Json => answer.write_json(&mut stdout),
        }
        .and_then(|()| stdout.flush());
        Ok(Output {
            text: String::new(),
            code: u8::from(answer.accepted() == 0),
        })
    }
}

/// A share of hosts in percent: more than 0, at most 100.
fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!("'{s}' is not a percentage above 0 and at most 100")),
    }
}

/// Arguments of `fleet recommend`.
#[derive(Debug, clap::Args)]
pub struct RecommendArgs {
    /// The store, the groups and the model database.
    #[command(flatten)]
    pub query: QueryArgs,
    /// The share of hosts the model must run on.
    #[arg(long, value_name = "PERCENT", default_value = "100", value_parser = percent)]
    pub min_coverage: f64,
    /// Only models of this x86-64 level or above (v1, v2, v3, v4); when
    /// none has the coverage, say which hosts and features keep the fleet
    /// below it, and exit 1.
    #[arg(long, value_name = "LEVEL")]
    pub min_level: Option<PsabiLevel>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RecommendFormat::Text)]
    pub format: RecommendFormat,
    /// The name of the Proxmox VE custom model `--format proxmox` writes.
    #[arg(long, value_name = "NAME", default_value = "fleet")]
    pub proxmox_name: String,
}

/// The formats of `fleet recommend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RecommendFormat {
    /// The model, what holds newer ones back, and the nova.conf section.
    Text,
    /// The same as JSON.
    Json,
    /// The model as a custom model of Proxmox VE's cpu-models.conf.
    Proxmox,
}

impl RecommendArgs {
    /// Runs `fleet recommend`; exit 1 when no model of `--min-level` has
    /// the coverage.
    ///
    /// # Errors
    /// An empty fleet, no model with the coverage (without `--min-level`),
    /// the store's.
    pub fn run(&self) -> Result<Output, CliError> {
        let limits = Limits::default();
        let (db, counts) = self.query.profile_counts(limits.sample_hosts)?;
        let r = cpumodel_fleet::recommend(db, &counts, self.min_coverage, self.min_level, limits)?;
        let text = match (self.format, &r) {
            (RecommendFormat::Json, _) => json_text(&r),
            (RecommendFormat::Proxmox, RecommendAnswer::Model(m)) => {
                let mut cpu = cpumodel_cpudef::CpuDef::new(cpumodel_cpudef::CpuKind::Guest);
                cpu.model = Some(m.model.clone());
                cpumodel_policy::proxmox::ProxmoxModel::from_cpu(
                    db,
                    &self.proxmox_name,
                    &cpu,
                    None,
                )?
                .to_conf()
            }
            _ => r.to_text(),
        };
        Ok(Output {
            text,
            code: u8::from(matches!(r, RecommendAnswer::BelowLevel(_))),
        })
    }
}

/// Arguments of `fleet history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
    /// The host.
    #[arg(value_name = "HOST")]
    pub host: String,
}

impl HistoryArgs {
    /// Runs `fleet history`.
    ///
    /// # Errors
    /// A host the store does not know, the store's.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let rows = self
            .store
            .open(OpenMode::MustExist)?
            .history(db, &self.host)?;
        let doc = cpumodel_fleet::history(db, &self.host, &rows);
        Ok(render(
            self.format,
            &doc,
            cpumodel_fleet::HistoryDocument::to_text,
        ))
    }
}

/// Arguments of `fleet add-guest`.
#[derive(Debug, clap::Args)]
pub struct AddGuestArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The model database.
    #[command(flatten)]
    pub map: MapArgs,
    /// The guest's name (a flavor, an application).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The guest <cpu> (or any document holding one).
    #[arg(value_name = "GUEST.xml")]
    pub guest: PathBuf,
}

impl AddGuestArgs {
    /// Runs `fleet add-guest`.
    ///
    /// # Errors
    /// An invalid guest CPU, the store's.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.map.load()?;
        let cpu = first_cpu(db, &self.guest)?;
        let mut store = self.store.open(OpenMode::CreateIfMissing)?;
        store.add_guest(&self.name, &cpu.to_xml())?;
        Ok(Output::ok(String::new()))
    }
}

/// Arguments of `fleet report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The store, the groups and the model database.
    #[command(flatten)]
    pub query: QueryArgs,
    /// Where to write the page.
    #[arg(long, value_name = "FILE", required = true)]
    pub html: PathBuf,
}

impl ReportArgs {
    /// Runs `fleet report`.
    ///
    /// # Errors
    /// The store's, an unwritable file.
    pub fn run(&self) -> Result<Output, CliError> {
        let db = self.query.map.load()?;
        let mut store = self.query.store.open(OpenMode::MustExist)?;
        let filter = self.query.groups.filter();
        let limits = Limits::default();
        let counts = store.profile_counts(db, &filter, limits.sample_hosts)?;
        let coverage = cpumodel_fleet::coverage(db, &counts, limits);
        let mut names: Vec<String> = if self.query.groups.groups.is_empty() {
            store
                .hosts(&filter)?
                .into_iter()
                .flat_map(|h| h.groups)
                .collect()
        } else {
            self.query.groups.groups.clone()
        };
        names.sort();
        names.dedup();
        let groups = if names.is_empty() {
            vec![GroupProfiles {
                group: "all hosts".into(),
                profiles: counts,
            }]
        } else {
            names
                .into_iter()
                .map(|g| {
                    let profiles = store.profile_counts(db, &Filter::groups([g.clone()]), 1)?;
                    Ok(GroupProfiles { group: g, profiles })
                })
                .collect::<Result<_, CliError>>()?
        };
        let rows = store.drift(db, &filter)?;
        let guests = recorded_guests(&mut store, db)?;
        let drift = cpumodel_fleet::drift(db, &rows, &guests)?;
        let page =
            cpumodel_fleet::report_page(db, "cpumodel fleet report", &coverage, &groups, &drift);
        std::fs::write(&self.html, page).map_err(|source| CliError::File {
            path: self.html.clone(),
            action: "cannot write",
            source,
        })?;
        Ok(Output::ok(String::new()))
    }
}
