//! `cpumodel guest` end to end: a valid policy prints exactly the expected
//! `<cpu>` element, `-cpu` argument or JSON and exits 0; an invalid one
//! exits 2 with nothing on stdout and exactly one line on stderr.
//!
//! Fixtures (host CPUs, nova.conf files, a tiny CPU map) are written into a
//! fresh temporary directory, and the binary runs there, so file names in
//! messages are short and stable. Everything else uses the embedded CPU map.

mod common;
use common::*;

/// Runs `cpumodel guest args...` in `dir`.
fn run_guest(dir: &TempDir, args: &[&str]) -> Run {
    let mut all = vec!["guest"];
    all.extend_from_slice(args);
    run(dir, &all)
}

/// Asserts a success: exit code 0, exactly `stdout`, nothing on stderr.
fn assert_ok(dir: &TempDir, args: &[&str], stdout: &str) {
    let got = run_guest(dir, args);
    let want = Run::ok(stdout);
    assert_eq!(got, want, "cpumodel guest {args:?}");
}

/// Asserts a rejected policy: exit code 2, nothing on stdout, and exactly
/// `cpumodel: error: {message}\n` on stderr.
fn assert_error(dir: &TempDir, args: &[&str], message: &str) {
    let got = run_guest(dir, args);
    let want = Run::error(message);
    assert_eq!(got, want, "cpumodel guest {args:?}");
}

/// Like [`assert_ok`] with an empty directory.
fn ok(args: &[&str], stdout: &str) {
    assert_ok(&TempDir::new(), args, stdout);
}

/// Like [`assert_error`] with an empty directory.
fn error(args: &[&str], message: &str) {
    assert_error(&TempDir::new(), args, message);
}

// ---------------------------------------------------------------------------
// Fixtures.

/// A Westmere host with vmx and pclmuldq (which Westmere lacks).
const HOST_WESTMERE: &str = "<cpu>
  <arch>x86_64</arch>
  <model>Westmere</model>
  <vendor>Intel</vendor>
  <feature name='vmx'/>
  <feature name='pclmuldq'/>
</cpu>
";

/// A nova.conf whose [libvirt] section lists three models and extra flags;
/// the [DEFAULT] cpu_mode must be ignored.
const NOVA_CONF: &str = "[DEFAULT]
cpu_mode = none

[libvirt]
# The CPU policy.
virt_type = kvm
cpu_mode = custom
cpu_models = Nehalem, Westmere, SandyBridge
cpu_model_extra_flags = -vmx, PCID, +ssbd
";

// ---------------------------------------------------------------------------
// Custom mode: models and flags.

#[test]
fn custom_model_list_flags_last_setting_wins_case_insensitive() {
    // avx: +, -, + (require); x2apic: -, +, - (disable); names in any case.
    let args = [
        "--mode",
        "custom",
        "--model",
        "Westmere",
        "--model",
        "Haswell",
        "--flag",
        "+avx",
        "--flag",
        "AES",
        "--flag=-AVX",
        "--flag=-vmx",
        "--flag",
        "Avx",
        "--flag",
        "PCLMULDQ",
        "--flag=-x2apic",
        "--flag=+X2APIC",
        "--flag=-x2apic",
    ];
    ok(
        &args,
        "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Westmere</model>
  <feature policy='require' name='pclmuldq'/>
  <feature policy='disable' name='vmx'/>
  <feature policy='disable' name='x2apic'/>
  <feature policy='require' name='aes'/>
  <feature policy='require' name='avx'/>
</cpu>
",
    );
    let mut qemu = args.to_vec();
    qemu.extend(["--format", "qemu"]);
    // libvirt's pclmuldq is QEMU's pclmulqdq.
    ok(
        &qemu,
        "Westmere,pclmulqdq=on,vmx=off,x2apic=off,aes=on,avx=on\n",
    );
}

