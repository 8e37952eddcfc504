//! `cpumodel map diff`: exact answers on two tiny maps written here, and
//! facts about libvirt 9.0 → upstream that can be checked by hand.

mod common;
use common::*;

const OLD_FEATURES: &str = "<cpus>
  <feature name='fpu'><cpuid eax_in='0x00000001' edx='0x00000001'/></feature>
  <feature name='sse'><cpuid eax_in='0x00000001' edx='0x02000000'/></feature>
  <feature name='pni'><cpuid eax_in='0x00000001' ecx='0x00000001'/></feature>
  <feature name='gone'><cpuid eax_in='0x00000001' ecx='0x00000002'/></feature>
</cpus>
";

const NEW_FEATURES: &str = "<cpus>
  <feature name='fpu'><cpuid eax_in='0x00000001' edx='0x00000001'/></feature>
  <feature name='sse'><cpuid eax_in='0x00000001' edx='0x02000004'/></feature>
  <feature name='sse3'><cpuid eax_in='0x00000001' ecx='0x00000001'/></feature>
  <feature name='avx'><cpuid eax_in='0x00000001' ecx='0x10000000'/></feature>
</cpus>
";

const OLD_MODELS: &str = "<cpus>
  <model name='Base'>
    <decode host='on' guest='on'/>
    <signature family='6' model='15'/>
    <vendor name='Intel'/>
    <feature name='fpu'/>
    <feature name='pni'/>
  </model>
  <model name='Old'>
    <decode host='on' guest='on'/>
    <vendor name='Intel'/>
    <feature name='fpu'/>
    <feature name='gone'/>
  </model>
</cpus>
";

const NEW_MODELS: &str = "<cpus>
  <model name='Base'>
    <decode host='on' guest='on'/>
    <signature family='6' model='23'/>
    <vendor name='Intel'/>
    <feature name='fpu'/>
    <feature name='sse3'/>
    <feature name='avx'/>
  </model>
  <model name='Next'>
    <decode host='on' guest='on'/>
    <vendor name='Intel'/>
    <feature name='fpu'/>
    <feature name='sse3'/>
    <feature name='avx'/>
    <feature name='sse'/>
  </model>
</cpus>
";

#[test]
fn a_diff_of_two_small_maps_lists_every_change() {
    let dir = TempDir::new();
    write_map_dir(&dir, "old", OLD_FEATURES, OLD_MODELS);
    write_map_dir(&dir, "new", NEW_FEATURES, NEW_MODELS);
    let got = run(&dir, &["map", "diff", "old", "new"]);
    assert_eq!(
        got,
        Run::ok(
            "models added: 1
  Next
models removed: 1
  Old
features added: 1
  avx
features removed: 1
  gone
features renamed: 1
  pni -> sse3
features redefined: 1
  sse
models changed: 1
  Base: +avx; signatures 6/15 -> 6/23
decode can change: 2
  Base: features changed; signatures changed; now decodes as Next
  Old: removed
"
        )
    );
    let json = run(&dir, &["map", "diff", "old", "new", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["models_added"], serde_json::json!(["Next"]));
    assert_eq!(v["models_removed"], serde_json::json!(["Old"]));
    assert_eq!(
        v["features_renamed"],
        serde_json::json!([{"old": "pni", "new": "sse3"}])
    );
    assert_eq!(
        v["models_changed"][0]["signatures"],
        serde_json::json!([
            [{"family": 6, "model": 15, "steppings": null}],
            [{"family": 6, "model": 23, "steppings": null}]
        ])
    );
}

#[test]
fn libvirt_9_0_to_upstream_adds_the_models_and_features_9_0_lacks() {
    let dir = TempDir::new();
    let out = run(
        &dir,
        &["map", "diff", "9.0", "upstream", "--format", "json"],
    );
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let list = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let added = list("models_added");
    for model in [
        "EPYC-Genoa",
        "SapphireRapids",
        "GraniteRapids",
        "EPYC-Milan-v2",
        "Westmere-v1",
    ] {
        assert!(
            added.contains(&model.to_string()),
            "{model} is new after 9.0"
        );
    }
    for model in ["Westmere", "EPYC-Milan", "Icelake-Server", "Cooperlake"] {
        assert!(!added.contains(&model.to_string()), "{model} is in 9.0");
    }
    // 9.0 refuses guest CPUs naming these (e.g. "Unknown CPU feature flush-l1d").
    let features = list("features_added");
    for feature in ["flush-l1d", "amx-fp16", "avx-ifma", "sha512", "auto-ibrs"] {
        assert!(
            features.contains(&feature.to_string()),
            "{feature} is new after 9.0"
        );
    }
    assert!(!features.contains(&"avx512f".to_string()));
    // Nothing 9.0 knows was dropped or renamed.
    assert_eq!(list("models_removed"), Vec::<String>::new());
    assert_eq!(list("features_removed"), Vec::<String>::new());
    assert_eq!(v["features_renamed"], serde_json::json!([]));
    // The same release twice: no change at all.
    let same = run(&dir, &["map", "diff", "10.7", "10.7"]);
    assert_eq!(
        same.stdout,
        "models added: 0\nmodels removed: 0\nfeatures added: 0\nfeatures removed: 0\n\
         features renamed: 0\nfeatures redefined: 0\nmodels changed: 0\ndecode can change: 0\n"
    );
}

#[test]
fn a_map_that_is_neither_release_nor_directory_is_one_line() {
    let dir = TempDir::new();
    assert_eq!(
        run(&dir, &["map", "diff", "8.0", "upstream"]),
        Run::error(
            "unknown libvirt release '8.0'; known: 9.0, 10.7, upstream (or give a cpu_map directory)"
        )
    );
    dir.mkdir("empty");
    let got = run(&dir, &["map", "diff", "empty", "upstream"]);
    assert_eq!(got.code, Some(2));
    assert_eq!(got.stdout, "");
    assert!(
        got.stderr
            .starts_with("cpumodel: error: empty/index.xml: cannot read CPU map file"),
        "{}",
        got.stderr
    );
}
