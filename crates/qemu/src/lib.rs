//! QEMU's view of CPU models, read from its QMP replies.
//!
//! libvirt learns what a KVM guest can get by asking QEMU two questions:
//! `query-cpu-definitions` (which models exist and which features block each
//! one on this host) and `query-cpu-model-expansion` of the model `host`
//! (what the host CPU looks like to a guest). This crate reads recorded
//! replies to those questions, translates QEMU's feature names to the CPU
//! map's, and turns them into inputs for [`cpumodel_cpudef::decode()`].
//!
//! A replies file holds JSON objects one after another (not an array), each
//! a QMP reply with an `"id"`: `"definitions"` or `"model-expansion"`.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use cpumodel_cpudata::{CpuData, Item, Signature};
use cpumodel_cpudef::HypervisorModels;
use cpumodel_map::{Database, FeatureId};
use serde_json::Value;

/// A QMP replies file could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QmpError {
    /// The text is not a sequence of JSON objects.
    #[error("{file}:{line}:{column}: malformed JSON: {message}")]
    Json {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A reply lacks a key or has a value of the wrong type.
    #[error("{file}: reply '{reply}': {problem} '{key}'")]
    BadEntry {
        /// The file.
        file: String,
        /// The reply's id (or its position when it has none).
        reply: String,
        /// The key path inside the reply, like `return.model.props`.
        key: String,
        /// `missing key` or `wrong type for key`.
        problem: &'static str,
    },
    /// A required reply is absent.
    #[error("{file}: no reply with \"id\": \"{id}\"")]
    MissingReply {
        /// The file.
        file: String,
        /// The missing reply id.
        id: &'static str,
    },
    /// A family, model or stepping CPUID leaf 1 cannot encode.
    #[error("{file}: reply 'model-expansion': key 'return.model.props.{key}': {value} is not a CPU {key} (0 to {max})")]
    BadSignature {
        /// The file.
        file: String,
        /// `family`, `model` or `stepping`.
        key: String,
        /// The value.
        value: i64,
        /// The largest valid value.
        max: u32,
    },
    /// The expansion's vendor string is not 12 characters long.
    #[error("{file}: reply 'model-expansion': key 'return.model.props.vendor': '{vendor}' is not a 12-character CPUID vendor string")]
    BadVendor {
        /// The file.
        file: String,
        /// The value.
        vendor: String,
    },
}

/// One entry of `query-cpu-definitions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuDefinition {
    /// QEMU's model name.
    pub name: String,
    /// Features QEMU cannot provide for this model on this host (QEMU names);
    /// `None` when QEMU did not say.
    pub unavailable_features: Option<Vec<String>>,
    /// QEMU marks the model as deprecated.
    pub deprecated: bool,
}

/// A property value of a CPU model expansion.
#[derive(Clone, Debug, PartialEq)]
pub enum PropValue {
    /// A feature flag.
    Bool(bool),
    /// A number such as `family`.
    Number(i64),
    /// A string such as `vendor`.
    String(String),
}

/// The reply to `query-cpu-model-expansion`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelExpansion {
    /// The base model QEMU expanded into (`base`, `max`, ...).
    pub name: String,
    /// Properties in the order QEMU listed them.
    pub props: Vec<(String, PropValue)>,
}

/// The replies found in a file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QmpReplies {
    /// The `"definitions"` reply.
    pub definitions: Option<Vec<CpuDefinition>>,
    /// The `"model-expansion"` reply.
    pub expansion: Option<ModelExpansion>,
}

