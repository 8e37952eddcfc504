//! `cpumodel guest` against OpenStack Nova's own code.
//!
//! Generates cases (fixed seed) of nova.conf `[libvirt]` sections written
//! the many ways oslo.config accepts, vCPU counts, flavor extra specs and
//! image properties; asks Nova (`scripts/nova-oracle.py`, run by the Python
//! named in `CPUMODEL_NOVA_PYTHON`, which `.ci/run` installs Nova into) and
//! `cpumodel guest` for the guest CPU; and counts agreements. Every
//! disagreement fails the test, except the deliberate differences the
//! README lists (negative values, which Nova counts as set), which are
//! counted apart.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::TempDir;
use cpumodel_testenv::{unavailable, Mutator, Need};
use serde_json::{json, Value};

/// The environment variable naming a Python that can import nova.
const PYTHON_VAR: &str = "CPUMODEL_NOVA_PYTHON";
/// How many cases are generated.
const CASES: usize = 2400;

/// A host CPU for host-model and host-passthrough cases.
const HOST: &str = "<cpu>\n  <arch>x86_64</arch>\n  <model>Cascadelake-Server</model>\n  <vendor>Intel</vendor>\n</cpu>\n";

struct Gen(Mutator);

impl Gen {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.0.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.0.below(100) < percent
    }
}

/// One case: the conf text, the vCPUs, the specs and properties, and
/// whether cpumodel needs the host (host-model, host-passthrough).
struct Case {
    conf: String,
    vcpus: u32,
    flavor: Vec<(String, String)>,
    image: Vec<(String, String)>,
    needs_host: bool,
    deliberate: bool,
}

fn generate(g: &mut Gen) -> Case {
    let header = g.pick(&["[libvirt]", "[LIBVIRT]", "[Libvirt]"]);
    let sep = g.pick(&[" = ", "=", ": ", ":", " =  "]);
    let mut lines = vec![];
    if g.chance(30) {
        lines.push("[DEFAULT]".to_string());
        lines.push(format!("cpu_mode{sep}host-passthrough"));
    }
    lines.push(header.to_string());
    if g.chance(20) {
        lines.push("# the CPU".to_string());
    }
    let virt = g.pick(&["", "", "", "kvm", "qemu", "lxc"]);
    if !virt.is_empty() {
        lines.push(format!("virt_type{sep}{virt}"));
    }
    let mode = if virt == "lxc" {
        g.pick(&["", "none"])
    } else {
        g.pick(&[
            "",
            "custom",
            "custom",
            "custom",
            "host-model",
            "host-passthrough",
            "none",
        ])
    };
    if !mode.is_empty() {
        if g.chance(10) {
            // Repeated: the last one counts.
            lines.push(format!("cpu_mode{sep}host-passthrough"));
        }
        lines.push(format!("cpu_mode{sep}{mode}"));
    }
    if mode == "custom" || g.chance(5) {
        let pool = [
            "Westmere",
            "Haswell-noTSX",
            "Skylake-Client-IBRS",
            "Nehalem",
            "cascadelake-server",
            "SandyBridge",
        ];
        let n = 1 + g.0.below(3);
        let mut items: Vec<String> = (0..n).map(|_| g.pick(&pool).to_string()).collect();
        if g.chance(4) {
            items.insert(1, String::new());
        }
        let key = if g.chance(20) {
            "cpu_model"
        } else {
            "cpu_models"
        };
        if g.chance(25) && items.len() > 1 {
            let rest = items.split_off(1).join(",\n    ");
            lines.push(format!("{key}{sep}{},\n    {rest}", items[0]));
        } else {
            let trailing = if g.chance(10) { "," } else { "" };
            lines.push(format!("{key}{sep}{}{trailing}", items.join(", ")));
        }
        if key == "cpu_models" && g.chance(10) {
            lines.push(format!("cpu_model{sep}Nehalem"));
        }
    }
    if g.chance(50) {
        let require = ["avx", "AES", "pcid", "avx2", "fma", "bmi1"];
        let disable = ["vmx", "hle", "rtm", "mpx", "avx512f"];
        let n = 1 + g.0.below(3);
        let flags: Vec<String> = (0..n)
            .map(|_| {
                if g.chance(50) {
                    let sign = g.pick(&["", "+", "++"]);
                    format!("{sign}{}", g.pick(&require))
                } else {
                    let sign = g.pick(&["-", "--"]);
                    format!("{sign}{}", g.pick(&disable))
                }
            })
            .collect();
        let value = flags.join(", ");
        let value = if g.chance(10) {
            format!("'{value}'")
        } else {
            value
        };
        lines.push(format!("cpu_model_extra_flags{sep}{value}"));
    }
    let mut conf = lines.join("\n");
    conf.push('\n');

    let most = if g.chance(20) { 64 } else { 16 };
    let vcpus = u32::try_from(1 + g.0.below(most)).unwrap();
    let values = ["1", "2", "3", "4", "8", "0", " 2", "+2", "4294967296", "16"];
    let mut deliberate = false;
    let mut specs = |g: &mut Gen, prefix: &str| {
        let keys = [
            "cpu_sockets",
            "cpu_cores",
            "cpu_threads",
            "cpu_max_sockets",
            "cpu_max_cores",
            "cpu_max_threads",
        ];
        let mut out = vec![];
        for k in keys {
            if g.chance(25) {
                let v = if g.chance(3) {
                    deliberate = true;
                    "-1"
                } else {
                    g.pick(&values)
                };
                out.push((format!("{prefix}{k}"), v.to_string()));
            }
        }
        out
    };
    let flavor = specs(g, "hw:");
    let image = specs(g, "hw_");
    let effective_mode = if mode.is_empty() && virt != "lxc" {
        "host-model"
    } else {
        mode
    };
    Case {
        conf,
        vcpus,
        flavor,
        image,
        needs_host: matches!(effective_mode, "host-model" | "host-passthrough"),
        deliberate,
    }
}

