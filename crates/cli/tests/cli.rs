//! The `cpumodel` binary end to end: bad input must give exit code 2, no
//! stdout and exactly one line on stderr that says where and what; good input
//! must give exactly the expected output.
//!
//! Every fixture is written from a constant below into a fresh temporary
//! directory, and the binary runs with that directory as its working
//! directory, so file names in messages are short and stable.

mod common;
use common::*;

/// Asserts a failure: exit code 2, nothing on stdout, and exactly
/// `cpumodel: error: {message}\n` on stderr.
fn assert_error(dir: &TempDir, args: &[&str], message: &str) {
    let got = run(dir, args);
    let want = Run::error(message);
    assert_eq!(got, want, "cpumodel {args:?}");
}

/// Asserts a success: exit code 0, exactly `stdout`, nothing on stderr.
fn assert_ok(dir: &TempDir, args: &[&str], stdout: &str) {
    let got = run(dir, args);
    let want = Run::ok(stdout);
    assert_eq!(got, want, "cpumodel {args:?}");
}

// ---------------------------------------------------------------------------
// A tiny CPU map: one vendor, two features, one model.

const MAP_FEATURES: &str = "<cpus>
  <feature name='fpu'>
    <cpuid eax_in='0x00000001' edx='0x00000001'/>
  </feature>
  <feature name='sse'>
    <cpuid eax_in='0x00000001' edx='0x02000000'/>
  </feature>
</cpus>
";

const MAP_MODELS: &str = "<cpus>
  <model name='Base'>
    <decode host='on' guest='on'/>
    <vendor name='Intel'/>
    <feature name='fpu'/>
  </model>
</cpus>
";

/// Writes the tiny map into `dir/map`, with `models` as x86_models.xml.
fn write_map(dir: &TempDir, models: &str) {
    write_map_files(dir, MAP_FEATURES, models);
}

/// Leaf 0: GenuineIntel; leaf 1: family 6 model 58 stepping 9, fpu and sse.
const DUMP_INTEL: &str = "<cpudata arch='x86'>
  <cpuid eax_in='0x00000000' ecx_in='0x00000000' eax='0x00000001' ebx='0x756e6547' ecx='0x6c65746e' edx='0x49656e69'/>
  <cpuid eax_in='0x00000001' ecx_in='0x00000000' eax='0x000306a9' ebx='0x00000000' ecx='0x00000000' edx='0x02000001'/>
</cpudata>
";

// ---------------------------------------------------------------------------
// Bad dumps.

#[test]
fn decode_malformed_xml_names_the_end_of_the_file() {
    let dir = TempDir::new();
    dir.write("bad.xml", "<cpudata arch='x86'><cpuid\n");
    assert_error(
        &dir,
        &["decode", "bad.xml"],
        "bad.xml:1:27: malformed XML: unexpected end of stream",
    );
}

#[test]
fn decode_non_hex_register_value_names_element_and_attribute() {
    let dir = TempDir::new();
    dir.write(
        "hex.xml",
        "<cpudata arch='x86'>
  <cpuid eax_in='0x00000001' ecx_in='0x00000000' eax='0xZZ' ebx='0x0' ecx='0x0' edx='0x0'/>
</cpudata>
",
    );
    assert_error(
        &dir,
        &["decode", "hex.xml"],
        "hex.xml:2:3: <cpuid>: attribute eax='0xZZ' is not a valid unsigned 32-bit number",
    );
}

#[test]
fn decode_unknown_vendor_string_lists_known_vendors() {
    let dir = TempDir::new();
    // "FooBarBazQux" in ebx, edx, ecx order.
    dir.write(
        "foo.xml",
        "<cpudata arch='x86'>
  <cpuid eax_in='0x00000000' ecx_in='0x00000000' eax='0x00000001' ebx='0x426f6f46' ecx='0x7875517a' edx='0x61427261'/>
  <cpuid eax_in='0x00000001' ecx_in='0x00000000' eax='0x000306a9' ebx='0x00000000' ecx='0x00000000' edx='0x02000001'/>
</cpudata>
",
    );
    assert_error(
        &dir,
        &["decode", "foo.xml"],
        "foo.xml:2:3: <cpuid>: unknown CPU vendor string 'FooBarBazQux' \
         (known: GenuineIntel, AuthenticAMD, HygonGenuine, CentaurHauls)",
    );
    write_map(&dir, MAP_MODELS);
    assert_error(
        &dir,
        &["decode", "--cpu-map", "map", "foo.xml"],
        "foo.xml:2:3: <cpuid>: unknown CPU vendor string 'FooBarBazQux' (known: GenuineIntel)",
    );
}

