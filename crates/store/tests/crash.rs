//! Killing an importer with SIGKILL loses nothing committed and never
//! leaves half a batch.
//!
//! The test runs this test binary again as the importer (`crash_child`,
//! told the store by [`CHILD_VAR`]): it imports numbered batches in a loop
//! and prints `committed N` after each commit. The test kills it at random
//! (fixed-seed) moments, reopens the store, and checks that it holds exactly
//! the first `n` batches, report for report, where `n` is the last number
//! printed or one more: the kill may land between a commit and its line.
//! The batches are told apart by their content, so this check is exact:
//! any half-written or lost batch fails it. Then the importer is started
//! again, continuing from what the store holds.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{report, Fixture};
use cpumodel_map::Database;
use cpumodel_store::{Filter, Location, NewReport, OpenMode, Store};
use cpumodel_testenv::Mutator;

const CHILD_VAR: &str = "CPUMODEL_STORE_CRASH_CHILD";
const BATCH: usize = 400;
const HOSTS: usize = 257;
const KILLS: usize = 6;

both_backends!(sigkill_loses_nothing_committed);

/// Batch `k`: every report distinct, spread over the hosts.
fn batch(db: &Database, k: usize) -> Vec<NewReport> {
    let models = ["Westmere", "Haswell", "Skylake-Server", "EPYC-Rome"];
    (0..BATCH)
        .map(|i| {
            let n = k * BATCH + i;
            let h = n % HOSTS;
            let time = i64::try_from(n).unwrap();
            let minus: &[&str] = if n % 5 == 2 { &["pcid"] } else { &[] };
            report(
                db,
                &format!("host{h:03}"),
                &["az1"],
                time,
                &format!("b{k}-{i}"),
                models[h % 4],
                minus,
                &[],
            )
        })
        .collect()
}

/// Reports per host of the first `n` batches.
fn expected_counts(n: usize) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for i in 0..n * BATCH {
        *m.entry(format!("host{:03}", i % HOSTS)).or_insert(0) += 1;
    }
    m
}

/// The importer, when run by the test (nothing otherwise).
#[test]
fn crash_child() {
    let Ok(location) = std::env::var(CHILD_VAR) else {
        return;
    };
    let db = Database::embedded();
    let mut store = Store::open(&Location::parse(&location), OpenMode::CreateIfMissing).unwrap();
    let held: u64 = store
        .hosts(&Filter::all())
        .unwrap()
        .iter()
        .map(|h| h.reports)
        .sum();
    let start = usize::try_from(held).unwrap() / BATCH;
    println!("start {start}");
    for k in start.. {
        let reports = batch(&db, k);
        store.import(&db, &reports).unwrap();
        println!("committed {}", k + 1);
    }
}

fn sigkill_loses_nothing_committed(f: &Fixture) {
    let mut rng = Mutator::new(0x5eed);
    let exe = std::env::current_exe().unwrap();
    let mut printed = 0;
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(
                CHILD_VAR,
                match &f.location {
                    Location::Sqlite(p) => p.display().to_string(),
                    Location::Postgres(url) => url.clone(),
                },
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait until the importer has opened the store and committed a
        // random number of batches, then a random while more (fixed seed),
        // and kill it: the moment falls anywhere in a batch.
        let mut started = false;
        let mut commits = rng.below(3);
        let mut last = printed;
        while !started || commits > 0 {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("the importer runs");
            // libtest may print `test crash_child ... ` before it.
            if let Some(i) = line.find("start ") {
                assert_eq!(line[i + 6..].parse::<usize>().unwrap(), printed);
                started = true;
            } else if let Some(i) = line.find("committed ") {
                last = line[i + 10..].parse().unwrap();
                commits -= 1;
            }
        }
        let wait = rng.below(150);
        std::thread::sleep(Duration::from_millis(u64::try_from(wait).unwrap()));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        printed = last;
        for line in rx.try_iter() {
            if let Some(i) = line.find("committed ") {
                printed = line[i + 10..].parse().unwrap();
            }
        }
        // Reopen: the store holds exactly whole batches, all of them up to
        // the last one printed (or one more).
        let mut store = Store::open(&f.location, OpenMode::MustExist).unwrap();
        let counts: BTreeMap<String, u64> = store
            .hosts(&Filter::all())
            .unwrap()
            .into_iter()
            .map(|h| (h.name, h.reports))
            .collect();
        let total: u64 = counts.values().sum();
        let held = usize::try_from(total).unwrap();
        assert_eq!(
            held % BATCH,
            0,
            "round {round}: half a batch ({held} reports)"
        );
        let n = held / BATCH;
        assert!(
            n == printed || n == printed + 1,
            "round {round}: {n} batches stored, {printed} printed"
        );
        assert_eq!(counts, expected_counts(n), "round {round}");
        println!("crash round {round}: killed {wait} ms after its last line; {n} batches stored, {printed} printed");
        printed = n;
    }
    assert!(
        printed > 0,
        "the importer committed nothing before the kills"
    );
}
