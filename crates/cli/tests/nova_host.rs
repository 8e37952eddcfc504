//! `cpumodel nova check`, `cpumodel nova traits` and Nova's `cpu_info` end
//! to end, on real CPUs of libvirt's conformance corpus (read from
//! `../shared` at run time; skipped with one line when it is absent).
//!
//! The expected answers were derived from Nova 34.0.0's source
//! (`_check_cpu_compatibility`, `_get_cpu_feature_traits`,
//! `CPU_TRAITS_MAPPING`). With `CPUMODEL_NOVA_PYTHON` naming a Python that
//! has Nova installed, the traits of every corpus CPU are also checked
//! against Nova's own mapping function.

mod common;
use common::*;

use std::path::PathBuf;

/// The `<cpudata>` dump of a corpus CPU, or `None` (skipped) without `../shared`.
fn corpus(cpu: &str) -> Option<PathBuf> {
    cpumodel_testenv::shared_path(&format!(
        "conformance/libvirt-10.7/cputestdata/x86_64-cpuid-{cpu}.xml"
    ))
}

/// A nova.conf with a custom model list and extra flags of every kind.
const CUSTOM: &str = "[libvirt]
virt_type = kvm
cpu_mode = custom
cpu_models = Haswell-noTSX, Skylake-Client-IBRS
cpu_model_extra_flags = -vmx, PCID, +ssbd
";

const REFUSED: &str = "nova-compute would not start: InvalidCPUInfo: Configured CPU model: Haswell-noTSX and CPU Flags ['-vmx', 'PCID', '+ssbd'] are not compatible with host CPU. Please correct your config and try again. Unacceptable CPU info: CPU doesn't have compatibility. 0 Refer to http://libvirt.org/html/libvirt-libvirt-host.html#virCPUCompareResult\n";

fn check(conf: &str, host: &std::path::Path, extra: &[&str]) -> Run {
    let dir = TempDir::new();
    dir.write("nova.conf", conf);
    let host = host.display().to_string();
    let mut args = vec!["nova", "check", "--nova-conf", "nova.conf", "--host", &host];
    args.extend_from_slice(extra);
    run(&dir, &args)
}

#[test]
fn check_on_corpus_cpus() {
    let Some(xeon) = corpus("Xeon-E5-2630-v3") else {
        return;
    };
    let Some(i7) = corpus("Core-i7-8700") else {
        return;
    };
    let Some(epyc) = corpus("EPYC-7601-32-Core") else {
        return;
    };
    // Haswell-noTSX runs on the Xeon, but ssbd is missing.
    let got = check(CUSTOM, &xeon, &[]);
    assert_eq!(
        (got.code, got.stdout.as_str(), got.stderr.as_str()),
        (
            Some(1),
            format!("{REFUSED}cause: extra flag +ssbd not provided by the host\n").as_str(),
            ""
        )
    );
    assert_eq!(
        check(CUSTOM, &i7, &[]),
        Run::ok("nova-compute would start: every model of cpu_models (Haswell-noTSX, Skylake-Client-IBRS) with cpu_model_extra_flags runs on this host\n")
    );
    let got = check(CUSTOM, &epyc, &[]);
    assert_eq!(got.code, Some(1));
    assert_eq!(
        got.stdout,
        format!("{REFUSED}cause: model Haswell-noTSX is not usable on this host, which lacks pcid x2apic tsc-deadline erms invpcid; extra flag +ssbd not provided by the host\n")
    );
    // Names: unknown to libvirt, checked before any comparison.
    let got = check(
        "[libvirt]\ncpu_mode = custom\ncpu_models = westmere, Haswel\n",
        &i7,
        &[],
    );
    assert_eq!(got.code, Some(1));
    assert_eq!(got.stdout, "nova-compute would not start: InvalidCPUInfo: Configured CPU model: Haswel is not correct, or your host CPU arch does not support this model. Please correct your config and try again.\ncause: model Haswel is unknown to this libvirt\n");
    let got = check(
        "[libvirt]\ncpu_mode = custom\ncpu_models = Westmere\ncpu_model_extra_flags = -vmx, sse3\n",
        &i7,
        &["--format", "json"],
    );
    assert_eq!(got.code, Some(1));
    let doc: serde_json::Value = serde_json::from_str(&got.stdout).unwrap();
    assert_eq!(doc["message"], "Configured CPU model: Westmere and CPU Flags ['-vmx', 'sse3'] are not compatible with host CPU. Please correct your config and try again. Unacceptable CPU info: CPU doesn't have compatibility.\n\ninternal error: Unknown CPU feature sse3\n\nRefer to http://libvirt.org/html/libvirt-libvirt-host.html#virCPUCompareResult");
    assert_eq!(doc["cause"]["kind"], "unknown-flag");
    assert_eq!(doc["starts"], false);
    // Other modes take no model list; host-model checks nothing else.
    let got = check(
        "[libvirt]\ncpu_mode = host-model\ncpu_models = Westmere\n",
        &i7,
        &[],
    );
    assert_eq!(got.stdout, "nova-compute would not start: Invalid: The cpu_models option is not required when cpu_mode!=custom\ncause: cpu_models is set, but cpu_mode is not custom\n");
    assert_eq!(
        check("[libvirt]\ncpu_mode = host-passthrough\n", &epyc, &[]),
        Run::ok("nova-compute would start: cpu_mode is host-passthrough: Nova checks CPU models at start-up only for cpu_mode = custom\n")
    );
    // With qemu (TCG), Nova compares nothing.
    assert_eq!(
        check(&CUSTOM.replace("kvm", "qemu"), &epyc, &[]).code,
        Some(0)
    );
}

