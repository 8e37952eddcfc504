//! Shared helpers of the `cpumodel` integration tests: a self-cleaning
//! temporary directory for fixtures and a way to run the real binary in it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory under the system temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory.
    pub fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("cpumodel-test-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).expect("create temporary directory");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` (relative to the directory), creating parents.
    pub fn write(&self, name: &str, text: &str) {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create fixture directory");
        }
        std::fs::write(path, text).expect("write fixture");
    }

    /// Creates an empty subdirectory.
    pub fn mkdir(&self, name: &str) {
        std::fs::create_dir_all(self.0.join(name)).expect("create directory");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one run of the binary produced.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Run {
    /// The expected run of a success: exit 0, exactly `stdout`, nothing on stderr.
    pub fn ok(stdout: &str) -> Run {
        Run {
            code: Some(0),
            stdout: stdout.to_string(),
            stderr: String::new(),
        }
    }

    /// The expected run of an error: exit 2, nothing on stdout, and exactly
    /// `cpumodel: error: {message}` as the one line on stderr.
    pub fn error(message: &str) -> Run {
        Run {
            code: Some(2),
            stdout: String::new(),
            stderr: format!("cpumodel: error: {message}\n"),
        }
    }
}

impl From<std::process::Output> for Run {
    /// What a finished process produced; its output must be UTF-8.
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        }
    }
}

/// Runs `cpumodel args...` in `dir` with extra environment variables.
pub fn run_env(dir: &TempDir, env: &[(&str, &str)], args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_cpumodel"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .output()
        .expect("run cpumodel");
    Run::from(out)
}

/// Runs `cpumodel args...` in `dir`.
pub fn run(dir: &TempDir, args: &[&str]) -> Run {
    run_env(dir, &[], args)
}

/// Runs `cpumodel args...` in `dir` with the KVM device at `device`, or with
/// no device override at all.
pub fn run_with_device(dir: &TempDir, device: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cpumodel"));
    cmd.args(args).current_dir(dir.path());
    match device {
        Some(d) => cmd.env("CPUMODEL_KVM_DEVICE", d),
        None => cmd.env_remove("CPUMODEL_KVM_DEVICE"),
    };
    Run::from(cmd.output().expect("run cpumodel"))
}

/// True when /dev/kvm can be probed; otherwise prints the one skip line.
pub fn kvm_usable() -> bool {
    match cpumodel_kvm::probe_at(Path::new(cpumodel_kvm::DEFAULT_DEVICE)) {
        Ok(_) => true,
        Err(e) => {
            cpumodel_testenv::unavailable(
                cpumodel_testenv::Need::Kvm,
                format!("/dev/kvm not usable ({})", e.reason()),
            );
            false
        }
    }
}

/// Writes a CPU map directory `map` into `dir`: one vendor (Intel), the
/// given `x86_features.xml` and `x86_models.xml`.
pub fn write_map_files(dir: &TempDir, features: &str, models: &str) {
    write_map_dir(dir, "map", features, models);
}

/// Writes a CPU map directory `name` into `dir`, as [`write_map_files`].
pub fn write_map_dir(dir: &TempDir, name: &str, features: &str, models: &str) {
    dir.write(
        &format!("{name}/index.xml"),
        "<cpus><arch name='x86'>\
<include filename='x86_vendors.xml'/>\
<include filename='x86_features.xml'/>\
<include filename='x86_models.xml'/>\
</arch></cpus>\n",
    );
    dir.write(
        &format!("{name}/x86_vendors.xml"),
        "<cpus><vendor name='Intel' string='GenuineIntel'/></cpus>\n",
    );
    dir.write(&format!("{name}/x86_features.xml"), features);
    dir.write(&format!("{name}/x86_models.xml"), models);
}
