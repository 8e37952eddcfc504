//! Reading `<cpu>` definitions from any of the documents libvirt puts them in.
//!
//! Operators have CPUs in many shapes: a bare `<cpu>`, `virsh capabilities`
//! output, `virsh domcapabilities` output, a domain XML, libvirt's
//! `<cpuTest>` files, a raw `<cpudata>` dump, or the `cpu_info` JSON OpenStack
//! Nova stores for a compute node. [`parse_cpus`] accepts all
//! of them, detected from the document itself, so fleet tooling can feed
//! whatever it collected.
//!
//! Files that are nothing but `<cpu>` elements (one, or a fleet's
//! concatenation) and `<cpudata>` dumps are read with the light element
//! tree of [`cpumodel_xml::tree`]; everything else, and anything invalid,
//! with roxmltree. Both go through the same reading of `<cpu>` and of
//! `<cpudata>`, and dumps through the same decode.

use cpumodel_cpudata::{parse_cpudata_light, parse_cpudata_node};
use cpumodel_map::Database;
use cpumodel_xml::tree::{skip_space, Element, LightTree, RoxNode};
use cpumodel_xml::XmlError;
use cpumodel_xml::{child, elements, Source};
use roxmltree::Node;

use crate::decode::{decode, CpuFeatures, DecodeOptions};
use crate::def::{Check, CpuDef, CpuKind, Fallback, FeatureRef, Match, Mode, Policy, SignatureDef};
use crate::error::DecodeError;
use crate::input::{cpudata_features, InputError};
use crate::ops::{BaselineAccumulator, BaselineError};
use crate::topology::Topology;

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
    if let Some(host) = crate::input::shown_host(db, source, text) {
        let cpu = decode_host_dump(db, &host?.features)
            .map_err(|e| crate::input::partial_error(source, &e))?;
        return Ok(vec![SourcedCpu {
            origin: source.to_string(),
            cpu,
        }]);
    }
    if crate::cpuinfo::looks_like_cpu_info(text) {
        let cpu = crate::cpuinfo::parse_cpu_info(check.then_some(db), source, text)?;
        return Ok(vec![SourcedCpu {
            origin: source.to_string(),
            cpu,
        }]);
    }
    if let Some(cpus) = parse_light_cpudata(db, source, text) {
        return Ok(cpus);
    }
    if let Some(cpus) = parse_plain_cpus(db, source, text, check) {
        return Ok(cpus);
    }
    parse_cpus_exact(db, source, text, check)
}

/// The fast path for `<cpudata>` dumps: the dump read with the light tree
/// ([`parse_cpudata_light`]) and decoded as on the roxmltree path. `None`
/// when the light tree does not read it or anything fails; the caller then
/// reads the document with roxmltree, which reports the error's position.
fn parse_light_cpudata(db: &Database, source: &str, text: &str) -> Option<Vec<SourcedCpu>> {
    let data = parse_cpudata_light(text)?;
    let features = CpuFeatures::from_data(db, &data).ok()?;
    let cpu = decode_host_dump(db, &features).ok()?;
    Some(vec![SourcedCpu {
        origin: source.to_string(),
        cpu,
    }])
}

/// A dump's host CPU, as both paths decode it.
fn decode_host_dump(db: &Database, features: &CpuFeatures) -> Result<CpuDef, DecodeError> {
    let decoded = decode(db, features, &DecodeOptions::new(CpuKind::Host))?;
    Ok(decoded.to_cpu_def(db, CpuKind::Host))
}

