//! The bad-input corpus: every case of `tests/bad-input/cases.txt` runs the
//! real binary on hostile or broken input and must fail the way every
//! cpumodel error fails: exit code 2, nothing on stdout, exactly the one
//! expected line on stderr (printable, escaped), no panic, and within the
//! per-case time bound (the child is killed when it runs longer; that is a
//! hang, not a timing measurement).
//!
//! The case file holds small inputs only. Huge ones (deep nesting, entity
//! bombs, big fleet files) are generated into the case's temporary
//! directory by `gen NAME = KIND` lines. Format, one case per paragraph:
//!
//! ```text
//! name: a-unique-name
//! env: VAR=VALUE            (optional, repeatable)
//! file NAME = CONTENT       (escapes: \n \r \t \\ \xHH; repeatable)
//! gen NAME = KIND           (see `generate`; repeatable)
//! mkdir NAME                (repeatable)
//! args: decode in.xml       (split on spaces; the same escapes per argument)
//! expect: cpumodel: error: ...
//! ```
//!
//! `CPUMODEL_BLESS=1` rewrites the `expect:` lines with what the binary
//! printed (review the diff). `CPUMODEL_BIN` runs another build of the
//! binary (the release one, to check both builds give the same answers).

mod common;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;

/// How long one case may run before it counts as a hang (debug builds,
/// a loaded two-core machine; the slowest case takes a few seconds).
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// One case of the corpus.
#[derive(Debug, Default)]
struct Case {
    name: String,
    env: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
    generated: Vec<(String, String)>,
    dirs: Vec<String>,
    args: Vec<String>,
    expect: Option<String>,
}

fn cases_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input/cases.txt")
}

/// `\n`, `\r`, `\t`, `\\` and `\xHH` decoded, as bytes.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'\\' => out.push(b'\\'),
                b'x' if i + 3 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).expect("hex escape");
                    out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                    i += 2;
                }
                other => panic!("unknown escape \\{}", char::from(other)),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn parse_cases(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut case = Case::default();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !case.name.is_empty() {
                cases.push(std::mem::take(&mut case));
            }
            continue;
        }
        if let Some(v) = line.strip_prefix("name: ") {
            case.name = v.to_string();
        } else if let Some(v) = line.strip_prefix("env: ") {
            let (k, v) = v.split_once('=').expect("env: VAR=VALUE");
            case.env.push((k.to_string(), v.to_string()));
        } else if let Some(v) = line.strip_prefix("file ") {
            let (name, content) = v.split_once(" = ").expect("file NAME = CONTENT");
            case.files.push((name.to_string(), unescape(content)));
        } else if let Some(v) = line.strip_prefix("gen ") {
            let (name, kind) = v.split_once(" = ").expect("gen NAME = KIND");
            case.generated.push((name.to_string(), kind.to_string()));
        } else if let Some(v) = line.strip_prefix("mkdir ") {
            case.dirs.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("args: ") {
            case.args = v
                .split(' ')
                .map(|a| String::from_utf8(unescape(a)).expect("UTF-8 argument"))
                .collect();
        } else if let Some(v) = line.strip_prefix("expect: ") {
            case.expect = Some(v.to_string());
        } else {
            panic!("bad line in cases.txt: {line}");
        }
    }
    if !case.name.is_empty() {
        cases.push(case);
    }
    cases
}

/// One plain host `<cpu>` of a generated fleet file.
const FLEET_CPU: &str = "<cpu>\n  <arch>x86_64</arch>\n  <model>Westmere</model>\n  <vendor>Intel</vendor>\n  <feature name='vmx'/>\n</cpu>\n";

