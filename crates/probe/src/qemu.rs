//! The QEMU edge: run the probe image in a real `qemu-system-x86_64` and
//! collect what the guest wrote and what QEMU said.
//!
//! The guest's answers come through `isa-debugcon` on QEMU's stdout (a
//! `stdio` chardev), QEMU's warnings through its stderr, and the guest ends
//! QEMU itself through `isa-debug-exit`, so one run is one short process
//! and nothing is left behind: the image lives in a temporary file that is
//! removed, and a QEMU past the time limit is killed.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::ProbeError;
use crate::image::{DEBUGCON_PORT, EXIT_PORT, EXIT_STATUS};
use crate::warnings::strip_program;

/// The accelerator QEMU runs the guest with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM (`/dev/kvm`).
    Kvm,
    /// QEMU's own emulator.
    Tcg,
}

impl Accel {
    /// QEMU's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// KVM when the device at `device` opens for reading and writing, TCG
/// otherwise.
pub fn default_accel(device: &Path) -> Accel {
    let usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .is_ok();
    if usable {
        Accel::Kvm
    } else {
        Accel::Tcg
    }
}

/// One QEMU run of the probe image.
#[derive(Clone, Debug)]
pub struct QemuProbe {
    /// The `qemu-system-x86_64` binary.
    pub qemu: PathBuf,
    /// The accelerator.
    pub accel: Accel,
    /// The `-cpu` argument.
    pub cpu: String,
    /// The `-smp` argument, when the guest has more than one vCPU.
    pub smp: Option<String>,
    /// How long QEMU may run.
    pub timeout: Duration,
}

/// What one run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuOutcome {
    /// The bytes the guest wrote to its port.
    pub output: Vec<u8>,
    /// QEMU's stderr.
    pub stderr: String,
}

impl QemuProbe {
    /// The arguments QEMU gets, with the image at `bios`.
    pub fn args(&self, bios: &Path) -> Vec<String> {
        let mut args: Vec<String> = [
            "-machine",
            &format!("pc,accel={}", self.accel.name()),
            "-cpu",
            &self.cpu,
            "-m",
            "16",
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-bios",
            &bios.display().to_string(),
            "-chardev",
            "stdio,id=probe",
            "-device",
            &format!("isa-debugcon,iobase={DEBUGCON_PORT:#x},chardev=probe"),
            "-device",
            &format!("isa-debug-exit,iobase={EXIT_PORT:#x},iosize=1"),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        if let Some(smp) = &self.smp {
            args.extend(["-smp".to_string(), smp.clone()]);
        }
        args
    }

    /// Boots `image` and waits for the guest to end QEMU.
    ///
    /// # Errors
    /// [`ProbeError::QemuMissing`] when QEMU cannot be started,
    /// [`ProbeError::QemuRefused`] when it exits on its own (its error
    /// lines quoted), [`ProbeError::Timeout`] when the guest does not end
    /// it in time (QEMU is killed first), [`ProbeError::File`] when the
    /// image cannot be written.
    pub fn run(&self, image: &[u8]) -> Result<QemuOutcome, ProbeError> {
        let bios = TempFile::new("bios.bin", image)?;
        let mut child = Command::new(&self.qemu)
            .args(self.args(bios.path()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ProbeError::QemuMissing {
                qemu: self.qemu.clone(),
                source,
            })?;
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        let status = wait_for(&mut child, self.timeout).map_err(|source| ProbeError::Process {
            what: self.qemu.display().to_string(),
            source,
        })?;
        let output = stdout.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
        match status {
            None => Err(ProbeError::Timeout {
                cpu: self.cpu.clone(),
                limit: self.timeout,
            }),
            Some(code) if code == EXIT_STATUS => Ok(QemuOutcome { output, stderr }),
            Some(code) => Err(ProbeError::QemuRefused {
                cpu: self.cpu.clone(),
                message: refusal(&stderr, code),
            }),
        }
    }
}

/// What `qemu-system-x86_64 -cpu help` lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuHelp {
    /// The CPU model names (aliases included).
    pub models: BTreeSet<String>,
    /// The CPUID flags QEMU recognizes, with `_` written as `-`.
    pub flags: BTreeSet<String>,
}

impl CpuHelp {
    /// Whether QEMU knows the feature `name` (`lahf_lm` and `lahf-lm`
    /// alike, as QEMU's own parser treats them).
    pub fn knows_flag(&self, name: &str) -> bool {
        self.flags.contains(&name.replace('_', "-"))
    }
}

/// Parses `-cpu help`: `x86 NAME  description` lines, then the words after
/// `Recognized CPUID flags:`.
pub fn parse_cpu_help(text: &str) -> CpuHelp {
    let mut help = CpuHelp::default();
    let mut in_flags = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("x86 ") {
            if let Some(name) = rest.split_whitespace().next() {
                help.models.insert(name.to_string());
            }
            in_flags = false;
        } else if line.trim_end().ends_with(':') {
            in_flags = line.trim() == "Recognized CPUID flags:";
        } else if in_flags {
            help.flags
                .extend(line.split_whitespace().map(|w| w.replace('_', "-")));
        }
    }
    help
}

