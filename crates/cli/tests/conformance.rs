//! libvirt conformance: every case of `../shared/conformance/libvirt-10.7`
//! run through the library as libvirt 10.7 (its embedded map and its
//! behaviour, and again with the corpus's own cpu_map directory), compared
//! with libvirt's own answers; the decode cases also through the CLI with
//! `--libvirt 10.7`.
//!
//! The corpus is not part of the repository; without it the test prints one
//! line and passes.

use std::path::{Path, PathBuf};

use cpumodel_cpudef::{
    baseline, compare, decode, host_features_from_cpudata, parse_cpus, BaselineOptions, Comparison,
    CpuDef, CpuFeatures, CpuKind, DecodeOptions,
};
use cpumodel_map::{load_cpu_map, Database, Release};
use cpumodel_qemu::QemuNames;
use serde_json::Value;

/// The release the corpus comes from.
fn release() -> &'static Release {
    Release::find("10.7").unwrap()
}

/// How that release reads QEMU's feature names.
fn qemu_names() -> QemuNames {
    if release().behaviour.qemu_aliases {
        QemuNames::WithAliases
    } else {
        QemuNames::Libvirt
    }
}

fn corpus() -> Option<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/libvirt-10.7");
    dir.join("manifest.json").exists().then_some(dir)
}

/// Equality as the corpus defines it: same elements in the same order, same
/// attributes in any order, same trimmed text.
fn same_xml(a: roxmltree::Node<'_, '_>, b: roxmltree::Node<'_, '_>) -> bool {
    let mut aa: Vec<_> = a.attributes().map(|x| (x.name(), x.value())).collect();
    let mut ba: Vec<_> = b.attributes().map(|x| (x.name(), x.value())).collect();
    aa.sort();
    ba.sort();
    let text = |n: roxmltree::Node<'_, '_>| -> String {
        n.children()
            .filter(|c| c.is_text())
            .map(|c| c.text().unwrap_or(""))
            .collect::<String>()
            .trim()
            .to_string()
    };
    let ae: Vec<_> = a.children().filter(|c| c.is_element()).collect();
    let be: Vec<_> = b.children().filter(|c| c.is_element()).collect();
    a.tag_name().name() == b.tag_name().name()
        && aa == ba
        && text(a) == text(b)
        && ae.len() == be.len()
        && ae.iter().zip(&be).all(|(x, y)| same_xml(*x, *y))
}

fn xml_matches(actual: &str, expected_file: &Path) -> Result<(), String> {
    let expected = std::fs::read_to_string(expected_file).map_err(|e| e.to_string())?;
    let a = roxmltree::Document::parse(actual).map_err(|e| format!("output is not XML: {e}"))?;
    let b = roxmltree::Document::parse(&expected).map_err(|e| e.to_string())?;
    if same_xml(a.root_element(), b.root_element()) {
        Ok(())
    } else {
        Err(format!("got:\n{actual}expected:\n{expected}"))
    }
}

fn run_decode(db: &Database, dir: &Path, case: &Value) -> Result<(), String> {
    let input = dir.join(case["input"].as_str().unwrap());
    let text = std::fs::read_to_string(&input).map_err(|e| e.to_string())?;
    let (_, features) = host_features_from_cpudata(db, &input.display().to_string(), &text)
        .map_err(|e| e.to_string())?;
    let kind = if case["type"] == "host" {
        CpuKind::Host
    } else {
        CpuKind::Guest
    };
    let hv = match case.get("qemu_models").and_then(Value::as_str) {
        Some(file) => Some(qemu_models(db, &dir.join(file))?),
        None => None,
    };
    let mut opts = DecodeOptions::new(kind);
    opts.hypervisor = hv.as_ref();
    let decoded = decode(db, &features, &opts).map_err(|e| e.to_string())?;
    xml_matches(
        &decoded.to_cpu_def(db, kind).to_xml(),
        &dir.join(case["expect"].as_str().unwrap()),
    )
}

