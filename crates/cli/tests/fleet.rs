//! `cpumodel fleet`, end to end through the binary: import, the questions
//! (exact outputs, on SQLite and on PostgreSQL), their agreement with the
//! one-shot commands over the real CPUs of the conformance corpus, and bad
//! input (one line, exit 2, the store unchanged).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{run, run_env, Run, TempDir};
use cpumodel_testenv::{shared_path, unavailable, Need};

/// The environment variable with the URL of a PostgreSQL server the tests
/// may create databases on (`scripts/start-postgres.sh` prints it).
const PG_VAR: &str = "CPUMODEL_TEST_POSTGRES";

/// A host `<cpu>` of `model`, optionally naming its host in the prologue.
fn host_cpu(model: &str, host: Option<&str>) -> String {
    let note = host.map_or(String::new(), |h| format!("<!-- host: {h} -->\n"));
    format!(
        "{note}<cpu>\n  <arch>x86_64</arch>\n  <model>{model}</model>\n  <vendor>Intel</vendor>\n</cpu>\n"
    )
}

const GUEST: &str =
    "<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>Skylake-Client-IBRS</model>\n</cpu>\n";

/// Where a test's store lives: a file in the test directory, or a fresh
/// database on the test server (dropped afterwards).
struct Db {
    location: String,
    pg: Option<(postgres::Client, String)>,
}

impl Db {
    fn sqlite(dir: &TempDir) -> Db {
        Db {
            location: dir.path().join("fleet.sqlite").display().to_string(),
            pg: None,
        }
    }

