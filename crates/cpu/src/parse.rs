//! Reading `<cpu>` definitions from any of the documents libvirt puts them in.
//!
//! Operators have CPUs in many shapes: a bare `<cpu>`, `virsh capabilities`
//! output, `virsh domcapabilities` output, a domain XML, libvirt's
//! `<cpuTest>` files, or a raw `<cpudata>` dump. [`parse_cpus`] accepts all
//! of them, detected from the document itself, so fleet tooling can feed
//! whatever it collected.

use cpumodel_data::xml::{child, child_text, elements, Source};
use cpumodel_data::{parse_cpudata_node, XmlError};
use cpumodel_map::Database;
use roxmltree::Node;

use crate::decode::{decode, DecodeOptions};
use crate::def::{
    Check, CpuDef, CpuKind, Fallback, FeatureRef, Match, Mode, Policy, SignatureDef, Topology,
};
use crate::input::{cpudata_features, InputError};

/// One CPU read from a file, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcedCpu {
    /// `file` or `file:line` of the element.
    pub origin: String,
    /// The definition.
    pub cpu: CpuDef,
}

/// Parses every CPU in a document of any supported shape.
///
/// Raw `<cpudata>` dumps are decoded as host CPUs against `db`.
///
/// # Errors
/// Malformed XML, an invalid `<cpu>` (unknown mode, match, policy or
/// fallback, zero topology value, duplicate feature, ...), an unknown vendor
/// string in a dump, or a document with no CPU in it.
pub fn parse_cpus(db: &Database, source: &str, text: &str) -> Result<Vec<SourcedCpu>, InputError> {
    parse_cpus_with(db, source, text, false)
}

/// [`parse_cpus`], also checking every model and feature name against `db`:
/// an unknown name is reported at its `<model>` or `<feature>` element, so
/// the operations that resolve the names afterwards cannot fail on them.
///
/// # Errors
/// Everything [`parse_cpus`] rejects, and unknown model or feature names.
pub fn parse_known_cpus(
    db: &Database,
    source: &str,
    text: &str,
) -> Result<Vec<SourcedCpu>, InputError> {
    parse_cpus_with(db, source, text, true)
}

fn parse_cpus_with(
    db: &Database,
    source: &str,
    text: &str,
    check: bool,
) -> Result<Vec<SourcedCpu>, InputError> {
    if text.len() >= PARALLEL_MIN_BYTES && looks_like_several_cpus(text) {
        if let Some(cpus) = parse_several_in_parallel(db, source, text, check) {
            return Ok(cpus);
        }
    }
    let src = Source(source);
    let wrapped;
    let doc = if looks_like_several_cpus(text) {
        // Several top-level <cpu> elements are not one XML document; read
        // them inside a synthetic wrapper. Any problem is reported by the
        // plain parse below, which has the exact positions.
        wrapped = format!("<cpus>{}</cpus>", strip_declaration(text));
        match roxmltree::Document::parse(&wrapped) {
            Ok(d) => d,
            Err(_) => src.parse(text)?,
        }
    } else {
        src.parse(text)?
    };
    let root = doc.root_element();
    // Line numbers from one forward pass (roxmltree's own lookup rescans the
    // text from the start each time, which is quadratic for fleet files).
    let text_seen = doc.input_text();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            text_seen
                .bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let origin = |n: Node<'_, '_>| {
        let line = line_starts.partition_point(|&start| start <= n.range().start);
        format!("{source}:{line}")
    };
    let checked = |n: Node<'_, '_>, cpu: CpuDef| -> Result<SourcedCpu, InputError> {
        if check {
            check_names(db, &src, n, &cpu)?;
        }
        Ok(SourcedCpu {
            origin: origin(n),
            cpu,
        })
    };
    let parse = |n: Node<'_, '_>, kind: Option<CpuKind>| -> Result<SourcedCpu, InputError> {
        checked(n, parse_cpu_node(&src, n, kind)?)
    };
    let cpus: Vec<SourcedCpu> = match root.tag_name().name() {
        "cpu" => vec![parse(root, None)?],
        "cpus" => elements(root)
            .filter(|n| n.has_tag_name("cpu"))
            .map(|n| parse(n, None))
            .collect::<Result<_, _>>()?,
        "cpuTest" => elements(root)
            .filter(|n| n.has_tag_name("cpu"))
            .map(|n| parse(n, Some(CpuKind::Host)))
            .collect::<Result<_, _>>()?,
        "capabilities" => child(root, "host")
            .and_then(|h| child(h, "cpu"))
            .map(|n| parse(n, Some(CpuKind::Host)))
            .transpose()?
            .into_iter()
            .collect(),
        "domain" => child(root, "cpu")
            .map(|n| parse(n, None))
            .transpose()?
            .into_iter()
            .collect(),
        "domainCapabilities" => {
            let mode = child(root, "cpu").and_then(|c| {
                elements(c)
                    .find(|m| m.has_tag_name("mode") && m.attribute("name") == Some("host-model"))
            });
            match mode {
                Some(m) => vec![checked(m, parse_host_model_mode(&src, m)?)?],
                None => Vec::new(),
            }
        }
        "cpudata" => {
            let data = parse_cpudata_node(&src, root)?;
            let features = cpudata_features(db, &src, root, &data)?;
            let decoded = decode(db, &features, &DecodeOptions::new(CpuKind::Host))
                .map_err(|e| InputError::from(src.error(root, e.to_string())))?;
            vec![SourcedCpu {
                origin: source.to_string(),
                cpu: decoded.to_cpu_def(db, CpuKind::Host),
            }]
        }
        other => {
            return Err(src
                .error(root, format!("<{other}> holds no CPU definition"))
                .into())
        }
    };
    if cpus.is_empty() {
        return Err(src
            .error(root, "no CPU definition found in this document")
            .into());
    }
    Ok(cpus)
}

