//! Nova's `cpu_info`: the JSON OpenStack Nova's libvirt driver stores for a
//! compute node (`compute_nodes.cpu_info`, written by the driver's
//! `_get_cpu_info`), read as a host CPU and written from one.
//!
//! The document is one JSON object:
//! `{"arch", "model", "vendor", "topology": {"cells", "sockets", "cores",
//! "threads"}, "features": [...], "maxphysaddr": {"mode", "bits"}}`. Its
//! `features` are every feature of the host CPU (Nova expands the
//! capabilities' host CPU with libvirt's baseline, so the model's own
//! features are listed too), so the document is a complete host CPU.
//!
//! Reading keeps the position of every value, so an error names the field
//! and its line and column: `host.json:4:17: topology.sockets: expected a
//! positive integer, found a string`.

use std::fmt;

use cpumodel_map::Database;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::def::{CpuDef, CpuKind, FeatureRef};
use crate::ops::{OpError, ResolvedCpu};
use crate::topology::Topology;

/// A `cpu_info` document that cannot be read: the file, the position of
/// the offending value, the field's path and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct CpuInfoError {
    /// The file (or other source name).
    pub file: String,
    /// 1-based line of the value.
    pub line: usize,
    /// 1-based column of the value, in characters.
    pub col: usize,
    /// The field's path (`topology.sockets`, `features[3]`), empty for the
    /// document itself.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CpuInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        if self.field.is_empty() {
            write!(f, "cpu_info: {}", self.message)
        } else {
            write!(f, "cpu_info field '{}': {}", self.field, self.message)
        }
    }
}

/// The topology of a [`NovaCpuInfo`], as libvirt's capabilities give it:
/// NUMA cells, sockets per cell, cores per socket, threads per core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct NovaTopology {
    /// The number of NUMA cells.
    pub cells: u32,
    /// Cores per socket.
    pub cores: u32,
    /// Sockets (per cell, as libvirt counts them).
    pub sockets: u32,
    /// Threads per core.
    pub threads: u32,
}

impl Default for NovaTopology {
    fn default() -> Self {
        NovaTopology {
            cells: 1,
            cores: 1,
            sockets: 1,
            threads: 1,
        }
    }
}

/// Nova's `cpu_info` of a compute node. Keys print sorted by name (as
/// every cpumodel JSON document); Nova's own order is arch, model, vendor,
/// topology, features, and JSON readers do not care.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NovaCpuInfo {
    /// The architecture (`x86_64`).
    pub arch: String,
    /// Every feature of the host CPU, sorted by name (Nova stores a set).
    pub features: Vec<String>,
    /// The host CPU model of libvirt's capabilities.
    pub model: String,
    /// The topology.
    pub topology: NovaTopology,
    /// The vendor (`Intel`, `AMD`, ...).
    pub vendor: Option<String>,
}

impl NovaCpuInfo {
    /// The `cpu_info` Nova stores for a host whose capabilities show `host`
    /// (a host `<cpu>` with a model): every feature of the CPU, model
    /// features included, as libvirt's expanding baseline lists them.
    ///
    /// # Errors
    /// A host without a model, or names `db` does not know.
    pub fn from_host(
        db: &Database,
        host: &CpuDef,
        topology: NovaTopology,
    ) -> Result<Self, OpError> {
        let model = host.model.clone().ok_or(OpError::NoModel)?;
        let all = ResolvedCpu::new(db, host)?.all;
        let mut features: Vec<String> = db.feature_names(&all).map(str::to_string).collect();
        features.sort_unstable();
        Ok(NovaCpuInfo {
            arch: host.arch.clone().unwrap_or_else(|| "x86_64".into()),
            features,
            model,
            topology,
            vendor: host.vendor.clone(),
        })
    }
}

/// True when `text` looks like a JSON object (its first non-space character
/// is `{`), the one shape of a `cpu_info`; every other host document is XML.
pub fn looks_like_cpu_info(text: &str) -> bool {
    text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n'])
        .starts_with('{')
}

