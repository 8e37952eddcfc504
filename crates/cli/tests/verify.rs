//! `cpumodel verify` end to end.
//!
//! With a usable /dev/kvm the guest really runs, for models of both vendors
//! and several topologies, and every run is checked against what cpumodel's
//! other commands say independently: the dropped features against `cpumodel
//! cpuid --kvm-supported` on a `dump --kvm` of the same device, the checked
//! leaves against that masked table, the APIC IDs against the topology. The
//! verdict itself depends on the KVM (some rewrite leaves when the table is
//! set), so these tests assert that the exit code agrees with the report,
//! that every mismatch is one KVM already holds after `KVM_SET_CPUID2` (the
//! guest reads exactly what KVM stores, run-time bits included), and that
//! the topology leaves are OK on every vCPU. Without KVM they print one
//! line, `skipped: /dev/kvm not usable (<reason>)`, and pass.
//!
//! The error paths need no KVM: `CPUMODEL_KVM_DEVICE` points at a missing
//! file or at a file that is not a KVM device, and each error is exit code
//! 2, nothing on stdout and exactly one line on stderr.

mod common;
use common::*;
use std::path::Path;

/// Asserts exit code 2, no stdout and exactly `cpumodel: error: {message}`.
fn assert_error(device: Option<&str>, args: &[&str], message: &str) {
    let got = run_with_device(&TempDir::new(), device, args);
    let want = Run::error(message);
    assert_eq!(got, want, "cpumodel {args:?} with device {device:?}");
}

const MISSING: &str = "/nonexistent";

// ---------------------------------------------------------------------------
// Without KVM.

#[test]
fn no_kvm_device_is_the_one_line_reason_and_exit_2() {
    assert_error(
        Some(MISSING),
        &["verify", "--model", "Westmere"],
        "/nonexistent does not exist: this machine offers no KVM (load the kvm_intel or kvm_amd \
         module, or enable nested virtualization for this VM)",
    );
    assert_error(
        Some("/dev/null"),
        &["verify", "--model", "EPYC-Rome", "--vcpus", "4"],
        "/dev/null is not a KVM device (KVM_GET_API_VERSION: Inappropriate ioctl for device \
         (os error 25))",
    );
}

#[test]
fn unknown_names_get_suggestions_before_kvm_is_asked() {
    assert_error(
        Some(MISSING),
        &["verify", "--model", "Westmeer"],
        "unknown CPU model 'Westmeer'; did you mean 'Westmere'?",
    );
    assert_error(
        Some(MISSING),
        &["verify", "--model", "Westmere", "--flag", "avx5"],
        "unknown CPU feature 'avx5'; did you mean 'avx', 'avx2', 'adx'?",
    );
    assert_error(
        Some(MISSING),
        &["verify", "--model", "Westmere", "--flag=-avx5"],
        "unknown CPU feature 'avx5'; did you mean 'avx', 'avx2', 'adx'?",
    );
}

#[test]
fn impossible_topologies_and_formats_are_errors() {
    assert_error(
        Some(MISSING),
        &[
            "verify",
            "--model",
            "Westmere",
            "--vcpus",
            "8",
            "--sockets",
            "3",
        ],
        "topology 3×1×1×1×1 (sockets×dies×clusters×cores×threads) holds 3 vCPUs, not 8",
    );
    assert_error(
        Some(MISSING),
        &["verify", "--model", "Westmere", "--format", "xml"],
        "invalid value 'xml' for '--format <FORMAT>' (possible values: text, json)",
    );
    assert_error(
        Some(MISSING),
        &["verify", "--model", "Westmere", "--format", "firecracker"],
        "invalid value 'firecracker' for '--format <FORMAT>' (possible values: text, json)",
    );
}

// ---------------------------------------------------------------------------
// With KVM.