const XEON_TRAITS: &str = "HW_CPU_X86_ABM HW_CPU_X86_AESNI HW_CPU_X86_AVX HW_CPU_X86_AVX2 HW_CPU_X86_BMI HW_CPU_X86_BMI2 HW_CPU_X86_CLMUL HW_CPU_X86_F16C HW_CPU_X86_FMA3 HW_CPU_X86_INTEL_VMX HW_CPU_X86_MMX HW_CPU_X86_SSE HW_CPU_X86_SSE2 HW_CPU_X86_SSE41 HW_CPU_X86_SSE42 HW_CPU_X86_SSSE3 HW_CPU_X86_VMX";
const I7_TRAITS: &str = "HW_CPU_X86_ABM HW_CPU_X86_AESNI HW_CPU_X86_AVX HW_CPU_X86_AVX2 HW_CPU_X86_BMI HW_CPU_X86_BMI2 HW_CPU_X86_CLMUL HW_CPU_X86_F16C HW_CPU_X86_FMA3 HW_CPU_X86_INTEL_VMX HW_CPU_X86_MMX HW_CPU_X86_MPX HW_CPU_X86_SSE HW_CPU_X86_SSE2 HW_CPU_X86_SSE41 HW_CPU_X86_SSE42 HW_CPU_X86_SSSE3 HW_CPU_X86_VMX";
const EPYC_TRAITS: &str = "HW_CPU_X86_ABM HW_CPU_X86_AESNI HW_CPU_X86_AMD_SVM HW_CPU_X86_AVX HW_CPU_X86_AVX2 HW_CPU_X86_BMI HW_CPU_X86_BMI2 HW_CPU_X86_CLMUL HW_CPU_X86_F16C HW_CPU_X86_FMA3 HW_CPU_X86_MMX HW_CPU_X86_SHA HW_CPU_X86_SSE HW_CPU_X86_SSE2 HW_CPU_X86_SSE41 HW_CPU_X86_SSE42 HW_CPU_X86_SSE4A HW_CPU_X86_SSSE3 HW_CPU_X86_SVM";

fn lines(words: &str) -> String {
    words.split(' ').map(|w| format!("{w}\n")).collect()
}

