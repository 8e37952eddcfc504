//! Reading CPU inputs from files, with errors that point into the file.

use cpumodel_cpudata::{parse_cpudata_node, CpuData};
use cpumodel_map::Database;
use cpumodel_xml::XmlError;
use cpumodel_xml::{elements, parse_u32, Source};
use roxmltree::Node;

use crate::decode::CpuFeatures;
use crate::error::DecodeError;
use crate::linux::{detect_linux_text, LinuxText, ShownData};

/// A CPU input could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The file is malformed or holds an invalid value.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// A Nova `cpu_info` JSON document is malformed or invalid.
    #[error(transparent)]
    CpuInfo(#[from] crate::cpuinfo::CpuInfoError),
    /// A `/proc/cpuinfo` or `lscpu` output is malformed or not x86.
    #[error(transparent)]
    Linux(#[from] crate::linux::LinuxInputError),
    /// A Firecracker CPU template or fingerprint is malformed.
    #[error(transparent)]
    Firecracker(#[from] crate::firecracker::FirecrackerError),
}

/// A host's raw CPU data as read from a document, and what decode needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostData {
    /// The data (for a partial source, the bits it shows set).
    pub data: CpuData,
    /// Vendor, signature and features; `undetermined` names what a
    /// partial source cannot show.
    pub features: CpuFeatures,
    /// For a partial source (Linux's flags, a Firecracker template): what
    /// it is and the flag names it holds that the kernel table lacks.
    pub partial: Option<PartialSource>,
}

/// What a partial source was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialSource {
    /// `/proc/cpuinfo`, `lscpu`, `Firecracker template`.
    pub source: &'static str,
    /// Flag names the kernel table does not know, left out.
    pub unknown_flags: Vec<String>,
}

/// The shapes of a partial source: a document of raw CPU bits that is not
/// a `<cpudata>` dump and shows only some bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartialKind {
    /// `/proc/cpuinfo` or `lscpu` text.
    LinuxText(LinuxText),
    /// `lscpu --json`.
    LscpuJson,
    /// A Firecracker CPU template or fingerprint.
    Firecracker(crate::firecracker::FirecrackerDocument),
}

/// Which partial source `text` is, detected from the document: Linux's
/// `/proc/cpuinfo` or `lscpu` (text or JSON), or a Firecracker CPU template
/// or fingerprint. `None` for every other document.
pub fn detect_partial(text: &str) -> Option<PartialKind> {
    if let Some(kind) = detect_linux_text(text) {
        return Some(PartialKind::LinuxText(kind));
    }
    if !crate::cpuinfo::looks_like_cpu_info(text) {
        return None;
    }
    // The top-level keys of a JSON object tell its kind.
    let keys: Vec<String> =
        serde_json::from_str::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(text)
            .ok()?
            .into_keys()
            .collect();
    if keys.iter().any(|k| k == "lscpu") {
        return Some(PartialKind::LscpuJson);
    }
    crate::firecracker::detect_firecracker(&keys).map(PartialKind::Firecracker)
}

/// The bits of a partial source ([`detect_partial`]); `None` for every
/// other document.
fn shown_data(source: &str, text: &str) -> Option<Result<ShownData, InputError>> {
    Some(match detect_partial(text)? {
        PartialKind::LinuxText(LinuxText::CpuInfo) => {
            crate::linux::parse_proc_cpuinfo(source, text).map_err(InputError::from)
        }
        PartialKind::LinuxText(LinuxText::Lscpu) => {
            crate::linux::parse_lscpu(source, text).map_err(InputError::from)
        }
        PartialKind::LscpuJson => {
            crate::linux::parse_lscpu_json(source, text).map_err(InputError::from)
        }
        PartialKind::Firecracker(kind) => {
            crate::firecracker::parse_firecracker(source, text, kind).map_err(InputError::from)
        }
    })
}

/// MSRs that exist only when a CPUID bit is set (Intel SDM): reading them
/// otherwise faults. A source that shows the bit clear shows these MSRs
/// too: every bit of them is absent. `(leaf, subleaf, register, bit, MSRs)`.
const GATED_MSRS: &[(u32, u32, usize, u32, std::ops::RangeInclusive<u32>)] = &[
    // CPUID.01H:ECX.VMX[5]: the IA32_VMX_* capability MSRs.
    (1, 0, 2, 5, 0x480..=0x493),
    // CPUID.(07H,0):EDX.ARCH_CAPABILITIES[29]: IA32_ARCH_CAPABILITIES.
    (7, 0, 3, 29, 0x10a..=0x10a),
];

/// Marks as shown the MSRs whose gating CPUID bit `shown` shows clear.
fn show_gated_msrs(shown: &mut ShownData) {
    for (leaf, subleaf, reg, bit, msrs) in GATED_MSRS {
        let key = cpumodel_cpudata::ItemKey::cpuid(*leaf, *subleaf);
        let is = |d: &CpuData| d.get(key).is_some_and(|i| i.regs[*reg] & (1 << bit) != 0);
        if is(&shown.shown) && !is(&shown.data) {
            for index in msrs.clone() {
                shown
                    .shown
                    .add(cpumodel_cpudata::Item::msr_value(index, u64::MAX));
            }
        }
    }
}

