//! libvirt's `<cpudata arch='x86'>` format: read and write.
//!
//! This is the format of `virsh capabilities`-adjacent dumps, of libvirt's
//! own CPU test data, and of `cpumodel dump`, so a processor recorded on one
//! machine can be decoded, compared and baselined anywhere.
//!
//! Fleet imports read dumps by the ten thousand, and building a roxmltree
//! document is most of the cost of reading one. Dumps are plain XML, so they
//! are first read with the light element tree of [`cpumodel_xml::tree`]
//! ([`parse_cpudata_light`]); anything it does not read, and any invalid
//! dump, is read again with roxmltree, whose errors point at the exact
//! place. Both trees go through the one reading of the format,
//! [`read_cpudata`], so they cannot disagree on what a dump holds.

use std::fmt::Write as _;

use roxmltree::Node;

use crate::item::{CpuData, Item, ItemKey};
use cpumodel_xml::tree::{document_start, Element, LightTree, RoxNode};
use cpumodel_xml::{Source, XmlError};

/// Parses a `<cpudata>` document.
///
/// # Errors
/// Malformed XML, a root element other than `<cpudata>`, an architecture
/// other than x86, an unknown child element, a missing or non-numeric
/// attribute, or a dump without any item. Each error names `source`, the line
/// and the element.
pub fn parse_cpudata(source: &str, text: &str) -> Result<CpuData, XmlError> {
    if let Some(data) = parse_cpudata_light(text) {
        return Ok(data);
    }
    let src = Source(source);
    let doc = src.parse(text)?;
    let root = doc.root_element();
    if !root.has_tag_name("cpudata") {
        return Err(src.error(root, "expected a <cpudata> element"));
    }
    parse_cpudata_node(&src, root)
}

/// Parses an already located `<cpudata>` element (for example inside a test
/// wrapper document).
///
/// # Errors
/// As [`parse_cpudata`].
pub fn parse_cpudata_node(src: &Source<'_>, node: Node<'_, '_>) -> Result<CpuData, XmlError> {
    read_cpudata(RoxNode { src: *src, node })
}

/// Reads a `<cpudata>` document with the light element tree of
/// [`cpumodel_xml::tree`], as [`parse_cpudata`] would read it.
///
/// `None` when the document is not a `<cpudata>` root, is outside the
/// subset of XML that tree reads, or is invalid in any way: the caller then
/// reads it with roxmltree ([`parse_cpudata_node`]), which gives the same
/// data or the exact error.
pub fn parse_cpudata_light(text: &str) -> Option<CpuData> {
    let start = document_start(text)?;
    if !text[start..].starts_with("<cpudata") {
        return None;
    }
    let mut tree = LightTree::default();
    tree.read_document(text)?;
    let root = tree.root();
    if root.name() != "cpudata" {
        return None;
    }
    read_cpudata(root).ok()
}

/// [`parse_cpudata_node`] on any element tree: the one reading of a
/// `<cpudata>` element.
///
/// # Errors
/// As [`parse_cpudata_node`].
pub fn read_cpudata<'a, E: Element<'a>>(node: E) -> Result<CpuData, E::Error> {
    if let Some(arch) = node.attribute("arch") {
        if arch != "x86" {
            return Err(node.error(format!("arch='{arch}' is not supported, only 'x86'")));
        }
    }
    let mut items = Vec::new();
    for child in node.elements() {
        items.push(read_item(child)?);
    }
    if items.is_empty() {
        return Err(node.error("no CPUID or MSR items: the dump is empty".into()));
    }
    // Dumps list their items in order; any other order is sorted first, so
    // that adding them stays linear (items of one key are OR-merged, in any
    // order, as libvirt does).
    if !items.is_sorted_by_key(|i| i.key) {
        items.sort_by_key(|i| i.key);
    }
    let mut data = CpuData::new();
    for item in items {
        data.add(item);
    }
    Ok(data)
}