/// [`parse_cpus_with`] with roxmltree alone.
fn parse_cpus_exact(
    db: &Database,
    source: &str,
    text: &str,
    check: bool,
) -> Result<Vec<SourcedCpu>, InputError> {
    let src = Source(source);
    // The wrapped parse below goes to roxmltree directly: refuse what would
    // overwhelm it first.
    src.check_limits(text)?;
    let wrapped;
    // Where the parsed text starts in `text`, less what was put before it.
    let mut shift = 0isize;
    let doc = if looks_like_several_cpus(text) {
        // Several top-level <cpu> elements are not one XML document; read
        // them inside a synthetic wrapper. Any problem is reported by the
        // plain parse below, which has the exact positions.
        let body = strip_declaration(text);
        wrapped = format!("<cpus>{body}</cpus>");
        match roxmltree::Document::parse(&wrapped) {
            Ok(d) => {
                shift = (text.len() - body.len()) as isize - "<cpus>".len() as isize;
                d
            }
            Err(_) => src.parse(text)?,
        }
    } else {
        src.parse(text)?
    };
    let root = doc.root_element();
    // Lines are counted from the previous CPU's position (CPUs are read in
    // document order), so a file of many CPUs is read in linear time.
    let counted = std::cell::Cell::new((0usize, 1usize));
    let origin = |n: Node<'_, '_>| {
        let at = n.range().start.saturating_add_signed(shift).min(text.len());
        let (mut from, mut line) = counted.get();
        if at < from {
            (from, line) = (0, 1);
        }
        line += count_lines(&text.as_bytes()[from..at]);
        counted.set((at, line));
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
            .map(|n| {
                only_cpu(&src, n, "after a <cpu> at the top of a file").and_then(|n| parse(n, None))
            })
            .collect::<Result<_, _>>()?,
        "cpuTest" => elements(root)
            .map(|n| only_cpu(&src, n, "in <cpuTest>").and_then(|n| parse(n, Some(CpuKind::Host))))
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
            let cpu = decode_host_dump(db, &features)
                .map_err(|e| InputError::from(src.error(root, e.to_string())))?;
            vec![SourcedCpu {
                origin: source.to_string(),
                cpu,
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

/// `n` when it is a `<cpu>` element; an error naming it and `place`
/// otherwise: every element of a list of CPUs is read, none is skipped.
fn only_cpu<'a, 'i>(
    src: &Source<'_>,
    n: Node<'a, 'i>,
    place: &str,
) -> Result<Node<'a, 'i>, InputError> {
    if n.has_tag_name("cpu") {
        Ok(n)
    } else {
        Err(src
            .error(n, format!("only <cpu> elements are allowed {place}"))
            .into())
    }
}

/// The number of line feeds in `bytes`, eight bytes at a time.
fn count_lines(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let words = bytes.chunks_exact(8);
    let tail = words.remainder().iter().filter(|&&b| b == b'\n').count();
    words
        .map(|w| {
            // A byte of `x` is zero where the input byte is a line feed; the
            // high bit of `found` is set in exactly those bytes.
            let x = u64::from_le_bytes(w.try_into().expect("8 bytes")) ^ (ONES * u64::from(b'\n'));
            let found = !(((x & LOW7) + LOW7) | x) & !LOW7;
            found.count_ones() as usize
        })
        .sum::<usize>()
        + tail
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
        if let Err(e) = db.resolve_model(name) {
            return Err(src.error(child(n, "model").unwrap_or(n), e.to_string()));
        }
    }
    for f in elements(n).filter(|f| f.has_tag_name("feature")) {
        if let Some(name) = f.attribute("name") {
            db.resolve_feature(name)
                .map_err(|e| src.error(f, e.to_string()))?;
        }
    }
    Ok(())
}

/// Why the light path stopped.
enum Stop<E> {
    /// Something it does not read, or an invalid definition: the roxmltree
    /// path decides.
    Fallback,
    /// The caller's own failure.
    Failed(E),
}

/// Where the `<cpu>` elements of a document the light path may read start,
/// and whether the document has several (which [`looks_like_several_cpus`]
/// decides, as on the roxmltree path).
fn plain_cpus_start(text: &str) -> Option<(usize, bool)> {
    let several = looks_like_several_cpus(text);
    let start = if several {
        // As the wrapped parse: the declaration is skipped.
        skip_space(text.as_bytes(), text.len() - strip_declaration(text).len())
    } else {
        // One document: only XML white space before its root (a declaration
        // or anything else is left to roxmltree).
        skip_space(text.as_bytes(), 0)
    };
    text[start..]
        .starts_with("<cpu")
        .then_some((start, several))
}

/// Reads the top-level `<cpu>` elements of `text` from byte `start` with the
/// light tree into one reused definition, calling `each` with the line of
/// each element and the definition.
fn read_plain<E>(
    text: &str,
    start: usize,
    several: bool,
    mut each: impl FnMut(usize, &mut CpuDef) -> Result<(), Stop<E>>,
) -> Result<(), Stop<E>> {
    let bytes = text.as_bytes();
    let mut tree = LightTree::default();
    let mut cpu = CpuDef::new(CpuKind::Guest);
    let mut line = 1 + count_lines(&bytes[..start]);
    let (mut counted, mut i) = (start, start);
    let mut first = true;
    while i < text.len() {
        // Several elements where roxmltree sees one document is an error there.
        if !several && !first {
            return Err(Stop::Fallback);
        }
        first = false;
        let end = tree.read(text, i).ok_or(Stop::Fallback)?;
        let root = tree.root();
        if root.name() != "cpu" {
            return Err(Stop::Fallback);
        }
        read_cpu_into(root, None, &mut cpu).map_err(|()| Stop::Fallback)?;
        line += count_lines(&bytes[counted..i]);
        counted = i;
        each(line, &mut cpu)?;
        i = skip_space(bytes, end);
    }
    Ok(())
}

/// The fast path for documents that are nothing but `<cpu>` elements: one
/// `<cpu>` document, or the plain concatenation fleet tools write. Each
/// element is read into a [`LightTree`] and interpreted by the same
/// [`read_cpu_into`] as on the roxmltree path. Returns `None` when anything
/// is unusual or invalid, and the caller then parses the whole document with
/// roxmltree, which gives the same result or the exact error position.
fn parse_plain_cpus(
    db: &Database,
    source: &str,
    text: &str,
    check: bool,
) -> Option<Vec<SourcedCpu>> {
    let (start, several) = plain_cpus_start(text)?;
    let mut out = Vec::new();
    let read = read_plain::<()>(text, start, several, |line, cpu| {
        if check && crate::ops::ResolvedCpu::new(db, cpu).is_err() {
            return Err(Stop::Fallback);
        }
        out.push(SourcedCpu {
            origin: format!("{source}:{line}"),
            cpu: std::mem::replace(cpu, CpuDef::new(CpuKind::Guest)),
        });
        Ok(())
    });
    read.ok().map(|()| out)
}

/// Why [`add_cpus_to_baseline`] failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddCpusError {
    /// The document does not parse (as [`parse_cpus`] reports it).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The document parses, but one of its CPUs cannot be added (the first
    /// one, as [`BaselineAccumulator::add`] reports it).
    #[error(transparent)]
    Baseline(#[from] BaselineError),
}

/// Adds every CPU of a document to a baseline: [`parse_cpus`], then
/// [`BaselineAccumulator::add`] for each CPU in document order, with the
/// same results and errors, but without keeping the definitions. A file of
/// plain `<cpu>` elements is read with one reused definition, so a fleet
/// file costs almost no allocation per CPU.
///
/// # Errors
/// [`AddCpusError::Input`] when the document does not parse, whichever CPU
/// would fail to add; otherwise [`AddCpusError::Baseline`]. On error, `acc`
/// is left as it was.
pub fn add_cpus_to_baseline(
    acc: &mut BaselineAccumulator,
    db: &Database,
    source: &str,
    text: &str,
) -> Result<(), AddCpusError> {
    let saved = acc.clone();
    if let Some((start, several)) = plain_cpus_start(text) {
        let added = read_plain(text, start, several, |line, cpu| {
            acc.add_with_origin(db, || format!("{source}:{line}"), cpu)
                .map_err(Stop::Failed)
        });
        match added {
            Ok(()) => return Ok(()),
            Err(Stop::Failed(e)) => {
                *acc = saved;
                // A CPU could not be added; a parse error anywhere in the
                // document comes first, as when it is parsed before adding.
                parse_cpus(db, source, text)?;
                return Err(e.into());
            }
            Err(Stop::Fallback) => *acc = saved.clone(),
        }
    }
    let cpus = parse_cpus(db, source, text)?;
    for cpu in &cpus {
        if let Err(e) = acc.add(db, &cpu.origin, &cpu.cpu) {
            *acc = saved;
            return Err(e.into());
        }
    }
    Ok(())
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
    let mode = RoxNode {
        src: *src,
        node: mode,
    };
    let mut cpu = CpuDef::new(CpuKind::Guest);
    cpu.match_ = Some(Match::Exact);
    let model = mode
        .child("model")
        .ok_or_else(|| mode.error("host-model mode without <model>".into()))?;
    cpu.model = Some(model.text().unwrap_or("").trim().to_string());
    cpu.fallback = Some(
        parse_enum(model, "fallback", Fallback::parse, Fallback::spellings)?
            .unwrap_or(Fallback::Forbid),
    );
    cpu.vendor = mode.child_text("vendor").map(str::to_string);
    cpu.features = parse_features(mode, CpuKind::Guest)?;
    Ok(cpu)
}

fn parse_enum<'a, E: Element<'a>, T>(
    n: E,
    attr: &str,
    parse: impl Fn(&str) -> Option<T>,
    spellings: impl Fn() -> String,
) -> Result<Option<T>, E::Error> {
    match n.attribute(attr) {
        None => Ok(None),
        Some(v) => parse(v).map(Some).ok_or_else(|| {
            n.error(format!(
                "invalid {attr}='{v}' (expected one of: {})",
                spellings()
            ))
        }),
    }
}

fn nonzero<'a, E: Element<'a>>(n: E, attr: &str, default: Option<u32>) -> Result<u32, E::Error> {
    let Some(v) = n.attribute(attr) else {
        return default.ok_or_else(|| n.error(format!("missing attribute '{attr}'")));
    };
    match v.trim().parse::<u32>() {
        Ok(0) => Err(n.error(format!("{attr}='0': topology values must be at least 1"))),
        Ok(x) => Ok(x),
        Err(_) => Err(n.error(format!("{attr}='{v}' is not a positive integer"))),
    }
}

fn parse_features<'a, E: Element<'a>>(node: E, kind: CpuKind) -> Result<Vec<FeatureRef>, E::Error> {
    let mut out = Vec::new();
    parse_features_into(node, kind, &mut out)?;
    Ok(out)
}

/// [`parse_features`] into `out`, reusing its entries' allocations.
fn parse_features_into<'a, E: Element<'a>>(
    node: E,
    kind: CpuKind,
    out: &mut Vec<FeatureRef>,
) -> Result<(), E::Error> {
    let mut len = 0;
    for f in node.elements().filter(|n| n.name() == "feature") {
        let name = f
            .attribute("name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| f.error("missing feature name".into()))?;
        let policy = match kind {
            CpuKind::Host => None,
            CpuKind::Guest => Some(
                parse_enum(f, "policy", Policy::parse, Policy::spellings)?
                    .unwrap_or(Policy::Require),
            ),
        };
        if out[..len].iter().any(|x| x.name == name) {
            return Err(f.error(format!("feature '{name}' is listed more than once")));
        }
        match out.get_mut(len) {
            Some(old) => {
                old.name.clear();
                old.name.push_str(name);
                old.policy = policy;
            }
            None => out.push(FeatureRef {
                name: name.to_string(),
                policy,
            }),
        }
        len += 1;
    }
    out.truncate(len);
    Ok(())
}

/// `Some(text)` in `slot`'s allocation when it has one.
fn reuse(slot: Option<String>, text: &str) -> String {
    match slot {
        Some(mut s) => {
            s.clear();
            s.push_str(text);
            s
        }
        None => text.to_string(),
    }
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
    read_cpu(RoxNode { src: *src, node: n }, kind)
}

/// [`parse_cpu_node`] on any element tree: the one reading of `<cpu>`.
fn read_cpu<'a, E: Element<'a>>(n: E, kind: Option<CpuKind>) -> Result<CpuDef, E::Error> {
    let mut cpu = CpuDef::new(CpuKind::Guest);
    read_cpu_into(n, kind, &mut cpu)?;
    Ok(cpu)
}

/// [`read_cpu`] into `cpu`, reusing the allocations of its strings and
/// features (a fleet file is read with one definition). On error, `cpu`
/// holds part of the element.
fn read_cpu_into<'a, E: Element<'a>>(
    n: E,
    kind: Option<CpuKind>,
    cpu: &mut CpuDef,
) -> Result<(), E::Error> {
    let mut features = std::mem::take(&mut cpu.features);
    let (arch, model_buf, vendor) = (cpu.arch.take(), cpu.model.take(), cpu.vendor.take());
    let has_arch = n.child("arch").is_some();
    let kind = match kind {
        Some(k) => k,
        None if has_arch => {
            if n.attribute("match").is_some() {
                return Err(n.error(
                    "a CPU with <arch> is a host CPU and cannot have a 'match' attribute".into(),
                ));
            }
            CpuKind::Host
        }
        None => CpuKind::Guest,
    };
    *cpu = CpuDef::new(kind);
    if let Some(mode) = parse_enum(n, "mode", Mode::parse, Mode::spellings)? {
        if kind == CpuKind::Host {
            return Err(n.error("attribute 'mode' is only allowed for guest CPUs".into()));
        }
        cpu.mode = mode;
    }
    if let Some(m) = n.attribute("migratable") {
        if !matches!(cpu.mode, Mode::HostPassthrough | Mode::Maximum) {
            return Err(n.error(
                "attribute 'migratable' is only allowed for host-passthrough and maximum CPUs"
                    .into(),
            ));
        }
        cpu.migratable = Some(match m {
            "on" => true,
            "off" => false,
            v => {
                return Err(n.error(format!(
                    "invalid migratable='{v}' (expected one of: on, off)"
                )))
            }
        });
    }
    if kind == CpuKind::Guest {
        cpu.match_ = parse_enum(n, "match", Match::parse, Match::spellings)?;
        cpu.check = parse_enum(n, "check", Check::parse, Check::spellings)?;
    }
    if kind == CpuKind::Host {
        cpu.arch = n.child_text("arch").map(|a| reuse(arch, a));
        if let Some(s) = n.child("signature") {
            cpu.signature = Some(SignatureDef {
                family: nonzero(s, "family", None)?,
                model: s.req_u32_attr("model")?,
                stepping: s.req_u32_attr("stepping")?,
            });
        }
    }
    if let Some(model) = n.child("model") {
        let name = model.text().unwrap_or("").trim();
        if !name.is_empty() {
            cpu.model = Some(reuse(model_buf, name));
        }
        if kind == CpuKind::Guest && !matches!(cpu.mode, Mode::HostPassthrough | Mode::Maximum) {
            cpu.fallback = parse_enum(model, "fallback", Fallback::parse, Fallback::spellings)?;
            if let Some(v) = model.attribute("vendor_id") {
                if v.len() != 12 || v.contains(',') {
                    return Err(model.error(format!(
                        "vendor_id='{v}' must be exactly 12 characters without commas"
                    )));
                }
                cpu.vendor_id = Some(v.to_string());
            }
        }
    }
    if kind == CpuKind::Host && cpu.model.is_none() {
        return Err(n.error("host CPU without a <model>".into()));
    }
    cpu.vendor = n.child_text("vendor").map(|v| reuse(vendor, v));
    if cpu.vendor.is_some() && cpu.model.is_none() {
        return Err(n.error("<vendor> given without a <model>".into()));
    }
    if let Some(t) = n.child("topology") {
        let topology = Topology::new(
            nonzero(t, "sockets", None)?,
            nonzero(t, "dies", Some(1))?,
            nonzero(t, "clusters", Some(1))?,
            nonzero(t, "cores", None)?,
            nonzero(t, "threads", None)?,
        )
        .map_err(|e| t.error(e.to_string()))?;
        cpu.topology = Some(topology);
    }
    parse_features_into(n, kind, &mut features)?;
    cpu.features = features;
    if !cpu.features.is_empty() && cpu.model.is_none() && cpu.mode == Mode::Custom {
        return Err(n.error("features listed without a CPU model".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::BaselineOptions;

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
    fn names_with_white_space_characters_read_back_as_written() {
        // Found by the `cpu` fuzz target: a tab or line feed in a name was
        // written literally, and XML reads it back as a space.
        let text = "<cpu mode='custom' match='exact'>\n  <model fallback='allow'>A&#10;B</model>\n  <feature policy='require' name='a&#9;b&#13;'/>\n</cpu>\n";
        let cpu = one(text).unwrap();
        assert_eq!(cpu.model.as_deref(), Some("A\nB"));
        assert_eq!(cpu.features[0].name, "a\tb\r");
        assert_eq!(one(&cpu.to_xml()), Ok(cpu));
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
        // Inside documents names are matched as libvirt matches them: exactly.
        assert_eq!(
            check("<cpu>\n<model>westmere</model></cpu>").unwrap_err(),
            "c.xml:2:1: <model>: unknown CPU model 'westmere'; did you mean 'Westmere'?"
        );
        assert_eq!(
            check("<cpu><model>Westmere</model>\n <feature name='VMX'/></cpu>").unwrap_err(),
            "c.xml:2:2: <feature>: unknown CPU feature 'VMX'; did you mean 'vmx'?"
        );
    }

    /// The whole-document roxmltree parse, without the fast path.
    fn slow(source: &str, text: &str) -> Result<Vec<SourcedCpu>, String> {
        parse_cpus_exact(&Database::embedded(), source, text, true).map_err(|e| e.to_string())
    }

    #[test]
    fn the_fast_path_reads_plain_cpu_files_as_roxmltree_does() {
        let db = Database::embedded();
        let host = "<cpu>\n  <arch>x86_64</arch>\n  <model>Westmere</model>\n  <vendor>Intel</vendor>\n  <feature name='vmx'/>\n</cpu>\n";
        let guest = "<cpu mode='custom' match='exact' check='partial'>\n  <model fallback='forbid' vendor_id='GenuineIntel'>Haswell</model>\n  <topology sockets='2' cores='4' threads='2'/>\n  <feature policy='force' name='pcid'/>\n  <feature policy=\"disable\" name='vmx'/>\n</cpu>";
        for text in [
            host.to_string(),
            guest.to_string(),
            format!("\n\n  {host}"),
            format!("{host}{guest}\n{host}"),
            format!("<?xml version='1.0'?>\n{host}\n\n{guest}"),
            format!("  \n<?xml version='1.0'?>{host}{host}"),
            "<cpu mode='host-passthrough' migratable='off'/>".to_string(),
            "<cpu/>".to_string(),
        ] {
            let fast = parse_plain_cpus(&db, "f.xml", &text, true);
            assert!(fast.is_some(), "{text}");
            assert_eq!(fast.unwrap(), slow("f.xml", &text).unwrap(), "{text}");
            assert_eq!(
                parse_known_cpus(&db, "f.xml", &text).unwrap(),
                slow("f.xml", &text).unwrap()
            );
        }
        // Left to roxmltree: a declaration before a single element, comments,
        // entities, other roots, more than one root where only one may be.
        for text in [
            format!("<?xml version='1.0'?>{host}"),
            format!("<!-- c -->{host}{host}"),
            format!("{host}<!-- c -->{host}"),
            "<cpu><model>A&amp;B</model></cpu>".to_string(),
            "<cpuTest><cpu/></cpuTest>".to_string(),
            "<cpu/><cpu><model>Westmere</model></cpu>".to_string(),
            format!("{host}x{host}"),
        ] {
            assert_eq!(parse_plain_cpus(&db, "f.xml", &text, false), None, "{text}");
        }
        // Invalid definitions too, so that roxmltree reports their position.
        let bad = format!("{host}<cpu><arch>x86_64</arch></cpu>");
        assert_eq!(parse_plain_cpus(&db, "f.xml", &bad, false), None);
        assert_eq!(
            parse_cpus(&db, "f.xml", &bad).unwrap_err().to_string(),
            "f.xml:7:1: <cpu>: host CPU without a <model>"
        );
    }

    /// `parse_cpus` then `add` for each CPU: what `add_cpus_to_baseline`
    /// must match.
    fn add_one_by_one(
        acc: &mut BaselineAccumulator,
        db: &Database,
        text: &str,
    ) -> Result<(), AddCpusError> {
        for cpu in parse_cpus(db, "f.xml", text)? {
            acc.add(db, &cpu.origin, &cpu.cpu)?;
        }
        Ok(())
    }

    #[test]
    fn adding_a_document_to_a_baseline_is_parsing_then_adding() {
        let db = Database::embedded();
        let host = |model: &str, vendor: &str, feature: &str| {
            format!("<cpu>\n  <arch>x86_64</arch>\n  <model>{model}</model>\n  <vendor>{vendor}</vendor>\n  <feature name='{feature}'/>\n</cpu>\n")
        };
        let intel = host("Haswell", "Intel", "vmx");
        let amd = host("EPYC", "AMD", "svm");
        let cases = [
            // The fast path, with one and with several elements.
            intel.clone(),
            format!("{intel}{}", host("Westmere", "Intel", "pdcm")),
            // roxmltree's path.
            format!("<!-- fleet -->\n{intel}{intel}"),
            format!("<capabilities><host>{intel}</host></capabilities>"),
            // A CPU that cannot be added: mixed vendors, an unknown name.
            format!("{intel}{amd}"),
            format!("{intel}{}", host("Haswell", "Intel", "nosuch")),
            // ... and the same followed by a parse error, which comes first.
            format!("{intel}{amd}<cpu><arch>x86_64</arch></cpu>"),
            format!("{intel}{amd}<cpu mode='bad'/>"),
            // Several roots where one is expected.
            format!("<cpu/>{intel}"),
        ];
        for text in cases {
            let mut fast = BaselineAccumulator::default();
            add_one_by_one(&mut fast, &db, &host("Haswell", "Intel", "vmx")).unwrap();
            let mut slow = fast.clone();
            let a = add_cpus_to_baseline(&mut fast, &db, "f.xml", &text);
            let b = add_one_by_one(&mut slow, &db, &text);
            assert_eq!(a, b, "{text}");
            if a.is_ok() {
                assert_eq!(
                    fast.finish(&db, Default::default()),
                    slow.finish(&db, Default::default()),
                    "{text}"
                );
            } else {
                assert_eq!(fast.len(), 1, "unchanged on error: {text}");
            }
        }
        // A fleet file.
        let big = format!(
            "{}{}",
            intel.repeat(300),
            host("Westmere", "Intel", "pdcm").repeat(300)
        );
        let mut fast = BaselineAccumulator::default();
        add_cpus_to_baseline(&mut fast, &db, "f.xml", &big).unwrap();
        let mut slow = BaselineAccumulator::default();
        add_one_by_one(&mut slow, &db, &big).unwrap();
        assert_eq!(fast.len(), 600);
        let opts = Default::default();
        assert_eq!(fast.finish(&db, opts), slow.finish(&db, opts));
        let bad = format!("{big}{amd}");
        let mut acc = BaselineAccumulator::default();
        assert_eq!(
            add_cpus_to_baseline(&mut acc, &db, "f.xml", &bad),
            add_one_by_one(&mut BaselineAccumulator::default(), &db, &bad)
        );
    }

    #[test]
    fn the_fast_path_agrees_with_roxmltree_on_mutated_fleets() {
        let db = Database::embedded();
        let seed = "<?xml version='1.0'?>\n<cpu>\n  <arch>x86_64</arch>\n  <model>Haswell</model>\n  <vendor>Intel</vendor>\n  <feature name='vmx'/>\n</cpu>\n<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>Westmere</model>\n  <topology sockets='1' cores='2' threads='1'/>\n  <feature policy='disable' name='vmx'/>\n</cpu>\n";
        let alphabet = b"<>/='\"!-?&;x :\n\r0a";
        let mut mutator = cpumodel_testenv::Mutator::new(0x2545_f491_4f6c_dd1d);
        let mut fast = 0;
        for _ in 0..3_000 {
            let doc = mutator.mutate(seed.as_bytes(), alphabet, 2);
            let text = String::from_utf8(doc).expect("ASCII");
            for check in [false, true] {
                let exact = parse_cpus_exact(&db, "f.xml", &text, check);
                if let Some(cpus) = parse_plain_cpus(&db, "f.xml", &text, check) {
                    fast += 1;
                    assert_eq!(Ok(cpus), exact, "{text:?}");
                }
                assert_eq!(parse_cpus_with(&db, "f.xml", &text, check), exact);
            }
            let mut a = BaselineAccumulator::default();
            let mut b = BaselineAccumulator::default();
            let added = add_cpus_to_baseline(&mut a, &db, "f.xml", &text);
            assert_eq!(added, add_one_by_one(&mut b, &db, &text), "{text:?}");
            if added.is_ok() {
                assert_eq!(a.len(), b.len());
                let opts = BaselineOptions::default();
                assert_eq!(a.finish(&db, opts), b.finish(&db, opts));
            } else {
                assert!(a.is_empty());
            }
        }
        assert!(fast > 500, "{fast}");
    }

    #[test]
    fn the_dump_fast_path_agrees_with_roxmltree_on_mutated_dumps() {
        let db = Database::embedded();
        let seed = "<!-- host: node-1 -->\n<cpudata arch='x86'>\n  <cpuid eax_in='0x00000000' ecx_in='0x00' eax='0x0000000d' ebx='0x756e6547' ecx='0x6c65746e' edx='0x49656e69'/>\n  <cpuid eax_in='0x00000001' ecx_in='0x00' eax='0x000306c3' ebx='0x00100800' ecx='0x7ffafbff' edx='0xbfebfbff'/>\n  <cpuid eax_in='0x00000007' ecx_in='0x00' eax='0x00000000' ebx='0x000027ab' ecx='0x00000000' edx='0x9c000000'/>\n  <cpuid eax_in='0x80000001' ecx_in='0x00' eax='0x00000000' ebx='0x00000000' ecx='0x00000021' edx='0x2c100800'/>\n</cpudata>\n";
        assert!(parse_light_cpudata(&db, "d.xml", seed).is_some());
        let alphabet = b"<>/='\"!-?&;x :\n\r0a9f";
        let mut mutator = cpumodel_testenv::Mutator::new(0x2545_f491_4f6c_dd1d);
        let mut fast = 0;
        for _ in 0..3_000 {
            let doc = mutator.mutate(seed.as_bytes(), alphabet, 2);
            let text = String::from_utf8(doc).expect("ASCII");
            let exact = parse_cpus_exact(&db, "d.xml", &text, false);
            if let Some(cpus) = parse_light_cpudata(&db, "d.xml", &text) {
                fast += 1;
                assert_eq!(Ok(cpus), exact, "{text:?}");
            }
            assert_eq!(parse_cpus(&db, "d.xml", &text), exact, "{text:?}");
            assert_eq!(parse_known_cpus(&db, "d.xml", &text), exact, "{text:?}");
        }
        assert!(fast > 500, "{fast}");
    }

    #[test]
    fn counts_lines() {
        let text = b"a\nbc\n\n\xe9\x8a\n\x0b\x8a\x0a\n123456789\n\n\xff\x0a\x8a";
        for start in 0..text.len() {
            let naive = text[start..].iter().filter(|&&b| b == b'\n').count();
            assert_eq!(count_lines(&text[start..]), naive);
        }
    }

    #[test]
    fn big_fleet_files_parse_the_same_on_both_paths() {
        let db = Database::embedded();
        let one = "<cpu>\n  <arch>x86_64</arch>\n  <model>Westmere</model>\n  <vendor>Intel</vendor>\n  <feature name='vmx'/>\n</cpu>\n";
        let text = format!("<?xml version='1.0'?>\n{}", one.repeat(600));
        let fast = parse_plain_cpus(&db, "f.xml", &text, true).expect("fast path taken");
        assert_eq!(fast.len(), 600);
        assert_eq!(fast[0].origin, "f.xml:2");
        assert_eq!(fast[599].origin, format!("f.xml:{}", 2 + 599 * 6));
        assert_eq!(fast, slow("f.xml", &text).unwrap());
        // An unknown feature makes the fast path step aside; the whole-document
        // parse then reports it at its element.
        let bad = format!(
            "{}<cpu><arch>x86_64</arch><model>Westmere</model><feature name='nope'/></cpu>\n",
            one.repeat(600)
        );
        assert!(parse_plain_cpus(&db, "f.xml", &bad, true).is_none());
        let e = parse_known_cpus(&db, "f.xml", &bad)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.xml:3601:"), "{e}");
    }
}