/// A partial source whose data cannot be decoded (an unknown vendor, no
/// model), as an error naming the file.
pub(crate) fn partial_error(source: &str, e: &DecodeError) -> InputError {
    crate::linux::LinuxInputError {
        file: source.to_string(),
        line: 0,
        message: e.to_string(),
    }
    .into()
}

/// [`shown_data`] with its features read against `db`.
pub(crate) fn shown_host(
    db: &Database,
    source: &str,
    text: &str,
) -> Option<Result<HostData, InputError>> {
    let mut shown = match shown_data(source, text)? {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    show_gated_msrs(&mut shown);
    Some(
        match CpuFeatures::from_shown(db, &shown.data, &shown.shown) {
            Ok(features) => Ok(HostData {
                data: shown.data,
                features,
                partial: Some(PartialSource {
                    source: shown.source,
                    unknown_flags: shown.unknown_flags,
                }),
            }),
            Err(e) => Err(partial_error(source, &e)),
        },
    )
}

/// Reads a host's raw CPU data from any raw shape: a `<cpudata>` dump, or
/// a partial source ([`HostData::partial`]): `/proc/cpuinfo`, `lscpu`
/// (text or `--json`), a Firecracker CPU template or fingerprint.
///
/// # Errors
/// Everything [`host_features_from_cpudata`] rejects, and a malformed
/// partial source.
pub fn read_host_data(db: &Database, source: &str, text: &str) -> Result<HostData, InputError> {
    if let Some(host) = shown_host(db, source, text) {
        return host;
    }
    let (data, features) = host_features_from_cpudata(db, source, text)?;
    Ok(HostData {
        data,
        features,
        partial: None,
    })
}

/// Parses a `<cpudata>` dump and reads vendor, signature and features from it.
///
/// # Errors
/// Everything [`cpumodel_cpudata::parse_cpudata`] rejects, and a CPUID leaf 0
/// vendor string the map does not know (the error points at that `<cpuid>`).
pub fn host_features_from_cpudata(
    db: &Database,
    source: &str,
    text: &str,
) -> Result<(CpuData, CpuFeatures), InputError> {
    if let Some(data) = cpumodel_cpudata::parse_cpudata_light(text) {
        if let Ok(features) = CpuFeatures::from_data(db, &data) {
            return Ok((data, features));
        }
    }
    let src = Source(source);
    let doc = src.parse(text)?;
    let root = doc.root_element();
    if !root.has_tag_name("cpudata") {
        return Err(src.error(root, "expected a <cpudata> element").into());
    }
    let data = parse_cpudata_node(&src, root)?;
    let features = cpudata_features(db, &src, root, &data)?;
    Ok((data, features))
}

/// Vendor, signature and features of parsed `<cpudata>`; an unknown vendor
/// string is reported at the leaf 0 `<cpuid>` element.
pub(crate) fn cpudata_features(
    db: &Database,
    src: &Source<'_>,
    root: Node<'_, '_>,
    data: &CpuData,
) -> Result<CpuFeatures, InputError> {
    match CpuFeatures::from_data(db, data) {
        Ok(f) => Ok(f),
        Err(e @ DecodeError::UnknownVendor { .. }) => {
            let leaf0 = elements(root)
                .find(|n| {
                    n.has_tag_name("cpuid")
                        && n.attribute("eax_in").and_then(parse_u32) == Some(0)
                        && n.attribute("ecx_in").and_then(parse_u32).unwrap_or(0) == 0
                })
                .unwrap_or(root);
            Err(src.error(leaf0, e.to_string()).into())
        }
        Err(e) => Err(src.error(root, e.to_string()).into()),
    }
}

/// A host as read from a document: a raw dump, or a CPU definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostInput {
    /// A `<cpudata>` dump, to be decoded as a host CPU.
    Dump {
        /// The dump.
        data: CpuData,
        /// Its vendor, signature and features.
        features: CpuFeatures,
    },
    /// The first CPU definition of any other supported document
    /// (capabilities, a host `<cpu>`, ...), names checked.
    Cpu(crate::def::CpuDef),
}

/// Reads a host from a document of any supported shape, detected from the
/// document's root element as [`crate::parse_cpus`] detects it: a dump keeps
/// its raw features (so host-model can be decoded from them), every other
/// shape gives its first CPU definition.
///
/// # Errors
/// Everything [`host_features_from_cpudata`] rejects for a dump, and
/// everything [`crate::parse_known_cpus`] rejects otherwise.
pub fn parse_host(db: &Database, source: &str, text: &str) -> Result<HostInput, InputError> {
    if let Some(host) = shown_host(db, source, text) {
        let host = host?;
        return Ok(HostInput::Dump {
            data: host.data,
            features: host.features,
        });
    }
    let src = Source(source);
    if let Ok(doc) = src.parse(text) {
        let root = doc.root_element();
        if root.has_tag_name("cpudata") {
            let data = parse_cpudata_node(&src, root)?;
            let features = cpudata_features(db, &src, root, &data)?;
            return Ok(HostInput::Dump { data, features });
        }
    }
    let mut cpus = crate::parse_known_cpus(db, source, text)?;
    Ok(HostInput::Cpu(cpus.remove(0).cpu))
}