/// The CPUID leaves and MSRs a `<cpudata>` document lists more than once,
/// with how many times, in key order. Reading a dump merges them (their
/// values OR-ed, as libvirt does); callers warn about them. Empty for a
/// document that is not a readable `<cpudata>`.
pub fn duplicate_items(text: &str) -> Vec<(ItemKey, usize)> {
    fn keys<'a, E: Element<'a>>(node: E) -> Vec<ItemKey> {
        node.elements()
            .filter_map(|c| read_item(c).ok())
            .map(|i| i.key)
            .collect()
    }
    if cpumodel_xml::prologue::Prologue::scan(text).root != "cpudata" {
        return Vec::new();
    }
    let mut tree = LightTree::default();
    let mut all = if tree.read_document(text).is_some() {
        keys(tree.root())
    } else {
        let src = Source("");
        match src.parse(text) {
            Ok(doc) => keys(RoxNode {
                src,
                node: doc.root_element(),
            }),
            Err(_) => Vec::new(),
        }
    };
    all.sort_unstable();
    let mut out: Vec<(ItemKey, usize)> = Vec::new();
    for (i, key) in all.iter().enumerate() {
        if i > 0 && all[i - 1] == *key {
            match out.last_mut() {
                Some((k, n)) if k == key => *n += 1,
                _ => out.push((*key, 2)),
            }
        }
    }
    out
}

/// Parses one `<cpuid>` or `<msr>` element, as used both in dumps and in the
/// feature definitions of a CPU map.
///
/// # Errors
/// An unknown element name, or a missing or non-numeric attribute.
pub fn parse_item(src: &Source<'_>, node: Node<'_, '_>) -> Result<Item, XmlError> {
    read_item(RoxNode { src: *src, node })
}

