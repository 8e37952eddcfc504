//! The light tree and roxmltree read `<cpudata>` dumps alike: on every dump
//! of the libvirt corpus, with the prologue notes cpumodel writes, and on
//! damaged dumps, whatever the light tree accepts reads as roxmltree reads
//! it.

use cpumodel_cpudata::{parse_cpudata, parse_cpudata_light, parse_cpudata_node, CpuData};
use cpumodel_xml::{Source, XmlError};

/// The roxmltree reading alone (what `parse_cpudata` falls back to).
fn rox(text: &str) -> Result<CpuData, XmlError> {
    let src = Source("d.xml");
    let doc = src.parse(text)?;
    let root = doc.root_element();
    if !root.has_tag_name("cpudata") {
        return Err(src.error(root, "expected a <cpudata> element"));
    }
    parse_cpudata_node(&src, root)
}

/// Every `<cpudata>` document of the corpus: (file name, text).
fn corpus() -> Option<Vec<(String, String)>> {
    let dir = cpumodel_testenv::shared_path("conformance/libvirt-10.7/cputestdata")?;
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .filter(|(_, text)| cpumodel_xml::prologue::Prologue::scan(text).root == "cpudata")
        .collect();
    out.sort();
    assert!(out.len() > 30, "the corpus holds {} dumps", out.len());
    Some(out)
}

#[test]
fn every_corpus_dump_reads_alike_on_both_trees() {
    let Some(dumps) = corpus() else { return };
    for (name, text) in &dumps {
        let exact = rox(text).expect(name);
        // The light tree reads every one of them, with or without the notes
        // `cpumodel dump` and fleet tools put before the root.
        for doc in [
            text.clone(),
            format!("<!-- host: node-0000042 -->\n{text}"),
            format!("<!-- host: web-7.example.org -->\n<!-- view: kvm (/dev/kvm) -->\n{text}"),
        ] {
            assert_eq!(parse_cpudata_light(&doc).as_ref(), Some(&exact), "{name}");
            assert_eq!(parse_cpudata(name, &doc).as_ref(), Ok(&exact), "{name}");
        }
    }
}

#[test]
fn the_light_tree_steps_aside_where_it_should() {
    let dump = "<cpudata arch='x86'>\n  <cpuid eax_in='0x0' eax='0xd' ebx='0x756e6547' ecx='0x6c65746e' edx='0x49656e69'/>\n</cpudata>\n";
    assert!(parse_cpudata_light(dump).is_some());
    for text in [
        // Outside its subset: roxmltree reads these.
        format!("<?xml version='1.0'?>\n{dump}"),
        format!("<!-- h\u{f4}te -->\n{dump}"),
        dump.replace("'0xd'", "'&#48;'"),
        dump.replace('\n', "\r\n"),
        // Invalid: roxmltree reports where.
        dump.replace("eax_in='0x0' ", ""),
        dump.replace("0x756e6547", "0xnothex"),
        dump.replace("x86", "arm"),
        "<cpudata arch='x86'/>".to_string(),
        dump.replace("cpuid", "cpuidx"),
        // Not a dump.
        "<cpu><model>Haswell</model></cpu>".to_string(),
        dump.replace("cpudata", "cpudatax"),
    ] {
        assert_eq!(parse_cpudata_light(&text), None, "{text}");
        assert_eq!(parse_cpudata("d.xml", &text), rox(&text), "{text}");
    }
}

#[test]
fn both_trees_agree_on_mutated_dumps() {
    let seed = "<!-- host: node-1 -->\n<!-- view: kvm -->\n<cpudata arch='x86'>\n  <cpuid eax_in='0x00000000' ecx_in='0x00' eax='0x0000000d' ebx='0x756e6547' ecx='0x6c65746e' edx='0x49656e69'/>\n  <cpuid eax_in='0x00000001' ecx_in='0x00' eax='0x000306c3' ebx='0x00100800' ecx='0x7ffafbff' edx='0xbfebfbff'/>\n  <cpuid eax_in='0x00000007' ecx_in='0x00' eax='0x00000000' ebx='0x000027ab' ecx='0x00000000' edx='0x9c000000'/>\n  <msr index='0x10a' edx='0x00000000' eax='0x000001eb'/>\n</cpudata>\n";
    let alphabet = b"<>/='\"!-?&;x :\t\n\r0a9";
    let mut mutator = cpumodel_testenv::Mutator::new(0x2545_f491_4f6c_dd1d);
    let (mut light, mut exact_ok) = (0, 0);
    for _ in 0..20_000 {
        let doc = mutator.mutate(seed.as_bytes(), alphabet, 3);
        let text = String::from_utf8(doc).expect("ASCII");
        let exact = rox(&text);
        exact_ok += usize::from(exact.is_ok());
        if let Some(data) = parse_cpudata_light(&text) {
            light += 1;
            assert_eq!(Ok(&data), exact.as_ref(), "{text:?}");
        }
        assert_eq!(parse_cpudata("d.xml", &text), exact, "{text:?}");
    }
    // Most damaged dumps that still read are read by the light tree.
    assert!(
        light > 2_000 && light * 10 > exact_ok * 9,
        "{light} of {exact_ok}"
    );
}