#[test]
fn flag_equals_minus_disables() {
    ok(
        &["--mode", "custom", "--model", "Westmere", "--flag=-vmx"],
        "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Westmere</model>
  <feature policy='disable' name='vmx'/>
</cpu>
",
    );
    ok(
        &[
            "--mode",
            "custom",
            "--model",
            "westmere",
            "--flag=-vmx",
            "--format",
            "qemu",
        ],
        "Westmere,vmx=off\n",
    );
}

#[test]
fn flags_by_alias_and_qemu_spelling() {
    // sse3 is the map's pni; lahf_lm and cmp_legacy are spelt with dashes
    // on QEMU's command line.
    ok(
        &[
            "--mode",
            "custom",
            "--model",
            "Westmere",
            "--flag",
            "sse3",
            "--flag",
            "lahf_lm",
            "--flag",
            "cmp_legacy",
            "--format",
            "qemu",
        ],
        "Westmere,pni=on,lahf-lm=on,cmp-legacy=on\n",
    );
}

#[test]
fn required_features_choose_the_first_covering_model() {
    let models = [
        "--mode",
        "custom",
        "--model",
        "Nehalem",
        "--model",
        "Westmere",
        "--model",
        "SandyBridge",
        "--model",
        "Haswell-noTSX",
    ];
    let with = |extra: &[&'static str]| {
        let mut v = models.to_vec();
        v.extend_from_slice(extra);
        v
    };
    // Nehalem lacks aes; Westmere is the first with aes and popcnt.
    ok(
        &with(&["--require-feature", "aes", "--require-feature", "POPCNT"]),
        "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Westmere</model>
</cpu>
",
    );
    ok(
        &with(&["--require-feature", "avx", "--format", "qemu"]),
        "SandyBridge\n",
    );
    // Nova's required CPU traits do the same.
    ok(
        &with(&[
            "--spec",
            "trait:HW_CPU_X86_AVX2=required",
            "--format",
            "qemu",
        ]),
        "Haswell-noTSX\n",
    );
    // Without requirements the first model is used.
    ok(&with(&["--format", "qemu"]), "Nehalem\n");
}

// ---------------------------------------------------------------------------
// The other modes.

#[test]
fn host_passthrough_maximum_and_none() {
    ok(
        &["--mode", "host-passthrough"],
        "<cpu mode='host-passthrough' check='none' migratable='on'/>\n",
    );
    ok(
        &[
            "--mode",
            "host-passthrough",
            "--flag=-vmx",
            "--format",
            "qemu",
        ],
        "host,migratable=on,vmx=off\n",
    );
    ok(
        &["--mode", "maximum"],
        "<cpu mode='maximum' check='none' migratable='on'/>\n",
    );
    ok(&["--mode", "maximum", "--format", "qemu"], "max\n");
    ok(
        &["--mode", "maximum", "--flag=-avx", "--format", "qemu"],
        "max,avx=off\n",
    );
    ok(&["--mode", "none"], "<cpu/>\n");
    ok(&["--mode", "none", "--format", "qemu"], "qemu64\n");
    ok(
        &["--mode", "none", "--vcpus", "2"],
        "<cpu>
  <topology sockets='2' dies='1' clusters='1' cores='1' threads='1'/>
</cpu>
",
    );
}

#[test]
fn host_model_resolves_against_the_host() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    assert_ok(
        &dir,
        &["--mode", "host-model", "--host", "host.xml"],
        "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Westmere</model>
  <vendor>Intel</vendor>
  <feature policy='require' name='pclmuldq'/>
  <feature policy='require' name='vmx'/>
</cpu>
",
    );
    // A flag overrides the host's setting of that feature.
    assert_ok(
        &dir,
        &[
            "--mode",
            "host-model",
            "--host",
            "host.xml",
            "--flag=-vmx",
            "--format",
            "qemu",
        ],
        "Westmere,pclmulqdq=on,vmx=off\n",
    );
    // host-passthrough and custom are checked against the host too.
    assert_ok(
        &dir,
        &[
            "--mode",
            "host-passthrough",
            "--host",
            "host.xml",
            "--flag",
            "pclmuldq",
        ],
        "<cpu mode='host-passthrough' check='none' migratable='on'>
  <feature policy='require' name='pclmuldq'/>
</cpu>
",
    );
    assert_ok(
        &dir,
        &[
            "--mode", "custom", "--model", "Nehalem", "--model", "Westmere", "--flag", "vmx",
            "--host", "host.xml", "--format", "qemu",
        ],
        "Nehalem,vmx=on\n",
    );
}

