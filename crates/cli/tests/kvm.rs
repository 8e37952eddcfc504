//! The hypervisor view end to end: `dump --kvm`, `domcaps` and `host`.
//!
//! Tests that need a usable /dev/kvm say so: without it they print one line,
//! `skipped: /dev/kvm not usable (<reason>)`, and pass. The error paths need
//! no KVM: `CPUMODEL_KVM_DEVICE` points the probe at a missing file or at a
//! file that is not a KVM device, and each must give exit code 2, nothing on
//! stdout and exactly one line on stderr (or, for `host`, the raw view with
//! the reason on its first line).

use std::path::Path;
use std::process::Command;

mod common;
use common::*;

/// Asserts exit code 2, no stdout and exactly `cpumodel: error: {message}`.
fn assert_error(dir: &TempDir, device: Option<&str>, args: &[&str], message: &str) {
    let got = run_with_device(dir, device, args);
    let want = Run::error(message);
    assert_eq!(got, want, "cpumodel {args:?} with device {device:?}");
}

const MISSING: &str = "/nonexistent/kvm";
const NO_DEVICE: &str = "/nonexistent/kvm does not exist: this machine offers no KVM (load the \
                         kvm_intel or kvm_amd module, or enable nested virtualization for this \
                         VM); the raw CPUID view (--raw) still works";
const NOT_KVM: &str = "/dev/null is not a KVM device (KVM_GET_API_VERSION: Inappropriate ioctl \
                       for device (os error 25)); the raw CPUID view (--raw) still works";

// ---------------------------------------------------------------------------
// Without KVM: every failure is one line and exit code 2.

#[test]
fn dump_kvm_without_a_device_is_one_line_and_exit_2() {
    let dir = TempDir::new();
    assert_error(&dir, Some(MISSING), &["dump", "--kvm"], NO_DEVICE);
    assert_error(
        &dir,
        Some(MISSING),
        &["dump", "--kvm", "-o", "kvm.xml"],
        NO_DEVICE,
    );
    assert!(!dir.path().join("kvm.xml").exists());
    assert_error(&dir, Some("/dev/null"), &["dump", "--kvm"], NOT_KVM);
}

#[test]
fn domcaps_without_a_device_is_one_line_and_exit_2() {
    let dir = TempDir::new();
    assert_error(&dir, Some(MISSING), &["domcaps"], NO_DEVICE);
    assert_error(
        &dir,
        Some(MISSING),
        &["domcaps", "--format", "json"],
        NO_DEVICE,
    );
    assert_error(&dir, Some("/dev/null"), &["domcaps"], NOT_KVM);
    assert_error(
        &dir,
        Some(MISSING),
        &["domcaps", "--format", "text"],
        "invalid value 'text' for '--format <FORMAT>' (possible values: xml, json)",
    );
}

/// Runs the binary as the unprivileged user `nobody` (through `runuser`,
/// which needs root), or says why it cannot.
fn run_as_nobody(dir: &TempDir, device: &Path, args: &[&str]) -> Result<Run, String> {
    let bin = env!("CARGO_BIN_EXE_cpumodel");
    let probe = Command::new("runuser")
        .args(["-u", "nobody", "--", bin, "--version"])
        .output()
        .map_err(|e| format!("runuser: {e}"))?;
    if !probe.status.success() {
        return Err("cannot run the binary as nobody (needs root and runuser)".into());
    }
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", bin])
        .args(args)
        .current_dir(dir.path())
        .env("CPUMODEL_KVM_DEVICE", device)
        .output()
        .map_err(|e| format!("runuser: {e}"))?;
    Ok(Run::from(out))
}