#[test]
fn traits_of_corpus_cpus() {
    let dir = TempDir::new();
    for (cpu, traits) in [
        ("Xeon-E5-2630-v3", XEON_TRAITS),
        ("Core-i7-8700", I7_TRAITS),
        ("EPYC-7601-32-Core", EPYC_TRAITS),
    ] {
        let Some(path) = corpus(cpu) else { return };
        let path = path.display().to_string();
        assert_eq!(
            run(&dir, &["nova", "traits", &path]),
            Run::ok(&lines(traits)),
            "{cpu}"
        );
    }
    let Some(i7) = corpus("Core-i7-8700") else {
        return;
    };
    let i7 = i7.display().to_string();
    // Custom mode: the models' features and every flag's name, disabled
    // ones too (Nova ignores the policy); SSE3 only as a flag spelt sse3.
    dir.write(
        "custom.conf",
        "[libvirt]\ncpu_mode = custom\ncpu_models = Westmere\ncpu_model_extra_flags = -vmx, sse3\n",
    );
    let got = run(
        &dir,
        &[
            "nova",
            "traits",
            "--nova-conf",
            "custom.conf",
            "--format",
            "json",
            &i7,
        ],
    );
    let doc: serde_json::Value = serde_json::from_str(&got.stdout).unwrap();
    assert_eq!(
        doc["traits"],
        serde_json::json!([
            "HW_CPU_X86_AESNI",
            "HW_CPU_X86_INTEL_VMX",
            "HW_CPU_X86_MMX",
            "HW_CPU_X86_SSE",
            "HW_CPU_X86_SSE2",
            "HW_CPU_X86_SSE3",
            "HW_CPU_X86_SSE41",
            "HW_CPU_X86_SSE42",
            "HW_CPU_X86_SSSE3",
            "HW_CPU_X86_VMX"
        ])
    );
    // cpu_mode = none: qemu64's features.
    dir.write("none.conf", "[libvirt]\ncpu_mode = none\n");
    assert_eq!(
        run(&dir, &["nova", "traits", "--nova-conf", "none.conf", &i7]),
        Run::ok(&lines(
            "HW_CPU_X86_AMD_SVM HW_CPU_X86_MMX HW_CPU_X86_SSE HW_CPU_X86_SSE2 HW_CPU_X86_SVM"
        ))
    );
}

/// The host `<cpu>` of `cpumodel host --format xml` (its first element).
fn host_cpu_element(xml: &str) -> String {
    let start = xml.find("<cpu>").expect("a host <cpu>");
    let end = xml[start..].find("</cpu>").expect("its end") + start + "</cpu>".len();
    format!("{}\n", &xml[start..end])
}

#[test]
fn cpu_info_round_trip() {
    let dir = TempDir::new();
    let info = run(&dir, &["host", "--format", "nova-cpu-info"]);
    if info.code == Some(2) && info.stderr.contains("does not have") {
        println!("skipped: {}", info.stderr.trim());
        return;
    }
    assert_eq!((info.code, info.stderr.as_str()), (Some(0), ""));
    let doc: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    for key in ["arch", "model", "vendor", "features"] {
        assert!(!doc[key].is_null(), "{key}");
    }
    for key in ["cells", "sockets", "cores", "threads"] {
        assert!(doc["topology"][key].as_u64().unwrap() >= 1, "{key}");
    }
    dir.write("info.json", &info.stdout);
    let xml = run(&dir, &["host", "--format", "xml"]);
    dir.write("host.xml", &host_cpu_element(&xml.stdout));
    // Read back, it is the same CPU, both ways.
    assert_eq!(
        run(&dir, &["compare", "info.json", "host.xml"]),
        Run::ok("identical\n")
    );
    assert_eq!(
        run(&dir, &["compare", "host.xml", "info.json"]),
        Run::ok("identical\n")
    );
    // And any command that takes a host reads it.
    assert_eq!(run(&dir, &["nova", "traits", "info.json"]).code, Some(0));
}

