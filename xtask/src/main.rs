//! Maintenance tasks for the cpumodel repository.
//!
//! `cargo xtask import-cpu-map DIR` regenerates the embedded CPU model
//! database (`crates/map/src/embedded/data.rs`) from a libvirt cpu_map
//! directory, normally `../shared/cpu_map/libvirt-upstream`.

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
        _ => {
            eprintln!("usage: cargo xtask import-cpu-map DIR");
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
    let text = cpumodel_map::codegen::generate_rust(&db, &source);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/map/src/embedded/data.rs");
    std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}