// ---------------------------------------------------------------------------
// Topology.

/// The `<cpu>` of Westmere with a topology.
fn westmere_with(sockets: u32, dies: u32, clusters: u32, cores: u32, threads: u32) -> String {
    format!(
        "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Westmere</model>
  <topology sockets='{sockets}' dies='{dies}' clusters='{clusters}' cores='{cores}' threads='{threads}'/>
</cpu>
"
    )
}

const WESTMERE: [&str; 4] = ["--mode", "custom", "--model", "Westmere"];

fn westmere(extra: &[&str]) -> Vec<String> {
    WESTMERE
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

fn ok_westmere(extra: &[&str], stdout: &str) {
    let args = westmere(extra);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>(), stdout);
}

fn error_westmere(extra: &[&str], message: &str) {
    let args = westmere(extra);
    error(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        message,
    );
}

#[test]
fn vcpus_alone_prefer_sockets() {
    // Nova's order: most sockets × cores, then most sockets.
    ok_westmere(&["--vcpus", "8"], &westmere_with(8, 1, 1, 1, 1));
    ok_westmere(&["--vcpus", "1"], &westmere_with(1, 1, 1, 1, 1));
}

#[test]
fn topology_follows_nova_rules() {
    // Flavor maximum of 2 sockets, image preference of 2 threads.
    ok_westmere(
        &[
            "--vcpus",
            "8",
            "--spec",
            "hw:cpu_max_sockets=2",
            "--image-prop",
            "hw_cpu_threads=2",
        ],
        &westmere_with(2, 1, 1, 2, 2),
    );
    // The flavor maximum alone: 2 sockets of 4 cores.
    ok_westmere(
        &["--vcpus", "8", "--spec", "hw:cpu_max_sockets=2"],
        &westmere_with(2, 1, 1, 4, 1),
    );
    // A preferred thread count wins over more sockets × cores.
    ok_westmere(
        &["--vcpus", "8", "--spec", "hw:cpu_threads=2"],
        &westmere_with(4, 1, 1, 1, 2),
    );
    // Any image preference replaces all flavor preferences (sockets=1 here).
    ok_westmere(
        &[
            "--vcpus",
            "8",
            "--spec",
            "hw:cpu_sockets=1",
            "--spec",
            "hw:cpu_max_sockets=2",
            "--image-prop",
            "hw_cpu_threads=2",
        ],
        &westmere_with(2, 1, 1, 2, 2),
    );
    // A flavor preference above an image limit is dropped, not an error.
    ok_westmere(
        &[
            "--vcpus",
            "4",
            "--spec",
            "hw:cpu_threads=2",
            "--image-prop",
            "hw_cpu_max_threads=1",
        ],
        &westmere_with(4, 1, 1, 1, 1),
    );
    // Limits that leave one shape.
    ok_westmere(
        &[
            "--vcpus",
            "6",
            "--spec",
            "hw:cpu_max_sockets=1",
            "--spec",
            "hw:cpu_max_threads=1",
        ],
        &westmere_with(1, 1, 1, 6, 1),
    );
}

#[test]
fn explicit_topology() {
    ok_westmere(
        &[
            "--vcpus",
            "8",
            "--sockets",
            "2",
            "--cores",
            "2",
            "--threads",
            "2",
        ],
        &westmere_with(2, 1, 1, 2, 2),
    );
    ok_westmere(
        &[
            "--vcpus",
            "16",
            "--sockets",
            "2",
            "--dies",
            "2",
            "--clusters",
            "2",
            "--cores",
            "2",
        ],
        &westmere_with(2, 2, 2, 2, 1),
    );
    // Without --vcpus the values give the count.
    ok_westmere(
        &["--cores", "4", "--threads", "2"],
        &westmere_with(1, 1, 1, 4, 2),
    );
}

