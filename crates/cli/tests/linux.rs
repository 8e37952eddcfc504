//! Linux's and Firecracker's views of a CPU as host inputs, end to end:
//! `/proc/cpuinfo`, `lscpu` (text and `--json`), a Firecracker template and
//! fingerprint, decoded with exactly the notes on what they cannot show;
//! `--names linux`; and the check that a flags line made from each real CPU
//! of libvirt's corpus decodes as its dump does, or says which undetermined
//! features made the difference.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::*;
use cpumodel_cpudata::{vendor_from_regs, ItemKey, Signature};
use cpumodel_cpudef::{decode, host_features_from_cpudata, CpuKind, DecodeOptions};
use cpumodel_map::{bit_item, linux_flags, load_cpu_map};
use serde_json::Value;

// ---------------------------------------------------------------------------
// A small CPU map, so that every note is short: two CPUID features Linux
// shows (fpu, avx2), one it hides (spec-ctrl), one Linux has no flag for in
// a word it copies (a reserved 1.EDX bit), and an MSR feature.

const MAP_FEATURES: &str = "<cpus>
  <feature name='fpu'>
    <cpuid eax_in='0x00000001' edx='0x00000001'/>
  </feature>
  <feature name='tsc-deadline'>
    <cpuid eax_in='0x00000001' ecx='0x01000000'/>
  </feature>
  <feature name='reserved10'>
    <cpuid eax_in='0x00000001' edx='0x00000400'/>
  </feature>
  <feature name='avx2'>
    <cpuid eax_in='0x00000007' ecx_in='0x00000000' ebx='0x00000020'/>
  </feature>
  <feature name='spec-ctrl'>
    <cpuid eax_in='0x00000007' ecx_in='0x00000000' edx='0x04000000'/>
  </feature>
  <feature name='arch-capabilities'>
    <cpuid eax_in='0x00000007' ecx_in='0x00000000' edx='0x20000000'/>
  </feature>
  <feature name='rdctl-no'>
    <msr index='0x0000010a' edx='0x00000000' eax='0x00000001'/>
  </feature>
</cpus>
";

const MAP_MODELS: &str = "<cpus>
  <model name='Base'>
    <decode host='on' guest='on'/>
    <vendor name='Intel'/>
    <feature name='fpu'/>
  </model>
  <model name='Base-IBRS'>
    <decode host='on' guest='on'/>
    <vendor name='Intel'/>
    <feature name='fpu'/>
    <feature name='spec-ctrl'/>
  </model>
</cpus>
";

fn map_dir() -> TempDir {
    let dir = TempDir::new();
    write_map_files(&dir, MAP_FEATURES, MAP_MODELS);
    dir
}

const CPUINFO: &str = "processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
stepping\t: 4
flags\t\t: fpu tsc_deadline_timer constant_tsc arch_capabilities brand_new_flag
bugs\t\t: spectre_v1

processor\t: 1
flags\t\t: fpu avx2
";

/// The notes and CPU every Linux shape of [`CPUINFO`] decodes to.
fn host_xml(source: &str) -> String {
    format!(
        "<!-- {source} cannot show 3 features of the CPU map; decoded as absent: reserved10 spec-ctrl rdctl-no -->
<!-- with every undetermined feature present it would be Base-IBRS, which needs spec-ctrl -->
<!-- flags unknown to the kernel table, left out: brand_new_flag -->
<cpu>
  <arch>x86_64</arch>
  <model>Base</model>
  <vendor>Intel</vendor>
  <signature family='6' model='85' stepping='4'/>
  <feature name='tsc-deadline'/>
  <feature name='arch-capabilities'/>
</cpu>
"
    )
}

