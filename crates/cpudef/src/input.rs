//! Reading CPU inputs from files, with errors that point into the file.

use cpumodel_cpudata::{parse_cpudata_node, CpuData};
use cpumodel_map::Database;
use cpumodel_xml::XmlError;
use cpumodel_xml::{elements, parse_u32, Source};
use roxmltree::Node;

use crate::decode::CpuFeatures;
use crate::error::DecodeError;

/// A CPU input could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The file is malformed or holds an invalid value.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// A Nova `cpu_info` JSON document is malformed or invalid.
    #[error(transparent)]
    CpuInfo(#[from] crate::cpuinfo::CpuInfoError),
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
