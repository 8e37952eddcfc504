//! x86-64 levels of every model, checked against QEMU's own table.
//!
//! QEMU documents which x86-64 level each of its CPU models reaches (the
//! "ABI compatibility levels for CPU models" table of its x86 CPU page);
//! Debian's `qemu-system-common` installs the rendered page. The test reads
//! that installed page and compares every model both QEMU and the embedded
//! map define with the level `cpumodel models --format json` prints. The
//! page is read where it is installed, never copied into the repository.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::PathBuf;

use cpumodel_testenv::{unavailable, Need};

/// Where Debian installs QEMU's x86 CPU page, unless
/// `CPUMODEL_QEMU_CPU_DOC` names another copy.
const QEMU_CPU_DOC: &str = "/usr/share/doc/qemu-system-common/system/i386/cpu.html";

/// The text of an HTML fragment without its tags.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// The cells of each row of the table that follows `anchor` in `html`.
fn table_rows(html: &str, anchor: &str) -> Vec<Vec<String>> {
    let start = html.find(anchor).expect("the ABI table's section");
    let table = &html[start..];
    let table = &table[..table.find("</table>").expect("the end of the table")];
    let mut rows = Vec::new();
    for row in table.split("<tr").skip(1) {
        let row = &row[..row.find("</tr>").unwrap_or(row.len())];
        let mut cells = Vec::new();
        let mut rest = row;
        while let Some(open) = rest.find("<t") {
            let after = &rest[open + 2..];
            let tag = &after[..1];
            if tag != "d" && tag != "h" {
                rest = after;
                continue;
            }
            let close = format!("</t{tag}>");
            let body_start = after.find('>').expect("a cell tag ends") + 1;
            let body_end = after.find(&close).expect("a cell ends");
            cells.push(text(&after[body_start..body_end]));
            rest = &after[body_end + close.len()..];
        }
        rows.push(cells);
    }
    rows
}

/// QEMU's level of each model: the highest column with a mark.
fn qemu_levels(html: &str) -> BTreeMap<String, Option<String>> {
    let rows = table_rows(html, "id=\"abi-compatibility-levels-for-cpu-models\"");
    assert_eq!(rows[0], ["Model", "baseline", "v2", "v3", "v4"]);
    let names = ["v1", "v2", "v3", "v4"];
    rows[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), 5, "{r:?}");
            let level = (1..5)
                .rev()
                .find(|&i| !r[i].is_empty())
                .map(|i| names[i - 1].to_string());
            (r[0].clone(), level)
        })
        .collect()
}

#[test]
fn every_models_level_is_qemus() {
    let path = std::env::var_os("CPUMODEL_QEMU_CPU_DOC")
        .map_or_else(|| PathBuf::from(QEMU_CPU_DOC), PathBuf::from);
    let Ok(html) = std::fs::read_to_string(&path) else {
        unavailable(
            Need::QemuDoc,
            format!("{} not found (qemu-system-common)", path.display()),
        );
        return;
    };
    let qemu = qemu_levels(&html);
    assert!(qemu.len() > 60, "{} rows", qemu.len());

    let dir = TempDir::new();
    let out = run(&dir, &["models", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let models: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let ours: BTreeMap<&str, (Option<&str>, Vec<&str>)> = models
        .iter()
        .map(|m| {
            let missing = m["psabi_missing"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            (
                m["name"].as_str().unwrap(),
                (m["psabi_level"].as_str(), missing),
            )
        })
        .collect();

    let (mut agree, mut differ) = (0, Vec::new());
    for (name, level) in &qemu {
        let Some((our_level, missing)) = ours.get(name.as_str()) else {
            continue;
        };
        if *our_level == level.as_deref() {
            agree += 1;
        } else {
            differ.push((
                name.as_str(),
                level.as_deref().unwrap_or("-"),
                our_level.unwrap_or("-"),
                missing.clone(),
            ));
        }
    }
    // A named model's level is that of the CPU QEMU gives its guest, so
    // Haswell and Broadwell, whose libvirt definitions lack f16c and abm,
    // are v3 as QEMU says.
    assert_eq!(differ, []);
    assert!(agree > 50, "{agree} models agree");
    println!("psabi: {agree} models agree with QEMU's table, 0 differ");
}

#[test]
fn model_shows_its_level_and_what_the_next_needs() {
    let dir = TempDir::new();
    let out = run(&dir, &["model", "Skylake-Client-v1"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("\nx86-64:     v3 (v4 needs avx512f avx512dq avx512cd avx512bw avx512vl)\n"),
        "{}",
        out.stdout
    );
    let out = run(&dir, &["model", "Skylake-Server", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["psabi_level"], "v4");
    assert_eq!(v["psabi_missing"], serde_json::json!([]));
    let out = run(&dir, &["model", "486"]);
    assert!(
        out.stdout
            .contains("\nx86-64:     - (v1 needs cx8 cmov mmx fxsr sse sse2 syscall lm)\n"),
        "{}",
        out.stdout
    );
}