fn qemu_models(db: &Database, file: &Path) -> Result<cpumodel_cpudef::HypervisorModels, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let replies = cpumodel_qemu::parse_replies(&file.display().to_string(), &text)
        .map_err(|e| e.to_string())?;
    let defs = replies.definitions.ok_or("no definitions reply")?;
    Ok(cpumodel_qemu::hypervisor_models(db, &defs, qemu_names()))
}

fn run_qemu_host_model(db: &Database, dir: &Path, case: &Value) -> Result<(), String> {
    let file = dir.join(case["qemu_replies"].as_str().unwrap());
    let name = file.display().to_string();
    let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
    let replies = cpumodel_qemu::parse_replies(&name, &text).map_err(|e| e.to_string())?;
    let exp = replies
        .expansion
        .as_ref()
        .ok_or("no model-expansion reply")?;
    let data = cpumodel_qemu::expansion_to_data(db, &name, exp, qemu_names())
        .map_err(|e| e.to_string())?;
    let features = CpuFeatures::from_data(db, &data).map_err(|e| e.to_string())?;
    let hv = if case["qemu_models"] == true {
        Some(cpumodel_qemu::hypervisor_models(
            db,
            replies
                .definitions
                .as_deref()
                .ok_or("no definitions reply")?,
            qemu_names(),
        ))
    } else {
        None
    };
    let mut opts = DecodeOptions::new(CpuKind::Guest);
    opts.hypervisor = hv.as_ref();
    let decoded = decode(db, &features, &opts).map_err(|e| e.to_string())?;
    xml_matches(
        &decoded.to_cpu_def(db, CpuKind::Guest).to_xml(),
        &dir.join(case["expect"].as_str().unwrap()),
    )
}

fn load_cpus(db: &Database, file: &Path) -> Result<Vec<CpuDef>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let cpus = parse_cpus(db, &file.display().to_string(), &text).map_err(|e| e.to_string())?;
    Ok(cpus.into_iter().map(|c| c.cpu).collect())
}

fn run_baseline(db: &Database, dir: &Path, case: &Value) -> Result<(), String> {
    let cpus: Vec<CpuDef> = match case.get("inputs_multi").and_then(Value::as_str) {
        Some(file) => load_cpus(db, &dir.join(file))?,
        None => {
            let mut all = Vec::new();
            for f in case["inputs"].as_array().unwrap() {
                all.extend(load_cpus(db, &dir.join(f.as_str().unwrap()))?);
            }
            all
        }
    };
    let flags: Vec<&str> = case["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let opts = BaselineOptions {
        expand_features: flags.contains(&"expand-features"),
        migratable: flags.contains(&"migratable"),
        hypervisor_filter: &[],
    };
    let names: Vec<String> = (0..cpus.len()).map(|i| format!("cpu #{i}")).collect();
    let result = baseline(db, names.iter().map(String::as_str).zip(cpus.iter()), opts);
    if case.get("expect_error") == Some(&Value::Bool(true)) {
        return match result {
            Err(_) => Ok(()),
            Ok(cpu) => Err(format!("expected an error, got:\n{}", cpu.to_xml())),
        };
    }
    let result = result.map_err(|e| e.to_string())?;
    xml_matches(
        &result.to_xml(),
        &dir.join(case["expect"].as_str().unwrap()),
    )?;
    if case.get("check_compatible") == Some(&Value::Bool(true)) {
        for (i, cpu) in cpus.iter().enumerate() {
            let r = compare(db, cpu, &result).map_err(|e| e.to_string())?;
            if r.result == Comparison::Incompatible {
                return Err(format!(
                    "baseline is incompatible with input {i}: {:?}",
                    r.reason
                ));
            }
        }
    }
    Ok(())
}