#[test]
fn permission_denied_says_how_to_fix_it() {
    // A root-only file stands for a /dev/kvm this user may not open.
    let dir = TempDir::new();
    let device = dir.path().join("kvm");
    std::fs::write(&device, "").unwrap();
    std::fs::set_permissions(&device, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let d = device.display();
    let message = format!(
        "permission denied on {d}: add this user to the 'kvm' group (usermod -aG kvm USER, then \
         log in again) or check the device ACL (getfacl {d}); the raw CPUID view (--raw) still \
         works"
    );
    for args in [&["domcaps"][..], &["dump", "--kvm"]] {
        let got = match run_as_nobody(&dir, &device, args) {
            Ok(got) => got,
            Err(why) => {
                println!("skipped: {why}");
                return;
            }
        };
        let want = Run::error(&message);
        assert_eq!(got, want, "cpumodel {args:?} as nobody");
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn host_falls_back_to_raw_cpuid_and_says_why() {
    let dir = TempDir::new();
    let got = run_with_device(&dir, Some(MISSING), &["host"]);
    assert_eq!(got.code, Some(0), "{got:?}");
    assert_eq!(got.stderr, "");
    let first = got.stdout.lines().next().unwrap();
    assert_eq!(
        first,
        "<!-- view: raw CPUID of this machine (KVM not usable: /nonexistent/kvm does not exist: \
         this machine offers no KVM (load the kvm_intel or kvm_amd module, or enable nested \
         virtualization for this VM)) -->"
    );
    // The raw view is the same whether forced or fallen back to.
    let raw = run_with_device(&dir, Some(MISSING), &["host", "--raw"]);
    assert_eq!(raw.code, Some(0), "{raw:?}");
    let (_, rest) = raw.stdout.split_once('\n').unwrap();
    assert_eq!(
        raw.stdout.lines().next().unwrap(),
        "<!-- view: raw CPUID of this machine -->"
    );
    assert_eq!(got.stdout.split_once('\n').unwrap().1, rest);

    let json = run_with_device(&dir, Some("/dev/null"), &["host", "--format", "json"]);
    assert_eq!(json.code, Some(0), "{json:?}");
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["view"], "raw CPUID");
    assert_eq!(
        v["kvm_unusable"],
        "/dev/null is not a KVM device (KVM_GET_API_VERSION: Inappropriate ioctl for device \
         (os error 25))"
    );
    assert!(v["host"]["model"].is_string());
    assert!(v["host_model"]["model"].is_string());
}

// ---------------------------------------------------------------------------
// With KVM: the CPU varies, so the structure is checked.

/// The element children of `node`.
fn elements<'a, 'i>(node: roxmltree::Node<'a, 'i>) -> Vec<roxmltree::Node<'a, 'i>> {
    node.children().filter(|c| c.is_element()).collect()
}

#[test]
fn domcaps_has_libvirts_cpu_structure() {
    if !kvm_usable() {
        return;
    }
    let dir = TempDir::new();
    let got = run_with_device(&dir, None, &["domcaps"]);
    assert_eq!(got.code, Some(0), "{got:?}");
    assert_eq!(got.stderr, "");
    let doc = roxmltree::Document::parse(&got.stdout).expect("domcaps is XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "domainCapabilities");
    let cpu = elements(root)
        .into_iter()
        .find(|n| n.has_tag_name("cpu"))
        .expect("<cpu>");
    let modes = elements(cpu);
    let names: Vec<_> = modes.iter().map(|m| m.attribute("name").unwrap()).collect();
    assert_eq!(
        names,
        ["host-passthrough", "maximum", "host-model", "custom"]
    );
    assert!(modes
        .iter()
        .all(|m| m.attribute("supported") == Some("yes")));

    for (mode, enum_name) in [
        (modes[0], "hostPassthroughMigratable"),
        (modes[1], "maximumMigratable"),
    ] {
        let e = elements(mode);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].attribute("name"), Some(enum_name));
        let values: Vec<_> = elements(e[0]).iter().map(|v| v.text().unwrap()).collect();
        assert_eq!(values, ["on", "off"]);
    }

    // host-model: a model with fallback='forbid', a vendor, features with
    // policies, and nothing that blocks migration.
    let host_model = elements(modes[2]);
    assert_eq!(host_model[0].tag_name().name(), "model");
    assert_eq!(host_model[0].attribute("fallback"), Some("forbid"));
    assert_eq!(host_model[1].tag_name().name(), "vendor");
    for f in &host_model[2..] {
        assert_eq!(f.tag_name().name(), "feature");
        assert!(matches!(f.attribute("policy"), Some("require" | "disable")));
        assert!(
            !matches!(f.attribute("name"), Some("invtsc" | "xsaves")),
            "non-migratable feature in host-model: {f:?}"
        );
    }

    // custom: every model of the map, each unusable one followed by its blockers.
    let models = run_with_device(&dir, None, &["models", "--format", "json"]);
    let models: serde_json::Value = serde_json::from_str(&models.stdout).unwrap();
    let custom = elements(modes[3]);
    let listed: Vec<_> = custom.iter().filter(|n| n.has_tag_name("model")).collect();
    assert_eq!(listed.len(), models.as_array().unwrap().len());
    assert!(listed.iter().any(|m| m.attribute("usable") == Some("yes")));
    for (i, node) in custom.iter().enumerate() {
        if node.has_tag_name("blockers") {
            continue;
        }
        assert_eq!(node.tag_name().name(), "model");
        assert!(node.attribute("vendor").is_some());
        let next = custom.get(i + 1).filter(|n| n.has_tag_name("blockers"));
        match node.attribute("usable") {
            Some("yes") => assert!(next.is_none(), "usable model with blockers: {node:?}"),
            Some("no") => {
                let blockers = next.expect("an unusable model is followed by <blockers>");
                assert_eq!(blockers.attribute("model"), node.text());
                let features = elements(*blockers);
                assert!(!features.is_empty());
                assert!(features
                    .iter()
                    .all(|f| f.has_tag_name("feature") && f.attribute("name").is_some()));
            }
            other => panic!("usable={other:?}"),
        }
    }

    // The JSON form carries the same answers.
    let json = run_with_device(&dir, None, &["domcaps", "--format", "json"]);
    assert_eq!(json.code, Some(0), "{json:?}");
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let jmodes = v["domainCapabilities"]["cpu"]["modes"].as_array().unwrap();
    assert_eq!(jmodes[2]["cpu"]["model"], host_model[0].text().unwrap());
    let jcustom = jmodes[3]["models"].as_array().unwrap();
    assert_eq!(jcustom.len(), listed.len());
    for (j, x) in jcustom.iter().zip(&listed) {
        assert_eq!(j["name"], x.text().unwrap());
        assert_eq!(j["usable"], x.attribute("usable").unwrap());
        assert_eq!(j["vendor"], x.attribute("vendor").unwrap());
    }
}

#[test]
fn dump_kvm_writes_cpudata_that_decodes_and_host_says_hypervisor() {
    if !kvm_usable() {
        return;
    }
    let dir = TempDir::new();
    let to_file = run_with_device(&dir, None, &["dump", "--kvm", "-o", "kvm.xml"]);
    assert_eq!(
        to_file,
        Run {
            code: Some(0),
            stdout: String::new(),
            stderr: String::new()
        }
    );
    let to_stdout = run_with_device(&dir, None, &["dump", "--kvm"]);
    assert_eq!(to_stdout.code, Some(0), "{to_stdout:?}");
    assert!(to_stdout.stdout.starts_with("<cpudata arch='x86'>\n"));
    assert!(to_stdout.stdout.contains("<cpuid eax_in='0x00000000'"));
    // The same leaves and MSRs both times. (Values may differ: KVM answers
    // on whichever CPU runs the ioctl, and some fields hold that CPU's APIC
    // ID. The topology leaves 0BH and 1FH are left out: a subleaf whose only
    // non-zero register is EDX, the x2APIC ID, is all zero on CPU 0 and is
    // then not written.)
    let written = std::fs::read_to_string(dir.path().join("kvm.xml")).unwrap();
    let keys = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.contains("eax_in='0x0000000b'") && !l.contains("eax_in='0x0000001f'"))
            .map(|l| l.split(" eax=").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(keys(&written), keys(&to_stdout.stdout));

    let decoded = run_with_device(&dir, None, &["decode", "--guest", "kvm.xml"]);
    assert_eq!(decoded.code, Some(0), "{decoded:?}");
    assert!(decoded
        .stdout
        .starts_with("<cpu mode='custom' match='exact'>\n"));

    let host = run_with_device(&dir, None, &["host"]);
    assert_eq!(host.code, Some(0), "{host:?}");
    assert_eq!(
        host.stdout.lines().next().unwrap(),
        "<!-- view: hypervisor: what KVM at /dev/kvm can give a guest -->"
    );
    // The host-model of `host` is the host-model of `domcaps`.
    let domcaps = run_with_device(&dir, None, &["domcaps", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&domcaps.stdout).unwrap();
    let json = run_with_device(&dir, None, &["host", "--format", "json"]);
    let mut h: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(h["view"], "hypervisor (KVM)");
    assert_eq!(h["kvm_device"], "/dev/kvm");
    // `host` adds the x86-64 level beside the definition.
    let host_model = h["host_model"].as_object_mut().unwrap();
    assert!(host_model.remove("psabi_level").is_some());
    assert!(host_model.remove("psabi_missing").unwrap().is_array());
    assert_eq!(
        h["host_model"],
        v["domainCapabilities"]["cpu"]["modes"][2]["cpu"]
    );
}
