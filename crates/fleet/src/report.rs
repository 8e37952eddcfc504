//! Host CPU documents, read into reports.
//!
//! Operators collect host CPUs in whatever shape their tools give:
//! `cpumodel dump` (raw CPUID or, with `--kvm`, what KVM offers), `virsh
//! capabilities`, `virsh domcapabilities`, a host `<cpu>` element, or what
//! Linux (`/proc/cpuinfo`, `lscpu`) and Firecracker (a CPU template) show of
//! a CPU. Each
//! becomes a [`HostReport`]: the view it holds, the decoded host CPU and its
//! [`Profile`]. A document may name its host in a prologue comment
//! (`<!-- host: NAME -->`, written by `cpumodel dump`); guest CPUs and
//! domain definitions are refused, since they describe what a guest asks
//! for, not what a host has.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use cpumodel_cpudef::{parse_cpus, CpuDef, CpuKind, InputError};
use cpumodel_map::Database;
use cpumodel_xml::prologue::Prologue;
use sha2::{Digest, Sha256};

use crate::profile::Profile;

/// The prologue comment key that names the host a document was read on.
pub const HOST_NOTE: &str = "host";
/// The prologue comment key that names the view a document holds
/// (`kvm …` for what KVM offers, anything else for raw CPUID).
pub const VIEW_NOTE: &str = "view";

/// Which view of a host's CPU a document holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum View {
    /// Raw CPUID and MSRs of the processor (`cpumodel dump`, libvirt's
    /// `cpu-data.py`).
    RawCpuid,
    /// What KVM offers a guest (`cpumodel dump --kvm`).
    Kvm,
    /// The host `<cpu>` of `virsh capabilities`.
    Capabilities,
    /// The host-model CPU of `virsh domcapabilities`.
    DomainCapabilities,
    /// A host `<cpu>` element.
    HostCpu,
    /// Linux's flags: `/proc/cpuinfo` or `lscpu` (features it cannot show
    /// count as absent).
    LinuxFlags,
    /// A Firecracker CPU template or fingerprint (the same, for the bits it
    /// leaves to the host).
    Firecracker,
}

impl View {
    /// Every view, in the order [`View::as_str`] names them.
    pub const ALL: [View; 7] = [
        View::RawCpuid,
        View::Kvm,
        View::Capabilities,
        View::DomainCapabilities,
        View::HostCpu,
        View::LinuxFlags,
        View::Firecracker,
    ];

    /// The name stores and outputs use.
    pub fn as_str(self) -> &'static str {
        match self {
            View::RawCpuid => "raw-cpuid",
            View::Kvm => "kvm",
            View::Capabilities => "capabilities",
            View::DomainCapabilities => "domain-capabilities",
            View::HostCpu => "host-cpu",
            View::LinuxFlags => "linux-flags",
            View::Firecracker => "firecracker",
        }
    }

    /// The view named `name` by [`View::as_str`].
    pub fn parse(name: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.as_str() == name)
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A document could not be read as a host CPU.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The document is malformed or holds an invalid CPU.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The document holds no host CPU (a guest CPU, a domain, several CPUs).
    #[error("{document}: {what}")]
    NotHostCpu {
        /// The document's name.
        document: String,
        /// What it holds instead.
        what: String,
    },
    /// The host CPU names something the model database does not know.
    #[error("{document}: {reason}")]
    Unresolved {
        /// The document's name.
        document: String,
        /// The unknown name or missing model.
        reason: String,
    },
}

/// One host document, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostReport {
    /// The host the document names in its prologue, if any.
    pub host: Option<String>,
    /// The view it holds.
    pub view: View,
    /// The host CPU, decoded (raw data) or as written.
    pub cpu: CpuDef,
    /// Its profile.
    pub profile: Profile,
    /// SHA-256 of the document's bytes.
    pub digest: [u8; 32],
}

/// Reads one host document of any supported shape.
///
/// # Errors
/// Malformed XML or CPU, a document that holds no host CPU or several, and
/// names the database does not know.
pub fn read_host_report(
    db: &Database,
    source: &str,
    text: &str,
) -> Result<HostReport, ReportError> {
    read_with(db, source, text, None)
}