/// [`parse_item`] on any element tree.
///
/// # Errors
/// As [`parse_item`].
pub fn read_item<'a, E: Element<'a>>(node: E) -> Result<Item, E::Error> {
    // The attributes in one pass (an element has each name once), then
    // checked in a fixed order, so that the first problem is reported.
    let mut v: [Option<&'a str>; 6] = [None; 6];
    match node.name() {
        "cpuid" => {
            for (name, value) in node.attributes() {
                let slot = match name {
                    "eax_in" => 0,
                    "ecx_in" => 1,
                    "eax" => 2,
                    "ebx" => 3,
                    "ecx" => 4,
                    "edx" => 5,
                    _ => continue,
                };
                v[slot].get_or_insert(value);
            }
            Ok(Item::cpuid(
                node.req_u32_value("eax_in", v[0])?,
                node.u32_value("ecx_in", v[1])?.unwrap_or(0),
                node.u32_value("eax", v[2])?.unwrap_or(0),
                node.u32_value("ebx", v[3])?.unwrap_or(0),
                node.u32_value("ecx", v[4])?.unwrap_or(0),
                node.u32_value("edx", v[5])?.unwrap_or(0),
            ))
        }
        "msr" => {
            for (name, value) in node.attributes() {
                let slot = match name {
                    "index" => 0,
                    "eax" => 1,
                    "edx" => 2,
                    _ => continue,
                };
                v[slot].get_or_insert(value);
            }
            Ok(Item::msr(
                node.req_u32_value("index", v[0])?,
                node.req_u32_value("eax", v[1])?,
                node.req_u32_value("edx", v[2])?,
            ))
        }
        other => Err(node.error(format!(
            "unexpected element <{other}>, expected <cpuid> or <msr>"
        ))),
    }
}

/// Writes CPU data in libvirt's `<cpudata>` format (zero items are skipped,
/// as libvirt does).
pub fn format_cpudata(data: &CpuData) -> String {
    let mut out = String::from("<cpudata arch='x86'>\n");
    for item in data.nonzero_items() {
        match item.key {
            crate::ItemKey::Cpuid(crate::CpuidKey { leaf, subleaf }) => {
                let [a, b, c, d] = item.regs;
                let _ = writeln!(
                    out,
                    "  <cpuid eax_in='0x{leaf:08x}' ecx_in='0x{subleaf:08x}' eax='0x{a:08x}' ebx='0x{b:08x}' ecx='0x{c:08x}' edx='0x{d:08x}'/>"
                );
            }
            crate::ItemKey::Msr { index } => {
                let [a, d, ..] = item.regs;
                let _ = writeln!(
                    out,
                    "  <msr index='0x{index:x}' eax='0x{a:08x}' edx='0x{d:08x}'/>"
                );
            }
        }
    }
    out.push_str("</cpudata>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ItemKey;

    const DUMP: &str = "<!-- comment -->\n<cpudata arch='x86'>\n  <cpuid eax_in='0x00000000' ecx_in='0x00' eax='0x0000000b' ebx='0x756e6547' ecx='0x6c65746e' edx='0x49656e69'/>\n  <cpuid eax_in='0x00000003' ecx_in='0x00' eax='0x00000000' ebx='0x00000000' ecx='0x00000000' edx='0x00000000'/>\n  <msr index='0x10a' edx='0x00000000' eax='0x000001eb'/>\n</cpudata>\n";

    #[test]
    fn parses_and_formats_in_libvirt_style() {
        let data = parse_cpudata("d.xml", DUMP).unwrap();
        assert_eq!(data.items().len(), 3);
        assert_eq!(
            data.get(ItemKey::Msr { index: 0x10a }).unwrap().regs,
            [0x1eb, 0, 0, 0]
        );
        assert_eq!(
            format_cpudata(&data),
            "<cpudata arch='x86'>\n  <cpuid eax_in='0x00000000' ecx_in='0x00000000' eax='0x0000000b' ebx='0x756e6547' ecx='0x6c65746e' edx='0x49656e69'/>\n  <msr index='0x10a' eax='0x000001eb' edx='0x00000000'/>\n</cpudata>\n"
        );
        let again = parse_cpudata("d.xml", &format_cpudata(&data)).unwrap();
        assert!(again.nonzero_items().eq(data.nonzero_items()));
    }

    #[test]
    fn attributes_in_a_namespace_are_not_the_dump_s() {
        let data = parse_cpudata(
            "d.xml",
            "<cpudata xmlns:n='urn:x'><cpuid n:eax_in='0x5' eax_in='0x1' n:eax='0x7' ebx='0x2'/></cpudata>",
        )
        .unwrap();
        assert_eq!(data.items(), [Item::cpuid(1, 0, 0, 2, 0, 0)]);
        let e = parse_cpudata(
            "d.xml",
            "<cpudata xmlns:n='urn:x'><msr n:index='1' eax='0' edx='0'/></cpudata>",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.xml:1:26: <msr>: missing attribute 'index'"
        );
    }

    #[test]
    fn bad_dumps_name_the_place() {
        let e = parse_cpudata(
            "d.xml",
            "<cpudata arch='x86'>\n  <cpuid eax_in='0x1' eax='0xnothex'/>\n</cpudata>",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.xml:2:3: <cpuid>: attribute eax='0xnothex' is not a valid unsigned 32-bit number"
        );
        let e = parse_cpudata("d.xml", "<cpudata arch='x86'>\n</cpudata>").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.xml:1:1: <cpudata>: no CPUID or MSR items: the dump is empty"
        );
        let e = parse_cpudata("d.xml", "<cpudata arch='x86'><cpuid ecx_in='0'/></cpudata>")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.xml:1:21: <cpuid>: missing attribute 'eax_in'"
        );
        let e = parse_cpudata("d.xml", "<cpu/>").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.xml:1:1: <cpu>: expected a <cpudata> element"
        );
        let e = parse_cpudata("d.xml", "<cpudata><cpuid").unwrap_err();
        assert!(e.to_string().starts_with("d.xml:1:"), "{e}");
    }
}
