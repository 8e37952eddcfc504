//! `cpumodel cpuid` end to end: whole outputs of every format compared with
//! the files in `tests/data/cpuid/`, and bad input giving exit code 2, no
//! stdout and one line on stderr.

use std::path::Path;

use cpumodel_cpudata::{format_cpudata, CpuData, Item};
use cpumodel_map::Database;

mod common;
use common::*;

fn golden(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cpuid")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_ok(args: &[&str], stdout: &str) {
    let got = run(&TempDir::new(), args);
    let want = Run::ok(stdout);
    assert_eq!(got, want, "cpumodel {args:?}");
}

fn assert_error(args: &[&str], message: &str) {
    let got = run(&TempDir::new(), args);
    let want = Run::error(message);
    assert_eq!(got, want, "cpumodel {args:?}");
}

#[test]
fn text_table_of_skylake_client_ibrs_two_sockets_two_cores_two_threads() {
    assert_ok(
        &[
            "cpuid",
            "--model",
            "Skylake-Client-IBRS",
            "--sockets",
            "2",
            "--cores",
            "2",
            "--threads",
            "2",
        ],
        &golden("skylake-client-ibrs-2x2x2.txt"),
    );
}

#[test]
fn kvm_json_of_epyc_rome_one_socket_four_cores_two_threads() {
    assert_ok(
        &[
            "cpuid",
            "--model",
            "epyc-rome",
            "--vcpus",
            "8",
            "--sockets",
            "1",
            "--cores",
            "4",
            "--threads",
            "2",
            "--format",
            "kvm-json",
        ],
        &golden("epyc-rome-1x4x2.kvm.json"),
    );
}

#[test]
fn firecracker_template_of_skylake_client_ibrs() {
    assert_ok(
        &[
            "cpuid",
            "--model",
            "Skylake-Client-IBRS",
            "--format",
            "firecracker",
        ],
        &golden("skylake-client-ibrs.firecracker.json"),
    );
}

#[test]
fn flags_and_vcpus_without_topology() {
    let r = run(
        &TempDir::new(),
        &[
            "cpuid", "--model", "Westmere", "--flag", "-aes", "--vcpus", "2",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    // Nova's choice for 2 vCPUs: 2 sockets.
    assert_eq!(
        lines[0],
        "# Westmere (Westmere-v1), GenuineIntel, 2 vCPUs: 2 sockets × 1 dies × 1 clusters × 1 cores × 1 threads"
    );
    // Westmere's leaf 1 ECX without AES (bit 25), with the hypervisor bit;
    // libvirt's Westmere has no VME (EDX bit 1).
    assert_eq!(
        lines[3],
        "0x00000001 0x00000000  0x000206c1 0x00000800 0x80982201 0x078bfbfd"
    );
    assert_eq!(lines.last(), Some(&"# APIC IDs by vCPU: 0 1"));
}

#[test]
fn kvm_supported_mask_names_dropped_features_on_stderr() {
    let dir = TempDir::new();
    let db = Database::embedded();
    let model = db.model(db.find_model("Skylake-Client-IBRS").unwrap());
    let mut supported = db.features_to_data(&model.features);
    let avx2: CpuData = [Item::cpuid(7, 0, 0, 1 << 5, 0, 0)].into_iter().collect();
    supported.subtract(&avx2);
    supported.add(Item::cpuid(0xd, 0, 0x7, 0, 0, 0));
    std::fs::write(dir.path().join("kvm.xml"), format_cpudata(&supported)).unwrap();
    let r = run(
        &dir,
        &[
            "cpuid",
            "--model",
            "Skylake-Client-IBRS",
            "--kvm-supported",
            "kvm.xml",
            "--format",
            "kvm-json",
        ],
    );
    assert_eq!(r.code, Some(0));
    assert_eq!(
        r.stderr,
        "cpumodel: warning: kvm.xml: KVM lacks avx2 (CPUID.(EAX=0x7,ECX=0x0):EBX[5]); dropped\n"
    );
    let entries: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let leaf7 = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["function"] == 7 && e["index"] == 0)
        .unwrap();
    assert_eq!(leaf7["ebx"].as_u64().unwrap() & (1 << 5), 0);
}

#[test]
fn unknown_model_or_flag_suggests_names() {
    assert_error(
        &["cpuid", "--model", "Skylake-Clinet-IBRS"],
        "unknown CPU model 'Skylake-Clinet-IBRS'; did you mean 'Skylake-Client-IBRS', 'Skylake-Server-IBRS', 'Skylake-Client-v1'?",
    );
    assert_error(
        &["cpuid", "--model", "Haswell", "--flag", "+avx5112f"],
        "unknown CPU feature 'avx5112f'; did you mean 'avx512f', 'avx', 'avx512pf'?",
    );
}

#[test]
fn impossible_topologies_are_errors() {
    assert_error(
        &[
            "cpuid",
            "--model",
            "Haswell",
            "--vcpus",
            "6",
            "--sockets",
            "4",
            "--cores",
            "1",
            "--threads",
            "1",
        ],
        "topology 4×1×1×1×1 (sockets×dies×clusters×cores×threads) holds 4 vCPUs, not 6",
    );
    // A zero count is refused as it is parsed, in every command alike
    // (tests/topology.rs).
    assert_error(
        &[
            "cpuid",
            "--model",
            "Haswell",
            "--sockets",
            "2",
            "--cores",
            "0",
        ],
        "--cores='0' must be a positive integer",
    );
    assert_error(
        &["cpuid", "--model", "Haswell", "--sockets", "64", "--cores", "64", "--threads", "2"],
        "topology 64 sockets × 1 dies × 1 clusters × 64 cores × 2 threads holds 8192 vCPUs; at most 4096 are supported",
    );
}

#[test]
fn models_without_a_qemu_definition_are_errors() {
    assert_error(
        &["cpuid", "--model", "cpu64-rhel6"],
        "CPU model 'cpu64-rhel6' has no QEMU definition (QEMU's builtin_x86_defs), so its CPUID signature and brand string are unknown",
    );
}

#[test]
fn table_formats_belong_to_cpuid_and_cpuid_to_them() {
    assert_error(
        &["models", "--format", "kvm-json"],
        "invalid value 'kvm-json' for '--format <FORMAT>' (possible values: text, json)",
    );
    assert_error(
        &["cpuid", "--model", "Haswell", "--format", "xml"],
        "invalid value 'xml' for '--format <FORMAT>' (possible values: text, kvm-json, firecracker)",
    );
    assert_error(
        &["cpuid", "--model", "Haswell", "--format", "qemu"],
        "invalid value 'qemu' for '--format <FORMAT>' (possible values: text, kvm-json, firecracker)",
    );
}