/// How many distinct documents a [`HostReader`] remembers before it starts
/// again (a few KB each: a bounded cache, whatever the input).
const READER_CACHE: usize = 4096;

/// Reads host documents, deciding each distinct CPU once.
///
/// A fleet has many hosts and few distinct CPUs: the dumps of identical
/// machines differ only in their prologue (`<!-- host: NAME -->`). The
/// reader remembers the CPU and profile of each document body (everything
/// from the root element on, with the view its prologue names) it has read,
/// so the next host with the same body costs a hash lookup instead of a
/// parse and a decode. The answers are those of [`read_host_report`]; the
/// digest is always of the whole document. `Sync`: threads share one.
pub struct HostReader<'d> {
    db: &'d Database,
    seen: Seen,
}

impl<'d> HostReader<'d> {
    /// A reader that remembers nothing yet.
    pub fn new(db: &'d Database) -> Self {
        HostReader {
            db,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// [`read_host_report`], from memory when the body was read before.
    ///
    /// # Errors
    /// As [`read_host_report`].
    pub fn read(&self, source: &str, text: &str) -> Result<HostReport, ReportError> {
        read_with(self.db, source, text, Some(&self.seen))
    }
}

/// The documents a [`HostReader`] remembers, by view, then by body (looked
/// up by `&str`, so a lookup copies nothing).
type Seen = Mutex<HashMap<View, HashMap<Box<str>, (CpuDef, Profile)>>>;

fn read_with(
    db: &Database,
    source: &str,
    text: &str,
    seen: Option<&Seen>,
) -> Result<HostReport, ReportError> {
    let prologue = Prologue::scan(text);
    let not_host = |what: String| ReportError::NotHostCpu {
        document: source.to_string(),
        what,
    };
    let view = match prologue.root {
        "cpudata" => match prologue.note(VIEW_NOTE) {
            Some(v) if v == "kvm" || v.starts_with("kvm ") => View::Kvm,
            _ => View::RawCpuid,
        },
        "capabilities" => View::Capabilities,
        "domainCapabilities" => View::DomainCapabilities,
        "cpu" => View::HostCpu,
        "domain" => {
            return Err(not_host(
                "a domain definition holds a guest CPU, not a host CPU".into(),
            ))
        }
        // Anything else: a partial source, or what the reader below names
        // what is wrong with.
        _ => match cpumodel_cpudef::detect_partial(text) {
            Some(cpumodel_cpudef::PartialKind::Firecracker(_)) => View::Firecracker,
            Some(_) => View::LinuxFlags,
            None => View::HostCpu,
        },
    };
    let body = &text[prologue.body_start..];
    let host = prologue.note(HOST_NOTE).map(str::to_string);
    let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
    if let Some(seen) = seen {
        let known = seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&view)
            .and_then(|bodies| bodies.get(body))
            .cloned();
        if let Some((cpu, profile)) = known {
            return Ok(HostReport {
                host,
                view,
                cpu,
                profile,
                digest,
            });
        }
    }
    let mut cpus = parse_cpus(db, source, text)?;
    if cpus.len() != 1 {
        return Err(not_host(format!(
            "holds {} CPUs; a host document holds one",
            cpus.len()
        )));
    }
    let cpu = cpus.remove(0).cpu;
    // The host-model CPU of domain capabilities is written as a guest CPU.
    if cpu.kind != CpuKind::Host && view != View::DomainCapabilities {
        return Err(not_host("holds a guest CPU, not a host CPU".into()));
    }
    let profile = Profile::from_cpu(db, &cpu).map_err(|e| ReportError::Unresolved {
        document: source.to_string(),
        reason: e.to_string(),
    })?;
    if let Some(seen) = seen {
        let mut seen = seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.values().map(HashMap::len).sum::<usize>() >= READER_CACHE {
            seen.clear();
        }
        seen.entry(view)
            .or_default()
            .insert(body.into(), (cpu.clone(), profile));
    }
    Ok(HostReport {
        host,
        view,
        cpu,
        profile,
        digest,
    })
}