/// One verify run and the independent facts it is checked against.
struct Case {
    model: &'static str,
    /// sockets, cores, threads; `dies` below.
    topology: [u32; 3],
    dies: u32,
    /// `GenuineIntel` or `AuthenticAMD`.
    vendor: &'static str,
    /// The APIC ID of each vCPU.
    apic_ids: &'static [u32],
}

const CASES: &[Case] = &[
    Case {
        model: "Westmere",
        topology: [1, 1, 1],
        dies: 1,
        vendor: "GenuineIntel",
        apic_ids: &[0],
    },
    Case {
        model: "Skylake-Client-IBRS",
        topology: [2, 2, 2],
        dies: 1,
        vendor: "GenuineIntel",
        apic_ids: &[0, 1, 2, 3, 4, 5, 6, 7],
    },
    // Three cores need two bits of APIC ID: socket 1 starts at 4.
    Case {
        model: "Skylake-Client-IBRS",
        topology: [2, 3, 1],
        dies: 1,
        vendor: "GenuineIntel",
        apic_ids: &[0, 1, 2, 4, 5, 6],
    },
    Case {
        model: "Cascadelake-Server",
        topology: [1, 4, 2],
        dies: 1,
        vendor: "GenuineIntel",
        apic_ids: &[0, 1, 2, 3, 4, 5, 6, 7],
    },
    // Two dies raise the level to 0x1F, which gets a die level.
    Case {
        model: "Cascadelake-Server",
        topology: [2, 2, 1],
        dies: 2,
        vendor: "GenuineIntel",
        apic_ids: &[0, 1, 2, 3, 4, 5, 6, 7],
    },
    Case {
        model: "EPYC",
        topology: [1, 1, 1],
        dies: 1,
        vendor: "AuthenticAMD",
        apic_ids: &[0],
    },
    Case {
        model: "EPYC",
        topology: [1, 4, 2],
        dies: 1,
        vendor: "AuthenticAMD",
        apic_ids: &[0, 1, 2, 3, 4, 5, 6, 7],
    },
    Case {
        model: "EPYC-Rome",
        topology: [2, 2, 2],
        dies: 1,
        vendor: "AuthenticAMD",
        apic_ids: &[0, 1, 2, 3, 4, 5, 6, 7],
    },
];

impl Case {
    fn args(&self) -> Vec<String> {
        let [s, c, t] = self.topology;
        let mut v: Vec<String> = ["--model", self.model, "--sockets"]
            .iter()
            .map(ToString::to_string)
            .collect();
        v.extend([
            s.to_string(),
            "--cores".into(),
            c.to_string(),
            "--threads".into(),
            t.to_string(),
        ]);
        if self.dies > 1 {
            v.extend(["--dies".into(), self.dies.to_string()]);
        }
        v
    }
}

