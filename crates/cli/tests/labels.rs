//! `cpumodel labels`: the labels KubeVirt's node-labeller puts on a node.
//!
//! The fixtures are written here from the facts of KubeVirt's own
//! node-labeller tests (`pkg/virt-handler/node-labeller/cpu_plugin_test.go`
//! and `node_labeller_test.go` with their `testdata/` documents): a
//! Skylake-Client-IBRS host-model with `ds`, `acpi` and `ss` required;
//! usable Penryn, IvyBridge, Haswell, Skylake-Client-IBRS and Opteron_G2;
//! unusable EPYC-IBPB, 486 and Conroe; a model without a verdict; four
//! supported features; and SEV, SEV-ES, SEV-SNP and TDX variants. KubeVirt
//! asserts 4 usable models and 4 features, the known models EPYC-IBPB,
//! Penryn, IvyBridge, Haswell and Skylake-Client-IBRS, the 3 required
//! features, and the security labels; the expected outputs below are those
//! facts written out as the labels the node-labeller builds from them.

mod common;
use common::*;

/// The node's domain capabilities, with `features` as its `<features>`.
fn domcaps(custom: &str, features: &str) -> String {
    format!(
        "<domainCapabilities>
  <path>/usr/bin/qemu-system-x86_64</path>
  <domain>kvm</domain>
  <arch>x86_64</arch>
  <cpu>
    <mode name='host-passthrough' supported='yes'/>
    <mode name='host-model' supported='yes'>
      <model fallback='allow'>Skylake-Client-IBRS</model>
      <vendor>Intel</vendor>
      <feature policy='require' name='ss'/>
      <feature policy='require' name='ds'/>
      <feature policy='require' name='acpi'/>
    </mode>
    <mode name='custom' supported='yes'>
{custom}    </mode>
  </cpu>
  <features>
{features}  </features>
</domainCapabilities>
"
    )
}

const MODELS: &str = "      <model usable='yes'>Opteron_G2</model>
      <model usable='yes'>Penryn</model>
      <model usable='no'>Conroe</model>
      <model usable='yes'>Skylake-Client-IBRS</model>
      <model usable='no'>486</model>
      <model>no-verdict</model>
      <model usable='yes'>IvyBridge</model>
      <model usable='no'>EPYC-IBPB</model>
      <model usable='yes'>Haswell</model>
";

const NOTHING_USABLE: &str = "      <model usable='no'>coreduo</model>
      <model usable='no'>Haswell</model>
      <model>no-verdict</model>
      <model usable='no'>EPYC-IBPB</model>
      <model usable='no'>486</model>
      <model usable='no'>IvyBridge</model>
      <model usable='no'>Conroe</model>
";

const SEV_SNP: &str = "    <sev supported='yes'>
      <cbitpos>47</cbitpos>
      <reducedPhysBits>1</reducedPhysBits>
      <maxGuests>15</maxGuests>
      <maxESGuests>15</maxESGuests>
    </sev>
    <launchSecurity supported='yes'>
      <enum name='sectype'>
        <value>sev</value>
        <value>sev-snp</value>
      </enum>
    </launchSecurity>
    <tdx supported='no'/>
";

/// `virsh hypervisor-cpu-baseline --features` output: four features
/// required, one disabled (which is not supported).
const SUPPORTED: &str = "<cpu mode='custom' match='exact'>
  <model fallback='forbid'>Skylake-Client-IBRS</model>
  <vendor>Intel</vendor>
  <feature policy='require' name='xsaves'/>
  <feature policy='require' name='vmx'/>
  <feature policy='disable' name='mpx'/>
  <feature policy='require' name='clflush'/>
  <feature policy='require' name='apic'/>
</cpu>
";

const FEATURE_LABELS: &str = "cpu-feature.node.kubevirt.io/apic=true
cpu-feature.node.kubevirt.io/clflush=true
cpu-feature.node.kubevirt.io/vmx=true
cpu-feature.node.kubevirt.io/xsaves=true
";

const HOST_MODEL_LABELS: &str = "cpu-vendor.node.kubevirt.io/Intel=true
host-model-cpu.node.kubevirt.io/Skylake-Client-IBRS=true
host-model-required-features.node.kubevirt.io/acpi=true
host-model-required-features.node.kubevirt.io/ds=true
host-model-required-features.node.kubevirt.io/ss=true
";

fn labels(dir: &TempDir, extra: &[&str]) -> Run {
    let mut args = vec!["labels", "d.xml", "--supported-features", "sf.xml"];
    args.extend_from_slice(extra);
    run(dir, &args)
}

#[test]
fn the_node_labellers_test_node() {
    let dir = TempDir::new();
    dir.write("d.xml", &domcaps(MODELS, SEV_SNP));
    dir.write("sf.xml", SUPPORTED);
    let want = format!(
        "{FEATURE_LABELS}\
cpu-model-migration.node.kubevirt.io/EPYC-IBPB=true
cpu-model-migration.node.kubevirt.io/Haswell=true
cpu-model-migration.node.kubevirt.io/IvyBridge=true
cpu-model-migration.node.kubevirt.io/Penryn=true
cpu-model-migration.node.kubevirt.io/Skylake-Client-IBRS=true
cpu-model.node.kubevirt.io/Haswell=true
cpu-model.node.kubevirt.io/IvyBridge=true
cpu-model.node.kubevirt.io/Penryn=true
cpu-model.node.kubevirt.io/Skylake-Client-IBRS=true
{HOST_MODEL_LABELS}\
kubevirt.io/sev=true
kubevirt.io/sev-es=true
kubevirt.io/sev-snp=true
"
    );
    assert_eq!(labels(&dir, &[]), Run::ok(&want));

    // The same labels as one JSON object.
    let json = labels(&dir, &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let from_json: String = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}\n", v.as_str().unwrap()))
        .collect();
    assert_eq!(from_json, want);
}