/// Parses a file of QMP replies.
///
/// # Errors
/// Malformed JSON (with line and column), or a `definitions` or
/// `model-expansion` reply with a missing or mistyped key (naming the reply
/// and the key).
pub fn parse_replies(file: &str, text: &str) -> Result<QmpReplies, QmpError> {
    let mut out = QmpReplies::default();
    for (n, value) in serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
    {
        let value = value.map_err(|e| QmpError::Json {
            file: file.to_string(),
            line: e.line().max(1),
            // serde_json says column 0 for the start of a line (an end of
            // input after a line feed): the first column.
            column: e.column().max(1),
            message: e
                .to_string()
                .split(" at line")
                .next()
                .unwrap_or_default()
                .to_string(),
        })?;
        let id = value.get("id").and_then(Value::as_str).unwrap_or_default();
        let bad = |key: &str, problem: &'static str| QmpError::BadEntry {
            file: file.to_string(),
            reply: if id.is_empty() {
                format!("#{}", n + 1)
            } else {
                id.to_string()
            },
            key: key.to_string(),
            problem,
        };
        match id {
            "definitions" => out.definitions = Some(parse_definitions(&value, &bad)?),
            "model-expansion" => out.expansion = Some(parse_expansion(&value, &bad)?),
            _ => {}
        }
    }
    Ok(out)
}

fn get<'v>(
    v: &'v Value,
    path: &str,
    bad: &dyn Fn(&str, &'static str) -> QmpError,
) -> Result<&'v Value, QmpError> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part).ok_or_else(|| bad(path, "missing key"))?;
    }
    Ok(cur)
}

