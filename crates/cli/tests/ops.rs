//! `compare`, `baseline` and `expand` end to end, against the embedded CPU
//! map: bad input must give exit code 2, no stdout and exactly one line on
//! stderr that names the file, the element and the problem; good input must
//! give exactly the expected output.
//!
//! Every fixture is written from a constant below into a fresh temporary
//! directory, and the binary runs with that directory as its working
//! directory, so file names in messages are short and stable.

mod common;
use common::*;

/// Asserts exactly this exit code, stdout and (empty) stderr.
fn assert_out(dir: &TempDir, args: &[&str], code: i32, stdout: &str) {
    let got = run(dir, args);
    let want = Run {
        code: Some(code),
        stdout: stdout.to_string(),
        stderr: String::new(),
    };
    assert_eq!(got, want, "cpumodel {args:?}");
}

/// Asserts a success: exit code 0, exactly `stdout`, nothing on stderr.
fn assert_ok(dir: &TempDir, args: &[&str], stdout: &str) {
    assert_out(dir, args, 0, stdout);
}

/// Asserts a failure: exit code 2, nothing on stdout, and exactly
/// `cpumodel: error: {message}\n` on stderr.
fn assert_error(dir: &TempDir, args: &[&str], message: &str) {
    let got = run(dir, args);
    let want = Run::error(message);
    assert_eq!(got, want, "cpumodel {args:?}");
}

// ---------------------------------------------------------------------------
// Fixtures.

const HOST_WESTMERE: &str = "<cpu>
  <arch>x86_64</arch>
  <model>Westmere</model>
  <vendor>Intel</vendor>
  <feature name='vmx'/>
</cpu>
";

const HOST_NEHALEM: &str = "<cpu>
  <arch>x86_64</arch>
  <model>Nehalem</model>
  <vendor>Intel</vendor>
  <feature name='vmx'/>
</cpu>
";

const HOST_OPTERON: &str = "<cpu>
  <arch>x86_64</arch>
  <model>Opteron_G3</model>
  <vendor>AMD</vendor>
</cpu>
";

/// Exactly what HOST_WESTMERE provides.
const GUEST_IDENTICAL: &str = "<cpu match='exact'>
  <model>Westmere</model>
  <feature name='vmx'/>
</cpu>
";

/// Less than HOST_WESTMERE provides.
const GUEST_SUBSET: &str = "<cpu match='exact'>
  <model>Nehalem</model>
</cpu>
";

/// More than HOST_WESTMERE provides: avx and xsave.
const GUEST_AVX: &str = "<cpu match='exact'>
  <model>Westmere</model>
  <feature policy='require' name='avx'/>
  <feature policy='require' name='xsave'/>
</cpu>
";

/// The baseline of HOST_WESTMERE and HOST_NEHALEM.
const BASELINE_NEHALEM_VMX: &str = "<cpu mode='custom' match='exact'>
  <model fallback='allow'>Nehalem</model>
  <vendor>Intel</vendor>
  <feature policy='require' name='vmx'/>
</cpu>
";

/// Nehalem's features, as `--expand-features` lists them.
const NEHALEM_FEATURES: &[&str] = &[
    "apic", "clflush", "cmov", "cx16", "cx8", "de", "fpu", "fxsr", "lahf_lm", "lm", "mca", "mce",
    "mmx", "msr", "mtrr", "nx", "pae", "pat", "pge", "pni", "popcnt", "pse", "pse36", "sep", "sse",
    "sse2", "sse4.1", "sse4.2", "ssse3", "syscall", "tsc",
];

/// `<feature policy='{policy}' name='{name}'/>` lines for `names`.
fn feature_lines(policy: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("  <feature policy='{policy}' name='{n}'/>\n"))
        .collect()
}

// ---------------------------------------------------------------------------
// Bad input.

#[test]
fn unknown_feature_policy_names_the_feature_element() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    dir.write(
        "maybe.xml",
        "<cpu match='exact'>
  <model>Westmere</model>
  <feature policy='maybe' name='vmx'/>
</cpu>
",
    );
    let message = "maybe.xml:3:3: <feature>: invalid policy='maybe' \
                   (expected one of: force, require, optional, disable, forbid)";
    assert_error(&dir, &["compare", "host.xml", "maybe.xml"], message);
    assert_error(&dir, &["baseline", "host.xml", "maybe.xml"], message);
    assert_error(&dir, &["expand", "maybe.xml"], message);
}

