//! `cpumodel convert`: guest CPUs rewritten for another libvirt release,
//! with exact outputs, reports and exit codes.

mod common;
use common::*;

const WESTMERE: &str = "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Westmere</model>
  <vendor>Intel</vendor>
  <feature policy='require' name='vmx'/>
  <feature policy='disable' name='aes'/>
</cpu>
";

#[test]
fn a_cpu_the_older_release_can_express_is_kept_and_exit_is_0() {
    let dir = TempDir::new();
    dir.write("cpu.xml", WESTMERE);
    assert_eq!(
        run(&dir, &["convert", "--to-libvirt", "9.0", "cpu.xml"]),
        Run::ok(WESTMERE)
    );
}

#[test]
fn a_model_the_older_release_lacks_becomes_its_closest_model_plus_features() {
    let dir = TempDir::new();
    dir.write(
        "cpu.xml",
        "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>EPYC-Genoa</model>
  <feature policy='disable' name='flush-l1d'/>
</cpu>
",
    );
    let dropped = |f: &str| {
        format!("cpumodel: warning: dropped feature '{f}': libvirt 9.0 does not know it, so the converted guest lacks it\n")
    };
    let mut stderr: String = [
        "stibp-always-on",
        "amd-psfd",
        "vnmi",
        "no-nested-data-bp",
        "lfence-always-serializing",
        "null-sel-clr-base",
        "auto-ibrs",
    ]
    .iter()
    .map(|f| dropped(f))
    .collect();
    stderr.push_str("cpumodel: warning: dropped disabled feature 'flush-l1d': libvirt 9.0 does not know it, so no model of it enables it\n");
    let required: String = [
        "avx512f",
        "avx512dq",
        "avx512ifma",
        "avx512cd",
        "avx512bw",
        "avx512vl",
        "avx512vbmi",
        "avx512vbmi2",
        "gfni",
        "vaes",
        "vpclmulqdq",
        "avx512vnni",
        "avx512bitalg",
        "avx512-vpopcntdq",
        "la57",
        "avx512-bf16",
    ]
    .iter()
    .map(|f| format!("  <feature policy='require' name='{f}'/>\n"))
    .collect();
    assert_eq!(
        run(&dir, &["convert", "--to-libvirt", "9.0", "cpu.xml"]),
        Run {
            code: Some(1),
            stdout: format!(
                "<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>EPYC-Milan</model>\n{required}</cpu>\n"
            ),
            stderr,
        }
    );
}

#[test]
fn an_older_cpu_is_converted_up_to_the_newest_release() {
    let dir = TempDir::new();
    dir.write(
        "cpu.xml",
        "<cpu mode='custom' match='exact'>
  <model fallback='allow'>Cascadelake-Server</model>
  <vendor>Intel</vendor>
</cpu>
",
    );
    // The newest map dropped mpx from Cascadelake-Server; 9.0's guest had it.
    assert_eq!(
        run(
            &dir,
            &[
                "--libvirt",
                "9.0",
                "convert",
                "--to-libvirt",
                "upstream",
                "cpu.xml"
            ]
        ),
        Run::ok(
            "<cpu mode='custom' match='exact'>
  <model fallback='allow'>Cascadelake-Server</model>
  <vendor>Intel</vendor>
  <feature policy='require' name='mpx'/>
</cpu>
"
        )
    );
}

#[test]
fn a_vendor_the_target_lacks_or_an_unknown_target_is_one_line() {
    let dir = TempDir::new();
    dir.write(
        "cpu.xml",
        "<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>YongFeng</model>\n</cpu>\n",
    );
    assert_eq!(
        run(&dir, &["convert", "--to-libvirt", "9.0", "cpu.xml"]),
        Run::error("cpu.xml: the target map cannot express CPU vendor 'Zhaoxin CentaurHauls'")
    );
    assert_eq!(
        run(&dir, &["convert", "--to-libvirt", "7.0", "cpu.xml"]),
        Run::error("unknown libvirt release '7.0'; known: 9.0, 10.7, upstream")
    );
}