#[test]
fn decode_empty_dump_is_an_error() {
    let dir = TempDir::new();
    dir.write("empty.xml", "<cpudata arch='x86'></cpudata>\n");
    assert_error(
        &dir,
        &["decode", "empty.xml"],
        "empty.xml:1:1: <cpudata>: no CPUID or MSR items: the dump is empty",
    );
}

#[test]
fn decode_missing_file_names_the_file() {
    let dir = TempDir::new();
    assert_error(
        &dir,
        &["decode", "missing.xml"],
        "missing.xml: cannot read: No such file or directory (os error 2)",
    );
}

// ---------------------------------------------------------------------------
// Bad CPU maps.

#[test]
fn cpu_map_missing_directory_names_index() {
    let dir = TempDir::new();
    assert_error(
        &dir,
        &["models", "--cpu-map", "nomap"],
        "nomap/index.xml: cannot read CPU map file: No such file or directory (os error 2)",
    );
}

#[test]
fn cpu_map_missing_include_names_the_include() {
    let dir = TempDir::new();
    write_map(&dir, MAP_MODELS);
    std::fs::remove_file(dir.path().join("map/x86_features.xml")).expect("remove fixture");
    assert_error(
        &dir,
        &["models", "--cpu-map", "map"],
        "map/index.xml:1:61: <include>: cannot read included file 'map/x86_features.xml': \
         No such file or directory (os error 2)",
    );
}

#[test]
fn cpu_map_model_with_undefined_feature() {
    let dir = TempDir::new();
    write_map(
        &dir,
        "<cpus>
  <model name='Base'>
    <vendor name='Intel'/>
    <feature name='fpu'/>
    <feature name='avx9'/>
  </model>
</cpus>
",
    );
    assert_error(
        &dir,
        &["models", "--cpu-map", "map"],
        "map/x86_models.xml:5:5: <feature>: feature 'avx9' of CPU model 'Base' is not defined",
    );
}

#[test]
fn cpu_map_model_with_undefined_ancestor() {
    let dir = TempDir::new();
    write_map(
        &dir,
        "<cpus>
  <model name='Child'>
    <model name='Parent'/>
    <feature name='sse'/>
  </model>
</cpus>
",
    );
    assert_error(
        &dir,
        &["models", "--cpu-map", "map"],
        "map/x86_models.xml:3:5: <model>: ancestor model 'Parent' of CPU model 'Child' \
         is not defined before it",
    );
}

// ---------------------------------------------------------------------------
// Unknown names and usage errors.

#[test]
fn model_unknown_name_suggests_close_names() {
    let dir = TempDir::new();
    assert_error(
        &dir,
        &["model", "Westmeer"],
        "unknown CPU model 'Westmeer'; did you mean 'Westmere'?",
    );
}

#[test]
fn model_unknown_name_without_close_names() {
    let dir = TempDir::new();
    assert_error(
        &dir,
        &["model", "NoSuchModel"],
        "unknown CPU model 'NoSuchModel'",
    );
}

#[test]
fn usage_errors_exit_2_without_stdout() {
    let dir = TempDir::new();
    for args in [
        &["frobnicate"][..],
        &["decode"],
        &["model"],
        &[],
        &["models", "--format", "yaml"],
    ] {
        let got = run(&dir, args);
        assert_eq!(got.code, Some(2), "cpumodel {args:?}: {got:?}");
        assert_eq!(got.stdout, "", "cpumodel {args:?}");
        assert!(!got.stderr.is_empty(), "cpumodel {args:?}");
    }
}

#[test]
fn models_rejects_xml_format() {
    let dir = TempDir::new();
    assert_error(
        &dir,
        &["models", "--format", "xml"],
        "invalid value 'xml' for '--format <FORMAT>' (possible values: text, json)",
    );
}

// ---------------------------------------------------------------------------
// Whole outputs with the tiny map.