#[test]
fn unknown_model_names_the_model_element() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    dir.write(
        "guest.xml",
        "<cpu match='exact'>
  <model>Westmeer</model>
</cpu>
",
    );
    dir.write(
        "badhost.xml",
        "<cpu>
  <arch>x86_64</arch>
  <model>NoSuchModel</model>
  <vendor>Intel</vendor>
</cpu>
",
    );
    let guest = "guest.xml:2:3: <model>: unknown CPU model 'Westmeer'; did you mean 'Westmere'?";
    assert_error(&dir, &["compare", "host.xml", "guest.xml"], guest);
    assert_error(&dir, &["baseline", "host.xml", "guest.xml"], guest);
    assert_error(&dir, &["expand", "guest.xml"], guest);
    let host = "badhost.xml:3:3: <model>: unknown CPU model 'NoSuchModel'";
    assert_error(&dir, &["compare", "badhost.xml", "guest.xml"], host);
    assert_error(&dir, &["baseline", "badhost.xml", "host.xml"], host);
}

#[test]
fn unknown_feature_names_the_feature_element() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    dir.write(
        "guest.xml",
        "<cpu match='exact'>
  <model>Westmere</model>
  <feature policy='require' name='sse4_2'/>
</cpu>
",
    );
    dir.write(
        "badhost.xml",
        "<cpu>
  <arch>x86_64</arch>
  <model>Westmere</model>
  <vendor>Intel</vendor>
  <feature name='nosuch'/>
</cpu>
",
    );
    let guest = "guest.xml:3:3: <feature>: unknown CPU feature 'sse4_2'; \
                 did you mean 'sse4.2', 'ss', 'sse'?";
    assert_error(&dir, &["compare", "host.xml", "guest.xml"], guest);
    assert_error(&dir, &["baseline", "host.xml", "guest.xml"], guest);
    assert_error(&dir, &["expand", "guest.xml"], guest);
    let host = "badhost.xml:5:3: <feature>: unknown CPU feature 'nosuch'";
    assert_error(&dir, &["compare", "badhost.xml", "host.xml"], host);
    assert_error(&dir, &["baseline", "host.xml", "badhost.xml"], host);
}

#[test]
fn zero_topology_value_names_the_topology_element() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    dir.write(
        "topo.xml",
        "<cpu match='exact'>
  <model>Westmere</model>
  <topology sockets='1' cores='0' threads='1'/>
</cpu>
",
    );
    let message = "topo.xml:3:3: <topology>: cores='0': topology values must be at least 1";
    assert_error(&dir, &["compare", "host.xml", "topo.xml"], message);
    assert_error(&dir, &["baseline", "topo.xml"], message);
    assert_error(&dir, &["expand", "topo.xml"], message);
}

#[test]
fn document_without_cpu_is_an_error() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    dir.write("vm.xml", "<domain type='kvm'><name>x</name></domain>\n");
    let message = "vm.xml:1:1: <domain>: no CPU definition found in this document";
    assert_error(&dir, &["compare", "host.xml", "vm.xml"], message);
    assert_error(&dir, &["compare", "vm.xml", "host.xml"], message);
    assert_error(&dir, &["baseline", "host.xml", "vm.xml"], message);
    assert_error(&dir, &["expand", "vm.xml"], message);
}

#[test]
fn baseline_of_mixed_vendors_names_both_inputs() {
    let dir = TempDir::new();
    dir.write("intel.xml", HOST_WESTMERE);
    dir.write("amd.xml", HOST_OPTERON);
    assert_error(
        &dir,
        &["baseline", "intel.xml", "amd.xml"],
        "CPU vendors do not match: intel.xml:1 is Intel, amd.xml:1 is AMD",
    );
    assert_error(
        &dir,
        &["baseline", "amd.xml", "intel.xml"],
        "CPU vendors do not match: amd.xml:1 is AMD, intel.xml:1 is Intel",
    );
}

