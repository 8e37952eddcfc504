//! CPU map directories: the input is written as files into a temporary
//! directory (`index.xml` first, then each part after a line `%%%% NAME`,
//! see `cpumodel_fuzz::split_parts`) and loaded. Loading never panics, and a
//! map that loads is usable: every model and feature is found by its name
//! and every model expands.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use cpumodel_cpudef::{expand, CpuDef, CpuKind};
use cpumodel_fuzz::{split_parts, text};
use cpumodel_map::{load_cpu_map, ModelId};
use libfuzzer_sys::fuzz_target;

/// This process's map directory (emptied before each input).
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cpumodel-fuzz-map-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the map directory");
        dir
    })
}

/// A plain file name: no directory part, nothing hidden.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    let dir = dir();
    for entry in std::fs::read_dir(dir).expect("read the map directory") {
        std::fs::remove_file(entry.expect("directory entry").path()).expect("remove a file");
    }
    for (name, content) in split_parts(text, "index.xml") {
        if plain(name) {
            std::fs::write(dir.join(name), content).expect("write a map file");
        }
    }
    let Ok(db) = load_cpu_map(dir) else { return };
    for (i, f) in db.features().iter().enumerate() {
        assert_eq!(db.find_feature_exact(&f.name).map(|id| id.index()), Some(i));
    }
    for (i, m) in db.models().iter().enumerate() {
        assert_eq!(db.find_model_exact(&m.name), Some(ModelId::from_index(i)));
        assert!(db.find_model(&m.name).is_ok());
        let mut cpu = CpuDef::new(CpuKind::Guest);
        cpu.model = Some(m.name.to_string());
        let _ = expand(&db, &cpu);
    }
});
