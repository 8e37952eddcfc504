//! Maintenance tasks for the cpumodel repository.
//!
//! `cargo xtask import-cpu-map --release NAME [--origin TEXT] DIR`
//! regenerates one release's embedded CPU model database
//! (`crates/map/src/embedded/data_<NAME>.rs`, dots as underscores) from a
//! libvirt cpu_map directory:
//!
//! ```text
//! cargo xtask import-cpu-map --release upstream ../shared/cpu_map/libvirt-upstream
//! cargo xtask import-cpu-map --release 10.7 --origin 'libvirt 10.7.0' ../shared/conformance/libvirt-10.7/cpu_map
//! cargo xtask import-cpu-map --release 9.0 --origin 'libvirt 9.0.0 (Debian 12)' ../shared/cpu_map/libvirt-9.0
//! ```
//!
//! The generated file records which libvirt the map came from: `--origin`,
//! else what the directory says (a `VERSION` file, or a `SOURCE.md` listing
//! the commit of `index.xml`); `cpumodel --version` prints it.
//!
//! `cargo xtask import-qemu-models [--qemu PATH]` regenerates QEMU's model
//! definitions as CPUID bits (`crates/map/src/qemu/models.rs`) from the
//! installed QEMU, over QMP.
//!
//! `cargo xtask import-linux-flags PATH/arch/x86/include/asm/cpufeatures.h`
//! regenerates the Linux feature flag table (`crates/map/src/linux/flags.rs`)
//! from a kernel tree or a `linux-headers-*-common` package (see
//! [`linuxflags`]).
//!
//! `cargo xtask gen-fleet --hosts N --out DIR [--from DIR] [--racks R]
//! [--seed S] [--vendor STRING]` writes a synthetic fleet of host dumps for
//! the fleet benchmarks (see BENCHMARKS.md).

#![forbid(unsafe_code)]

mod genfleet;
mod linuxflags;
mod qemumodels;

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
        ["import-cpu-map", rest @ ..] => wrote(import(rest)),
        ["import-linux-flags", header] => wrote(linuxflags::import(Path::new(header))),
        ["import-qemu-models", rest @ ..] => wrote(qemumodels::import(rest)),
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
            eprintln!("usage: cargo xtask import-cpu-map --release NAME [--origin TEXT] DIR | import-linux-flags PATH/cpufeatures.h | import-qemu-models [--qemu PATH] | gen-fleet --hosts N --out DIR [--from DIR] [--racks R] [--seed S] [--vendor STRING]");
            ExitCode::from(2)
        }
    }
}

/// Reports an importer's result: the file it wrote, or its error.
fn wrote(result: Result<PathBuf, String>) -> ExitCode {
    match result {
        Ok(out) => {
            println!("wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn import(args: &[&str]) -> Result<PathBuf, String> {
    let (mut release, mut origin, mut dir) = (None, None, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match *arg {
            "--release" => release = it.next().copied(),
            "--origin" => origin = it.next().map(|o| (*o).to_string()),
            other if dir.is_none() && !other.starts_with("--") => dir = Some(Path::new(other)),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    let (Some(release), Some(dir)) = (release, dir) else {
        return Err("import-cpu-map needs --release NAME and a cpu_map DIR".into());
    };
    let db = cpumodel_map::load_cpu_map(dir).map_err(|e| e.to_string())?;
    let source = format!(
        "cpu_map 'libvirt-{release}' ({} vendors, {} features, {} models)",
        db.vendors().len(),
        db.features().len(),
        db.models().len()
    );
    let origin = match origin {
        Some(o) => o,
        None => cpumodel_map::read_map_origin(dir).ok_or_else(|| {
            format!(
                "{}: no VERSION file or SOURCE.md index.xml commit says which libvirt this map is from; give --origin",
                dir.display()
            )
        })?,
    };
    let text = cpumodel_map::codegen::generate_rust(&db, &source, &origin);
    let file = format!("data_{}.rs", release.replace('.', "_"));
    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/map/src/embedded")
        .join(file);
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