/// The generated inputs, too big or too repetitive for the case file.
fn generate(kind: &str) -> Vec<u8> {
    match kind {
        // Far deeper than the stack of a recursive parser survives.
        "deep" => "<cpu>".repeat(100_000).into_bytes(),
        "deep-dump" => format!("<cpudata arch='x86'>{}", "<cpuid>".repeat(100_000)).into_bytes(),
        "deep-closed" => {
            format!("{}{}", "<cpu>".repeat(30_000), "</cpu>".repeat(30_000)).into_bytes()
        }
        // One 50 KB entity used thousands of times.
        "entity-bomb" => {
            let e = "x".repeat(50_000);
            format!(
                "<!DOCTYPE cpu [<!ENTITY e \"{e}\">]>\n<cpu><model>{}</model></cpu>\n",
                "&e;".repeat(15_000)
            )
            .into_bytes()
        }
        // Many CPUs, the last one with an unknown feature.
        "fleet-bad-last" => {
            let mut s = FLEET_CPU.repeat(50_000);
            s.push_str(&FLEET_CPU.replace("vmx", "no-such-feature"));
            s.into_bytes()
        }
        // The same with CRLF line ends (the slow path).
        "fleet-crlf-bad-last" => {
            let mut s = FLEET_CPU.repeat(50_000);
            s.push_str(&FLEET_CPU.replace("vmx", "no-such-feature"));
            s.replace('\n', "\r\n").into_bytes()
        }
        // A long unknown model name.
        "long-model" => format!("<cpu><model>{}</model></cpu>", "W".repeat(1 << 20)).into_bytes(),
        // A dump whose leaves come in reverse order (sorted, not inserted one by one).
        "reversed-dump" => {
            let mut s = String::from("<cpudata arch='x86'>\n");
            for leaf in (0..200_000u32).rev() {
                s.push_str(&format!("  <cpuid eax_in='{:#x}' ecx_in='0x00' eax='0x0' ebx='0x0' ecx='0x0' edx='0x0'/>\n", 0x4000_0000 + leaf));
            }
            s.push_str("  <cpuid eax_in='0x00000000' ecx_in='0x00' eax='0x0000000d' ebx='0x11111111' ecx='0x22222222' edx='0x33333333'/>\n");
            s.push_str("</cpudata>\n");
            s.into_bytes()
        }
        "two-mb" => vec![b' '; 2 << 20],
        other => panic!("unknown generated input '{other}'"),
    }
}

/// The outcome of one run.
struct Outcome {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn run_case(binary: &Path, case: &Case) -> Result<Outcome, String> {
    let dir = TempDir::new();
    for d in &case.dirs {
        dir.mkdir(d);
    }
    for (name, content) in &case.files {
        std::fs::write(dir.path().join(name), content).expect("write case file");
    }
    for (name, kind) in &case.generated {
        std::fs::write(dir.path().join(name), generate(kind)).expect("write generated file");
    }
    let mut child = Command::new(binary)
        .args(&case.args)
        .env_remove("CPUMODEL_MAX_INPUT")
        .envs(case.env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    // Read both pipes on threads, so that a chatty child cannot block.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > CASE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "still running after {CASE_TIMEOUT:?}: killed (a hang)"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Outcome {
        code: status.code(),
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    })
}

/// What is wrong with an outcome, apart from the exact message.
fn shape_problems(o: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    if o.code != Some(2) {
        problems.push(format!("exit code {:?}, expected 2", o.code));
    }
    if !o.stdout.is_empty() {
        problems.push(format!("{} bytes on stdout", o.stdout.len()));
    }
    let stderr = String::from_utf8_lossy(&o.stderr);
    if stderr.contains("panicked") {
        problems.push("panic".into());
    }
    if !stderr.ends_with('\n') || stderr.matches('\n').count() != 1 {
        problems.push("stderr is not exactly one line".into());
    }
    let body = stderr.strip_suffix('\n').unwrap_or(&stderr);
    if body.chars().any(char::is_control) {
        problems.push("stderr holds a control character".into());
    }
    problems
}

#[test]
fn every_bad_input_fails_with_one_expected_line() {
    let path = cases_file();
    let text = std::fs::read_to_string(&path).expect("read cases.txt");
    let cases = parse_cases(&text);
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut names = std::collections::HashSet::new();
    for c in &cases {
        assert!(names.insert(&c.name), "duplicate case name {}", c.name);
    }
    let binary = std::env::var_os("CPUMODEL_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_cpumodel")),
        PathBuf::from,
    );
    let bless = std::env::var_os("CPUMODEL_BLESS").is_some();
    let mut failures = Vec::new();
    let mut actual = std::collections::HashMap::new();
    for case in &cases {
        let outcome = match run_case(&binary, case) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{}: {e}", case.name));
                continue;
            }
        };
        let mut problems = shape_problems(&outcome);
        let line = String::from_utf8_lossy(&outcome.stderr)
            .trim_end_matches('\n')
            .to_string();
        if !bless && case.expect.as_deref() != Some(line.as_str()) {
            problems.push(format!(
                "stderr\n    got:      {line}\n    expected: {}",
                case.expect.as_deref().unwrap_or("(no expect: line)")
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
        actual.insert(case.name.clone(), line);
    }
    if bless {
        let mut out = String::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("name: ") {
                current = v.to_string();
            }
            if line.starts_with("expect: ") {
                continue;
            }
            if line.starts_with("args: ") {
                out.push_str(line);
                out.push('\n');
                out.push_str(&format!("expect: {}\n", actual[&current]));
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        std::fs::write(&path, out).expect("write cases.txt");
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