// ---------------------------------------------------------------------------
// nova.conf.

#[test]
fn nova_conf_supplies_mode_models_and_flags() {
    let dir = TempDir::new();
    dir.write("nova.conf", NOVA_CONF);
    dir.write("host.xml", HOST_WESTMERE);
    assert_ok(
        &dir,
        &["--nova-conf", "nova.conf"],
        "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Nehalem</model>
  <feature policy='disable' name='vmx'/>
  <feature policy='require' name='pcid'/>
  <feature policy='require' name='ssbd'/>
</cpu>
",
    );
    // Required features pick from the nova.conf's models.
    assert_ok(
        &dir,
        &[
            "--nova-conf",
            "nova.conf",
            "--require-feature",
            "avx",
            "--format",
            "qemu",
        ],
        "SandyBridge,vmx=off,pcid=on,ssbd=on\n",
    );
    // Command-line models and flags replace the nova.conf's.
    assert_ok(
        &dir,
        &[
            "--nova-conf",
            "nova.conf",
            "--model",
            "Haswell-noTSX",
            "--flag",
            "avx2",
            "--format",
            "qemu",
        ],
        "Haswell-noTSX,avx2=on\n",
    );
    // Another --mode leaves the nova.conf's models out but keeps its flags.
    assert_ok(
        &dir,
        &[
            "--nova-conf",
            "nova.conf",
            "--mode",
            "host-passthrough",
            "--format",
            "qemu",
        ],
        "host,migratable=on,vmx=off,pcid=on,ssbd=on\n",
    );

    // No cpu_mode: host-model for kvm, none for lxc; cpu_model is the
    // older spelling of cpu_models.
    dir.write("kvm.conf", "[libvirt]\nvirt_type = kvm\n");
    assert_ok(
        &dir,
        &[
            "--nova-conf",
            "kvm.conf",
            "--host",
            "host.xml",
            "--format",
            "qemu",
        ],
        "Westmere,pclmulqdq=on,vmx=on\n",
    );
    dir.write("lxc.conf", "[libvirt]\nvirt_type = lxc\n");
    // Nova writes no <cpu> at all for lxc (and parallels).
    assert_ok(&dir, &["--nova-conf", "lxc.conf"], "");
    dir.write(
        "old.conf",
        "[libvirt]\ncpu_mode = custom\ncpu_model = Westmere\n",
    );
    assert_ok(
        &dir,
        &[
            "--nova-conf",
            "old.conf",
            "--vcpus",
            "4",
            "--format",
            "qemu",
        ],
        "Westmere\n",
    );
}

// ---------------------------------------------------------------------------
// Output formats.

#[test]
fn three_formats_of_one_policy() {
    let args = [
        "--mode",
        "custom",
        "--model",
        "Westmere",
        "--flag",
        "+pclmuldq",
        "--flag=-vmx",
        "--vcpus",
        "4",
        "--spec",
        "hw:cpu_max_sockets=2",
    ];
    let with = |format: &'static str| {
        let mut v = args.to_vec();
        v.extend(["--format", format]);
        v
    };
    let xml = "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Westmere</model>
  <topology sockets='2' dies='1' clusters='1' cores='2' threads='1'/>
  <feature policy='require' name='pclmuldq'/>
  <feature policy='disable' name='vmx'/>
