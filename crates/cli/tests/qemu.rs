//! Real QEMU: every `-cpu` argument `cpumodel guest --format qemu` generates
//! is accepted by `qemu-system-x86_64`, and the vCPU's feature properties,
//! read back over QMP, match the policy.
//!
//! Each check starts `qemu-system-x86_64 -machine pc,accel=tcg -nodefaults
//! -nographic -S -cpu ARG -qmp stdio`, finds the vCPU object through
//! `query-cpus-fast`, reads every feature named in ARG with `qom-get`, then
//! quits QEMU (and kills it if it does not exit). TCG, not KVM, so the test
//! means the same on every machine.
//!
//! The rule for each `feature=VALUE` in the argument:
//! - `feature=off` must read back `false`;
//! - `feature=on` must read back `true`, unless TCG cannot emulate the
//!   feature. QEMU then filters it out: it must read back `false`, QEMU must
//!   have warned "TCG doesn't support requested feature" naming it, and it
//!   must be absent from TCG's `max` CPU (`query-cpu-model-expansion`).
//!   Such features are counted and printed, never silently passed.
//!
//! QEMU's feature names are mapped back to the CPU map's
//! (`pclmulqdq` → `pclmuldq`, `lahf-lm` → `lahf_lm`, ...) and must give
//! exactly the policy's features. Models this QEMU does not know
//! (`qemu-system-x86_64 -cpu help`) are skipped, each skip printed. Without
//! `qemu-system-x86_64` the test prints one line and passes.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpumodel_map::Database;
use serde_json::{json, Value};

mod common;
use common::*;

const QEMU: &str = "qemu-system-x86_64";

/// How long one QEMU may live before it is killed.
const QEMU_DEADLINE: Duration = Duration::from_secs(30);

/// A host `<cpu>` for the host-model case: Skylake-Client-IBRS with extras,
/// some of which TCG cannot emulate.
const HOST_SKYLAKE: &str = "<cpu>
  <arch>x86_64</arch>
  <model>Skylake-Client-IBRS</model>
  <vendor>Intel</vendor>
  <feature name='vmx'/>
  <feature name='ssbd'/>
  <feature name='md-clear'/>
  <feature name='pdpe1gb'/>
  <feature name='tsc_adjust'/>
  <feature name='invtsc'/>
</cpu>
";

/// The policies checked: `cpumodel guest` arguments.
#[rustfmt::skip]
const CASES: &[&[&str]] = &[
    &["--model", "Westmere", "--flag", "+avx", "--flag=-vmx", "--flag", "+pclmuldq"],
    &["--model", "Nehalem", "--flag=-sse4.2", "--flag", "+ssbd", "--flag", "aes"],
    &["--model", "SandyBridge-IBRS", "--flag=-avx", "--flag", "+ssbd", "--flag", "f16c"],
    &["--model", "Haswell-noTSX", "--flag=-avx2", "--flag", "+ssbd", "--flag=-x2apic"],
    &["--model", "Skylake-Client-IBRS", "--flag=-sse4.2", "--flag", "+ssbd", "--flag", "pcid"],
    &["--model", "Cascadelake-Server", "--flag=-avx512f", "--flag", "+ssbd", "--flag=-pku"],
    &["--model", "EPYC", "--flag", "cmp_legacy", "--flag=-fxsr_opt", "--flag", "perfctr_core"],
    &["--model", "EPYC-Rome", "--flag=-sse4a", "--flag", "+ssbd", "--flag", "tsc_adjust"],
    &["--model", "Opteron_G3", "--flag", "lahf_lm", "--flag=-sse4a", "--flag", "+pclmuldq"],
    &["--model", "Dhyana", "--flag", "+ssbd", "--flag=-sha-ni", "--flag", "nodeid_msr"],
    // The last setting of a flag wins, whatever its case.
    &["--model", "Westmere", "--flag", "avx", "--flag=-AVX", "--flag=-vmx", "--flag", "VMX"],
    // Models newer than Debian 12's QEMU 7.2: skipped there.
    &["--model", "SapphireRapids", "--flag=-vmx"],
    &["--model", "EPYC-Genoa", "--flag", "+ssbd"],
    &["--model", "GraniteRapids"],
    // A topology, handed to QEMU as -smp.
    &["--model", "Westmere", "--flag", "+avx", "--vcpus", "8",
      "--spec", "hw:cpu_max_sockets=2", "--image-prop", "hw_cpu_threads=2"],
    // host-model from a fixed host <cpu>.
    &["--mode", "host-model", "--host", "host.xml", "--flag=-vmx"],
    &["--mode", "host-model", "--host", "host.xml"],
    &["--mode", "maximum", "--flag=-avx", "--flag", "+pclmuldq"],
    &["--mode", "none"],
];

