//! The fleet report page, loaded in a real headless Chromium: the numbers
//! in its DOM are the fleet's, and its screenshot is not blank.

use std::path::{Path, PathBuf};
use std::process::Command;

use cpumodel_fleet::{coverage, drift, report_page, DriftRow, GroupProfiles, Limits};
use cpumodel_map::Database;
use cpumodel_testenv::{unavailable, Need};

mod common;
use common::fleet;

fn page(db: &Database) -> String {
    // sky-1 and sky-2 in rack a; sky-3 (which lost TSX) and old-1 in rack b.
    let all = fleet(db);
    let (rack_a, rack_b) = (all[..1].to_vec(), all[1..].to_vec());
    let rows = vec![DriftRow {
        host: "sky-3".into(),
        previous: all[0].profile,
        current: all[1].profile,
        previous_us: 1_764_000_000_000_000,
        current_us: 1_764_086_400_000_000,
    }];
    report_page(
        db,
        "Fleet <test>",
        &coverage(db, &all, Limits::default()),
        &[
            GroupProfiles {
                group: "rack-a".into(),
                profiles: rack_a,
            },
            GroupProfiles {
                group: "rack-b".into(),
                profiles: rack_b,
            },
        ],
        &drift(db, &rows, &[]).unwrap(),
    )
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CPUMODEL_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        Some(path)
    } else {
        unavailable(Need::Chromium, format!("{} not found", path.display()));
        None
    }
}

/// Runs headless Chromium on `page` with `args`, in a fresh profile.
fn run_chromium(chromium: &Path, dir: &Path, page: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn the_page_shows_the_fleet_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let db = Database::embedded();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.html");
    std::fs::write(&file, page(&db)).unwrap();

    let dom =
        String::from_utf8(run_chromium(&chromium, dir.path(), &file, &["--dump-dom"])).unwrap();
    // The title is escaped, and the numbers are the fleet's.
    assert!(dom.contains("<h1>Fleet &lt;test&gt;</h1>"), "{dom}");
    assert!(dom.contains(r#"<p id="summary" data-hosts="4">4 hosts</p>"#));
    assert!(dom.contains(
        r#"<tr class="model" data-model="Westmere" data-hosts="4"><td>Westmere</td><td class="hosts">4</td>"#
    ));
    assert!(dom.contains(
        r#"<tr class="model" data-model="Skylake-Client-IBRS" data-hosts="2"><td>Skylake-Client-IBRS</td><td class="hosts">2</td>"#
    ));
    assert!(dom.contains(r#"<tr class="share" data-group="rack-b" data-hosts="2">"#));
    assert!(dom.contains(r#"<p id="drift-count" data-hosts="1">1 hosts changed"#));
    assert!(
        dom.contains(r#"<g data-day="2025-11-25" data-hosts="1">"#),
        "{dom}"
    );
    assert!(dom.contains("<td>hle, rtm</td>"));

    let shot = dir.path().join("shot.png");
    run_chromium(
        &chromium,
        dir.path(),
        &file,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1400",
        ],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let pixels = &buf[..info.buffer_size()];
    let step = info.color_type.samples();
    let mut colours = std::collections::HashSet::new();
    let mut inked = 0usize;
    for px in pixels.chunks_exact(step) {
        colours.insert(px[..3].to_vec());
        if px[..3] != [255, 255, 255] {
            inked += 1;
        }
    }
    let total = pixels.len() / step;
    assert!(colours.len() > 20, "{} colours", colours.len());
    assert!(inked * 100 > total, "{inked} of {total} pixels drawn");
}

/// Writes the test page to `CPUMODEL_FLEET_PAGE` when set, to look at it.
#[test]
fn write_the_page_when_asked() {
    if let Some(path) = std::env::var_os("CPUMODEL_FLEET_PAGE") {
        std::fs::write(path, page(&Database::embedded())).unwrap();
    }
}