</cpu>
";
    ok(&args, xml);
    ok(&with("xml"), xml);
    ok(&with("qemu"), "Westmere,pclmulqdq=on,vmx=off\n");
    ok(
        &with("json"),
        r#"{
  "cpu": {
    "arch": null,
    "check": null,
    "fallback": "forbid",
    "features": [
      {
        "name": "pclmuldq",
        "policy": "require"
      },
      {
        "name": "vmx",
        "policy": "disable"
      }
    ],
    "kind": "guest",
    "match": "exact",
    "migratable": null,
    "mode": "custom",
    "model": "Westmere",
    "psabi_level": "v2",
    "psabi_missing": [
      "fma",
      "movbe",
      "xsave",
      "avx",
      "f16c",
      "bmi1",
      "avx2",
      "bmi2",
      "abm"
    ],
    "signature": null,
    "topology": {
      "clusters": 1,
      "cores": 2,
      "dies": 1,
      "sockets": 2,
      "threads": 1
    },
    "vendor": null,
    "vendor_id": null
  },
  "mode": "custom",
  "qemu": "Westmere,pclmulqdq=on,vmx=off"
}
"#,
    );
}

#[test]
fn json_names_the_mode_as_given() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    let got = run_guest(
        &dir,
        &[
            "--mode",
            "host-model",
            "--host",
            "host.xml",
            "--format",
            "json",
        ],
    );
    assert_eq!((got.code, got.stderr.as_str()), (Some(0), ""));
    assert!(
        got.stdout.ends_with(
            "  \"mode\": \"host-model\",\n  \"qemu\": \"Westmere,pclmulqdq=on,vmx=on\"\n}\n"
        ),
        "{}",
        got.stdout
    );
}

// ---------------------------------------------------------------------------
// Bad topology input.

#[test]
fn non_integer_topology_values() {
    error_westmere(
        &["--vcpus", "4", "--spec", "hw:cpu_sockets=two"],
        "flavor extra spec hw:cpu_sockets='two' must be an integer of 0 (unset) or more",
    );
    error_westmere(
        &["--vcpus", "4", "--image-prop", "hw_cpu_cores=2.5"],
        "image property hw_cpu_cores='2.5' must be an integer of 0 (unset) or more",
    );
    error_westmere(
        &["--vcpus", "four"],
        "--vcpus='four' must be a positive integer",
    );
    error_westmere(
        &["--vcpus", "8", "--sockets", "two"],
        "--sockets='two' must be a positive integer",
    );
}

#[test]
fn negative_or_zero_topology_values() {
    error_westmere(
        &["--vcpus", "4", "--spec", "hw:cpu_max_cores=-4"],
        "flavor extra spec hw:cpu_max_cores='-4' must be an integer of 0 (unset) or more",
    );
    error_westmere(
        &["--vcpus", "4", "--image-prop", "hw_cpu_threads=-1"],
        "image property hw_cpu_threads='-1' must be an integer of 0 (unset) or more",
    );
    error_westmere(
        &["--vcpus", "-8"],
        "--vcpus='-8' must be a positive integer",
    );
    error_westmere(&["--vcpus=0"], "--vcpus='0' must be a positive integer");
    error_westmere(
        &["--vcpus", "8", "--cores=-2"],
        "--cores='-2' must be a positive integer",
    );
    error_westmere(
        &["--vcpus", "8", "--threads", "0"],
        "--threads='0' must be a positive integer",
    );
}

#[test]
fn unknown_spec_keys_are_named() {
    error_westmere(
        &["--vcpus", "4", "--spec", "hw:cpu_max_socket=2"],
        "unknown flavor extra spec 'hw:cpu_max_socket'; did you mean 'hw:cpu_max_sockets', 'hw:cpu_max_cores', 'hw:cpu_sockets'?",
    );
    error_westmere(
        &["--vcpus", "4", "--spec", "hw:numa_nodes=2"],
        "unknown flavor extra spec 'hw:numa_nodes'",
    );
    // Flavor keys use hw:, image keys hw_.
    error_westmere(
        &["--vcpus", "4", "--spec", "hw_cpu_sockets=2"],
        "unknown flavor extra spec 'hw_cpu_sockets'; did you mean 'hw:cpu_sockets'?",
    );
    error_westmere(
        &["--vcpus", "4", "--image-prop", "hw:cpu_sockets=2"],
        "unknown image property 'hw:cpu_sockets'; did you mean 'hw_cpu_sockets'?",
    );
    error_westmere(
        &["--spec", "hw:cpu_sockets"],
        "flavor extra spec 'hw:cpu_sockets' is not KEY=VALUE",
    );
    error_westmere(
        &["--spec", "trait:HW_CPU_X86_AVX3=required"],
        "flavor extra spec 'trait:HW_CPU_X86_AVX3=required': not a CPU trait that maps to a CPU feature (HW_CPU_X86_*)",
    );
    error_westmere(
        &["--spec", "trait:HW_CPU_X86_AVX=preferred"],
        "flavor extra spec 'trait:HW_CPU_X86_AVX=preferred': the value must be 'required' or 'forbidden'",
    );
}