/// The leaves (`0x00000001.0`) of `cpumodel cpuid` text output, and the
/// features it says KVM lacks.
fn masked_table(dir: &TempDir, case: &Case) -> (Vec<String>, Vec<String>) {
    let mut args = vec!["cpuid".to_string()];
    args.extend(case.args());
    args.extend(["--kvm-supported".into(), "kvm.xml".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let got = run_with_device(dir, None, &args);
    assert_eq!(got.code, Some(0), "{got:?}");
    let leaves = got
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut f = l.split_whitespace();
            let leaf = f.next().unwrap();
            let sub = u32::from_str_radix(f.next().unwrap().trim_start_matches("0x"), 16).unwrap();
            format!("{leaf}.{sub:x}")
        })
        .collect();
    let dropped = got
        .stderr
        .lines()
        .map(|l| {
            l.split("KVM lacks ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .unwrap_or_else(|| panic!("unexpected warning {l}"))
                .to_string()
        })
        .collect();
    (leaves, dropped)
}

/// Runs one case and checks it; returns the result line.
fn check(dir: &TempDir, case: &Case) -> String {
    let args: Vec<String> = std::iter::once("verify".to_string())
        .chain(case.args())
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let got = run_with_device(dir, None, &args);
    let what = format!("cpumodel {}", args.join(" "));
    assert_eq!(got.stderr, "", "{what}");
    let lines: Vec<&str> = got.stdout.lines().collect();

    // Header: the model, the topology with its APIC IDs, the dropped
    // features as `cpumodel cpuid --kvm-supported` names them.
    assert!(
        lines[0].starts_with(&format!("model:    {} (QEMU ", case.model)),
        "{what}: {}",
        lines[0]
    );
    assert!(lines[0].ends_with(case.vendor), "{what}: {}", lines[0]);
    let ids: Vec<String> = case.apic_ids.iter().map(ToString::to_string).collect();
    let n = case.apic_ids.len();
    assert!(
        lines[1].starts_with(&format!("topology: {n} vCPU")),
        "{what}: {}",
        lines[1]
    );
    assert!(
        lines[1].ends_with(&format!("; APIC IDs {}", ids.join(" "))),
        "{what}: {}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("kvm:      /dev/kvm: at most "),
        "{what}"
    );
    let (leaves, dropped) = masked_table(dir, case);
    if dropped.is_empty() {
        assert_eq!(
            lines[3], "KVM provides every feature of the model",
            "{what}"
        );
    } else {
        assert_eq!(
            lines[3],
            format!(
                "KVM cannot provide: {} (dropped from the table)",
                dropped.join(", ")
            ),
            "{what}"
        );
    }
    assert!(
        lines[4].starts_with("guest:    real mode, CR4 0x0, XCR0 0x1, IA32_APIC_BASE 0xfee00"),
        "{what}: {}",
        lines[4]
    );
    assert!(
        lines[4].ends_with(&format!("; CPUID on {} leaves per vCPU", leaves.len())),
        "{what}: {}",
        lines[4]
    );

    // One OK line or one or more MISMATCH lines per leaf of the masked
    // table, in table order.
    let leaf_lines: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("OK ") || l.starts_with("MISMATCH "))
        .collect();
    let mut checked: Vec<String> = leaf_lines
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    checked.dedup();
    assert_eq!(checked, leaves, "{what}");
    // The guest reads what KVM stores: every mismatch is already in
    // KVM_GET_CPUID2 (none appears at run time, run-time bits included).
    for l in leaf_lines.iter().filter(|l| l.starts_with("MISMATCH")) {
        assert!(l.contains(" (already in KVM_GET_CPUID2)"), "{what}: {l}");
    }
    // Leaf 0 and the topology leaves are the intended ones.
    let ok = |label: &str| {
        leaf_lines
            .iter()
            .any(|l| *l == format!("OK        {label}"))
    };
    assert!(ok("0x00000000.0"), "{what}");
    for l in &leaves {
        if [
            "0x0000000b.",
            "0x0000001f.",
            "0x8000001e.",
            "0x00000004.",
            "0x8000001d.",
        ]
        .iter()
        .any(|p| l.starts_with(p))
        {
            assert!(ok(l), "{what}: leaf {l}");
        }
    }
    if case.dies > 1 {
        assert!(ok("0x0000001f.2"), "{what}: leaf 0x1F has a die level");
    }

    // One topology line per vCPU, each with its APIC ID, all OK.
    let vcpu_lines: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("vCPU "))
        .collect();
    assert_eq!(vcpu_lines.len(), n, "{what}");
    for (i, (l, apic)) in vcpu_lines.iter().zip(case.apic_ids).enumerate() {
        assert!(
            l.starts_with(&format!("vCPU {i}  APIC ID {apic} (socket ")),
            "{what}: {l}"
        );
        assert!(
            l.contains(&format!(
                ": 0x1 APIC ID {apic}; 0xB x2APIC ID {apic}, SMT shift "
            )),
            "{what}: {l}"
        );
        if case.vendor == "AuthenticAMD" {
            assert!(
                l.contains(&format!("; 0x8000001E ext APIC ID {apic}, core ")),
                "{what}: {l}"
            );
        }
        if case.dies > 1 {
            let leaf_1f = format!(
                "; 0x1F x2APIC ID {apic}, SMT shift 0 (1 CPU), core shift 1 (2 CPUs), \
                 die shift 2 (4 CPUs)"
            );
            assert!(l.contains(&leaf_1f), "{what}: {l}");
        }
        assert!(l.ends_with(": OK"), "{what}: {l}");
    }

    // The verdict and the exit code agree.
    let result = *lines.last().unwrap();
    let mismatches = leaf_lines.iter().any(|l| l.starts_with("MISMATCH"));
    if mismatches {
        assert_eq!(got.code, Some(1), "{what}");
        assert!(result.starts_with("result: MISMATCH: "), "{what}: {result}");
    } else {
        assert_eq!(got.code, Some(0), "{what}");
        assert_eq!(
            result,
            format!(
                "result: OK: {n} vCPU{} read the intended {} leaves",
                if n == 1 { "" } else { "s" },
                leaves.len()
            ),
            "{what}"
        );
    }
    result.to_string()
}