#[test]
fn no_usable_model_gives_no_model_label() {
    let dir = TempDir::new();
    dir.write("d.xml", &domcaps(NOTHING_USABLE, ""));
    dir.write("sf.xml", SUPPORTED);
    let want = format!(
        "{FEATURE_LABELS}\
cpu-model-migration.node.kubevirt.io/EPYC-IBPB=true
cpu-model-migration.node.kubevirt.io/Haswell=true
cpu-model-migration.node.kubevirt.io/IvyBridge=true
{HOST_MODEL_LABELS}"
    );
    assert_eq!(labels(&dir, &[]), Run::ok(&want));
}

#[test]
fn the_obsolete_list_replaces_kubevirts() {
    let dir = TempDir::new();
    dir.write("d.xml", &domcaps(MODELS, ""));
    dir.write("sf.xml", SUPPORTED);
    // Penryn and the host model obsolete; 486, Conroe and Opteron_G2 are not.
    let want = format!(
        "{FEATURE_LABELS}\
cpu-model-migration.node.kubevirt.io/486=true
cpu-model-migration.node.kubevirt.io/Conroe=true
cpu-model-migration.node.kubevirt.io/EPYC-IBPB=true
cpu-model-migration.node.kubevirt.io/Haswell=true
cpu-model-migration.node.kubevirt.io/IvyBridge=true
cpu-model-migration.node.kubevirt.io/Opteron_G2=true
cpu-model.node.kubevirt.io/Haswell=true
cpu-model.node.kubevirt.io/IvyBridge=true
cpu-model.node.kubevirt.io/Opteron_G2=true
{HOST_MODEL_LABELS}\
node-labeller.kubevirt.io/obsolete-host-model=true
"
    );
    assert_eq!(
        labels(
            &dir,
            &["--obsolete-cpu-models", "Penryn, Skylake-Client-IBRS"]
        ),
        Run::ok(&want)
    );
}

#[test]
fn security_labels_follow_sev_es_snp_and_tdx() {
    let dir = TempDir::new();
    dir.write("sf.xml", SUPPORTED);
    let security = |features: &str| {
        dir.write("d.xml", &domcaps("", features));
        let out = labels(&dir, &[]);
        assert_eq!(out.code, Some(0), "{out:?}");
        out.stdout
            .lines()
            .filter(|l| l.starts_with("kubevirt.io/"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert!(security("    <sev supported='no'/>\n").is_empty());
    let no_es = "    <sev supported='yes'>\n      <maxGuests>15</maxGuests>\n      \
                 <maxESGuests>0</maxESGuests>\n    </sev>\n";
    assert_eq!(security(no_es), ["kubevirt.io/sev=true"]);
    let es_without_snp = SEV_SNP.replace("<value>sev-snp</value>", "");
    assert_eq!(
        security(&es_without_snp),
        ["kubevirt.io/sev=true", "kubevirt.io/sev-es=true"]
    );
    assert_eq!(
        security("    <tdx supported='yes'/>\n    <sev supported='no'/>\n"),
        ["kubevirt.io/tdx=true"]
    );
}

#[test]
fn without_supported_features_the_host_model_is_expanded() {
    let dir = TempDir::new();
    dir.write("d.xml", &domcaps(MODELS, ""));
    let out = run(&dir, &["labels", "d.xml"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let features: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("cpu-feature.node.kubevirt.io/"))
        .filter_map(|l| l.strip_suffix("=true"))
        .collect();
    // Skylake-Client-IBRS's features and the three required ones.
    let model = run(&dir, &["model", "Skylake-Client-IBRS", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&model.stdout).unwrap();
    let mut want: Vec<String> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .chain(["acpi", "ds", "ss"].map(String::from))
        .collect();
    want.sort();
    assert_eq!(features, want);
}

#[test]
fn a_host_cpu_gets_its_computed_domain_capabilities() {
    let dir = TempDir::new();
    dir.write(
        "h.xml",
        "<cpu>\n  <arch>x86_64</arch>\n  <model>Westmere</model>\n  <vendor>Intel</vendor>\n  \
         <feature name='vmx'/>\n  <feature name='pclmuldq'/>\n  <feature name='invtsc'/>\n</cpu>\n",
    );
    let out = run(&dir, &["labels", "h.xml"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("cpu-feature") && !l.starts_with("cpu-model-migration"))
        .collect();
    assert_eq!(
        lines,
        [
            "cpu-model.node.kubevirt.io/Nehalem=true",
            "cpu-model.node.kubevirt.io/Nehalem-v1=true",
            "cpu-model.node.kubevirt.io/Penryn=true",
            "cpu-model.node.kubevirt.io/Penryn-v1=true",
            "cpu-model.node.kubevirt.io/Westmere=true",
            "cpu-model.node.kubevirt.io/Westmere-v1=true",
            "cpu-model.node.kubevirt.io/cpu64-rhel5=true",
            "cpu-model.node.kubevirt.io/cpu64-rhel6=true",
            "cpu-vendor.node.kubevirt.io/Intel=true",
            "host-model-cpu.node.kubevirt.io/Westmere=true",
            "host-model-required-features.node.kubevirt.io/pclmuldq=true",
            "host-model-required-features.node.kubevirt.io/vmx=true",
        ]
    );
    // Every feature the host has is supported, invtsc included.
    assert!(out
        .stdout
        .contains("\ncpu-feature.node.kubevirt.io/invtsc=true\n"));
}