#[test]
fn image_limits_above_flavor_limits() {
    error_westmere(
        &[
            "--vcpus",
            "4",
            "--spec",
            "hw:cpu_max_sockets=2",
            "--image-prop",
            "hw_cpu_max_sockets=4",
        ],
        "image vCPU topology limits (sockets=4) exceed the limits of the flavor (sockets=2)",
    );
    error_westmere(
        &[
            "--vcpus",
            "4",
            "--image-prop",
            "hw_cpu_threads=2",
            "--image-prop",
            "hw_cpu_max_threads=1",
        ],
        "image vCPU topology (threads=2) exceeds the limits of the flavor or image (threads=1)",
    );
}

#[test]
fn impossible_vcpu_counts() {
    error_westmere(
        &[
            "--vcpus",
            "7",
            "--spec",
            "hw:cpu_max_sockets=2",
            "--spec",
            "hw:cpu_max_cores=2",
            "--spec",
            "hw:cpu_max_threads=1",
        ],
        "vCPU limits 2:2:1 (sockets:cores:threads) are impossible to satisfy for 7 vCPUs",
    );
    error_westmere(
        &[
            "--vcpus",
            "8",
            "--spec",
            "hw:cpu_max_sockets=1",
            "--image-prop",
            "hw_cpu_max_cores=2",
            "--image-prop",
            "hw_cpu_max_threads=2",
        ],
        "vCPU limits 1:2:2 (sockets:cores:threads) are impossible to satisfy for 8 vCPUs",
    );
}

#[test]
fn explicit_topology_must_match_vcpus() {
    error_westmere(
        &["--vcpus", "8", "--sockets", "2", "--cores", "3"],
        "topology 2×1×1×3×1 (sockets×dies×clusters×cores×threads) holds 6 vCPUs, not 8",
    );
    error_westmere(
        &[
            "--vcpus",
            "8",
            "--sockets",
            "2",
            "--spec",
            "hw:cpu_max_sockets=2",
        ],
        "give either explicit --sockets/--cores/... or hw: topology specs, not both",
    );
    error_westmere(
        &["--spec", "hw:cpu_max_sockets=2"],
        "topology specs need a vCPU count (--vcpus)",
    );
}

// ---------------------------------------------------------------------------
// Bad policies.

#[test]
fn nova_conf_with_unknown_cpu_mode() {
    let dir = TempDir::new();
    dir.write(
        "nova.conf",
        "[libvirt]\nvirt_type = kvm\ncpu_mode = host-modle\n",
    );
    assert_error(
        &dir,
        &["--nova-conf", "nova.conf"],
        "nova.conf:3: cpu_mode = host-modle: unknown mode (expected host-model, host-passthrough, custom or none)",
    );
    assert_error(
        &dir,
        &["--nova-conf", "missing.conf"],
        "missing.conf: cannot read: No such file or directory (os error 2)",
    );
    dir.write(
        "hm.conf",
        "[libvirt]\ncpu_mode = host-model\ncpu_models = Westmere\n",
    );
    assert_error(
        &dir,
        &["--nova-conf", "hm.conf"],
        "hm.conf:3: the cpu_models option is not required when cpu_mode!=custom (Nova refuses to start)",
    );
}

