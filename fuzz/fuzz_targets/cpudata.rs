//! `<cpudata>` dumps: the light reader and roxmltree read the same data,
//! and a formatted dump reads back to the same items.

#![no_main]

use cpumodel_cpudata::{
    duplicate_items, format_cpudata, parse_cpudata, parse_cpudata_light, parse_cpudata_node,
    CpuData, Item,
};
use cpumodel_fuzz::text;
use cpumodel_xml::{Source, XmlError};
use libfuzzer_sys::fuzz_target;

/// The roxmltree reading of a `<cpudata>` document.
fn full(text: &str) -> Result<CpuData, XmlError> {
    let src = Source("d.xml");
    let doc = src.parse(text)?;
    let root = doc.root_element();
    if !root.has_tag_name("cpudata") {
        return Err(src.error(root, "expected a <cpudata> element"));
    }
    parse_cpudata_node(&src, root)
}

fn nonzero(data: &CpuData) -> Vec<Item> {
    data.nonzero_items().copied().collect()
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    let exact = full(text);
    if let Some(light) = parse_cpudata_light(text) {
        assert_eq!(
            Ok(&light),
            exact.as_ref(),
            "light reader and roxmltree disagree"
        );
    }
    assert_eq!(parse_cpudata("d.xml", text).ok(), exact.clone().ok());
    let _ = duplicate_items(text);
    let Ok(data) = exact else { return };
    if data.nonzero_items().next().is_none() {
        return;
    }
    let written = format_cpudata(&data);
    let light = parse_cpudata_light(&written).expect("a formatted dump is plain XML");
    assert_eq!(
        nonzero(&light),
        nonzero(&data),
        "formatted dump reads back differently"
    );
    assert_eq!(format_cpudata(&light), written);
    assert_eq!(full(&written).as_ref(), Ok(&light));
});