#[test]
fn proc_cpuinfo_decodes_naming_what_it_cannot_show() {
    let dir = map_dir();
    dir.write("cpuinfo", CPUINFO);
    assert_eq!(
        run(&dir, &["decode", "--cpu-map", "map", "cpuinfo"]),
        Run::ok(&host_xml("/proc/cpuinfo"))
    );
    // Just a flags line: no vendor, no signature. The flag of
    // IA32_ARCH_CAPABILITIES is absent, so that MSR is known to be absent
    // and rdctl-no with it.
    dir.write("flags", "flags\t\t: fpu avx2\n");
    assert_eq!(
        run(&dir, &["decode", "--cpu-map", "map", "flags"]),
        Run::ok(
            "<!-- /proc/cpuinfo cannot show 2 features of the CPU map; decoded as absent: reserved10 spec-ctrl -->
<!-- with every undetermined feature present it would be Base-IBRS, which needs spec-ctrl -->
<cpu>
  <arch>x86_64</arch>
  <model>Base</model>
  <feature name='avx2'/>
</cpu>
"
        )
    );
    // JSON carries the notes as fields; --names linux spells features as
    // cpuinfo does, the notes too.
    let out = run(
        &dir,
        &[
            "decode",
            "--cpu-map",
            "map",
            "--guest",
            "--format",
            "json",
            "--names",
            "linux",
            "cpuinfo",
        ],
    );
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["model"], "Base");
    assert_eq!(doc["source"], "/proc/cpuinfo");
    assert_eq!(
        doc["undetermined"],
        serde_json::json!(["reserved10", "spec-ctrl", "rdctl-no"])
    );
    assert_eq!(
        doc["if_present"],
        serde_json::json!({"model": "Base-IBRS", "needs": ["spec-ctrl"]})
    );
    assert_eq!(doc["unknown_flags"], serde_json::json!(["brand_new_flag"]));
    let names: Vec<&str> = doc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tsc_deadline_timer", "arch_capabilities"]);
}

#[test]
fn lscpu_text_and_json_decode_as_cpuinfo_does() {
    let dir = map_dir();
    dir.write(
        "lscpu.txt",
        "Architecture:                    x86_64
CPU op-mode(s):                  32-bit, 64-bit
Vendor ID:                       GenuineIntel
Model name:                      Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
CPU family:                      6
Model:                           85
Stepping:                        4
Flags:                           fpu tsc_deadline_timer constant_tsc arch_capabilities brand_new_flag
",
    );
    dir.write(
        "lscpu.json",
        r#"{
   "lscpu": [
      {"field": "Architecture:", "data": "x86_64"},
      {"field": "Vendor ID:", "data": "GenuineIntel",
       "children": [
          {"field": "Model name:", "data": "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz",
           "children": [
              {"field": "CPU family:", "data": "6"},
              {"field": "Model:", "data": "85"},
              {"field": "Stepping:", "data": "4"},
              {"field": "Flags:", "data": "fpu tsc_deadline_timer constant_tsc arch_capabilities brand_new_flag"}
           ]}
       ]}
   ]
}
"#,
    );
    for file in ["lscpu.txt", "lscpu.json"] {
        assert_eq!(
            run(&dir, &["decode", "--cpu-map", "map", file]),
            Run::ok(&host_xml("lscpu")),
            "{file}"
        );
    }
}

#[test]
fn firecracker_templates_decode_their_fixed_bits() {
    let dir = map_dir();
    // Leaf 0 and 1 fixed whole (a template dump), leaf 7 EDX fixed whole
    // (spec-ctrl and arch-capabilities set), EBX left: avx2 undetermined;
    // IA32_ARCH_CAPABILITIES fixed with RDCL_NO set.
    let template = r#"{
  "kvm_capabilities": [],
  "cpuid_modifiers": [
    {"leaf": "0x0", "subleaf": "0x0", "flags": 0, "modifiers": [
      {"register": "eax", "bitmap": "0b00000000000000000000000000010110"},
      {"register": "ebx", "bitmap": "0b01110101011011100110010101000111"},
      {"register": "ecx", "bitmap": "0b01101100011001010111010001101110"},
      {"register": "edx", "bitmap": "0b01001001011001010110111001101001"}]},
    {"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [
      {"register": "eax", "bitmap": "0b00000000000001010000011001010100"},
      {"register": "ecx", "bitmap": "0b00000000000000000000000000000000"},
      {"register": "edx", "bitmap": "0b00000000000000000000000000000001"}]},
    {"leaf": "0x7", "subleaf": "0x0", "flags": 1, "modifiers": [
      {"register": "edx", "bitmap": "0b0010_0100_0000_0000_0000_0000_0000_0000"}]}
  ],
  "msr_modifiers": [{"addr": "0x10a", "bitmap": "0b1"}]
}
"#;
    dir.write("template.json", template);
    let want = "<!-- Firecracker template cannot show 1 features of the CPU map; decoded as absent: avx2 -->
