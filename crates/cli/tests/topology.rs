//! The topology flags `guest`, `cpuid` and `verify` share: the same
//! validation and the same one-line errors in every command, overflowing
//! products as errors naming the values, and CPUID fields that hold what
//! QEMU puts there when a count is too large for them.

mod common;
use common::*;

/// The three commands, each with the arguments it needs besides topology.
const COMMANDS: [&[&str]; 3] = [
    &["guest", "--mode", "custom", "--model", "Haswell"],
    &["cpuid", "--model", "Haswell"],
    &["verify", "--model", "Haswell"],
];

fn with(command: &[&str], extra: &[&str]) -> Vec<String> {
    command.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn run_args(args: &[String]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&TempDir::new(), &args)
}

#[test]
fn vcpus_zero_is_the_same_one_line_error_in_every_command() {
    for command in COMMANDS {
        let args = with(command, &["--vcpus", "0"]);
        assert_eq!(
            run_args(&args),
            Run::error("--vcpus='0' must be a positive integer"),
            "cpumodel {args:?}"
        );
    }
}

#[test]
fn every_count_flag_is_validated_alike_in_every_command() {
    for command in COMMANDS {
        for (extra, message) in [
            (
                &["--vcpus=-8"][..],
                "--vcpus='-8' must be a positive integer",
            ),
            (
                &["--sockets", "two"],
                "--sockets='two' must be a positive integer",
            ),
            (&["--dies", "0"], "--dies='0' must be a positive integer"),
            (
                &["--clusters", "1.5"],
                "--clusters='1.5' must be a positive integer",
            ),
            (&["--cores=-2"], "--cores='-2' must be a positive integer"),
            (
                &["--threads", "4294967296"],
                "--threads='4294967296' must be a positive integer",
            ),
        ] {
            let args = with(command, extra);
            assert_eq!(run_args(&args), Run::error(message), "cpumodel {args:?}");
        }
    }
}

#[test]
fn overflowing_topologies_are_errors_naming_the_values() {
    let message = "topology 65536 sockets × 1 dies × 1 clusters × 65536 cores × 1 threads holds 4294967296 vCPUs; at most 4294967295 fit in 32 bits";
    for command in &COMMANDS[..2] {
        let args = with(command, &["--sockets", "65536", "--cores", "65536"]);
        assert_eq!(run_args(&args), Run::error(message), "cpumodel {args:?}");
    }
    let args = with(
        COMMANDS[1],
        &["--dies", "65536", "--clusters", "65536", "--threads", "2"],
    );
    assert_eq!(
        run_args(&args),
        Run::error("topology 1 sockets × 65536 dies × 65536 clusters × 1 cores × 2 threads holds 8589934592 logical CPUs per package; at most 4294967295 fit in 32 bits"),
    );
}

#[test]
fn clusters_are_a_topology_level_of_cpuid_too() {
    let got = run_args(&with(
        COMMANDS[1],
        &["--sockets", "1", "--clusters", "2", "--cores", "2"],
    ));
    assert_eq!(got.code, Some(0), "{got:?}");
    assert!(
        got.stdout
            .starts_with("# Haswell (Haswell-v1), GenuineIntel, 4 vCPUs: 1 sockets × 1 dies × 2 clusters × 2 cores × 1 threads\n"),
        "{}",
        got.stdout
    );
    // Several clusters raise Intel's level to 0x1F: SMT, core, module.
    assert!(got
        .stdout
        .contains("\n0x0000001f 0x00000002  0x00000002 0x00000004 0x00000302 0x00000000\n"));
}

/// The registers of `leaf.subleaf` in a `cpuid` text table.
fn regs(table: &str, leaf: u32, subleaf: u32) -> String {
    let prefix = format!("0x{leaf:08x} 0x{subleaf:08x}  ");
    table
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no leaf {leaf:#x}.{subleaf} in\n{table}"))
        .to_string()
}

#[test]
fn counts_too_large_for_a_field_are_clamped_as_qemu_clamps_them() {
    let got = run(
        &TempDir::new(),
        &[
            "cpuid",
            "--model",
            "Skylake-Client-IBRS",
            "--sockets",
            "1",
            "--cores",
            "256",
            "--threads",
            "1",
        ],
    );
    assert_eq!(got.code, Some(0), "{got:?}");
    // CPUID.01H:EBX[23:16] = MIN(256, 255) with HTT set; CLFLUSH 8.
    assert_eq!(
        regs(&got.stdout, 1, 0),
        "0x000506e3 0x00ff0800 0xf7fa3203 0x178bfbff"
    );
    // CPUID.04H:EAX[31:26] = MIN(255, 63); the L3's 256 sharing IDs fit.
    assert_eq!(
        regs(&got.stdout, 4, 3),
        "0xfc3fc163 0x03c0003f 0x00003fff 0x00000006"
    );
    // Leaf 0xB counts 256 per package (16 bits); AMD's NC is 255.
    assert_eq!(
        regs(&got.stdout, 0xb, 1),
        "0x00000008 0x00000100 0x00000201 0x00000000"
    );
    assert_eq!(
        regs(&got.stdout, 0x8000_0008, 0),
        "0x00003028 0x00000000 0x000080ff 0x00000000"
    );
}

#[test]
fn counts_no_field_can_hold_are_errors_naming_the_field() {
    assert_eq!(
        run(
            &TempDir::new(),
            &["cpuid", "--model", "Skylake-Client-IBRS", "--cores", "300"]
        ),
        Run::error("topology 1 sockets × 1 dies × 1 clusters × 300 cores × 1 threads: CPUID.80000008H:ECX[7:0] (logical processors per package - 1) cannot hold 299: its 8 bits hold at most 255"),
    );
}
