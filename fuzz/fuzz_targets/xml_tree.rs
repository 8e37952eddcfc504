//! The light element tree reads every document it accepts exactly as
//! roxmltree does, and the limit scan never panics.

#![no_main]

use cpumodel_fuzz::{describe, text};
use cpumodel_xml::tree::{skip_space, LightTree, RoxNode};
use cpumodel_xml::Source;
use libfuzzer_sys::fuzz_target;

/// roxmltree's reading of `text`, described.
fn rox(text: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(text).ok()?;
    let mut out = String::new();
    describe(
        RoxNode {
            src: Source("t.xml"),
            node: doc.root_element(),
        },
        &mut out,
    );
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    // The checked parse: limits first, then roxmltree with DTDs allowed.
    let _ = Source("t.xml")
        .parse(text)
        .map(|d| d.root_element().range());
    let mut tree = LightTree::default();
    if tree.read_document(text).is_some() {
        let mut light = String::new();
        describe(tree.root(), &mut light);
        assert_eq!(rox(text), Some(light), "light tree and roxmltree disagree");
    }
    // One element read at a position (how fleet files of <cpu> are read).
    let start = skip_space(text.as_bytes(), 0);
    if let Some(end) = tree.read(text, start) {
        assert!(end > start && end <= text.len());
        if skip_space(text.as_bytes(), end) == text.len() {
            let mut light = String::new();
            describe(tree.root(), &mut light);
            assert_eq!(
                rox(text),
                Some(light),
                "light element and roxmltree disagree"
            );
        }
    }
});
