//! Maintenance tasks for the cpumodel repository.
//!
//! `cargo xtask import-cpu-map DIR` regenerates the embedded CPU model
//! database (`crates/map/src/embedded/data.rs`) from a libvirt cpu_map
//! directory, normally `../shared/cpu_map/libvirt-upstream`. The directory
//! must say which libvirt it came from (a `VERSION` file, or a `SOURCE.md`
//! listing the commit of `index.xml`): the generated file records it, and
//! `cpumodel --version` prints it.
//!
//! `cargo xtask gen-fleet --hosts N --out DIR [--from DIR] [--racks R]
//! [--seed S] [--vendor STRING]` writes a synthetic fleet of host dumps for
//! the fleet benchmarks (see BENCHMARKS.md).

#![forbid(unsafe_code)]

mod genfleet;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["import-cpu-map", dir] => match import(Path::new(dir)) {
            Ok(out) => {
                println!("wrote {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        ["gen-fleet", rest @ ..] => match gen_fleet(rest) {
            Ok(n) => {
                println!("wrote {n} hosts");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("usage: cargo xtask import-cpu-map DIR | gen-fleet --hosts N --out DIR [--from DIR] [--racks R] [--seed S] [--vendor STRING]");
            ExitCode::from(2)
        }
    }
}

fn import(dir: &Path) -> Result<PathBuf, String> {
    let db = cpumodel_map::load_cpu_map(dir).map_err(|e| e.to_string())?;
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("cpu_map");
    let source = format!(
        "cpu_map '{name}' ({} vendors, {} features, {} models)",
        db.vendors().len(),
        db.features().len(),
        db.models().len()
    );
    let origin = cpumodel_map::read_map_origin(dir).ok_or_else(|| {
        format!(
            "{}: no VERSION file or SOURCE.md index.xml commit says which libvirt this map is from",
            dir.display()
        )
    })?;
    let text = cpumodel_map::codegen::generate_rust(&db, &source, &origin);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/map/src/embedded/data.rs");
    std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

fn gen_fleet(args: &[&str]) -> Result<usize, String> {
    let mut opts = genfleet::Options {
        from: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/conformance/libvirt-10.7/cputestdata"),
        out: PathBuf::new(),
        hosts: 0,
        racks: 10,
        seed: 1,
        vendor: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match *flag {
            "--hosts" => opts.hosts = number()?,
            "--racks" => opts.racks = number()?,
            "--seed" => opts.seed = value.parse().map_err(|e| format!("--seed {value}: {e}"))?,
            "--out" => opts.out = PathBuf::from(value),
            "--from" => opts.from = PathBuf::from(value),
            "--vendor" => opts.vendor = Some((*value).to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if opts.out.as_os_str().is_empty() || opts.hosts == 0 {
        return Err("gen-fleet needs --hosts N and --out DIR".into());
    }
    genfleet::generate(&opts)
}
