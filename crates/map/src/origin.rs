//! Which libvirt a cpu_map directory was taken from.
//!
//! `cpumodel --version` names the embedded map's origin, so that a report
//! of a wrong answer says which libvirt data it came from. The importer
//! reads the origin from the map directory itself, where whoever copied the
//! map recorded it: a `VERSION` file (one line, a libvirt release such as
//! `10.5.0`), or a `SOURCE.md` that lists the upstream commit of each file
//! (the commit of `index.xml` names the copy, as the index decides which
//! models the map holds).

use std::path::Path;

/// The origin recorded in the cpu_map directory `dir`, in words:
/// `libvirt 10.5.0` from a `VERSION` file, or `libvirt upstream commit
/// <hash>` from the `index.xml` line of a `SOURCE.md`. `None` when neither
/// file records it.
pub fn read_map_origin(dir: &Path) -> Option<String> {
    if let Ok(text) = std::fs::read_to_string(dir.join("VERSION")) {
        if let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) {
            return Some(if line.starts_with("libvirt") {
                line.to_string()
            } else {
                format!("libvirt {line}")
            });
        }
    }
    let text = std::fs::read_to_string(dir.join("SOURCE.md")).ok()?;
    index_commit(&text).map(|hash| format!("libvirt upstream commit {hash}"))
}

/// The commit of the list line `` - `<hash>`: `index.xml`, ... ``.
fn index_commit(source_md: &str) -> Option<&str> {
    source_md.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix("- `")?;
        let (hash, files) = rest.split_once('`')?;
        let is_hash = hash.len() >= 7 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        (is_hash && files.contains("`index.xml`")).then_some(hash)
    })
}

#[cfg(test)]
mod tests {
    use super::index_commit;

    #[test]
    fn index_commit_is_read_from_the_file_list() {
        let md = "# map\n\n## Files by upstream commit\n\n\
                  - `80d3744`: `x86_Broadwell-v1.xml`\n\
                  - `5d5bb2059d4f`: `index.xml`, `x86_DiamondRapids.xml`\n";
        assert_eq!(index_commit(md), Some("5d5bb2059d4f"));
        assert_eq!(index_commit("- `nothex!`: `index.xml`\n"), None);
        assert_eq!(index_commit("no list\n"), None);
    }
}