<cpu>
  <arch>x86_64</arch>
  <model>Base-IBRS</model>
  <vendor>Intel</vendor>
  <signature family='6' model='85' stepping='4'/>
  <feature name='arch-capabilities'/>
  <feature name='rdctl-no'/>
</cpu>
";
    assert_eq!(
        run(&dir, &["decode", "--cpu-map", "map", "template.json"]),
        Run::ok(want)
    );
    dir.write(
        "fingerprint.json",
        &format!(
            r#"{{"firecracker_version": "1.16.0", "kernel_version": "6.1.0", "microcode_version": "0x1",
"bios_version": "1.0", "bios_revision": "4.15", "guest_cpu_config": {template}}}"#
        ),
    );
    assert_eq!(
        run(&dir, &["decode", "--cpu-map", "map", "fingerprint.json"]),
        Run::ok(want)
    );
    // With leaf 7 EBX fixed too, every feature of the map is determined
    // (`0b0` would fix bit 0 only: a short bitmap leaves its high bits).
    dir.write(
        "whole.json",
        &template.replace(
            r#"{"register": "edx", "bitmap": "0b0010_"#,
            &format!(
                r#"{{"register": "ebx", "bitmap": "0b{}"}}, {{"register": "edx", "bitmap": "0b0010_"#,
                "0".repeat(32)
            ),
        ),
    );
    assert_eq!(
        run(&dir, &["decode", "--cpu-map", "map", "whole.json"]),
        Run::ok(&want.replace(
            "cannot show 1 features of the CPU map; decoded as absent: avx2",
            "shows every feature of the CPU map"
        ))
    );
}

#[test]
fn every_command_taking_a_host_reads_linux_text() {
    let dir = map_dir();
    dir.write("cpuinfo", CPUINFO);
    dir.write(
        "guest.xml",
        "<cpu match='exact'>\n  <model>Base</model>\n  <feature name='tsc-deadline'/>\n</cpu>\n",
    );
    assert_eq!(
        run(
            &dir,
            &["compare", "--cpu-map", "map", "cpuinfo", "guest.xml"]
        ),
        Run::ok("superset\n")
    );
    dir.write(
        "guest2.xml",
        "<cpu match='exact'>\n  <model>Base-IBRS</model>\n</cpu>\n",
    );
    // spec-ctrl cannot be seen, so the host cannot be shown to have it.
    let out = run(
        &dir,
        &["compare", "--cpu-map", "map", "cpuinfo", "guest2.xml"],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(1), "incompatible\nspec-ctrl\n")
    );
    let out = run(
        &dir,
        &[
            "guest",
            "--cpu-map",
            "map",
            "--mode",
            "host-model",
            "--host",
            "cpuinfo",
            "--format",
            "qemu",
        ],
    );
    assert_eq!(out, Run::ok("Base,tsc-deadline=on,arch-capabilities=on\n"));
}

#[test]
fn names_linux_spells_features_as_cpuinfo_does() {
    let dir = TempDir::new();
    let out = run(
        &dir,
        &["model", "Westmere", "--names", "linux", "--format", "json"],
    );
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let features: Vec<&str> = doc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(features.contains(&"sse4_2"), "{features:?}");
    assert!(features.contains(&"pni"));
    assert!(!features.contains(&"sse4.2"));
    dir.write(
        "cpu.xml",
        "<cpu match='exact'>\n  <model>Westmere</model>\n  <feature policy='require' name='tsc-deadline'/>\n  <feature policy='require' name='spec-ctrl'/>\n</cpu>\n",
    );
    let out = run(&dir, &["expand", "cpu.xml", "--names", "linux"]);
    assert!(
        out.stdout.contains("name='tsc_deadline_timer'"),
        "{}",
        out.stdout
    );
    // No Linux name: libvirt's stays.
    assert!(out.stdout.contains("name='spec-ctrl'"));
    assert!(out.stdout.contains("name='sse4_1'"));
    let out = run(&dir, &["baseline", "cpu.xml", "--names", "linux"]);
    assert!(
        out.stdout.contains("name='tsc_deadline_timer'"),
        "{}",
        out.stdout
    );
}

// ---------------------------------------------------------------------------
// Every real CPU of libvirt's corpus, as a flags line.