#[test]
fn unknown_mode() {
    error(
        &["--mode", "bogus"],
        "--mode bogus: unknown mode (expected none, host-model, host-passthrough, custom or maximum)",
    );
}

#[test]
fn flags_that_are_not_features_of_the_map() {
    error_westmere(
        &["--flag", "avx9"],
        "unknown CPU feature 'avx9'; did you mean 'avx', 'avx2', 'adx'?",
    );
    error_westmere(
        &["--flag=-vmxx"],
        "unknown CPU feature 'vmxx'; did you mean 'vmx', 'mmx', 'mpx'?",
    );
    error_westmere(
        &["--flag", "+"],
        "invalid CPU flag '+': expected +name, -name or name",
    );
    error_westmere(
        &["--require-feature", "avx3"],
        "unknown CPU feature 'avx3'; did you mean 'avx', 'avx2', 'adx'?",
    );
    // A feature of the embedded map is unknown to a map without it.
    let dir = TempDir::new();
    write_map_files(
        &dir,
        "<cpus>
  <feature name='fpu'><cpuid eax_in='0x00000001' edx='0x00000001'/></feature>
  <feature name='sse'><cpuid eax_in='0x00000001' edx='0x02000000'/></feature>
</cpus>
",
        "<cpus>
  <model name='Base'><decode host='on' guest='on'/><vendor name='Intel'/><feature name='fpu'/></model>
</cpus>
",
    );
    let base = |flag: &'static str| {
        vec![
            "--cpu-map",
            "map",
            "--mode",
            "custom",
            "--model",
            "Base",
            "--flag",
            flag,
        ]
    };
    assert_error(&dir, &base("avx"), "unknown CPU feature 'avx'");
    assert_error(
        &dir,
        &base("ssse"),
        "unknown CPU feature 'ssse'; did you mean 'sse'?",
    );
    let mut good = base("SSE");
    good.extend(["--format", "qemu"]);
    assert_ok(&dir, &good, "Base,sse=on\n");
}

#[test]
fn models_need_custom_mode() {
    error(
        &["--mode", "host-passthrough", "--model", "Westmere"],
        "CPU models (Westmere) are only allowed with mode 'custom', not 'host-passthrough'",
    );
    error(
        &[
            "--mode",
            "host-model",
            "--model",
            "Westmere",
            "--model",
            "Nehalem",
        ],
        "CPU models (Westmere, Nehalem) are only allowed with mode 'custom', not 'host-model'",
    );
    error(
        &["--mode", "none", "--flag", "avx", "--flag=-vmx"],
        "CPU flags (avx, -vmx) are not allowed with mode 'none'",
    );
}

#[test]
fn custom_without_a_model() {
    error(
        &["--mode", "custom"],
        "mode 'custom' needs at least one CPU model",
    );
    error(
        &["--mode", "custom", "--flag", "avx"],
        "mode 'custom' needs at least one CPU model",
    );
}

#[test]
fn unknown_models_get_suggestions() {
    error(
        &["--mode", "custom", "--model", "Westmire"],
        "unknown CPU model 'Westmire'; did you mean 'Westmere'?",
    );
    error(
        &[
            "--mode", "custom", "--model", "Westmere", "--model", "Haswel",
        ],
        "unknown CPU model 'Haswel'; did you mean 'Haswell', 'Haswell-v1', 'Haswell-v2'?",
    );
}

#[test]
fn required_features_no_model_covers() {
    error(
        &[
            "--mode",
            "custom",
            "--model",
            "Westmere",
            "--model",
            "SandyBridge",
            "--require-feature",
            "avx",
            "--require-feature",
            "avx2",
        ],
        "no listed CPU model has the required features: Westmere lacks avx avx2; SandyBridge lacks avx2",
    );
}