    fn postgres() -> Option<Db> {
        let Ok(admin) = std::env::var(PG_VAR) else {
            unavailable(Need::Postgres, format!("{PG_VAR} is not set"));
            return None;
        };
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{PG_VAR}={admin}: {e}"));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("cpumodel_cli_{}_{nanos}", std::process::id());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let (base, _) = admin.rsplit_once('/').expect("a URL with a database");
        Some(Db {
            location: format!("{base}/{name}"),
            pg: Some((client, name)),
        })
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((client, name)) = &mut self.pg {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// Runs `cpumodel fleet SUB --db DB ARGS...`.
fn fleet(dir: &TempDir, db: &Db, sub: &str, args: &[&str]) -> Run {
    let mut all = vec!["fleet", sub, "--db", &db.location];
    all.extend_from_slice(args);
    run(dir, &all)
}

/// Three hosts in two zones, a recorded guest, then a microcode update that
/// switches TSX off on one host.
fn scenario(dir: &TempDir, db: &Db) {
    dir.write("h1.xml", &host_cpu("Skylake-Client-IBRS", None));
    dir.write("h2.xml", &host_cpu("Haswell-noTSX-IBRS", None));
    dir.write("h3.xml", &host_cpu("Cascadelake-Server", Some("compute-3")));
    dir.write(
        "h1-update.xml",
        &host_cpu("Skylake-Client-noTSX-IBRS", None),
    );
    dir.write("guest.xml", GUEST);
    let day1 = ["--time", "2026-12-01T10:00:00Z"];
    let stored = Run::ok("stored 1 new reports, 0 already stored\n");
    let import = |args: &[&str]| fleet(dir, db, "import", &[&day1[..], args].concat());
    assert_eq!(
        import(&["--group", "az1", "--host", "compute-1", "h1.xml"]),
        stored
    );
    assert_eq!(
        import(&[
            "--group",
            "az2",
            "--group",
            "rack7",
            "--host",
            "compute-2",
            "h2.xml"
        ]),
        stored
    );
    // The host's name comes from the document's prologue.
    assert_eq!(import(&["--group", "az1", "h3.xml"]), stored);
    // The same document again adds nothing.
    assert_eq!(
        import(&["--host", "compute-1", "h1.xml"]),
        Run::ok("stored 0 new reports, 1 already stored\n")
    );
    assert_eq!(
        fleet(dir, db, "add-guest", &["web", "guest.xml"]),
        Run::ok("")
    );
}

fn questions(dir: &TempDir, db: &Db) {
    scenario(dir, db);
    assert_eq!(
        fleet(dir, db, "hosts", &[]),
        Run::ok(
            "NAME       GROUPS     VENDOR  MODEL                X86-64  REPORTS  LAST REPORT\n\
             compute-1  az1        Intel   Skylake-Client-IBRS  v3      1        2026-12-01T10:00:00Z\n\
             compute-2  az2,rack7  Intel   Haswell-noTSX-IBRS   v2      1        2026-12-01T10:00:00Z\n\
             compute-3  az1        Intel   Cascadelake-Server   v4      1        2026-12-01T10:00:00Z\n"
        )
    );
    assert_eq!(
        fleet(dir, db, "recommend", &[]),
        Run::ok(
            "model: Haswell-noTSX-IBRS\n\
             x86-64: v2\n\
             hosts: 3/3 (100.0%)\n\
             held back: Skylake-Client-IBRS runs on 2/3 hosts, blocked by f16c (1), rdrand (1), vme (1), arat (1), hle (1)\n\
            \x20 f16c missing on 1 host: compute-2\n\
            \x20 rdrand missing on 1 host: compute-2\n\
            \x20 vme missing on 1 host: compute-2\n\
            \x20 arat missing on 1 host: compute-2\n\
            \x20 hle missing on 1 host: compute-2\n\
             held back: Skylake-Client runs on 2/3 hosts, blocked by f16c (1), rdrand (1), vme (1), arat (1), hle (1)\n\
            \x20 f16c missing on 1 host: compute-2\n\
            \x20 rdrand missing on 1 host: compute-2\n\
            \x20 vme missing on 1 host: compute-2\n\
            \x20 arat missing on 1 host: compute-2\n\
            \x20 hle missing on 1 host: compute-2\n\
             held back: Skylake-Client-noTSX-IBRS runs on 2/3 hosts, blocked by f16c (1), rdrand (1), vme (1), arat (1), rdseed (1)\n\
            \x20 f16c missing on 1 host: compute-2\n\
            \x20 rdrand missing on 1 host: compute-2\n\
            \x20 vme missing on 1 host: compute-2\n\
            \x20 arat missing on 1 host: compute-2\n\
            \x20 rdseed missing on 1 host: compute-2\n\
             \n\
             [libvirt]\n\
             cpu_mode = custom\n\
             cpu_models = Haswell-noTSX-IBRS\n"
        )
    );
    // x86-64-v3 for every host: compute-2 lacks two of its features.
    assert_eq!(
        fleet(dir, db, "recommend", &["--min-level", "v3"]),
        Run {
            code: Some(1),
            stdout: "no model of x86-64 v3 runs on enough hosts\n\
                     hosts below v3: 1/3\n\
                    \x20 f16c missing on 1 host: compute-2\n\
                    \x20 abm missing on 1 host: compute-2\n\
                     best model of v3 or above: Skylake-Client-IBRS runs on 2/3 hosts, blocked by f16c (1), rdrand (1), vme (1), arat (1), hle (1)\n"
                .into(),
            stderr: String::new()
        }
    );
    let below = fleet(
        dir,
        db,
        "recommend",
        &["--min-level", "x86-64-v3", "--format", "json"],
    );
    assert_eq!(below.code, Some(1));
    let below: serde_json::Value = serde_json::from_str(&below.stdout).unwrap();
    assert_eq!(below["level_reached"], false);
    assert_eq!(below["hosts_below"], 1);
    assert_eq!(below["missing"][0]["feature"], "f16c");
    assert_eq!(below["missing"][0]["sample_hosts"][0], "compute-2");
    // The recommendation as a Proxmox VE custom model.
    assert_eq!(
        fleet(
            dir,
            db,
            "recommend",
            &["--format", "proxmox", "--proxmox-name", "compute"]
        ),
        Run::ok("cpu-model: compute\n\treported-model Haswell-noTSX-IBRS\n\n")
    );
    // With two thirds of the hosts, a model of the level is recommended.
    let v3 = json(&fleet(
        dir,
        db,
        "recommend",
        &[
            "--min-level",
            "v3",
            "--min-coverage",
            "60",
            "--format",
            "json",
        ],
    ));
    assert_eq!(v3["model"], "Skylake-Client-IBRS");
    assert_eq!(v3["psabi_level"], "v3");
    // Narrowed to one zone, the newer model fits.
    let az1 = json(&fleet(
        dir,
        db,
        "recommend",
        &["--group", "az1", "--format", "json"],
    ));
    assert_eq!(az1["model"], "Skylake-Client-IBRS");
    assert_eq!(az1["hosts"], 2);
    assert_eq!(az1["total_hosts"], 2);
    assert_eq!(
        az1["nova_conf"],
        "[libvirt]\ncpu_mode = custom\ncpu_models = Skylake-Client-IBRS\n"
    );
    let hosts = json(&fleet(
        dir,
        db,
        "hosts",
        &["--group", "az1", "--format", "json"],
    ));
    let names: Vec<(&str, &str)> = hosts
        .as_array()
        .expect("a list")
        .iter()
        .map(|h| (h["name"].as_str().unwrap(), h["model"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("compute-1", "Skylake-Client-IBRS"),
            ("compute-3", "Cascadelake-Server")
        ]
    );

    // The microcode update: the newest report is the host's CPU now.
    assert_eq!(
        fleet(
            dir,
            db,
            "import",
            &[
                "--time",
                "2026-12-02T10:00:00Z",
                "--host",
                "compute-1",
                "h1-update.xml"
            ]
        ),
        Run::ok("stored 1 new reports, 0 already stored\n")
    );
    assert_eq!(
        fleet(dir, db, "drift", &[]),
        Run::ok(
            "compute-1: Skylake-Client-IBRS -> Skylake-Client-noTSX-IBRS\n\
            \x20 gained: -\n\
            \x20 lost: hle,rtm\n\
            \x20 models lost: Skylake-Client-IBRS,Skylake-Client-v2,Skylake-Client,Skylake-Client-v1,Broadwell-IBRS,Broadwell-v3,Broadwell,Broadwell-v1,Haswell-IBRS,Haswell-v3,Haswell,Haswell-v1\n\
            \x20 models gained: -\n\
            \x20 guests broken: web\n"
        )
    );
    // The host's history: both reports, the second with what it lost.
    assert_eq!(
        fleet(dir, db, "history", &["compute-1"]),
        Run::ok(
            "TIME                  VIEW      MODEL                      GAINED  LOST     SOURCE\n\
             2026-12-01T10:00:00Z  host-cpu  Skylake-Client-IBRS        -       -        h1.xml\n\
             2026-12-02T10:00:00Z  host-cpu  Skylake-Client-noTSX-IBRS  -       hle,rtm  h1-update.xml\n"
        )
    );
    assert_eq!(
        json(&fleet(
            dir,
            db,
            "history",
            &["--format", "json", "compute-1"]
        )),
        serde_json::json!({
            "host": "compute-1",
            "reports": [
                {
                    "time": "2026-12-01T10:00:00Z", "time_us": 1_796_119_200_000_000_i64,
                    "view": "host-cpu", "vendor": "Intel", "model": "Skylake-Client-IBRS",
                    "gained": null, "lost": null, "source": "h1.xml"
                },
                {
                    "time": "2026-12-02T10:00:00Z", "time_us": 1_796_205_600_000_000_i64,
                    "view": "host-cpu", "vendor": "Intel", "model": "Skylake-Client-noTSX-IBRS",
                    "gained": [], "lost": ["hle", "rtm"], "source": "h1-update.xml"
                }
            ]
        })
    );
    assert_eq!(
        fleet(dir, db, "can-run", &["guest.xml"]),
        Run::ok(
            "HOST       GUEST     BLOCKED BY\n\
             compute-1  blocked   hle,rtm\n\
             compute-2  blocked   f16c,rdrand,vme,arat,hle,rtm,rdseed,adx,smap,xsaveopt,xsavec,xgetbv1,abm,3dnowprefetch\n\
             compute-3  accepted  -\n"
        )
    );
    let can_run = json(&fleet(
        dir,
        db,
        "can-run",
        &["--format", "json", "guest.xml"],
    ));
    assert_eq!(can_run["accepted"], serde_json::json!(["compute-3"]));
    assert_eq!(
        can_run["blocked"]["compute-1"],
        serde_json::json!(["hle", "rtm"])
    );
    // No host of az2 accepts it: a negative answer.
    let az2 = fleet(dir, db, "can-run", &["--group", "az2", "guest.xml"]);
    assert_eq!(az2.code, Some(1), "{az2:?}");

    // The fleet's baseline is the one-shot baseline of the current documents.
    let one_shot = run(dir, &["baseline", "h1-update.xml", "h2.xml", "h3.xml"]);
    assert_eq!(one_shot.code, Some(0), "{one_shot:?}");
    assert_eq!(fleet(dir, db, "baseline", &[]), one_shot);

    // The report page is written, and nothing is printed.
    assert_eq!(
        fleet(dir, db, "report", &["--html", "fleet.html"]),
        Run::ok("")
    );
    let page = std::fs::read_to_string(dir.path().join("fleet.html")).expect("the page");
    assert!(page.starts_with("<!DOCTYPE html>"), "{}", &page[..40]);
}

/// Starts `cpumodel fleet import --db DB ARGS...` in `dir`, its standard
/// output and error captured.
fn spawn_import(dir: &TempDir, db: &Db, args: &[&str], stdin: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cpumodel"))
        .args(["fleet", "import", "--db", &db.location])
        .args(args)
        .current_dir(dir.path())
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cpumodel")
}

/// Runs `cpumodel fleet import --db DB ARGS... -` with `input` on standard
/// input.
fn run_stdin(dir: &TempDir, db: &Db, input: &str, args: &[&str]) -> Run {
    use std::io::Write as _;
    let mut child = spawn_import(dir, db, &[args, &["-"]].concat(), Stdio::piped());
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    Run::from(child.wait_with_output().expect("wait"))
}

fn json(r: &Run) -> serde_json::Value {
    assert_eq!((r.code, r.stderr.as_str()), (Some(0), ""), "{r:?}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

#[test]
fn questions_on_sqlite() {
    let dir = TempDir::new();
    questions(&dir, &Db::sqlite(&dir));
}

#[test]
fn questions_on_postgres() {
    let dir = TempDir::new();
    if let Some(db) = Db::postgres() {
        questions(&dir, &db);
    }
}

/// Every file of `dir`, with its bytes, to see that a failed run changed
/// nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read directory")
        .map(|e| {
            let p = e.expect("entry").path();
            let bytes = if p.is_file() {
                std::fs::read(&p).expect("read")
            } else {
                Vec::new()
            };
            (p.display().to_string(), bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    let dir = TempDir::new();
    let db = Db::sqlite(&dir);
    dir.write("guest.xml", GUEST);
    dir.write("h2.xml", &host_cpu("Haswell-noTSX-IBRS", None));
    dir.write("broken.xml", "<cpu><model>Haswell</model>");
    dir.write(
        "typo.xml",
        "<cpu mode='custom' match='exact'><model>Westmeer</model></cpu>",
    );
    dir.write("not-a-store.sqlite", "this is not a database\n");

    // A guest CPU first: no store is created.
    assert_eq!(
        fleet(&dir, &db, "import", &["guest.xml"]),
        Run::error("guest.xml: holds a guest CPU, not a host CPU")
    );
    assert!(!Path::new(&db.location).exists());
    assert_eq!(
        fleet(&dir, &db, "hosts", &[]),
        Run::error(&format!("{}: no such fleet store", db.location))
    );

    assert_eq!(
        fleet(&dir, &db, "import", &["--host", "compute-2", "h2.xml"]),
        Run::ok("stored 1 new reports, 0 already stored\n")
    );
    // A document on standard input names its host, or --host does.
    let stdin = run_stdin(&dir, &db, &host_cpu("Haswell-noTSX-IBRS", None), &[]);
    assert_eq!(
        stdin,
        Run::error("-: the document names no host; give --host NAME")
    );
    let stdin = run_stdin(
        &dir,
        &db,
        &host_cpu("Haswell-noTSX-IBRS", None),
        &["--host", "compute-4"],
    );
    assert_eq!(stdin, Run::ok("stored 1 new reports, 0 already stored\n"));

    let before = snapshot(dir.path());
    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        (
            "import",
            vec!["h2.xml", "broken.xml"],
            "broken.xml:1:28: malformed XML: the root node was opened but never closed".into(),
        ),
        ("import", vec!["missing.xml"], "missing.xml: cannot read: No such file or directory (os error 2)".into()),
        ("import", vec!["-"], "-:1:1: malformed XML: the document does not have a root node".into()),
        (
            "import",
            vec!["--time", "yesterday", "h2.xml"],
            "invalid value 'yesterday' for '--time <TIME>': 'yesterday' is not an RFC 3339 time such as 2026-12-02T18:30:00Z".into(),
        ),
        ("hosts", vec!["--group", "az9"], format!("{}: no host is in group \"az9\"", db.location)),
        ("history", vec!["compute-99"], format!("{}: no host \"compute-99\"", db.location)),
        (
            "recommend",
            vec!["--min-coverage", "0"],
            "invalid value '0' for '--min-coverage <PERCENT>': '0' is not a percentage above 0 and at most 100".into(),
        ),
        (
            "can-run",
            vec!["typo.xml"],
            "typo.xml:1:34: <model>: unknown CPU model 'Westmeer'; did you mean 'Westmere'?".into(),
        ),
        (
            "add-guest",
            vec!["web", "typo.xml"],
            "typo.xml:1:34: <model>: unknown CPU model 'Westmeer'; did you mean 'Westmere'?".into(),
        ),
    ];
    for (sub, args, message) in cases {
        let r = fleet(&dir, &db, sub, &args);
        assert_eq!(r, Run::error(&message), "fleet {sub} {args:?}");
        assert_eq!(
            snapshot(dir.path()),
            before,
            "fleet {sub} {args:?} changed the store"
        );
    }
    assert_eq!(
        run(&dir, &["fleet", "hosts", "--db", "not-a-store.sqlite"]),
        Run::error("not-a-store.sqlite: not an SQLite database")
    );
    assert_eq!(
        run(&dir, &["fleet", "hosts", "--db", "postgres://cpumodel:secret@127.0.0.1:1/fleet"]),
        Run::error("postgres://cpumodel:***@127.0.0.1:1/fleet: cannot reach PostgreSQL: Connection refused (os error 111)")
    );

    // A schema written by a newer cpumodel is refused, unchanged.
    rusqlite::Connection::open(&db.location)
        .and_then(|c| c.execute_batch("UPDATE schema_version SET version = 999"))
        .expect("edit the schema version");
    let before = snapshot(dir.path());
    let r = fleet(&dir, &db, "import", &["--host", "compute-9", "h2.xml"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(
        r.stderr.starts_with(&format!(
            "cpumodel: error: {}: the store's schema version 999 is newer than this cpumodel's",
            db.location
        )),
        "{r:?}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

/// Four `fleet import` processes started at once on one new store, with
/// overlapping inputs: every one succeeds, each report is stored exactly
/// once between them, and every host ends with one report.
fn importer_processes_at_once(dir: &TempDir, db: &Db) {
    const HOSTS: usize = 60;
    let models = ["Westmere", "Haswell", "Skylake-Server", "EPYC-Rome"];
    let names: Vec<String> = (0..HOSTS).map(|i| format!("h{i:02}.xml")).collect();
    for (i, name) in names.iter().enumerate() {
        let host = format!("compute-{i:02}");
        dir.write(name, &host_cpu(models[i % 4], Some(&host)));
    }
    let parts: [Vec<&String>; 4] = [
        names[..40].iter().collect(),
        names[20..].iter().collect(),
        names.iter().step_by(3).collect(),
        names.iter().rev().collect(),
    ];
    let children: Vec<_> = parts
        .iter()
        .map(|part| {
            let args: Vec<&str> = part.iter().map(|n| n.as_str()).collect();
            spawn_import(dir, db, &args, Stdio::null())
        })
        .collect();
    let mut new = 0;
    for (child, part) in children.into_iter().zip(&parts) {
        let r = Run::from(child.wait_with_output().expect("wait"));
        // "stored N new reports, M already stored": N + M is the part.
        let words: Vec<&str> = r.stdout.split_whitespace().collect();
        let (added, held): (usize, usize) = (words[1].parse().unwrap(), words[4].parse().unwrap());
        assert_eq!(
            r,
            Run::ok(&format!(
                "stored {added} new reports, {held} already stored\n"
            ))
        );
        assert_eq!(added + held, part.len(), "{r:?}");
        new += added;
    }
    assert_eq!(new, HOSTS);
    let hosts = json(&fleet(dir, db, "hosts", &["--format", "json"]));
    let hosts = hosts.as_array().expect("a list");
    assert_eq!(hosts.len(), HOSTS);
    for (i, h) in hosts.iter().enumerate() {
        assert_eq!(h["name"], format!("compute-{i:02}"));
        assert_eq!(h["reports"], 1, "{h}");
    }
}

#[test]
fn importer_processes_at_once_on_sqlite() {
    let dir = TempDir::new();
    importer_processes_at_once(&dir, &Db::sqlite(&dir));
}

#[test]
fn importer_processes_at_once_on_postgres() {
    let dir = TempDir::new();
    if let Some(db) = Db::postgres() {
        importer_processes_at_once(&dir, &db);
    }
}

#[test]
fn skip_stores_the_rest_and_exits_1() {
    let dir = TempDir::new();
    let db = Db::sqlite(&dir);
    dir.write("in/a-guest.xml", GUEST);
    dir.write("in/compute-2.xml", &host_cpu("Haswell-noTSX-IBRS", None));
    let r = fleet(&dir, &db, "import", &["--on-bad-input", "skip", "in"]);
    assert_eq!(
        r,
        Run {
            code: Some(1),
            stdout: "stored 1 new reports, 0 already stored, 1 inputs skipped\n".into(),
            stderr:
                "cpumodel: warning: in/a-guest.xml: holds a guest CPU, not a host CPU; skipped\n"
                    .into(),
        }
    );
    // The host is named after its file; standard input needs --host.
    let hosts = json(&fleet(&dir, &db, "hosts", &["--format", "json"]));
    assert_eq!(hosts[0]["name"], "compute-2");
}

#[test]
fn default_store_comes_from_the_environment() {
    let dir = TempDir::new();
    dir.write("h.xml", &host_cpu("Haswell-noTSX-IBRS", None));
    let file = dir.path().join("env.sqlite").display().to_string();
    let env = [("CPUMODEL_FLEET_DB", file.as_str())];
    assert_eq!(
        run_env(&dir, &env, &["fleet", "import", "h.xml"]),
        Run::ok("stored 1 new reports, 0 already stored\n")
    );
    assert!(Path::new(&file).exists());
    let data = dir.path().join("data").display().to_string();
    let env = [("CPUMODEL_FLEET_DB", ""), ("XDG_DATA_HOME", data.as_str())];
    assert_eq!(
        run_env(&dir, &env, &["fleet", "import", "h.xml"]),
        Run::ok("stored 1 new reports, 0 already stored\n")
    );
    assert!(dir.path().join("data/cpumodel/fleet.sqlite").exists());
}

/// The real CPUs of the conformance corpus, as `<cpudata>` dumps, by
/// vendor.
fn corpus(dir: &TempDir) -> Option<Vec<(String, Vec<String>)>> {
    let data = shared_path("conformance/libvirt-10.7/cputestdata")?;
    let mut by_vendor: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut entries: Vec<_> = std::fs::read_dir(&data)
        .expect("corpus")
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("read");
        if !text.contains("<cpudata") {
            continue;
        }
        let vendor = if text.contains("ebx='0x756e6547'") {
            "intel"
        } else {
            "other"
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        dir.write(&format!("{vendor}/{name}"), &text);
        by_vendor
            .entry(vendor.to_string())
            .or_default()
            .push(format!("{vendor}/{name}"));
    }
    Some(by_vendor.into_iter().collect())
}

/// Over the real CPUs: `fleet baseline` is `baseline`, `fleet can-run` is
/// `compare` host by host.
#[test]
fn agrees_with_the_one_shot_commands_on_the_corpus() {
    let dir = TempDir::new();
    let Some(groups) = corpus(&dir) else { return };
    let db = Db::sqlite(&dir);
    let mut files = Vec::new();
    for (group, members) in &groups {
        let r = fleet(&dir, &db, "import", &["--group", group, group]);
        assert_eq!(r.code, Some(0), "{r:?}");
        files.extend(members.iter().map(|m| (group.clone(), m.clone())));
    }
    assert!(files.len() >= 30, "{} dumps", files.len());
    let intel: Vec<&str> = files
        .iter()
        .filter(|(g, _)| g == "intel")
        .map(|(_, f)| f.as_str())
        .collect();
    let mut args = vec!["baseline"];
    args.extend(&intel);
    assert_eq!(
        fleet(&dir, &db, "baseline", &["--group", "intel"]),
        run(&dir, &args)
    );

    for model in [
        "Westmere",
        "Haswell-noTSX-IBRS",
        "Skylake-Server-IBRS",
        "EPYC",
    ] {
        dir.write(
            "guest.xml",
            &format!("<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>{model}</model>\n</cpu>\n"),
        );
        let doc = fleet(&dir, &db, "can-run", &["--format", "json", "guest.xml"]);
        let doc: serde_json::Value = serde_json::from_str(&doc.stdout).expect("JSON");
        for (_, file) in &files {
            let host = Path::new(file)
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let r = run(&dir, &["compare", "--format", "json", file, "guest.xml"]);
            let compare: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
            let accepted = doc["accepted"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h == host.as_str());
            assert_eq!(accepted, r.code == Some(0), "{model} on {host}: {r:?}");
            if !accepted {
                assert_eq!(
                    doc["blocked"][&host], compare["blockers"],
                    "{model} on {host}"
                );
            }
        }
    }
}