/// Key-value pairs as a JSON object.
fn object(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Nova's answers for `cases`.
fn nova(python: &str, cases: &[Case], models: &[String]) -> Vec<Value> {
    let input: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "conf": c.conf,
                "vcpus": c.vcpus,
                "flavor": object(&c.flavor),
                "image": object(&c.image),
            })
        })
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/nova-oracle.py");
    let mut child = Command::new(python)
        .arg(script)
        .args(models)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the Nova oracle");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("the Nova oracle");
    assert!(out.status.success(), "the Nova oracle failed");
    serde_json::from_slice(&out.stdout).expect("the oracle's JSON")
}

/// cpumodel's answer, in the oracle's shape.
fn cpumodel(dir: &TempDir, case: &Case) -> Value {
    dir.write("nova.conf", &case.conf);
    let mut args: Vec<String> = vec![
        "guest".into(),
        "--nova-conf".into(),
        "nova.conf".into(),
        "--vcpus".into(),
        case.vcpus.to_string(),
        "--format".into(),
        "json".into(),
    ];
    for (k, v) in &case.flavor {
        args.push(format!("--spec={k}={v}"));
    }
    for (k, v) in &case.image {
        args.push(format!("--image-prop={k}={v}"));
    }
    if case.needs_host {
        args.extend(["--host".into(), "host.xml".into()]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cpumodel"))
        .args(&args)
        .current_dir(dir.path())
        .output()
        .expect("run cpumodel");
    if out.status.code() != Some(0) {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return json!({"error": err, "cpu": null, "topology": null});
    }
    let doc: Value = serde_json::from_slice(&out.stdout).expect("guest JSON");
    if doc.is_null() {
        return json!({"error": null, "cpu": null, "topology": null});
    }
    let cpu = &doc["cpu"];
    let mode = doc["mode"].as_str().unwrap_or_default();
    let mut features: Vec<Value> = cpu["features"]
        .as_array()
        .map(|v| v.iter().map(|f| json!([f["name"], f["policy"]])).collect())
        .unwrap_or_default();
    features.sort_by_key(|f| f.to_string());
    let t = &cpu["topology"];
    json!({
        "error": null,
        "cpu": {
            "mode": if mode == "none" { Value::Null } else { json!(mode) },
            "model": if mode == "custom" { cpu["model"].clone() } else { Value::Null },
            "features": features,
        },
        "topology": [t["sockets"], t["cores"], t["threads"]],
    })
}

/// Whether cpumodel's answer agrees with Nova's. For host-model and
/// host-passthrough, Nova's CPU holds only the extra flags, which
/// cpumodel's resolved CPU must carry with the same policies.
fn agrees(ours: &Value, theirs: &Value) -> bool {
    match (ours["error"].is_null(), theirs["error"].is_null()) {
        (false, false) => return true,
        (true, true) => {}
        _ => return false,
    }
    if ours["cpu"].is_null() || theirs["cpu"].is_null() {
        return ours["cpu"].is_null() && theirs["cpu"].is_null();
    }
    if ours["topology"] != theirs["topology"] || ours["cpu"]["mode"] != theirs["cpu"]["mode"] {
        return false;
    }
    let mode = theirs["cpu"]["mode"].as_str().unwrap_or_default();
    if mode == "custom" {
        return ours["cpu"] == theirs["cpu"];
    }
    let ours_f = ours["cpu"]["features"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    theirs["cpu"]["features"]
        .as_array()
        .is_none_or(|f| f.iter().all(|x| ours_f.contains(x)))
}

#[test]
fn guest_agrees_with_novas_code() {
    let Ok(python) = std::env::var(PYTHON_VAR) else {
        unavailable(Need::Nova, format!("{PYTHON_VAR} is not set"));
        return;
    };
    let dir = TempDir::new();
    dir.write("host.xml", HOST);
    let models: Vec<String> = {
        let out = Command::new(env!("CARGO_BIN_EXE_cpumodel"))
            .args(["models", "--format", "json"])
            .output()
            .expect("models");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    let mut g = Gen(Mutator::new(0x6e6f_7661));
    let cases: Vec<Case> = (0..CASES).map(|_| generate(&mut g)).collect();
    let answers = nova(&python, &cases, &models);
    assert_eq!(answers.len(), cases.len());
    let (mut same, mut both_refuse, mut deliberate) = (0, 0, 0);
    let mut differ = vec![];
    for (case, theirs) in cases.iter().zip(&answers) {
        let ours = cpumodel(&dir, case);
        if agrees(&ours, theirs) {
            same += 1;
            if !ours["error"].is_null() {
                both_refuse += 1;
            }
        } else if case.deliberate && !ours["error"].is_null() {
            deliberate += 1;
        } else {
            differ.push(format!(
                "conf {:?} vcpus {} flavor {:?} image {:?}\n  nova:     {theirs}\n  cpumodel: {ours}",
                case.conf, case.vcpus, case.flavor, case.image
            ));
        }
    }
    println!(
        "nova: {} cases: {same} agree ({both_refuse} refused by both), {deliberate} deliberate differences, {} disagree",
        cases.len(),
        differ.len()
    );
    assert!(
        differ.is_empty(),
        "{} disagreements, the first:\n{}",
        differ.len(),
        differ
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