#[test]
fn a_host_that_cannot_run_the_policy() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    // Every blocked model and every missing flag, each with its blockers.
    assert_error(
        &dir,
        &[
            "--mode",
            "custom",
            "--model",
            "Nehalem",
            "--model",
            "SandyBridge",
            "--model",
            "Opteron_G3",
            "--flag",
            "avx2",
            "--flag",
            "+ssbd",
            "--flag=-sse4.2",
            "--host",
            "host.xml",
        ],
        "the host cannot run this CPU policy: \
         model SandyBridge blocked by x2apic tsc-deadline xsave avx rdtscp; \
         model Opteron_G3 blocked by svm abm sse4a misalignsse rdtscp; \
         flag +avx2 not provided by the host; flag +ssbd not provided by the host",
    );
    assert_error(
        &dir,
        &[
            "--mode",
            "host-model",
            "--host",
            "host.xml",
            "--flag",
            "avx",
        ],
        "the host cannot run this CPU policy: flag +avx not provided by the host",
    );
    assert_error(
        &dir,
        &[
            "--mode",
            "host-passthrough",
            "--host",
            "host.xml",
            "--flag",
            "AVX",
        ],
        "the host cannot run this CPU policy: flag +avx not provided by the host",
    );
    assert_error(
        &dir,
        &["--mode", "host-model", "--host", "missing.xml"],
        "missing.xml: cannot read: No such file or directory (os error 2)",
    );
}

#[test]
fn required_features_are_checked_in_every_mode() {
    let dir = TempDir::new();
    dir.write("host.xml", HOST_WESTMERE);
    // host-model: the resolved CPU must have them (vmx comes from the host).
    assert_ok(
        &dir,
        &[
            "--mode",
            "host-model",
            "--host",
            "host.xml",
            "--require-feature",
            "vmx",
            "--format",
            "qemu",
        ],
        "Westmere,pclmulqdq=on,vmx=on\n",
    );
    assert_error(
        &dir,
        &[
            "--mode",
            "host-model",
            "--host",
            "host.xml",
            "--require-feature",
            "avx",
        ],
        "the required features are not provided: the host-model CPU (Westmere) lacks avx",
    );
    // A flag that disables a required feature takes it away.
    assert_error(
        &dir,
        &[
            "--mode",
            "host-passthrough",
            "--host",
            "host.xml",
            "--require-feature",
            "vmx",
            "--flag=-vmx",
        ],
        "the required features are not provided: the host CPU lacks vmx",
    );
    assert_error(
        &dir,
        &["--mode", "none", "--require-feature", "avx"],
        "the required features are not provided: mode 'none' leaves the CPU to the hypervisor and cannot promise avx",
    );
}

// ---------------------------------------------------------------------------
// Linux /proc/cpuinfo flag names.

#[test]
fn linux_flag_names_are_feature_names() {
    ok(
        &[
            "--mode",
            "custom",
            "--model",
            "Westmere",
            "--flag",
            "tsc_deadline_timer",
            "--flag",
            "+sha_ni",
            "--flag=-avx512_vnni",
        ],
        "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Westmere</model>
  <feature policy='require' name='tsc-deadline'/>
  <feature policy='require' name='sha-ni'/>
  <feature policy='disable' name='avx512vnni'/>
</cpu>
",
    );
    ok(
        &[
            "--mode",
            "custom",
            "--model",
            "Westmere",
            "--flag",
            "tsc_deadline_timer",
            "--format",
            "qemu",
        ],
        "Westmere,tsc-deadline=on\n",
    );
    error(
        &[
            "--mode",
            "custom",
            "--model",
            "Westmere",
            "--flag",
            "avx512_vnn",
        ],
        "unknown CPU feature 'avx512_vnn'; did you mean 'avx512_vnni', 'avx512vnni', 'avx'?",
    );
    error(
        &["--mode", "custom", "--model", "Westmere", "--flag", "constant_tsc"],
        "unknown CPU feature 'constant_tsc' (Linux flag X86_FEATURE_CONSTANT_TSC is a bit Linux defines itself, not a CPUID bit); did you mean 'tsc'?",
    );
}