#[test]
fn baseline_without_inputs_is_a_usage_error() {
    let dir = TempDir::new();
    let got = run(&dir, &["baseline"]);
    let want =
        Run::error("missing required argument <FILE>... (usage: cpumodel baseline <FILE>...)");
    assert_eq!(got, want);
}

#[test]
fn baseline_of_an_empty_directory_or_unmatched_pattern_is_an_error() {
    let dir = TempDir::new();
    dir.mkdir("empty");
    assert_error(
        &dir,
        &["baseline", "empty"],
        "empty: directory holds no files",
    );
    assert_error(
        &dir,
        &["baseline", "empty/*.xml"],
        "empty/*.xml: no file matches this pattern",
    );
}

#[test]
fn missing_file_names_the_file() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    let message = "missing.xml: cannot read: No such file or directory (os error 2)";
    assert_error(&dir, &["compare", "missing.xml", "host.xml"], message);
    assert_error(&dir, &["compare", "host.xml", "missing.xml"], message);
    assert_error(&dir, &["baseline", "host.xml", "missing.xml"], message);
    assert_error(&dir, &["expand", "missing.xml"], message);
}

// ---------------------------------------------------------------------------
// compare.

#[test]
fn compare_identical() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    dir.write("guest.xml", GUEST_IDENTICAL);
    assert_ok(&dir, &["compare", "host.xml", "guest.xml"], "identical\n");
    assert_ok(
        &dir,
        &["compare", "--format", "json", "host.xml", "guest.xml"],
        "{
  \"blockers\": [],
  \"reason\": null,
  \"result\": \"identical\"
}
",
    );
}

#[test]
fn compare_superset() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    dir.write("guest.xml", GUEST_SUBSET);
    assert_ok(&dir, &["compare", "host.xml", "guest.xml"], "superset\n");
    assert_ok(
        &dir,
        &["compare", "--format", "json", "host.xml", "guest.xml"],
        "{
  \"blockers\": [],
  \"reason\": null,
  \"result\": \"superset\"
}
",
    );
}

#[test]
fn compare_incompatible_lists_blocking_features_in_map_order() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    dir.write("guest.xml", GUEST_AVX);
    assert_out(
        &dir,
        &["compare", "host.xml", "guest.xml"],
        1,
        "incompatible\nxsave\navx\n",
    );
    assert_out(
        &dir,
        &["compare", "--format", "json", "host.xml", "guest.xml"],
        1,
        "{
  \"blockers\": [
    \"xsave\",
    \"avx\"
  ],
  \"reason\": \"host CPU does not provide required features\",
  \"result\": \"incompatible\"
}
",
    );
}

#[test]
fn compare_decides_vendor_and_arch_before_looking_up_names() {
    // libvirt's x86 driver compares the arch and the vendor first, so a
    // guest of another vendor is incompatible even when it names a feature
    // or model the map does not know; with the host's vendor the unknown
    // name is the answer.
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    let guest = |vendor: &str| {
        format!(
            "<cpu match='exact'>
  <model>Westmere</model>
  <vendor>{vendor}</vendor>
  <feature policy='require' name='nosuch'/>
</cpu>
"
        )
    };
    dir.write("amd.xml", &guest("AMD"));
    dir.write("intel.xml", &guest("Intel"));
    dir.write(
        "arm.xml",
        "<cpu>
  <arch>aarch64</arch>
  <model>nosuch</model>
</cpu>
",
    );
    assert_out(
        &dir,
        &["compare", "host.xml", "amd.xml"],
        1,
        "incompatible\n",
    );
    assert_out(
        &dir,
        &["compare", "--format", "json", "host.xml", "amd.xml"],
        1,
        "{
  \"blockers\": [],
  \"reason\": \"host CPU vendor does not match required CPU vendor AMD\",
  \"result\": \"incompatible\"
}
",
    );
    assert_out(
        &dir,
        &["compare", "host.xml", "arm.xml"],
        1,
        "incompatible\n",
    );
    assert_error(
        &dir,
        &["compare", "host.xml", "intel.xml"],
        "intel.xml:4:3: <feature>: unknown CPU feature 'nosuch'",
    );
}