fn parse_definitions(
    v: &Value,
    bad: &dyn Fn(&str, &'static str) -> QmpError,
) -> Result<Vec<CpuDefinition>, QmpError> {
    let list = get(v, "return", bad)?
        .as_array()
        .ok_or_else(|| bad("return", "wrong type for key"))?;
    list.iter()
        .enumerate()
        .map(|(i, d)| {
            let key = |k: &str| format!("return[{i}].{k}");
            let name = d
                .get("name")
                .ok_or_else(|| bad(&key("name"), "missing key"))?
                .as_str()
                .ok_or_else(|| bad(&key("name"), "wrong type for key"))?
                .to_string();
            let unavailable_features = match d.get("unavailable-features") {
                None => None,
                Some(a) => Some(
                    a.as_array()
                        .ok_or_else(|| bad(&key("unavailable-features"), "wrong type for key"))?
                        .iter()
                        .map(|f| f.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| bad(&key("unavailable-features"), "wrong type for key"))?,
                ),
            };
            let deprecated = match d.get("deprecated") {
                None => false,
                Some(b) => b
                    .as_bool()
                    .ok_or_else(|| bad(&key("deprecated"), "wrong type for key"))?,
            };
            Ok(CpuDefinition {
                name,
                unavailable_features,
                deprecated,
            })
        })
        .collect()
}

fn parse_expansion(
    v: &Value,
    bad: &dyn Fn(&str, &'static str) -> QmpError,
) -> Result<ModelExpansion, QmpError> {
    let model = get(v, "return.model", bad)?;
    let name = get(model, "name", &|_, p| bad("return.model.name", p))?
        .as_str()
        .ok_or_else(|| bad("return.model.name", "wrong type for key"))?
        .to_string();
    let props = match model.get("props") {
        None => Vec::new(),
        Some(p) => p
            .as_object()
            .ok_or_else(|| bad("return.model.props", "wrong type for key"))?
            .iter()
            .filter_map(|(k, v)| {
                let value = match v {
                    Value::Bool(b) => PropValue::Bool(*b),
                    // A number no i64 holds (above 2^63, or a fraction) is
                    // out of every range the signature accepts: kept as
                    // i64::MAX, so a family or model of it is refused
                    // rather than read as 0.
                    Value::Number(n) => PropValue::Number(n.as_i64().unwrap_or(i64::MAX)),
                    Value::String(s) => PropValue::String(s.clone()),
                    _ => return None,
                };
                Some((k.clone(), value))
            })
            .collect(),
    };
    Ok(ModelExpansion { name, props })
}

/// QEMU spellings of features whose CPU map name differs and which older
/// CPU maps carry no alias for (libvirt name, QEMU name).
const QEMU_NAMES: &[(&str, &str)] = &[
    ("cmp_legacy", "cmp-legacy"),
    ("ds_cpl", "ds-cpl"),
    ("fxsr_opt", "fxsr-opt"),
    ("kvm_pv_eoi", "kvm-pv-eoi"),
    ("kvm_pv_unhalt", "kvm-pv-unhalt"),
    ("lahf_lm", "lahf-lm"),
    ("nodeid_msr", "nodeid-msr"),
    ("pclmuldq", "pclmulqdq"),
    ("perfctr_core", "perfctr-core"),
    ("perfctr_nb", "perfctr-nb"),
    ("tsc_adjust", "tsc-adjust"),
];

/// How QEMU feature names are matched to CPU map features.
///
/// libvirt 10.7 matches a QEMU name to the map feature of the same name or
/// to one of QEMU's known alternative spellings, and ignores the map's
/// `<alias source='qemu'>` entries; that is [`QemuNames::Libvirt`], the
/// default, so answers match libvirt's. [`QemuNames::WithAliases`] also
/// applies the aliases, which names a few more features libvirt misses (for
/// example QEMU's misspelt `vmx-invept-single-context-noglobals`, which is
/// the map's `vmx-invvpid-single-context-noglobals`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QemuNames {
    /// Exact names and known spellings only, as libvirt.
    #[default]
    Libvirt,
    /// Also the CPU map's `qemu` aliases.
    WithAliases,
}

impl QemuNames {
    /// The CPU map feature a QEMU feature name refers to.
    pub fn feature(self, db: &Database, qemu_name: &str) -> Option<FeatureId> {
        db.find_feature_exact(qemu_name)
            .or_else(|| {
                QEMU_NAMES
                    .iter()
                    .find(|(_, q)| *q == qemu_name)
                    .and_then(|(l, _)| db.find_feature_exact(l))
            })
            .or_else(|| match self {
                QemuNames::Libvirt => None,
                QemuNames::WithAliases => db.find_feature_alias(qemu_name, "qemu"),
            })
    }
}

/// The CPU map feature a QEMU feature name refers to, as libvirt matches it
/// ([`QemuNames::Libvirt`]).
pub fn feature_from_qemu(db: &Database, qemu_name: &str) -> Option<FeatureId> {
    QemuNames::Libvirt.feature(db, qemu_name)
}

/// The QEMU spelling of a CPU map feature, as libvirt writes it on QEMU's
/// command line: one of QEMU's known alternative spellings, else the map name
/// (QEMU accepts libvirt's names for every other feature).
pub fn feature_to_qemu(db: &Database, id: FeatureId) -> String {
    let name = &db.feature(id).name;
    QEMU_NAMES
        .iter()
        .find(|(l, _)| *l == name)
        .map_or_else(|| name.to_string(), |(_, q)| (*q).to_string())
}

/// The models QEMU offers, with their blockers translated to map features
/// (blockers the map does not know are ignored, as libvirt does).
pub fn hypervisor_models(
    db: &Database,
    defs: &[CpuDefinition],
    names: QemuNames,
) -> HypervisorModels {
    HypervisorModels {
        models: defs
            .iter()
            .map(|d| {
                let blockers = d
                    .unavailable_features
                    .iter()
                    .flatten()
                    .filter_map(|q| names.feature(db, q))
                    .collect();
                (d.name.clone(), blockers)
            })
            .collect(),
    }
}

/// The CPU data a model expansion describes: its enabled features, vendor
/// string and family/model/stepping. Properties that are not features of the
/// map are ignored.
///
/// # Errors
/// [`QmpError::BadVendor`] when the vendor is not a 12-character string,
/// [`QmpError::BadSignature`] for a family, model or stepping out of range.
pub fn expansion_to_data(
    db: &Database,
    file: &str,
    exp: &ModelExpansion,
    names: QemuNames,
) -> Result<CpuData, QmpError> {
    let mut data = CpuData::new();
    let (mut family, mut model, mut stepping) = (0u32, 0u32, 0u32);
    for (name, value) in &exp.props {
        match value {
            PropValue::Bool(true) => {
                if let Some(f) = names.feature(db, name) {
                    data.add_all(&db.feature(f).data);
                }
            }
            PropValue::String(s) if name == "vendor" => {
                let bytes: [u8; 12] = s.as_bytes().try_into().map_err(|_| QmpError::BadVendor {
                    file: file.to_string(),
                    vendor: s.clone(),
                })?;
                let [ebx, edx, ecx] = cpumodel_cpudata::vendor_to_regs(&bytes);
                data.add(Item::cpuid(0, 0, 0, ebx, ecx, edx));
            }
            PropValue::Number(n) => {
                // The largest value CPUID leaf 1 can encode (base and
                // extended fields).
                let max = match name.as_str() {
                    "family" => 0xf + 0xff,
                    "model" => 0xff,
                    "stepping" => 0xf,
                    _ => continue,
                };
                let v = u32::try_from(*n)
                    .ok()
                    .filter(|&v| v <= max)
                    .ok_or_else(|| QmpError::BadSignature {
                        file: file.to_string(),
                        key: name.clone(),
                        value: *n,
                        max,
                    })?;
                match name.as_str() {
                    "family" => family = v,
                    "model" => model = v,
                    _ => stepping = v,
                }
            }
            _ => {}
        }
    }
    data.add(Item::cpuid(
        1,
        0,
        Signature {
            family,
            model,
            stepping,
        }
        .to_eax(),
        0,
        0,
        0,
    ));
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_concatenated_replies_and_reports_bad_entries() {
        let text = r#"{"return": {"model": {"name": "base", "props": {"vendor": "GenuineIntel", "family": 6, "model": 44, "stepping": 2, "pclmulqdq": true, "pni": true, "sse3": true, "vmx": false, "hv-spinlocks": -1}}}, "id": "model-expansion"}
{"return": [{"name": "Westmere", "unavailable-features": ["pclmulqdq"], "static": false}], "id": "definitions"}"#;
        let r = parse_replies("q.json", text).unwrap();
        let db = Database::embedded();
        let defs = r.definitions.unwrap();
        let hv = hypervisor_models(&db, &defs, QemuNames::Libvirt);
        assert_eq!(
            hv.models,
            [(
                "Westmere".to_string(),
                vec![db.find_feature_exact("pclmuldq").unwrap()]
            )]
        );
        let data = expansion_to_data(
            &db,
            "q.json",
            r.expansion.as_ref().unwrap(),
            QemuNames::Libvirt,
        )
        .unwrap();
        assert_eq!(&data.vendor_string().unwrap(), b"GenuineIntel");
        assert_eq!(data.signature(), 0x206c2);
        let (full, _) = db.features_in_data(&data);
        assert_eq!(
            db.feature_names(&full).collect::<Vec<_>>(),
            ["pni", "pclmuldq"]
        );

        let e = parse_replies(
            "q.json",
            r#"{"return": {"model": {}}, "id": "model-expansion"}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "q.json: reply 'model-expansion': missing key 'return.model.name'"
        );
        let e = parse_replies(
            "q.json",
            r#"{"return": [{"name": 3}], "id": "definitions"}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "q.json: reply 'definitions': wrong type for key 'return[0].name'"
        );
        let e = parse_replies("q.json", "{\"id\": \n").unwrap_err();
        assert!(
            e.to_string().starts_with("q.json:2:1: malformed JSON: EOF"),
            "{e}"
        );
    }

    #[test]
    fn qemu_names_translate_both_ways() {
        let db = Database::embedded();
        let f = db.find_feature_exact("pclmuldq").unwrap();
        assert_eq!(feature_from_qemu(&db, "pclmulqdq"), Some(f));
        assert_eq!(feature_to_qemu(&db, f), "pclmulqdq");
        assert_eq!(
            feature_from_qemu(&db, "lahf-lm"),
            db.find_feature_exact("lahf_lm")
        );
        assert_eq!(feature_from_qemu(&db, "no-such-thing"), None);
        let typo = "vmx-invept-single-context-noglobals";
        assert_eq!(feature_from_qemu(&db, typo), None);
        assert_eq!(
            QemuNames::WithAliases.feature(&db, typo),
            db.find_feature_exact("vmx-invvpid-single-context-noglobals")
        );
    }
}