/// The members of one JSON object in document order, each value kept as
/// its raw text (which points into the document, so its position is known).
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    out.push((key, map.next_value::<&'a RawValue>()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The elements of one JSON array, each kept as its raw text.
struct Elements<'a>(Vec<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Elements<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Elements<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<&'a RawValue>()? {
                    out.push(v);
                }
                Ok(Elements(out))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// Reading one document: its text and name, for positions.
struct Reader<'t> {
    file: &'t str,
    text: &'t str,
}

impl<'t> Reader<'t> {
    /// An error at byte `offset` of the document.
    fn error_at(&self, offset: usize, field: &str, message: impl Into<String>) -> CpuInfoError {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        CpuInfoError {
            file: self.file.to_string(),
            line,
            col: before[line_start..].chars().count() + 1,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The offset of `raw`, which points into the document.
    fn offset(&self, raw: &RawValue) -> usize {
        (raw.get().as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize)
    }

    /// An error about the value `raw`.
    fn error(&self, raw: &RawValue, field: &str, message: impl Into<String>) -> CpuInfoError {
        self.error_at(self.offset(raw), field, message)
    }

    /// A JSON syntax error of the whole document, at serde_json's position.
    fn syntax(&self, e: &serde_json::Error) -> CpuInfoError {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full);
        CpuInfoError {
            file: self.file.to_string(),
            line: e.line().max(1),
            col: e.column().max(1),
            field: String::new(),
            message: format!("invalid JSON: {message}"),
        }
    }

    /// The members of the object `raw` (the field `field`).
    fn object<'a>(&self, raw: &'a RawValue, field: &str) -> Result<Members<'a>, CpuInfoError> {
        if !raw.get().starts_with('{') {
            return Err(self.error(
                raw,
                field,
                format!("expected an object, found {}", kind(raw)),
            ));
        }
        serde_json::from_str(raw.get()).map_err(|e| self.error(raw, field, e.to_string()))
    }

    /// The string `raw`.
    fn string(&self, raw: &RawValue, field: &str) -> Result<String, CpuInfoError> {
        match serde_json::from_str::<String>(raw.get()) {
            Ok(s) if raw.get().starts_with('"') => Ok(s),
            _ => Err(self.error(
                raw,
                field,
                format!("expected a string, found {}", kind(raw)),
            )),
        }
    }

    /// The positive integer `raw`.
    fn count(&self, raw: &RawValue, field: &str) -> Result<u32, CpuInfoError> {
        match serde_json::from_str::<u32>(raw.get()) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(self.error(
                raw,
                field,
                format!("expected a positive integer, found {}", shown(raw)),
            )),
        }
    }
}

/// What kind of JSON value `raw` is, for messages.
fn kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// `raw` for a message: a number as written, any other value by its kind.
fn shown(raw: &RawValue) -> String {
    if kind(raw) == "a number" && raw.get().len() <= 32 {
        raw.get().to_string()
    } else {
        kind(raw).to_string()
    }
}

/// Takes the member `key` out of `members`, or fails naming it at `at`
/// (the object's raw value) under `path`.
fn take<'a>(
    r: &Reader<'_>,
    members: &mut Members<'a>,
    key: &str,
    at: &RawValue,
    path: &str,
) -> Result<&'a RawValue, CpuInfoError> {
    match members.0.iter().position(|(k, _)| k == key) {
        Some(i) => Ok(members.0.remove(i).1),
        None => Err(r.error(at, path, format!("missing field '{key}'"))),
    }
}

