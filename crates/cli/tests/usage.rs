//! Usage errors and the generated interface texts: every usage error is one
//! line on stderr with exit 2 and nothing on stdout; `--help` lists only a
//! command's own formats; completions, the man page and `--version` come
//! from the same clap definitions.

mod common;
use common::*;

/// Asserts a usage error: exactly `cpumodel: error: {message}\n`, exit 2.
fn usage_error(args: &[&str], message: &str) {
    let got = run(&TempDir::new(), args);
    assert_eq!(got, Run::error(message), "cpumodel {args:?}");
}

/// A successful run's stdout (exit 0, nothing on stderr).
fn ok_stdout(args: &[&str]) -> String {
    let got = run(&TempDir::new(), args);
    assert_eq!(got.code, Some(0), "cpumodel {args:?}: {got:?}");
    assert_eq!(got.stderr, "", "cpumodel {args:?}");
    got.stdout
}

#[test]
fn unknown_option_is_one_line_with_the_closest_option() {
    usage_error(&["models", "--frob"], "unexpected argument '--frob' found");
    usage_error(
        &["models", "--formt", "json"],
        "unexpected argument '--formt' found; did you mean '--format'?",
    );
}

#[test]
fn missing_argument_is_one_line_with_the_usage() {
    usage_error(
        &["model"],
        "missing required argument <NAME> (usage: cpumodel model <NAME>)",
    );
    usage_error(
        &["cpuid"],
        "missing required argument --model <NAME> (usage: cpumodel cpuid --model <NAME>)",
    );
    usage_error(&[], "no command given; see 'cpumodel --help'");
}

#[test]
fn bad_value_is_one_line_with_the_valid_values_and_a_suggestion() {
    usage_error(
        &["models", "--format", "yaml"],
        "invalid value 'yaml' for '--format <FORMAT>' (possible values: text, json)",
    );
    usage_error(
        &["models", "--format", "jsn"],
        "invalid value 'jsn' for '--format <FORMAT>' (possible values: text, json); \
         did you mean 'json'?",
    );
    usage_error(
        &["cpuid", "--model", "Haswell", "--vcpus", "many"],
        "--vcpus='many' must be a positive integer",
    );
}

#[test]
fn unknown_subcommand_is_one_line_with_the_closest_subcommand() {
    usage_error(&["frobnicate"], "unrecognized subcommand 'frobnicate'");
    usage_error(
        &["domcap"],
        "unrecognized subcommand 'domcap'; did you mean 'dump' or 'domcaps'?",
    );
}

#[test]
fn models_help_lists_only_its_formats() {
    let help = ok_stdout(&["models", "--help"]);
    assert!(help.contains("--format <FORMAT>"), "{help}");
    assert!(help.contains("- text: "), "{help}");
    assert!(help.contains("- json: "), "{help}");
    for other in ["xml", "qemu", "kvm-json", "firecracker"] {
        assert!(!help.contains(&format!("- {other}")), "{other} in\n{help}");
    }
    assert!(help.contains("--cpu-map <DIR>"), "{help}");
    let short = ok_stdout(&["models", "-h"]);
    assert!(short.contains("[possible values: text, json]"), "{short}");
}

#[test]
fn dump_reads_no_model_database() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let dump = ok_stdout(&["dump", "--cpu-map", "/nonexistent"]);
    assert!(dump.starts_with("<cpudata arch='x86'>\n"), "{dump}");
    let help = ok_stdout(&["dump", "--help"]);
    assert!(!help.contains("--cpu-map"), "{help}");
}

#[test]
fn completions_cover_every_shell_and_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok_stdout(&["completions", shell]);
        for sub in [
            "models",
            "decode",
            "guest",
            "cpuid",
            "verify",
            "completions",
            "man",
        ] {
            assert!(script.contains(sub), "{shell}: no {sub}");
        }
    }
    usage_error(
        &["completions", "tcsh"],
        "invalid value 'tcsh' for '<SHELL>' (possible values: bash, zsh, fish); \
         did you mean 'zsh'?",
    );
}

#[test]
fn man_page_is_roff_with_every_command() {
    let page = ok_stdout(&["man"]);
    assert!(page.starts_with(".ie \\n(.g .ds Aq \\(aq\n"), "{page:.200}");
    assert!(page.contains("\n.TH cpumodel 1 "), "{page:.400}");
    assert!(page.contains(".SH \"OPTIONS OF cpumodel models\""));
    assert!(page.contains(".SH \"OPTIONS OF cpumodel guest\""));
}

#[test]
fn version_names_the_release_and_its_cpu_map() {
    let newest = cpumodel_map::Release::newest();
    assert_eq!(
        ok_stdout(&["--version"]).lines().next(),
        Some(
            format!(
                "cpumodel {} (libvirt upstream: cpu_map from {}; embedded: 9.0, 10.7, upstream)",
                env!("CARGO_PKG_VERSION"),
                newest.origin()
            )
            .as_str()
        )
    );
    assert_eq!(
        ok_stdout(&["--libvirt", "9.0", "--version"]),
        format!(
            "cpumodel {} (libvirt 9.0: cpu_map from libvirt 9.0.0 (Debian 12); embedded: 9.0, 10.7, upstream)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn every_command_takes_the_release_before_or_after_its_name() {
    let dir = TempDir::new();
    dir.write("cpu.xml", "<cpu><model>Westmere</model></cpu>\n");
    let unknown = "invalid value '9.1' for '--libvirt <VERSION>': unknown libvirt release '9.1'; known: 9.0, 10.7, upstream";
    for args in [
        &["decode", "cpu.xml"][..],
        &["compare", "cpu.xml", "cpu.xml"],
        &["baseline", "cpu.xml"],
        &["expand", "cpu.xml"],
        &["guest", "--mode", "custom", "--model", "Westmere"],
        &["models"],
        &["domcaps"],
        &["model", "Westmere"],
        &["convert", "--to-libvirt", "9.0", "cpu.xml"],
        &["map", "diff", "9.0", "10.7"],
    ] {
        let after: Vec<&str> = args.iter().copied().chain(["--libvirt", "9.1"]).collect();
        assert_eq!(run(&dir, &after), Run::error(unknown), "{after:?}");
        let before: Vec<&str> = ["--libvirt", "9.1"]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        assert_eq!(run(&dir, &before), Run::error(unknown), "{before:?}");
    }
}