#[test]
fn compare_rejects_xml_format() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    dir.write("guest.xml", GUEST_IDENTICAL);
    assert_error(
        &dir,
        &["compare", "--format", "xml", "host.xml", "guest.xml"],
        "invalid value 'xml' for '--format <FORMAT>' (possible values: text, json)",
    );
}

// ---------------------------------------------------------------------------
// baseline.

#[test]
fn baseline_of_two_hosts() {
    let dir = TempDir::new();
    dir.write("westmere.xml", HOST_WESTMERE);
    dir.write("nehalem.xml", HOST_NEHALEM);
    assert_ok(
        &dir,
        &["baseline", "westmere.xml", "nehalem.xml"],
        BASELINE_NEHALEM_VMX,
    );
}

#[test]
fn baseline_of_two_hosts_with_expanded_features() {
    let dir = TempDir::new();
    dir.write("westmere.xml", HOST_WESTMERE);
    dir.write("nehalem.xml", HOST_NEHALEM);
    let mut features = NEHALEM_FEATURES.to_vec();
    features.push("vmx");
    let want = format!(
        "<cpu mode='custom' match='exact'>
  <model fallback='allow'>Nehalem</model>
  <vendor>Intel</vendor>
{}</cpu>
",
        feature_lines("require", &features)
    );
    assert_ok(
        &dir,
        &[
            "baseline",
            "--expand-features",
            "westmere.xml",
            "nehalem.xml",
        ],
        &want,
    );
}

#[test]
fn baseline_of_a_directory() {
    let dir = TempDir::new();
    dir.write("hosts/westmere.xml", HOST_WESTMERE);
    dir.write("hosts/nehalem.xml", HOST_NEHALEM);
    assert_ok(&dir, &["baseline", "hosts"], BASELINE_NEHALEM_VMX);
}

#[test]
fn baseline_of_a_glob_pattern() {
    let dir = TempDir::new();
    dir.write("hosts/westmere.xml", HOST_WESTMERE);
    dir.write("hosts/nehalem.xml", HOST_NEHALEM);
    // Not matched by the pattern: an AMD host would make the baseline fail.
    dir.write("hosts/opteron.txt", HOST_OPTERON);
    assert_ok(&dir, &["baseline", "hosts/*.xml"], BASELINE_NEHALEM_VMX);
}

#[test]
fn baseline_of_one_file_with_two_top_level_cpus() {
    let dir = TempDir::new();
    dir.write("both.xml", &format!("{HOST_WESTMERE}{HOST_NEHALEM}"));
    assert_ok(&dir, &["baseline", "both.xml"], BASELINE_NEHALEM_VMX);
    // Each CPU is named by its line in errors.
    dir.write("mixed.xml", &format!("{HOST_WESTMERE}{HOST_OPTERON}"));
    assert_error(
        &dir,
        &["baseline", "mixed.xml"],
        "CPU vendors do not match: mixed.xml:1 is Intel, mixed.xml:7 is AMD",
    );
}

#[test]
fn baseline_reads_every_document_shape() {
    let dir = TempDir::new();
    dir.write(
        "caps.xml",
        "<capabilities>
  <host>
    <uuid>00000000-0000-0000-0000-000000000000</uuid>
    <cpu>
      <arch>x86_64</arch>
      <model>Westmere</model>
      <vendor>Intel</vendor>
      <feature name='vmx'/>
    </cpu>
  </host>
</capabilities>
",
    );
    dir.write(
        "domcaps.xml",
        "<domainCapabilities>
  <domain>kvm</domain>
  <cpu>
    <mode name='host-passthrough' supported='yes'/>
    <mode name='host-model' supported='yes'>
      <model fallback='forbid'>Nehalem</model>
      <vendor>Intel</vendor>
      <feature policy='require' name='vmx'/>
    </mode>
  </cpu>
</domainCapabilities>
",
    );
    dir.write(
        "test.xml",
        &format!("<cpuTest>\n{HOST_WESTMERE}{HOST_NEHALEM}</cpuTest>\n"),
    );
    dir.write(
        "vm.xml",
        "<domain type='kvm'>
  <name>vm</name>
  <cpu mode='custom' match='exact'>
    <model fallback='forbid'>Westmere</model>
    <feature policy='disable' name='aes'/>
  </cpu>
</domain>
",
    );
    assert_ok(
        &dir,
        &["baseline", "caps.xml", "domcaps.xml", "test.xml"],
        BASELINE_NEHALEM_VMX,
    );
    // The domain's CPU has neither a vendor nor vmx, so neither has the result.
    assert_ok(
        &dir,
        &["baseline", "caps.xml", "domcaps.xml", "test.xml", "vm.xml"],
        "<cpu mode='custom' match='exact'>
  <model fallback='allow'>Nehalem</model>
</cpu>
",
    );
}