/// Fails on the first model or feature name of `cpu` (parsed from `n`) that
/// `db` does not know, pointing at its element.
fn check_names(
    db: &Database,
    src: &Source<'_>,
    n: Node<'_, '_>,
    cpu: &CpuDef,
) -> Result<(), XmlError> {
    // The common case: every name resolves; look for positions only on failure.
    if crate::ops::ResolvedCpu::new(db, cpu).is_ok() {
        return Ok(());
    }
    if let Some(name) = &cpu.model {
        if let Err(e) = db.find_model(name) {
            return Err(src.error(child(n, "model").unwrap_or(n), e.to_string()));
        }
    }
    for f in elements(n).filter(|f| f.has_tag_name("feature")) {
        if let Some(name) = f.attribute("name") {
            db.find_feature(name)
                .map_err(|e| src.error(f, e.to_string()))?;
        }
    }
    Ok(())
}

/// Fleet files with many top-level `<cpu>` elements are split at element
/// boundaries and parsed on two threads above this size.
const PARALLEL_MIN_BYTES: usize = 32 * 1024;

/// The fast path for big files of top-level `<cpu>` elements: each element is
/// parsed on its own, half of them on a second thread. Returns `None` when
/// anything looks unusual (the caller then parses the whole document, which
/// also gives exact error positions).
fn parse_several_in_parallel(
    db: &Database,
    source: &str,
    text: &str,
    check: bool,
) -> Option<Vec<SourcedCpu>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while let Some(end) = text[start..].find("</cpu>") {
        let end = start + end + "</cpu>".len();
        chunks.push((start, end));
        start = end;
    }
    if chunks.len() < 2 || !text[start..].trim().is_empty() {
        return None;
    }
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let parse_range = |range: &[(usize, usize)]| -> Option<Vec<SourcedCpu>> {
        let src = Source(source);
        range
            .iter()
            .map(|&(a, b)| {
                let piece = if a == 0 {
                    strip_declaration(&text[..b])
                } else {
                    &text[a..b]
                };
                let offset = b - piece.len();
                let doc = roxmltree::Document::parse(piece).ok()?;
                let root = doc.root_element();
                if !root.has_tag_name("cpu") {
                    return None;
                }
                let cpu = parse_cpu_node(&src, root, None).ok()?;
                if check && crate::ops::ResolvedCpu::new(db, &cpu).is_err() {
                    return None;
                }
                let line = line_starts.partition_point(|&l| l <= offset + root.range().start);
                Some(SourcedCpu {
                    origin: format!("{source}:{line}"),
                    cpu,
                })
            })
            .collect()
    };
    let (first, second) = chunks.split_at(chunks.len() / 2);
    let (a, b) = std::thread::scope(|scope| {
        let other = scope.spawn(|| parse_range(second));
        (parse_range(first), other.join().ok().flatten())
    });
    let mut cpus = a?;
    cpus.extend(b?);
    Some(cpus)
}