#[test]
fn models_of_both_vendors_and_several_topologies_run_in_a_real_guest() {
    if !kvm_usable() {
        return;
    }
    let dir = TempDir::new();
    let dump = run_with_device(&dir, None, &["dump", "--kvm", "-o", "kvm.xml"]);
    assert_eq!(dump.code, Some(0), "{dump:?}");
    for case in CASES {
        let result = check(&dir, case);
        println!(
            "{} {:?} dies {}: {result}",
            case.model, case.topology, case.dies
        );
    }
}

#[test]
fn json_output_agrees_with_the_exit_code() {
    if !kvm_usable() {
        return;
    }
    let got = run_with_device(
        &TempDir::new(),
        None,
        &[
            "verify",
            "--model",
            "EPYC-Rome",
            "--vcpus",
            "4",
            "--format",
            "json",
        ],
    );
    assert_eq!(got.stderr, "");
    let v: serde_json::Value = serde_json::from_str(&got.stdout).expect("JSON");
    assert_eq!(v["apic_ids"], serde_json::json!([0, 1, 2, 3]));
    assert_eq!(v["vendor"], "AuthenticAMD");
    let leaves = v["leaves"].as_array().unwrap();
    let bad = leaves
        .iter()
        .filter(|l| !l["mismatches"].as_array().unwrap().is_empty())
        .count();
    let (result, code) = if bad == 0 { ("ok", 0) } else { ("mismatch", 1) };
    assert_eq!(v["result"], result);
    assert_eq!(got.code, Some(code));
    let vcpus = v["vcpus"].as_array().unwrap();
    assert_eq!(vcpus.len(), 4);
    for (i, c) in vcpus.iter().enumerate() {
        assert_eq!(c["leaf_8000001e"]["ext_apic_id"], i);
        assert_eq!(c["ok"], true);
    }
    assert_eq!(v["state"]["cr4"], 0);
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn more_vcpus_than_kvm_allows_is_an_error_giving_the_limit() {
    if !kvm_usable() {
        return;
    }
    let guest = cpumodel_kvm::CpuidGuest::open(Path::new(cpumodel_kvm::DEFAULT_DEVICE)).unwrap();
    let max = guest.limits().max_vcpus;
    // cpumodel builds tables for up to 4096 vCPUs.
    if max >= 4096 {
        println!("skipped: KVM allows {max} vCPUs, as many as a table can have");
        return;
    }
    let n = (max + 1).to_string();
    assert_error(
        None,
        &[
            "verify",
            "--model",
            "Westmere",
            "--vcpus",
            &n,
            "--sockets",
            &n,
        ],
        &format!(
            "the guest has {n} vCPUs, but KVM at /dev/kvm allows at most {max} per VM \
             (KVM_CAP_MAX_VCPUS)"
        ),
    );
}
