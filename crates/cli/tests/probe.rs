//! `cpumodel probe` against a real QEMU: every model this QEMU defines,
//! booted under TCG, shows its guest the table `cpumodel cpuid` builds, up
//! to the features QEMU announces filtering and the explained differences.
//!
//! Without `qemu-system-x86_64` the real-QEMU tests print one `skipped:`
//! line and pass (they fail when CI requires QEMU); the error paths run
//! everywhere, with small shell scripts standing in for QEMU.

use std::collections::HashSet;
use std::process::Command;

use serde_json::Value;

mod common;
use common::*;

const QEMU: &str = "qemu-system-x86_64";

/// The models `qemu-system-x86_64 -cpu help` lists, or `None` (after the
/// skip line) without QEMU.
fn qemu_models() -> Option<HashSet<String>> {
    let Ok(out) = Command::new(QEMU).args(["-cpu", "help"]).output() else {
        cpumodel_testenv::unavailable(
            cpumodel_testenv::Need::Qemu,
            "qemu-system-x86_64 not installed",
        );
        return None;
    };
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("x86 "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect(),
    )
}

/// Every model of the map that has a QEMU definition (`cpumodel cpuid`
/// builds a table for it).
fn models_with_tables(dir: &TempDir) -> Vec<String> {
    let models = run(dir, &["models"]);
    models
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|m| run(dir, &["cpuid", "--model", m]).code == Some(0))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_model_qemu_knows_shows_the_guest_the_cpuid_table() {
    let Some(known) = qemu_models() else { return };
    let dir = TempDir::new();
    let (mut ok, mut skipped, mut filtered) = (0, Vec::new(), 0);
    for model in models_with_tables(&dir) {
        if !known.contains(&model) {
            skipped.push(model);
            continue;
        }
        let r = run(
            &dir,
            &[
                "probe", "--model", &model, "--accel", "tcg", "--format", "json",
            ],
        );
        assert_eq!(
            r.code,
            Some(0),
            "probe --model {model}: {}{}",
            r.stdout,
            r.stderr
        );
        assert!(r.stderr.is_empty(), "{model}: {}", r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
        assert_eq!(v["ok"], Value::Bool(true), "{model}");
        filtered += v["report"]["filtered"].as_array().map_or(0, Vec::len);
        ok += 1;
    }
    println!(
        "probe: {ok} models agree with cpumodel cpuid under TCG ({filtered} feature filterings announced by QEMU); {} not in this QEMU: {}",
        skipped.len(),
        skipped.join(" ")
    );
    assert!(ok >= 100, "only {ok} models probed");
}

#[test]
fn the_dump_decodes_and_a_difference_is_named() {
    let Some(known) = qemu_models() else { return };
    assert!(known.contains("Westmere"));
    let dir = TempDir::new();
    // Flags as in cpumodel cpuid; the dump is the CPU the guest saw.
    let r = run(
        &dir,
        &[
            "probe",
            "--model",
            "Westmere",
            "--flag",
            "+avx",
            "--flag=-aes",
            "--accel",
            "tcg",
            "-o",
            "seen.xml",
        ],
    );
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("\nresult: OK: the guest saw the intended CPU"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\ndecode:   Westmere"), "{}", r.stdout);
    let decoded = run(&dir, &["decode", "--guest", "seen.xml"]);
    assert_eq!(decoded.code, Some(0));
    assert!(
        decoded
            .stdout
            .contains("<model fallback='forbid'>Westmere</model>"),
        "{}",
        decoded.stdout
    );
    assert!(
        decoded
            .stdout
            .contains("<feature policy='require' name='avx'/>"),
        "{}",
        decoded.stdout
    );
    assert!(
        decoded
            .stdout
            .contains("<feature policy='disable' name='aes'/>"),
        "{}",
        decoded.stdout
    );

    // Without pinning, QEMU's own Westmere adds PCLMULQDQ and ARAT, which
    // libvirt's map (and so the table) lacks: exit 1, both named.
    let r = run(
        &dir,
        &["probe", "--model", "Westmere", "--accel", "tcg", "--no-pin"],
    );
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("feature   pclmuldq: intended off, seen on (DIFFERENT)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("feature   arat: intended off, seen on (DIFFERENT)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("\nresult: DIFFERENT: 2 of "),
        "{}",
        r.stdout
    );

    // TCG filters x2apic and tsc-deadline on Intel models, and says so.
    let r = run(
        &dir,
        &["probe", "--model", "Skylake-Client", "--accel", "tcg"],
    );
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("feature   x2apic: intended on, seen off (filtered by QEMU)"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_topology_and_the_other_cpu_inputs() {
    if qemu_models().is_none() {
        return;
    }
    let dir = TempDir::new();
    let r = run(
        &dir,
        &[
            "probe",
            "--model",
            "EPYC-Rome",
            "--sockets",
            "2",
            "--cores",
            "2",
            "--threads",
            "2",
            "--accel",
            "tcg",
        ],
    );
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let r = run(
        &dir,
        &[
            "probe",
            "--cpu",
            "Nehalem,+avx,pclmulqdq=on,-sse4.2",
            "--accel",
            "tcg",
        ],
    );
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let guest = run(
        &dir,
        &[
            "guest",
            "--mode",
            "custom",
            "--model",
            "Haswell-noTSX",
            "--flag=-avx2",
        ],
    );
    dir.write("cpu.xml", &guest.stdout);
    let r = run(&dir, &["probe", "--xml", "cpu.xml", "--accel", "tcg"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
}

/// A stand-in QEMU: lists Westmere for `-cpu help`, otherwise runs `body`.
fn fake_qemu(dir: &TempDir, body: &str) -> String {
    let script = format!(
        "#!/bin/sh\nif [ \"$2\" = help ]; then printf 'x86 Westmere  W\\n\\nRecognized CPUID flags:\\n  avx\\n'; exit 0; fi\n{body}\n"
    );
    dir.write("qemu", &script);
    let path = dir.path().join("qemu");
    Command::new("chmod")
        .arg("+x")
        .arg(&path)
        .status()
        .expect("chmod");
    path.display().to_string()
}

#[test]
fn errors_are_one_line() {
    let dir = TempDir::new();
    assert_eq!(
        run(&dir, &["probe", "--model", "Westmere", "--qemu", "/nonexistent/qemu"]),
        Run::error("cannot run /nonexistent/qemu: No such file or directory (os error 2) (install QEMU, e.g. apt-get install qemu-system-x86, or give --qemu PATH)")
    );
    let qemu = fake_qemu(
        &dir,
        "echo \"qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.x2apic [bit 21]\" >&2\n\
         echo \"qemu-system-x86_64: can't apply global Westmere-x86_64-cpu.avx=on: Property not found\" >&2\nexit 1",
    );
    assert_eq!(
        run(&dir, &["probe", "--model", "Westmere", "--accel", "tcg", "--qemu", &qemu, "--flag", "avx"]),
        Run::error("QEMU refused -cpu Westmere,avx=on: can't apply global Westmere-x86_64-cpu.avx=on: Property not found")
    );
    let qemu = fake_qemu(&dir, "exec sleep 30");
    assert_eq!(
        run(
            &dir,
            &[
                "probe",
                "--model",
                "Westmere",
                "--accel",
                "tcg",
                "--qemu",
                &qemu,
                "--timeout",
                "0.2"
            ]
        ),
        Run::error(
            "the probe guest did not finish within 0.2 s (-cpu Westmere,avx=off); QEMU was stopped"
        )
    );
    let qemu = fake_qemu(&dir, "printf abc; exit 33");
    let r = run(
        &dir,
        &[
            "probe", "--model", "Westmere", "--accel", "tcg", "--qemu", &qemu,
        ],
    );
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.starts_with(
            "cpumodel: error: -cpu Westmere,avx=off: the probe guest wrote 3 bytes, expected "
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        run(&dir, &["probe", "--model", "EPYC-Rome", "--qemu", &qemu]),
        Run::error(&format!(
            "{qemu} has no CPU model EPYC-Rome (see {qemu} -cpu help)"
        ))
    );
    dir.write(
        "arm.xml",
        "<cpu><arch>aarch64</arch><model>Westmere</model></cpu>\n",
    );
    let r = run(&dir, &["probe", "--xml", "arm.xml", "--qemu", &qemu]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("aarch64"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
}