/// True when the text starts with a `<cpu>` element and another one follows
/// the first one's end.
fn looks_like_several_cpus(text: &str) -> bool {
    let body = strip_declaration(text).trim_start();
    body.starts_with("<cpu")
        && !body.starts_with("<cpuTest")
        && !body.starts_with("<cpudata")
        && body
            .find("</cpu>")
            .is_some_and(|end| body[end + 6..].contains("<cpu"))
}

fn strip_declaration(text: &str) -> &str {
    let t = text.trim_start();
    if t.starts_with("<?xml") {
        t.find("?>").map_or(t, |i| &t[i + 2..])
    } else {
        t
    }
}

/// The host-model `<mode>` of domain capabilities as a guest CPU.
fn parse_host_model_mode(src: &Source<'_>, mode: Node<'_, '_>) -> Result<CpuDef, InputError> {
    let mut cpu = CpuDef::new(CpuKind::Guest);
    cpu.match_ = Some(Match::Exact);
    let model =
        child(mode, "model").ok_or_else(|| src.error(mode, "host-model mode without <model>"))?;
    cpu.model = Some(model.text().unwrap_or("").trim().to_string());
    cpu.fallback = Some(
        parse_enum(src, model, "fallback", Fallback::parse, Fallback::spellings)?
            .unwrap_or(Fallback::Forbid),
    );
    cpu.vendor = child_text(mode, "vendor").map(str::to_string);
    cpu.features = parse_features(src, mode, CpuKind::Guest)?;
    Ok(cpu)
}

fn parse_enum<T>(
    src: &Source<'_>,
    n: Node<'_, '_>,
    attr: &str,
    parse: impl Fn(&str) -> Option<T>,
    spellings: impl Fn() -> String,
) -> Result<Option<T>, XmlError> {
    match n.attribute(attr) {
        None => Ok(None),
        Some(v) => parse(v).map(Some).ok_or_else(|| {
            src.error(
                n,
                format!("invalid {attr}='{v}' (expected one of: {})", spellings()),
            )
        }),
    }
}

fn nonzero(
    src: &Source<'_>,
    n: Node<'_, '_>,
    attr: &str,
    default: Option<u32>,
) -> Result<u32, XmlError> {
    let Some(v) = n.attribute(attr) else {
        return default.ok_or_else(|| src.error(n, format!("missing attribute '{attr}'")));
    };
    match v.trim().parse::<u32>() {
        Ok(0) => Err(src.error(n, format!("{attr}='0': topology values must be at least 1"))),
        Ok(x) => Ok(x),
        Err(_) => Err(src.error(n, format!("{attr}='{v}' is not a positive integer"))),
    }
}