#[test]
fn baseline_of_300_files_is_quiet_when_stderr_is_not_a_terminal() {
    let dir = TempDir::new();
    for i in 0..300 {
        dir.write(&format!("fleet/host{i:03}.xml"), HOST_WESTMERE);
    }
    assert_ok(
        &dir,
        &["baseline", "fleet"],
        "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Westmere</model>
  <vendor>Intel</vendor>
  <feature policy='require' name='vmx'/>
</cpu>
",
    );
    // One Nehalem among them lowers the whole fleet.
    dir.write("fleet/host300.xml", HOST_NEHALEM);
    assert_ok(&dir, &["baseline", "fleet"], BASELINE_NEHALEM_VMX);
}

// ---------------------------------------------------------------------------
// expand.

#[test]
fn expand_lists_every_model_feature() {
    let dir = TempDir::new();
    dir.write(
        "cpu.xml",
        "<cpu mode='custom' match='exact'><model fallback='allow'>Westmere</model>\
         <feature policy='disable' name='aes'/></cpu>\n",
    );
    // Westmere is Nehalem plus aes; aes stays disabled, in name order.
    let want = format!(
        "<cpu mode='custom' match='exact'>
  <model fallback='allow'>Westmere</model>
  <feature policy='disable' name='aes'/>
{}</cpu>
",
        feature_lines("require", NEHALEM_FEATURES)
    );
    assert_ok(&dir, &["expand", "cpu.xml"], &want);
}

const HOST_MONITORED: &str = "<cpu>
  <arch>x86_64</arch>
  <model>Westmere</model>
  <vendor>Intel</vendor>
  <feature name='cmt'/>
  <feature name='mbm_total'/>
  <feature name='osxsave'/>
  <feature name='vmx'/>
</cpu>
";

#[test]
fn baseline_drops_what_the_qemu_driver_filters_unless_asked_not_to() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_MONITORED);
    let filtered = "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Westmere</model>
  <vendor>Intel</vendor>
  <feature policy='require' name='vmx'/>
</cpu>
";
    assert_ok(&dir, &["baseline", "host.xml"], filtered);
    assert_ok(
        &dir,
        &["--libvirt", "9.0", "baseline", "host.xml"],
        filtered,
    );
    assert_ok(
        &dir,
        &["baseline", "--no-hypervisor-filter", "host.xml"],
        "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Westmere</model>
  <vendor>Intel</vendor>
  <feature policy='require' name='vmx'/>
  <feature policy='require' name='osxsave'/>
  <feature policy='require' name='cmt'/>
  <feature policy='require' name='mbm_total'/>
</cpu>
",
    );
}

#[test]
fn releases_after_10_7_also_filter_the_vmx_features_qemu_never_supported() {
    let dir = TempDir::new();
    dir.write(
        "host.xml",
        "<cpu>
  <arch>x86_64</arch>
  <model>Westmere</model>
  <vendor>Intel</vendor>
  <feature name='vmx'/>
  <feature name='vmx-ept-wb'/>
  <feature name='osxsave'/>
</cpu>
",
    );
    let head = "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Westmere</model>
  <vendor>Intel</vendor>
  <feature policy='require' name='vmx'/>
";
    assert_ok(&dir, &["baseline", "host.xml"], &format!("{head}</cpu>\n"));
    assert_ok(
        &dir,
        &["--libvirt", "10.7", "baseline", "host.xml"],
        &format!("{head}  <feature policy='require' name='vmx-ept-wb'/>\n</cpu>\n"),
    );
}