/// The `/proc/cpuinfo` a Linux with the imported table would show for CPU
/// data: vendor, signature, and every shown flag whose CPUID bit is set.
fn cpuinfo_of(data: &cpumodel_cpudata::CpuData) -> String {
    let mut flags = Vec::new();
    for f in linux_flags() {
        let (Some(name), Some(bit)) = (f.name, f.cpuid_bit()) else {
            continue;
        };
        let want = bit_item(bit);
        if data.get(want.key).is_some_and(|i| i.contains(&want)) {
            flags.push(name);
        }
    }
    let leaf0 = data.get(ItemKey::cpuid(0, 0)).unwrap().regs;
    let vendor = vendor_from_regs([leaf0[1], leaf0[3], leaf0[2]]);
    let sig = Signature::from_eax(data.signature());
    format!(
        "processor\t: 0\nvendor_id\t: {}\ncpu family\t: {}\nmodel\t\t: {}\nstepping\t: {}\nflags\t\t: {}\n",
        String::from_utf8_lossy(&vendor),
        sig.family,
        sig.model,
        sig.stepping,
        flags.join(" ")
    )
}

/// What each corpus CPU's flags line decodes to (host decode, libvirt
/// 10.7's map), when that is not its dump's model: the dump's model, the
/// flags line's, and the features of the dump's model that a flags line
/// cannot show (the output's `if_present` names them). The other 29 CPUs
/// decode to their dump's model.
const DIFFERENCES: &str = "\
Core-i7-5600U-ibrs: Broadwell-IBRS -> Broadwell (undetermined: spec-ctrl)
Core-i7-8550U: Skylake-Client-noTSX-IBRS -> Broadwell-noTSX (undetermined: spec-ctrl)
Core-i7-8700: Skylake-Client-IBRS -> Skylake-Client (undetermined: spec-ctrl)
EPYC-7601-32-Core-ibpb: EPYC-IBPB -> EPYC (undetermined: ibpb)
Ryzen-9-3900X-12-Core: EPYC-Rome -> EPYC (undetermined: ibpb amd-stibp)
Xeon-E5-2609-v3: Haswell-noTSX-IBRS -> Haswell-noTSX (undetermined: spec-ctrl)
Xeon-E7540: Nehalem-IBRS -> Nehalem (undetermined: spec-ctrl)
Xeon-Gold-5115: Skylake-Server-IBRS -> Skylake-Server (undetermined: spec-ctrl)
Xeon-Gold-6130: Skylake-Server-IBRS -> Skylake-Server (undetermined: spec-ctrl)
Xeon-Platinum-8268: Cascadelake-Server -> Skylake-Server (undetermined: spec-ctrl ssbd)
Ice-Lake-Server: Icelake-Server -> Skylake-Server (undetermined: spec-ctrl ssbd)
Cooperlake: Cooperlake -> Skylake-Server (undetermined: spec-ctrl stibp ssbd rdctl-no ibrs-all skip-l1dfl-vmentry mds-no pschange-mc-no taa-no)
";

#[test]
fn corpus_cpus_as_flags_lines_decode_as_their_dumps() {
    let Some(corpus) = cpumodel_testenv::shared_path("conformance/libvirt-10.7") else {
        return;
    };
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("manifest.json")).unwrap())
            .unwrap();
    let db = load_cpu_map(&corpus.join("cpu_map")).unwrap();
    let dir = TempDir::new();
    let mut differences = String::new();
    let mut cpus = 0;
    for case in manifest["cases"].as_array().unwrap() {
        if case["op"] != "decode" || case["type"] != "host" {
            continue;
        }
        let input = corpus.join(case["input"].as_str().unwrap());
        let text = std::fs::read_to_string(&input).unwrap();
        let (data, features) = host_features_from_cpudata(&db, "dump", &text).unwrap();
        let dump = decode(&db, &features, &DecodeOptions::new(CpuKind::Host)).unwrap();
        let name = Path::new(case["input"].as_str().unwrap())
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("x86_64-cpuid-")
            .to_string();
        dir.write(&name, &cpuinfo_of(&data));
        let out = run(
            &dir,
            &[
                "decode",
                "--cpu-map",
                corpus.join("cpu_map").to_str().unwrap(),
                "--format",
                "json",
                &name,
            ],
        );
        assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{name}");
        let doc: Value = serde_json::from_str(&out.stdout).unwrap();
        let model = doc["model"].as_str().unwrap();
        let dump_model = db.model(dump.model);
        cpus += 1;
        if model == dump_model.name {
            continue;
        }
        // The difference must be features the flags line cannot show: every
        // feature of the dump's model is shown present, or undetermined
        // (and then named in the output).
        let shown = cpumodel_cpudef::read_host_data(&db, &name, &cpuinfo_of(&data))
            .unwrap()
            .features;
        let unexplained: Vec<&str> = dump_model
            .features
            .difference(&shown.full.union(&shown.undetermined))
            .iter()
            .map(|f| db.feature_name(f))
            .collect();
        assert!(unexplained.is_empty(), "{name}: {unexplained:?}");
        let undetermined: Vec<&str> = doc["undetermined"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let needed: Vec<&str> = dump_model
            .features
            .difference(&shown.full)
            .iter()
            .map(|f| db.feature_name(f))
            .collect();
        assert!(needed.iter().all(|f| undetermined.contains(f)), "{name}");
        // And the output names the dump's model as what the CPU would be
        // with its undetermined features present.
        assert_eq!(
            doc["if_present"],
            serde_json::json!({"model": dump_model.name, "needs": needed}),
            "{name}"
        );
        let _ = writeln!(
            differences,
            "{name}: {} -> {model} (undetermined: {})",
            dump_model.name,
            needed.join(" ")
        );
    }
    assert_eq!(cpus, 41);
    assert_eq!(differences, DIFFERENCES);
}