fn parse_features(
    src: &Source<'_>,
    node: Node<'_, '_>,
    kind: CpuKind,
) -> Result<Vec<FeatureRef>, XmlError> {
    let mut out: Vec<FeatureRef> = Vec::new();
    for f in elements(node).filter(|n| n.has_tag_name("feature")) {
        let name = f
            .attribute("name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| src.error(f, "missing feature name"))?;
        let policy = match kind {
            CpuKind::Host => None,
            CpuKind::Guest => Some(
                parse_enum(src, f, "policy", Policy::parse, Policy::spellings)?
                    .unwrap_or(Policy::Require),
            ),
        };
        if out.iter().any(|x| x.name == name) {
            return Err(src.error(f, format!("feature '{name}' is listed more than once")));
        }
        out.push(FeatureRef {
            name: name.to_string(),
            policy,
        });
    }
    Ok(out)
}

/// Parses one `<cpu>` element. `kind` forces host or guest; `None` detects it
/// as libvirt does (an `<arch>` child means host).
///
/// # Errors
/// Any invalid attribute or child, naming the element.
pub fn parse_cpu_node(
    src: &Source<'_>,
    n: Node<'_, '_>,
    kind: Option<CpuKind>,
) -> Result<CpuDef, XmlError> {
    let has_arch = child(n, "arch").is_some();
    let kind = match kind {
        Some(k) => k,
        None if has_arch => {
            if n.attribute("match").is_some() {
                return Err(src.error(
                    n,
                    "a CPU with <arch> is a host CPU and cannot have a 'match' attribute",
                ));
            }
            CpuKind::Host
        }
        None => CpuKind::Guest,
    };
    let mut cpu = CpuDef::new(kind);
    if let Some(mode) = parse_enum(src, n, "mode", Mode::parse, Mode::spellings)? {
        if kind == CpuKind::Host {
            return Err(src.error(n, "attribute 'mode' is only allowed for guest CPUs"));
        }
        cpu.mode = mode;
    }
    if let Some(m) = n.attribute("migratable") {
        if !matches!(cpu.mode, Mode::HostPassthrough | Mode::Maximum) {
            return Err(src.error(
                n,
                "attribute 'migratable' is only allowed for host-passthrough and maximum CPUs",
            ));
        }
        cpu.migratable = Some(match m {
            "on" => true,
            "off" => false,
            v => {
                return Err(src.error(
                    n,
                    format!("invalid migratable='{v}' (expected one of: on, off)"),
                ))
            }
        });
    }
    if kind == CpuKind::Guest {
        cpu.match_ = parse_enum(src, n, "match", Match::parse, Match::spellings)?;
        cpu.check = parse_enum(src, n, "check", Check::parse, Check::spellings)?;
    }
    if kind == CpuKind::Host {
        cpu.arch = child_text(n, "arch").map(str::to_string);
        if let Some(s) = child(n, "signature") {
            cpu.signature = Some(SignatureDef {
                family: nonzero(src, s, "family", None)?,
                model: src.req_u32_attr(s, "model")?,
                stepping: src.req_u32_attr(s, "stepping")?,
            });
        }
    }
    if let Some(model) = child(n, "model") {
        let name = model.text().unwrap_or("").trim();
        if !name.is_empty() {
            cpu.model = Some(name.to_string());
        }
        if kind == CpuKind::Guest && !matches!(cpu.mode, Mode::HostPassthrough | Mode::Maximum) {
            cpu.fallback =
                parse_enum(src, model, "fallback", Fallback::parse, Fallback::spellings)?;
            if let Some(v) = model.attribute("vendor_id") {
                if v.len() != 12 || v.contains(',') {
                    return Err(src.error(
                        model,
                        format!("vendor_id='{v}' must be exactly 12 characters without commas"),
                    ));
                }
                cpu.vendor_id = Some(v.to_string());
            }
        }
    }
    if kind == CpuKind::Host && cpu.model.is_none() {
        return Err(src.error(n, "host CPU without a <model>"));
    }
    cpu.vendor = child_text(n, "vendor").map(str::to_string);
    if cpu.vendor.is_some() && cpu.model.is_none() {
        return Err(src.error(n, "<vendor> given without a <model>"));
    }
    if let Some(t) = child(n, "topology") {
        cpu.topology = Some(Topology {
            sockets: nonzero(src, t, "sockets", None)?,
            dies: nonzero(src, t, "dies", Some(1))?,
            clusters: nonzero(src, t, "clusters", Some(1))?,
            cores: nonzero(src, t, "cores", None)?,
            threads: nonzero(src, t, "threads", None)?,
        });
    }
    cpu.features = parse_features(src, n, kind)?;
    if !cpu.features.is_empty() && cpu.model.is_none() && cpu.mode == Mode::Custom {
        return Err(src.error(n, "features listed without a CPU model"));
    }
    Ok(cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<CpuDef, String> {
        let db = Database::embedded();
        parse_cpus(&db, "c.xml", text)
            .map(|mut v| v.remove(0).cpu)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_and_reformats_a_guest_cpu() {
        let text = "<cpu mode='custom' match='strict' check='partial'>\n  <model fallback='forbid' vendor_id='GenuineIntel'>Haswell</model>\n  <vendor>Intel</vendor>\n  <topology sockets='2' dies='1' clusters='1' cores='4' threads='2'/>\n  <feature policy='force' name='pcid'/>\n  <feature policy='forbid' name='vmx'/>\n</cpu>\n";
        let cpu = one(text).unwrap();
        assert_eq!(cpu.kind, CpuKind::Guest);
        assert_eq!(cpu.topology.unwrap().vcpus(), 16);
        assert_eq!(cpu.to_xml(), text);
    }

    #[test]
    fn detects_document_shapes() {
        let db = Database::embedded();
        let caps = "<capabilities><host><cpu><arch>x86_64</arch><model>Westmere</model><vendor>Intel</vendor><feature name='vmx'/></cpu></host></capabilities>";
        let cpus = parse_cpus(&db, "caps.xml", caps).unwrap();
        assert_eq!(
            (cpus[0].cpu.kind, cpus[0].origin.as_str()),
            (CpuKind::Host, "caps.xml:1")
        );
        let two = "<cpu><model>Westmere</model></cpu>\n<cpu><model>Nehalem</model></cpu>\n";
        let cpus = parse_cpus(&db, "two.xml", two).unwrap();
        assert_eq!(cpus.len(), 2);
        assert_eq!(cpus[1].cpu.model.as_deref(), Some("Nehalem"));
        let domcaps = "<domainCapabilities><cpu><mode name='host-passthrough' supported='yes'/><mode name='host-model' supported='yes'><model fallback='forbid'>EPYC</model><vendor>AMD</vendor><feature policy='disable' name='svm'/></mode></cpu></domainCapabilities>";
        let cpu = &parse_cpus(&db, "d.xml", domcaps).unwrap()[0].cpu;
        assert_eq!(cpu.model.as_deref(), Some("EPYC"));
        assert_eq!(cpu.features[0].policy, Some(Policy::Disable));
        let dom = "<domain type='kvm'><name>x</name><cpu mode='host-passthrough' migratable='on'/></domain>";
        assert_eq!(
            parse_cpus(&db, "dom.xml", dom).unwrap()[0].cpu.mode,
            Mode::HostPassthrough
        );
    }

    #[test]
    fn invalid_definitions_name_the_element() {
        assert_eq!(
            one("<cpu>\n<model>Westmere</model>\n<feature policy='maybe' name='vmx'/></cpu>").unwrap_err(),
            "c.xml:3:1: <feature>: invalid policy='maybe' (expected one of: force, require, optional, disable, forbid)"
        );
        assert_eq!(
            one("<cpu><topology sockets='0' cores='1' threads='1'/></cpu>").unwrap_err(),
            "c.xml:1:6: <topology>: sockets='0': topology values must be at least 1"
        );
        assert_eq!(
            one("<domain><name>x</name></domain>").unwrap_err(),
            "c.xml:1:1: <domain>: no CPU definition found in this document"
        );
        assert_eq!(
            one("<foo/>").unwrap_err(),
            "c.xml:1:1: <foo>: <foo> holds no CPU definition"
        );
    }

    #[test]
    fn unknown_names_are_reported_at_their_element_when_checked() {
        let db = Database::embedded();
        let check = |text: &str| parse_known_cpus(&db, "c.xml", text).map_err(|e| e.to_string());
        let feature = "<cpu>\n<model>Westmere</model>\n<feature name='nosuch'/></cpu>";
        assert!(parse_cpus(&db, "c.xml", feature).is_ok());
        assert_eq!(
            check(feature).unwrap_err(),
            "c.xml:3:1: <feature>: unknown CPU feature 'nosuch'"
        );
        assert_eq!(
            check("<cpu>\n  <model>NoSuchModel</model></cpu>").unwrap_err(),
            "c.xml:2:3: <model>: unknown CPU model 'NoSuchModel'"
        );
        assert!(check("<cpu><model>westmere</model><feature name='VMX'/></cpu>").is_ok());
    }

    #[test]
    fn big_fleet_files_parse_the_same_in_parallel() {
        let db = Database::embedded();
        let one = "<cpu>\n  <arch>x86_64</arch>\n  <model>Westmere</model>\n  <vendor>Intel</vendor>\n  <feature name='vmx'/>\n</cpu>\n";
        let text = format!("<?xml version='1.0'?>\n{}", one.repeat(600));
        assert!(text.len() >= PARALLEL_MIN_BYTES);
        let fast = parse_several_in_parallel(&db, "f.xml", &text, true).expect("fast path taken");
        assert_eq!(fast.len(), 600);
        assert_eq!(fast[0].origin, "f.xml:2");
        assert_eq!(fast[599].origin, format!("f.xml:{}", 2 + 599 * 6));
        let whole = parse_cpus(&db, "f.xml", &text).unwrap();
        assert_eq!(whole, fast);
        // An unknown feature makes the fast path step aside; the whole-document
        // parse then reports it at its element.
        let bad = format!(
            "{}<cpu><arch>x86_64</arch><model>Westmere</model><feature name='nope'/></cpu>\n",
            one.repeat(600)
        );
        assert!(parse_several_in_parallel(&db, "f.xml", &bad, true).is_none());
        let e = parse_known_cpus(&db, "f.xml", &bad)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.xml:3601:"), "{e}");
    }
}