#[test]
fn bad_cpu_info_is_one_line_naming_the_field() {
    let dir = TempDir::new();
    let good = r#"{"arch": "x86_64", "model": "Westmere", "vendor": "Intel",
 "topology": {"cells": 1, "sockets": 1, "cores": 2, "threads": 2},
 "features": ["vmx", "sse2"]}"#;
    dir.write("good.json", good);
    assert_eq!(
        run(&dir, &["nova", "traits", "good.json"]),
        Run::ok(&lines("HW_CPU_X86_AESNI HW_CPU_X86_INTEL_VMX HW_CPU_X86_MMX HW_CPU_X86_SSE HW_CPU_X86_SSE2 HW_CPU_X86_SSE41 HW_CPU_X86_SSE42 HW_CPU_X86_SSSE3 HW_CPU_X86_VMX"))
    );
    for (text, message) in [
        (
            good.replace(r#""vendor": "Intel","#, ""),
            "bad.json:1:1: cpu_info: missing field 'vendor'",
        ),
        (
            good.replace(r#""cores": 2"#, r#""cores": "2""#),
            "bad.json:2:50: cpu_info field 'topology.cores': expected a positive integer, found a string",
        ),
        (
            good.replace(r#"["vmx", "sse2"]"#, r#""vmx""#),
            "bad.json:3:14: cpu_info field 'features': expected an array of strings, found a string",
        ),
        (
            good.replace(r#""sse2""#, r#""sse5""#),
            "bad.json:3:22: cpu_info field 'features[1]': unknown CPU feature 'sse5'; did you mean 'sse', 'sse2', 'ss'?",
        ),
        (
            good.trim_end_matches('}').to_string(),
            "bad.json:3:28: cpu_info: invalid JSON: EOF while parsing an object",
        ),
    ] {
        dir.write("bad.json", &text);
        assert_eq!(run(&dir, &["nova", "traits", "bad.json"]), Run::error(message), "{text}");
        assert_eq!(run(&dir, &["compare", "bad.json", "good.json"]), Run::error(message), "{text}");
    }
}

/// Every corpus CPU's traits against Nova's own `cpu_features_to_traits`,
/// fed with the host's features as `cpumodel expand` lists them.
#[test]
fn traits_agree_with_novas_code() {
    let Some(python) = std::env::var_os("CPUMODEL_NOVA_PYTHON") else {
        cpumodel_testenv::unavailable(
            cpumodel_testenv::Need::Nova,
            "CPUMODEL_NOVA_PYTHON (a Python with Nova installed) is not set",
        );
        return;
    };
    let Some(dir_path) = cpumodel_testenv::shared_path("conformance/libvirt-10.7/cputestdata")
    else {
        return;
    };
    let dir = TempDir::new();
    let mut dumps: Vec<PathBuf> = std::fs::read_dir(&dir_path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("x86_64-cpuid-") && n.ends_with(".xml"))
                && std::fs::read_to_string(p).is_ok_and(|t| t.contains("<cpudata"))
        })
        .collect();
    dumps.sort();
    assert!(!dumps.is_empty());
    // Nova's Python starts once, for every CPU.
    let script = "import json, sys\nfrom nova.virt.libvirt import utils\nfor fs in json.load(open(sys.argv[1])):\n    print(' '.join(t for t, on in sorted(utils.cpu_features_to_traits(set(fs)).items()) if on))\n";
    dir.write("traits.py", script);
    let mut all: Vec<Vec<String>> = Vec::new();
    for dump in &dumps {
        let dump = dump.display().to_string();
        let decoded = run(&dir, &["decode", &dump]);
        dir.write("host.xml", &decoded.stdout);
        let expanded = run(&dir, &["expand", "host.xml"]).stdout;
        all.push(
            expanded
                .lines()
                .filter_map(|l| l.split("name='").nth(1))
                .filter_map(|rest| rest.split('\'').next())
                .map(str::to_string)
                .collect(),
        );
    }
    dir.write("features.json", &serde_json::to_string(&all).unwrap());
    let out = std::process::Command::new(&python)
        .args(["-W", "ignore", "traits.py", "features.json"])
        .current_dir(dir.path())
        .output()
        .expect("run Nova's Python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nova = String::from_utf8(out.stdout).unwrap();
    for (dump, line) in dumps.iter().zip(nova.lines()) {
        let dump = dump.display().to_string();
        let expected: String = line.split_whitespace().map(|t| format!("{t}\n")).collect();
        assert_eq!(
            run(&dir, &["nova", "traits", &dump]).stdout,
            expected,
            "{dump}"
        );
    }
    assert_eq!(nova.lines().count(), dumps.len());
    println!("{} corpus CPUs agree with Nova's mapping", dumps.len());
}