/// Runs `qemu -cpu help`.
///
/// # Errors
/// [`ProbeError::QemuMissing`] when QEMU cannot be run.
pub fn cpu_help(qemu: &Path) -> Result<CpuHelp, ProbeError> {
    let out = Command::new(qemu)
        .args(["-cpu", "help"])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ProbeError::QemuMissing {
            qemu: qemu.to_path_buf(),
            source,
        })?;
    Ok(parse_cpu_help(&String::from_utf8_lossy(&out.stdout)))
}

/// QEMU's error lines (not its feature warnings) as one line, or its exit
/// status when it printed none.
pub fn refusal(stderr: &str, code: i32) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("warning:"))
        .map(strip_program)
        .collect();
    if lines.is_empty() {
        format!("QEMU exited with status {code} before the guest finished")
    } else {
        lines.join("; ")
    }
}

/// Reads a pipe to its end on a thread.
fn reader(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Waits for `child` at most `limit`; kills it past that. `Some(status)`
/// (-1 when killed by a signal) or `None` on a timeout.
fn wait_for(child: &mut Child, limit: Duration) -> std::io::Result<Option<i32>> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status.code().unwrap_or(-1)));
        }
        if start.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// A file in the temporary directory, removed when dropped.
pub(crate) struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// A new file named after this process, holding `bytes`.
    pub(crate) fn new(name: &str, bytes: &[u8]) -> Result<Self, ProbeError> {
        let dir = temp_dir()?;
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| ProbeError::File {
            path: path.clone(),
            source,
        })?;
        Ok(TempFile { path })
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// A fresh directory for this process's files (readable by every user, so
/// that libvirt's QEMU can read the image).
pub(crate) fn temp_dir() -> Result<PathBuf, ProbeError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cpumodel-probe-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|source| ProbeError::File {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_boots_the_image_with_the_ports() {
        let p = QemuProbe {
            qemu: "qemu-system-x86_64".into(),
            accel: Accel::Tcg,
            cpu: "Westmere,avx=on".into(),
            smp: Some("sockets=1,cores=2,threads=1".into()),
            timeout: Duration::from_secs(1),
        };
        let args = p.args(Path::new("/tmp/x/bios.bin")).join(" ");
        assert_eq!(
            args,
            "-machine pc,accel=tcg -cpu Westmere,avx=on -m 16 -nodefaults -display none -no-reboot \
             -bios /tmp/x/bios.bin -chardev stdio,id=probe -device isa-debugcon,iobase=0xe9,chardev=probe \
             -device isa-debug-exit,iobase=0xf4,iosize=1 -smp sockets=1,cores=2,threads=1"
        );
    }

    #[test]
    fn a_refusal_is_qemus_error_lines_on_one_line() {
        assert_eq!(
            refusal(
                "qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.x2apic [bit 21]\n\
                 qemu-system-x86_64: can't apply global Westmere-x86_64-cpu.nope=on: Property 'Westmere-x86_64-cpu.nope' not found\n",
                1
            ),
            "can't apply global Westmere-x86_64-cpu.nope=on: Property 'Westmere-x86_64-cpu.nope' not found"
        );
        assert_eq!(
            refusal("", 1),
            "QEMU exited with status 1 before the guest finished"
        );
    }

    #[test]
    fn cpu_help_lists_models_and_flags() {
        let help = parse_cpu_help(
            "Available CPUs:\nx86 486                   (alias configured by machine type)\n\
             x86 Westmere-v1           Westmere E56xx/L56xx/X56xx (Nehalem-C)\n\n\
             Recognized CPUID flags:\n  3dnow lahf-lm\n  pclmulqdq\n",
        );
        assert_eq!(
            help.models.iter().collect::<Vec<_>>(),
            ["486", "Westmere-v1"]
        );
        assert!(help.knows_flag("lahf_lm") && help.knows_flag("pclmulqdq"));
        assert!(!help.knows_flag("pclmuldq"));
    }

    #[test]
    fn a_temporary_file_is_removed_with_its_directory() {
        let f = TempFile::new("t.bin", b"abc").expect("written");
        let path = f.path().to_path_buf();
        assert_eq!(std::fs::read(&path).expect("read"), b"abc");
        drop(f);
        assert!(!path.exists());
        assert!(!path.parent().expect("dir").exists());
    }
}