/// Refuses a key listed twice, or one the shape does not have.
fn only_known(
    r: &Reader<'_>,
    members: &Members<'_>,
    known: &[&str],
    prefix: &str,
) -> Result<(), CpuInfoError> {
    for (i, (key, value)) in members.0.iter().enumerate() {
        let path = format!("{prefix}{key}");
        if members.0[..i].iter().any(|(k, _)| k == key) {
            return Err(r.error(value, &path, "listed more than once"));
        }
        if !known.contains(&key.as_str()) {
            return Err(r.error(
                value,
                &path,
                format!("unknown field (expected one of: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Reads a `cpu_info` document as a host CPU: arch, model, vendor, the
/// topology (sockets, cores, threads) and every listed feature. With a
/// database, the model and feature names are checked against it, and an
/// unknown one is reported at its position.
///
/// # Errors
/// Invalid JSON, a top level that is not an object, a missing or unknown
/// field, a value of the wrong type (a topology count that is not a
/// positive integer, a feature that is not a string), a feature listed
/// twice, and, with `db`, an unknown model or feature name: one
/// [`CpuInfoError`] naming the field and its position.
pub fn parse_cpu_info(
    db: Option<&Database>,
    file: &str,
    text: &str,
) -> Result<CpuDef, CpuInfoError> {
    let r = Reader { file, text };
    let root: &RawValue = serde_json::from_str(text).map_err(|e| r.syntax(&e))?;
    let mut top = r.object(root, "")?;
    only_known(
        &r,
        &top,
        &[
            "arch",
            "model",
            "vendor",
            "topology",
            "features",
            "maxphysaddr",
        ],
        "",
    )?;
    // Each field in Nova's order, checked before the next is looked for.
    let mut cpu = CpuDef::new(CpuKind::Host);
    let arch_raw = take(&r, &mut top, "arch", root, "")?;
    cpu.arch = Some(r.string(arch_raw, "arch")?);
    let model_raw = take(&r, &mut top, "model", root, "")?;
    let model = r.string(model_raw, "model")?;
    if let Some(db) = db {
        db.resolve_model(&model)
            .map_err(|e| r.error(model_raw, "model", e.to_string()))?;
    }
    cpu.model = Some(model);
    let vendor_raw = take(&r, &mut top, "vendor", root, "")?;
    cpu.vendor = match vendor_raw.get() {
        "null" => None,
        _ => Some(r.string(vendor_raw, "vendor")?),
    };

    let topology_raw = take(&r, &mut top, "topology", root, "")?;
    let mut topo = r.object(topology_raw, "topology")?;
    only_known(
        &r,
        &topo,
        &["cells", "sockets", "cores", "threads"],
        "topology.",
    )?;
    let mut count = |key: &str| -> Result<u32, CpuInfoError> {
        let path = format!("topology.{key}");
        let raw = take(&r, &mut topo, key, topology_raw, "topology")?;
        r.count(raw, &path)
    };
    let (sockets, cores, threads) = (count("sockets")?, count("cores")?, count("threads")?);
    if let Some(cells) = topo.0.first().map(|(_, v)| *v) {
        r.count(cells, "topology.cells")?;
    }
    cpu.topology = Some(
        Topology::new(sockets, 1, 1, cores, threads)
            .map_err(|e| r.error(topology_raw, "topology", e.to_string()))?,
    );

    let features_raw = take(&r, &mut top, "features", root, "")?;
    if !features_raw.get().starts_with('[') {
        return Err(r.error(
            features_raw,
            "features",
            format!("expected an array of strings, found {}", kind(features_raw)),
        ));
    }
    let elements: Elements<'_> = serde_json::from_str(features_raw.get())
        .map_err(|e| r.error(features_raw, "features", e.to_string()))?;
    for (i, raw) in elements.0.iter().enumerate() {
        let path = format!("features[{i}]");
        let name = r.string(raw, &path)?;
        if name.is_empty() {
            return Err(r.error(raw, &path, "empty feature name"));
        }
        if cpu.features.iter().any(|f| f.name == name) {
            return Err(r.error(
                raw,
                &path,
                format!("feature '{name}' is listed more than once"),
            ));
        }
        if let Some(db) = db {
            db.resolve_feature(&name)
                .map_err(|e| r.error(raw, &path, e.to_string()))?;
        }
        cpu.features.push(FeatureRef { name, policy: None });
    }

    if let Some((_, raw)) = top.0.first() {
        // maxphysaddr: {"mode": string, "bits": integer}; not part of the CPU.
        let mut m = r.object(raw, "maxphysaddr")?;
        only_known(&r, &m, &["mode", "bits"], "maxphysaddr.")?;
        let mode = take(&r, &mut m, "mode", raw, "maxphysaddr")?;
        r.string(mode, "maxphysaddr.mode")?;
        if let Some((_, bits)) = m.0.first() {
            r.count(bits, "maxphysaddr.bits")?;
        }
    }
    Ok(cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"{"arch": "x86_64", "model": "Westmere", "vendor": "Intel",
 "topology": {"cells": 1, "sockets": 2, "cores": 4, "threads": 2},
 "features": ["vmx", "pclmuldq"]}"#;

    fn read(text: &str) -> Result<CpuDef, String> {
        let db = Database::embedded();
        parse_cpu_info(Some(&db), "i.json", text).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_a_cpu_info_as_a_host_cpu() {
        let cpu = read(INFO).unwrap();
        assert_eq!(cpu.kind, CpuKind::Host);
        assert_eq!(cpu.model.as_deref(), Some("Westmere"));
        assert_eq!(cpu.vendor.as_deref(), Some("Intel"));
        assert_eq!(cpu.topology.unwrap().vcpus(), 16);
        let names: Vec<&str> = cpu.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["vmx", "pclmuldq"]);
        assert!(looks_like_cpu_info(INFO));
        // Detected next to the XML shapes, by every reader of host documents.
        let db = Database::embedded();
        let cpus = crate::parse_known_cpus(&db, "i.json", INFO).unwrap();
        assert_eq!((cpus[0].origin.as_str(), &cpus[0].cpu), ("i.json", &cpu));
        match crate::parse_host(&db, "i.json", INFO).unwrap() {
            crate::HostInput::Cpu(def) => assert_eq!(def, cpu),
            other => panic!("{other:?}"),
        }
        assert!(!looks_like_cpu_info("<cpu/>"));
    }

    #[test]
    fn errors_name_the_field_and_its_position() {
        let cases = [
            (
                INFO.replace(r#""sockets": 2"#, r#""sockets": "two""#),
                "i.json:2:38: cpu_info field 'topology.sockets': expected a positive integer, found a string",
            ),
            (
                INFO.replace(r#""arch": "x86_64", "#, ""),
                "i.json:1:1: cpu_info: missing field 'arch'",
            ),
            (
                INFO.replace(r#""threads": 2"#, r#""threads": 0"#),
                "i.json:2:64: cpu_info field 'topology.threads': expected a positive integer, found 0",
            ),
            (
                INFO.replace(r#""cores": 4, "#, ""),
                "i.json:2:14: cpu_info field 'topology': missing field 'cores'",
            ),
            (
                INFO.replace(r#""pclmuldq""#, "7"),
                "i.json:3:22: cpu_info field 'features[1]': expected a string, found a number",
            ),
            (
                INFO.replace(r#""pclmuldq""#, r#""nosuch""#),
                "i.json:3:22: cpu_info field 'features[1]': unknown CPU feature 'nosuch'",
            ),
            (
                INFO.replace(r#""pclmuldq""#, r#""vmx""#),
                "i.json:3:22: cpu_info field 'features[1]': feature 'vmx' is listed more than once",
            ),
            (
                INFO.replace(r#""features": ["#, r#""feature": ["#),
                "i.json:3:13: cpu_info field 'feature': unknown field (expected one of: arch, model, vendor, topology, features, maxphysaddr)",
            ),
            (
                INFO.replace("Westmere", "Westmeer"),
                "i.json:1:29: cpu_info field 'model': unknown CPU model 'Westmeer'; did you mean 'Westmere'?",
            ),
            (
                "[1, 2]".to_string(),
                "i.json:1:1: cpu_info: expected an object, found an array",
            ),
            (
                "{\"arch\": }".to_string(),
                "i.json:1:10: cpu_info: invalid JSON: expected value",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(read(&text).unwrap_err(), want, "{text}");
        }
    }

    #[test]
    fn writes_every_feature_and_reads_back_the_same_cpu() {
        let db = Database::embedded();
        let host = read(INFO).unwrap();
        let info = NovaCpuInfo::from_host(&db, &host, NovaTopology::default()).unwrap();
        let westmere = db.model(db.find_model("Westmere").unwrap()).features.len();
        assert_eq!(info.features.len(), westmere + 2);
        let text = serde_json::to_string(&info).unwrap();
        let back = read(&text).unwrap();
        assert_eq!(
            ResolvedCpu::new(&db, &back).unwrap().all,
            ResolvedCpu::new(&db, &host).unwrap().all
        );
        assert_eq!(back.model, host.model);
    }
}