#[test]
fn decode_host_with_tiny_map() {
    let dir = TempDir::new();
    write_map(&dir, MAP_MODELS);
    dir.write("intel.xml", DUMP_INTEL);
    assert_ok(
        &dir,
        &["decode", "--cpu-map", "map", "intel.xml"],
        "<cpu>
  <arch>x86_64</arch>
  <model>Base</model>
  <vendor>Intel</vendor>
  <signature family='6' model='58' stepping='9'/>
  <feature name='sse'/>
</cpu>
",
    );
}

#[test]
fn decode_guest_with_tiny_map() {
    let dir = TempDir::new();
    write_map(&dir, MAP_MODELS);
    dir.write("intel.xml", DUMP_INTEL);
    assert_ok(
        &dir,
        &["decode", "--cpu-map", "map", "--guest", "intel.xml"],
        "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Base</model>
  <vendor>Intel</vendor>
  <feature policy='require' name='sse'/>
</cpu>
",
    );
}

#[test]
fn decode_host_json_with_tiny_map() {
    let dir = TempDir::new();
    write_map(&dir, MAP_MODELS);
    dir.write("intel.xml", DUMP_INTEL);
    assert_ok(
        &dir,
        &[
            "decode",
            "--cpu-map",
            "map",
            "--format",
            "json",
            "intel.xml",
        ],
        r#"{
  "arch": "x86_64",
  "check": null,
  "fallback": null,
  "features": [
    {
      "name": "sse",
      "policy": null
    }
  ],
  "kind": "host",
  "match": null,
  "migratable": null,
  "mode": "custom",
  "model": "Base",
  "psabi_level": null,
  "psabi_missing": [
    "CMOV",
    "CX8",
    "FXSR",
    "MMX",
    "SCE",
    "SSE2",
    "LM"
  ],
  "signature": {
    "family": 6,
    "model": 58,
    "stepping": 9
  },
  "topology": null,
  "vendor": "Intel",
  "vendor_id": null
}
"#,
    );
}

#[test]
fn decode_guest_json_with_tiny_map() {
    let dir = TempDir::new();
    write_map(&dir, MAP_MODELS);
    dir.write("intel.xml", DUMP_INTEL);
    assert_ok(
        &dir,
        &[
            "decode",
            "--cpu-map",
            "map",
            "--format",
            "json",
            "--guest",
            "intel.xml",
        ],
        r#"{
  "arch": null,
  "check": null,
  "fallback": "forbid",
  "features": [
    {
      "name": "sse",
      "policy": "require"
    }
  ],
  "kind": "guest",
  "match": "exact",
  "migratable": null,
  "mode": "custom",
  "model": "Base",
  "psabi_level": null,
  "psabi_missing": [
    "CMOV",
    "CX8",
    "FXSR",
    "MMX",
    "SCE",
    "SSE2",
    "LM"
  ],
  "signature": null,
  "topology": null,
  "vendor": "Intel",
  "vendor_id": null
}
"#,
    );
}

#[test]
fn models_table_with_tiny_map() {
    let dir = TempDir::new();
    write_map(&dir, MAP_MODELS);
    assert_ok(
        &dir,
        &["models", "--cpu-map", "map", "--libvirt", "9.0"],
        "# cpu_map map with libvirt 9.0 behaviour
NAME  VENDOR                ANCESTOR  FEATURES  X86-64
Base  Intel                 -         1         -
",
    );
}

#[test]
fn models_table_columns_stay_aligned_with_ancestors() {
    let dir = TempDir::new();
    write_map(
        &dir,
        "<cpus>
  <model name='Base'>
    <decode host='on' guest='on'/>
    <vendor name='Intel'/>
    <feature name='fpu'/>
  </model>
  <model name='Child'>
    <model name='Base'/>
    <feature name='sse'/>
  </model>
</cpus>
",
    );
    assert_ok(
        &dir,
        &["models", "--cpu-map", "map"],
        "# cpu_map map with libvirt upstream behaviour
NAME   VENDOR                ANCESTOR  FEATURES  X86-64
Base   Intel                 -         1         -
Child  Intel                 Base      2         -
",
    );
    assert_ok(
        &dir,
        &["models", "--cpu-map", "map", "--format", "json"],
        r#"[
  {
    "ancestor": null,
    "features": 1,
    "name": "Base",
    "psabi_level": null,
    "psabi_missing": [
      "sse",
      "CMOV",
      "CX8",
      "FXSR",
      "MMX",
      "SCE",
      "SSE2",
      "LM"
    ],
    "vendor": "Intel"
  },
  {
    "ancestor": "Base",
    "features": 2,
    "name": "Child",
    "psabi_level": null,
    "psabi_missing": [
      "CMOV",
      "CX8",
      "FXSR",
      "MMX",
      "SCE",
      "SSE2",
      "LM"
    ],
    "vendor": "Intel"
  }
]
"#,
    );
}