// ---------------------------------------------------------------------------
// Running cpumodel.

/// `cpumodel guest args...` in `dir`; its stdout, asserting success.
fn guest(dir: &TempDir, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cpumodel"))
        .arg("guest")
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("run cpumodel");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "cpumodel guest {args:?}: {stderr}"
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// The policy as `cpumodel guest` states it: features with on (require) or
/// off (disable), the `-cpu` argument and the topology.
struct Policy {
    arg: String,
    features: Vec<(String, bool)>,
    topology: Option<Value>,
}

fn policy(dir: &TempDir, case: &[&str]) -> Policy {
    let mut args: Vec<&str> = Vec::new();
    if !case.contains(&"--mode") {
        args.extend(["--mode", "custom"]);
    }
    args.extend_from_slice(case);
    let mut qemu = args.clone();
    qemu.extend(["--format", "qemu"]);
    let arg = guest(dir, &qemu);
    let arg = arg.strip_suffix('\n').expect("one line").to_string();
    let mut json_args = args.clone();
    json_args.extend(["--format", "json"]);
    let v: Value = serde_json::from_str(&guest(dir, &json_args)).expect("JSON output");
    assert_eq!(
        v["qemu"],
        json!(arg),
        "{case:?}: --format json and qemu differ"
    );
    let features = v["cpu"]["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            let on = match f["policy"].as_str() {
                Some("require") => true,
                Some("disable") => false,
                p => panic!("{case:?}: unexpected policy {p:?}"),
            };
            (f["name"].as_str().expect("name").to_string(), on)
        })
        .collect();
    let topology = Some(v["cpu"]["topology"].clone()).filter(|t| !t.is_null());
    Policy {
        arg,
        features,
        topology,
    }
}

/// Splits `model,feat=on,feat=off` into the model and QEMU feature settings.
fn parse_arg(arg: &str) -> (String, Vec<(String, bool)>) {
    let mut parts = arg.split(',');
    let model = parts.next().expect("model").to_string();
    let props = parts
        .filter(|p| *p != "migratable=on" && *p != "migratable=off")
        .map(|p| {
            let (name, value) = p.split_once('=').expect("feature=value");
            let on = match value {
                "on" => true,
                "off" => false,
                _ => panic!("{arg}: {p}: value is neither on nor off"),
            };
            (name.to_string(), on)
        })
        .collect();
    (model, props)
}

// ---------------------------------------------------------------------------
// Running QEMU.

/// Whether `qemu-system-x86_64` can be run, and its version line.
fn qemu_version() -> Option<String> {
    let out = Command::new(QEMU).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next().unwrap_or("").to_string())
}