// ---------------------------------------------------------------------------
// This machine's own /proc/cpuinfo against its CPUID.

/// Features Linux may clear from its flags although CPUID has them: TSX,
/// which the kernel turns off by default on CPUs with TSX erratas.
const LINUX_MAY_CLEAR: &[&str] = &["hle", "rtm"];

#[test]
fn this_machines_cpuinfo_decodes_as_its_dump() {
    let cpuinfo = match std::fs::read_to_string("/proc/cpuinfo") {
        Ok(text) if text.lines().any(|l| l.starts_with("flags")) => text,
        _ => {
            println!("skipped: no x86 /proc/cpuinfo on this machine");
            return;
        }
    };
    let dir = TempDir::new();
    dir.write("cpuinfo", &cpuinfo);
    let out = run(&dir, &["dump", "-o", "dump.xml"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
    let db = cpumodel_map::Database::embedded();
    let dump_text = std::fs::read_to_string(dir.path().join("dump.xml")).unwrap();
    let dump = cpumodel_cpudef::read_host_data(&db, "dump.xml", &dump_text).unwrap();
    let linux = cpumodel_cpudef::read_host_data(&db, "cpuinfo", &cpuinfo).unwrap();
    let names = |set: &cpumodel_map::FeatureSet| -> Vec<String> {
        set.iter().map(|f| db.feature_name(f).to_string()).collect()
    };
    // Linux shows no CPUID flag the processor lacks, and every feature it
    // can show that the processor has, but for those it may turn off.
    assert_eq!(
        names(&linux.features.full.difference(&dump.features.full)),
        Vec::<String>::new()
    );
    let unseen: Vec<String> = names(
        &dump
            .features
            .full
            .difference(&linux.features.full)
            .difference(&linux.features.undetermined),
    )
    .into_iter()
    .filter(|f| !LINUX_MAY_CLEAR.contains(&f.as_str()))
    .collect();
    assert_eq!(unseen, Vec::<String>::new());
    // The same model as the dump's, or the output names the model with the
    // undetermined features present and they explain the difference.
    let model = |file: &str| -> Value {
        let out = run(&dir, &["decode", "--format", "json", file]);
        assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{file}");
        serde_json::from_str(&out.stdout).unwrap()
    };
    let (from_dump, from_linux) = (model("dump.xml"), model("cpuinfo"));
    if from_dump["model"] != from_linux["model"] {
        let dump_model = db.model(db.find_model(from_dump["model"].as_str().unwrap()).unwrap());
        let needed = names(&dump_model.features.difference(&linux.features.full));
        assert!(
            needed.iter().all(|f| linux
                .features
                .undetermined
                .contains(db.find_feature(f).unwrap())
                || LINUX_MAY_CLEAR.contains(&f.as_str())),
            "{needed:?}"
        );
    }
    println!(
        "this machine: dump {} / cpuinfo {} (if present: {})",
        from_dump["model"], from_linux["model"], from_linux["if_present"]
    );
}
