//! `cargo xtask gen-fleet`: a synthetic fleet of host CPU dumps for
//! benchmarks, made from real CPUs.
//!
//! Each host is one of the real CPUID dumps in a directory (normally the
//! libvirt conformance corpus), with feature bits that BIOS settings and
//! microcode updates switch (TSX, mitigations) randomly cleared, from a
//! fixed seed, so every run writes the same fleet. Hosts are spread over
//! rack directories (`rack-00/node-0000001.xml`), and each dump names its
//! host in a prologue comment, as `cpumodel dump` does.

use std::path::{Path, PathBuf};

use cpumodel_cpudata::{format_cpudata, parse_cpudata, CpuData};
use cpumodel_map::Database;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Features a BIOS setting or microcode update commonly switches.
const VOLATILE: [&str; 10] = [
    "hle",
    "rtm",
    "mpx",
    "spec-ctrl",
    "ssbd",
    "md-clear",
    "stibp",
    "arch-capabilities",
    "avx512f",
    "pcid",
];

/// What to generate.
pub struct Options {
    /// Directory of real `<cpudata>` dumps.
    pub from: PathBuf,
    /// Where to write the fleet.
    pub out: PathBuf,
    /// How many hosts.
    pub hosts: usize,
    /// How many rack directories.
    pub racks: usize,
    /// The random seed.
    pub seed: u64,
    /// Keep only dumps of this vendor string (`GenuineIntel`), if given.
    pub vendor: Option<String>,
}

/// The real CPUs of `dir`: every file whose root is `<cpudata>`.
fn bases(dir: &Path, vendor: Option<&str>) -> Result<Vec<CpuData>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if !text.contains("<cpudata") {
            continue;
        }
        let Ok(data) = parse_cpudata(&p.display().to_string(), &text) else {
            continue;
        };
        let v = data
            .vendor_string()
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        if vendor.is_none_or(|want| v.as_deref() == Some(want)) {
            out.push(data);
        }
    }
    if out.is_empty() {
        return Err(format!("{}: no <cpudata> dumps found", dir.display()));
    }
    Ok(out)
}

/// Writes the fleet; returns the number of files written.
pub fn generate(opts: &Options) -> Result<usize, String> {
    let db = Database::embedded();
    let bases = bases(&opts.from, opts.vendor.as_deref())?;
    let volatile: Vec<&CpuData> = VOLATILE
        .iter()
        .filter_map(|n| db.find_feature_exact(n).map(|f| &db.feature(f).data))
        .collect();
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let racks = opts.racks.max(1);
    for r in 0..racks {
        let dir = opts.out.join(format!("rack-{r:02}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    for i in 0..opts.hosts {
        let mut data = bases[rng.random_range(0..bases.len())].clone();
        for bits in &volatile {
            if rng.random_range(0..8) == 0 {
                data.subtract(bits);
            }
        }
        let host = format!("node-{i:07}");
        let path = opts
            .out
            .join(format!("rack-{:02}", i % racks))
            .join(format!("{host}.xml"));
        let text = format!("<!-- host: {host} -->\n{}", format_cpudata(&data));
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(opts.hosts)
}