/// The CPU model names `qemu-system-x86_64 -cpu help` lists (aliases included).
fn qemu_models() -> HashSet<String> {
    let out = Command::new(QEMU)
        .args(["-cpu", "help"])
        .output()
        .expect("qemu-system-x86_64 -cpu help");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("x86 "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// One QEMU process spoken to over QMP on its stdin and stdout.
struct Qmp {
    child: Arc<Mutex<Child>>,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<String>>,
    done: Option<mpsc::Sender<()>>,
}

/// How QEMU ended.
struct Exit {
    success: bool,
    stderr: String,
}

impl Qmp {
    /// Starts QEMU paused; `Err` with its stderr when it refuses the arguments.
    fn start(cpu: &str, smp: Option<&str>) -> Result<Qmp, String> {
        let mut cmd = Command::new(QEMU);
        cmd.args([
            "-no-user-config",
            "-machine",
            "pc,accel=tcg",
            "-nodefaults",
            "-nographic",
            "-S",
            "-cpu",
            cpu,
            "-qmp",
            "stdio",
        ]);
        if let Some(smp) = smp {
            cmd.args(["-smp", smp]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qemu-system-x86_64");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let child = Arc::new(Mutex::new(child));
        // Kill QEMU if it is still there at the deadline.
        let (done, wait) = mpsc::channel::<()>();
        let watched = Arc::clone(&child);
        std::thread::spawn(move || {
            if wait.recv_timeout(QEMU_DEADLINE) == Err(mpsc::RecvTimeoutError::Timeout) {
                let _ = watched.lock().map(|mut c| c.kill());
            }
        });
        let mut qmp = Qmp {
            child,
            stdin,
            stdout,
            stderr: Some(stderr),
            done: Some(done),
        };
        // QEMU greets before it creates the CPU: a refused -cpu shows as
        // QEMU exiting before it answers qmp_capabilities.
        let greeted = qmp.read().is_some_and(|g| g.get("QMP").is_some());
        if greeted && qmp.try_execute("qmp_capabilities").is_some() {
            Ok(qmp)
        } else {
            Err(qmp.finish().stderr)
        }
    }

    /// The next JSON line from QEMU; `None` at end of output.
    fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("QMP speaks JSON lines")),
        }
    }

    /// Runs a command without arguments; `None` when QEMU exits instead.
    fn try_execute(&mut self, command: &str) -> Option<Value> {
        let request = json!({ "execute": command });
        writeln!(self.stdin, "{request}").ok()?;
        self.stdin.flush().ok()?;
        loop {
            let reply = self.read()?;
            if let Some(r) = reply.get("return") {
                return Some(r.clone());
            }
            if let Some(e) = reply.get("error") {
                panic!("QMP {request}: {e}");
            }
        }
    }

    /// Runs one command and returns its `return` value (events are skipped).
    fn execute(&mut self, command: &str, arguments: Value) -> Value {
        let mut request = json!({ "execute": command });
        if !arguments.is_null() {
            request["arguments"] = arguments;
        }
        writeln!(self.stdin, "{request}").expect("write to QMP");
        self.stdin.flush().expect("flush QMP");
        loop {
            let reply = self
                .read()
                .unwrap_or_else(|| panic!("QEMU exited during {request}"));
            if let Some(r) = reply.get("return") {
                return r.clone();
            }
            if let Some(e) = reply.get("error") {
                panic!("QMP {request}: {e}");
            }
        }
    }

    /// Quits QEMU (killing it at the deadline) and collects its stderr.
    fn quit(mut self) -> Exit {
        let request = json!({ "execute": "quit" });
        let _ = writeln!(self.stdin, "{request}").and_then(|()| self.stdin.flush());
        self.finish()
    }

    fn finish(&mut self) -> Exit {
        // Let QEMU see end of input, then drain its output so it can exit.
        let _ = std::io::copy(&mut self.stdout, &mut std::io::sink());
        let deadline = Instant::now() + QEMU_DEADLINE;
        let status = loop {
            let status = self.child.lock().expect("child").try_wait();
            match status {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => break None,
            }
        };
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Exit {
            success: status.is_some_and(|s| s.success()),
            stderr,
        }
    }
}

impl Drop for Qmp {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}

/// The features QEMU's "TCG doesn't support requested feature" warnings
/// name, as CPU map names (`CPUID.07H:EDX.ssbd [bit 31]` → `ssbd`).
fn tcg_warnings(db: &Database, stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter_map(|l| l.split_once("TCG doesn't support requested feature: "))
        .filter_map(|(_, what)| {
            let what = what.split(" [bit").next()?;
            // `CPUID.07H:EDX.name`, `CPUID.0DH_01H:EAX.name` or `MSR(48EH).name`.
            let rest = what.split_once(':').map_or(what, |(_, r)| r);
            let name = rest.split_once('.')?.1;
            cpumodel_qemu::feature_from_qemu(db, name).map(|f| db.feature_name(f).to_string())
        })
        .collect()
}

/// `-smp` for a topology (dies and clusters only when not 1, for older QEMUs).
fn smp(t: &Value) -> String {
    let n = |k: &str| t[k].as_u64().expect("topology value");
    let vcpus = n("sockets") * n("dies") * n("clusters") * n("cores") * n("threads");
    let mut s = format!("{vcpus},sockets={}", n("sockets"));
    if n("dies") != 1 {
        s.push_str(&format!(",dies={}", n("dies")));
    }
    if n("clusters") != 1 {
        s.push_str(&format!(",clusters={}", n("clusters")));
    }
    s.push_str(&format!(",cores={},threads={}", n("cores"), n("threads")));
    s
}

// ---------------------------------------------------------------------------
// The checks.

/// What one case established.
struct Checked {
    read_back: usize,
    filtered: Vec<String>,
}

fn check(db: &Database, known: &HashSet<String>, dir: &TempDir, case: &[&str]) -> Option<Checked> {
    let policy = policy(dir, case);
    let (model, props) = parse_arg(&policy.arg);

    // QEMU names map back to exactly the policy's features.
    let mapped: Vec<(String, bool)> = props
        .iter()
        .map(|(q, on)| {
            let id = cpumodel_qemu::feature_from_qemu(db, q)
                .unwrap_or_else(|| panic!("{}: QEMU name {q} maps to no feature", policy.arg));
            (db.feature_name(id).to_string(), *on)
        })
        .collect();
    assert_eq!(mapped, policy.features, "-cpu {}", policy.arg);

    if !known.contains(&model) {
        println!(
            "skipped: -cpu {}: this QEMU has no model {model}",
            policy.arg
        );
        return None;
    }

    let smp = policy.topology.as_ref().map(smp);
    let mut qmp = Qmp::start(&policy.arg, smp.as_deref())
        .unwrap_or_else(|stderr| panic!("QEMU refused -cpu {}: {stderr}", policy.arg));
    let cpus = qmp.execute("query-cpus-fast", Value::Null);
    let cpus = cpus.as_array().expect("CPU list");
    if let Some(t) = &policy.topology {
        let n = |k: &str| t[k].as_u64().expect("topology value");
        let vcpus = n("sockets") * n("dies") * n("clusters") * n("cores") * n("threads");
        assert_eq!(cpus.len() as u64, vcpus, "-smp {smp:?}");
        for (id, key) in [
            ("socket-id", "sockets"),
            ("core-id", "cores"),
            ("thread-id", "threads"),
        ] {
            let distinct: BTreeSet<u64> = cpus
                .iter()
                .map(|c| c["props"][id].as_u64().expect("CPU id"))
                .collect();
            assert_eq!(distinct.len() as u64, n(key), "-smp {smp:?}: {id}");
        }
    }
    let path = cpus[0]["qom-path"].as_str().expect("qom-path").to_string();
    let max = qmp.execute(
        "query-cpu-model-expansion",
        json!({ "type": "full", "model": { "name": "max" } }),
    );
    let tcg_has = |q: &str| max["model"]["props"][q] == json!(true);
    let got: Vec<bool> = props
        .iter()
        .map(|(q, _)| {
            let v = qmp.execute("qom-get", json!({ "path": path, "property": q }));
            v.as_bool()
                .unwrap_or_else(|| panic!("qom-get {path} {q}: {v}"))
        })
        .collect();
    let exit = qmp.quit();
    assert!(exit.success, "QEMU -cpu {}: {}", policy.arg, exit.stderr);
    for line in exit.stderr.lines() {
        assert!(
            line.contains("warning: TCG doesn't support requested feature: "),
            "QEMU -cpu {}: unexpected stderr line: {line}",
            policy.arg
        );
    }
    let warned = tcg_warnings(db, &exit.stderr);

    let mut filtered = Vec::new();
    for (((q, want), (name, _)), got) in props.iter().zip(&mapped).zip(got) {
        if !*want {
            assert!(!got, "-cpu {}: {q}=off reads back on", policy.arg);
        } else if tcg_has(q) {
            assert!(got, "-cpu {}: {q}=on reads back off", policy.arg);
        } else {
            assert!(
                !got && warned.contains(name),
                "-cpu {}: {q}=on, which TCG lacks, reads back {got} (warned: {warned:?})",
                policy.arg
            );
            filtered.push(q.clone());
        }
    }
    Some(Checked {
        read_back: props.len(),
        filtered,
    })
}

#[test]
fn qemu_accepts_generated_cpu_arguments_and_features_read_back() {
    let Some(version) = qemu_version() else {
        cpumodel_testenv::unavailable(
            cpumodel_testenv::Need::Qemu,
            "qemu-system-x86_64 not installed",
        );
        return;
    };
    println!("{version}");
    let db = Database::embedded();
    let known = qemu_models();
    let dir = TempDir::new();
    std::fs::write(dir.path().join("host.xml"), HOST_SKYLAKE).expect("write host.xml");

    let start = Instant::now();
    let (mut checked, mut skipped, mut read_back, mut filtered) = (0, 0, 0, 0);
    for case in CASES {
        match check(&db, &known, &dir, case) {
            Some(c) => {
                println!(
                    "ok: cpumodel guest {}: {} feature(s) read back{}",
                    case.join(" "),
                    c.read_back,
                    if c.filtered.is_empty() {
                        String::new()
                    } else {
                        format!(", TCG lacks {}", c.filtered.join(" "))
                    }
                );
                checked += 1;
                read_back += c.read_back;
                filtered += c.filtered.len();
            }
            None => skipped += 1,
        }
    }
    println!(
        "qemu: {checked} policies checked, {skipped} skipped; {read_back} features read back, \
         {filtered} of them filtered by TCG; {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(checked >= 10, "too few policies checked: {checked}");
    assert!(read_back > filtered, "no feature was verified on or off");
}

#[test]
fn qemu_cpu_check_script() {
    if qemu_version().is_none() {
        cpumodel_testenv::unavailable(
            cpumodel_testenv::Need::Qemu,
            "qemu-system-x86_64 not installed",
        );
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/qemu-cpu-check.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args([
            "--mode",
            "custom",
            "--model",
            "Westmere",
            "--flag",
            "+pclmuldq",
            "--flag=-vmx",
        ])
        .env("CPUMODEL", env!("CARGO_BIN_EXE_cpumodel"))
        .output()
        .expect("run scripts/qemu-cpu-check.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        (out.status.code(), stdout.as_ref(), stderr.as_ref()),
        (
            Some(0),
            "-cpu Westmere,pclmulqdq=on,vmx=off
FEATURE                        ASKED  QEMU   RESULT
pclmulqdq                      on     on     ok
vmx                            off    off    ok
",
            ""
        )
    );
}