fn run_compare(db: &Database, dir: &Path, case: &Value) -> Result<(), String> {
    let outcome = (|| -> Result<Comparison, String> {
        let host = load_cpus(db, &dir.join(case["host"].as_str().unwrap()))?.remove(0);
        let cpu = load_cpus(db, &dir.join(case["cpu"].as_str().unwrap()))?.remove(0);
        compare(db, &host, &cpu)
            .map(|r| r.result)
            .map_err(|e| e.to_string())
    })();
    match (
        outcome,
        case.get("expect_error") == Some(&Value::Bool(true)),
    ) {
        (Err(_), true) => Ok(()),
        (Ok(r), true) => Err(format!("expected an error, got {r}")),
        (Err(e), false) => Err(e),
        (Ok(r), false) if r.to_string() == case["expect_result"].as_str().unwrap() => Ok(()),
        (Ok(r), false) => Err(format!("got {r}, expected {}", case["expect_result"])),
    }
}

/// The corpus directory, its manifest and the cases of `op` that `keep`
/// accepts; `None` (after printing one line) when the corpus is absent.
fn cases_of(op: &str, keep: impl Fn(&Value) -> bool) -> Option<(PathBuf, Value, Vec<Value>)> {
    let Some(dir) = corpus() else {
        cpumodel_testenv::unavailable(
            cpumodel_testenv::Need::Shared,
            format!("{op}: ../shared/conformance/libvirt-10.7 not found (the conformance corpus is not present)"),
        );
        return None;
    };
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let cases: Vec<Value> = manifest["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["op"] == op && keep(c))
        .cloned()
        .collect();
    assert!(!cases.is_empty(), "{op}: the manifest has no cases");
    Some((dir, manifest, cases))
}

fn run_op(op: &str, run: impl Fn(&Database, &Path, &Value) -> Result<(), String>) {
    let Some((dir, manifest, cases)) = cases_of(op, |_| true) else {
        return;
    };
    let maps = [
        ("embedded", release().database()),
        (
            "corpus cpu_map",
            load_cpu_map(&dir.join(manifest["cpu_map"].as_str().unwrap())).unwrap(),
        ),
    ];
    let mut failed = Vec::new();
    for (map, db) in &maps {
        let before = failed.len();
        for case in &cases {
            if let Err(e) = run(db, &dir, case) {
                eprintln!("FAIL {} ({map}): {e}", case["id"].as_str().unwrap());
                failed.push(format!("{} ({map})", case["id"].as_str().unwrap()));
            }
        }
        println!(
            "{op}: {}/{} passed (libvirt {}, {map})",
            cases.len() - (failed.len() - before),
            cases.len(),
            release().name
        );
    }
    assert!(
        failed.is_empty(),
        "{op}: failing cases: {}",
        failed.join(", ")
    );
}

#[test]
fn conformance_decode() {
    run_op("decode", run_decode);
}

#[test]
fn conformance_qemu_host_model() {
    run_op("qemu-host-model", run_qemu_host_model);
}

#[test]
fn conformance_baseline() {
    run_op("baseline", run_baseline);
}

#[test]
fn conformance_compare() {
    run_op("compare", run_compare);
}

#[test]
fn conformance_decode_through_the_cli_as_libvirt_10_7() {
    let Some((dir, _, cases)) = cases_of("decode", |c| c.get("qemu_models").is_none()) else {
        return;
    };
    let mut failed = Vec::new();
    for case in &cases {
        let input = dir.join(case["input"].as_str().unwrap());
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cpumodel"));
        cmd.args(["--libvirt", "10.7", "decode"]);
        if case["type"] == "guest" {
            cmd.arg("--guest");
        }
        let out = cmd.arg(&input).output().unwrap();
        let verdict = if out.status.success() {
            xml_matches(
                &String::from_utf8_lossy(&out.stdout),
                &dir.join(case["expect"].as_str().unwrap()),
            )
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        };
        if let Err(e) = verdict {
            eprintln!("FAIL {}: {e}", case["id"].as_str().unwrap());
            failed.push(case["id"].as_str().unwrap());
        }
    }
    println!(
        "decode (cpumodel --libvirt 10.7 decode): {}/{} passed",
        cases.len() - failed.len(),
        cases.len()
    );
    assert!(failed.is_empty(), "failing cases: {}", failed.join(", "));
}