#[test]
fn model_name_is_case_insensitive_with_tiny_map() {
    let dir = TempDir::new();
    write_map(&dir, MAP_MODELS);
    let want = "name:       Base
vendor:     Intel
ancestor:   -
decode:     host, guest
signatures: -
x86-64:     - (v1 needs sse CMOV CX8 FXSR MMX SCE SSE2 LM)
removed:    -
added:      -
features (1):
  fpu
";
    assert_ok(&dir, &["model", "--cpu-map", "map", "base"], want);
    assert_ok(&dir, &["model", "--cpu-map", "map", "BASE"], want);
}

// ---------------------------------------------------------------------------
// This machine: the CPU varies, so only the shape is checked.

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[test]
fn dump_then_decode_round_trip() {
    let dir = TempDir::new();
    let to_file = run(&dir, &["dump", "-o", "host.xml"]);
    assert_eq!(
        to_file,
        Run {
            code: Some(0),
            stdout: String::new(),
            stderr: String::new()
        }
    );
    let to_stdout = run(&dir, &["dump"]);
    assert_eq!(to_stdout.code, Some(0), "{to_stdout:?}");
    assert_eq!(to_stdout.stderr, "");
    assert!(to_stdout.stdout.starts_with("<cpudata"), "{to_stdout:?}");

    for args in [
        &["decode", "host.xml"][..],
        &["decode", "--guest", "host.xml"],
    ] {
        let decoded = run(&dir, args);
        assert_eq!(decoded.code, Some(0), "cpumodel {args:?}: {decoded:?}");
        assert_eq!(decoded.stderr, "", "cpumodel {args:?}");
        assert!(
            decoded.stdout.starts_with("<cpu"),
            "cpumodel {args:?}: {decoded:?}"
        );
        assert!(decoded.stdout.ends_with("</cpu>\n"), "{decoded:?}");
    }
    let host = run(&dir, &["decode", "host.xml"]);
    assert!(host.stdout.starts_with("<cpu>\n"), "{host:?}");
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[test]
fn dump_as_json_lists_the_same_leaves_as_the_xml() {
    let dir = TempDir::new();
    let xml = run(&dir, &["dump"]);
    let json = run(&dir, &["dump", "--format", "json"]);
    assert_eq!((json.code, json.stderr.as_str()), (Some(0), ""), "{json:?}");
    assert!(
        json.stdout
            .starts_with("{\n  \"arch\": \"x86\",\n  \"items\": ["),
        "{json:?}"
    );
    // Leaf 0 (the vendor string and the highest leaf) is the same in both.
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("valid JSON");
    let items = v["items"].as_array().expect("items");
    assert!(items
        .iter()
        .all(|i| i.get("cpuid").is_some() || i.get("msr").is_some()));
    let leaf0 = &items[0];
    assert_eq!(
        leaf0["cpuid"],
        serde_json::json!({"eax_in": 0, "ecx_in": 0})
    );
    let hex = |r: &str| format!("{r}='0x{:08x}'", leaf0[r].as_u64().unwrap());
    let xml_leaf0 = xml.stdout.lines().nth(1).expect("leaf 0 line");
    for r in ["eax", "ebx", "ecx", "edx"] {
        assert!(xml_leaf0.contains(&hex(r)), "{xml_leaf0} vs {leaf0}");
    }
    let text = run(&dir, &["dump", "--format", "text"]);
    assert_eq!(
        text,
        Run {
            code: Some(2),
            stdout: String::new(),
            stderr: "cpumodel: error: invalid value 'text' for '--format <FORMAT>' (possible values: xml, json)\n".into()
        }
    );
}
