//! The libvirt edge: run the probe image as a transient libvirt domain
//! whose `<cpu>` is the one cpumodel generates, through `virsh`.
//!
//! The domain boots the same firmware image (`<loader type='rom'>`), which
//! writes its answers to the first serial port, kept in a file
//! (`<serial type='file'>`). libvirt has no `isa-debug-exit`, so the probe
//! watches the file until every answer is there and then destroys the
//! domain.
//!
//! The domain must never outlive the probe. It is created with `virsh
//! create --autodestroy` from one interactive `virsh` process that lives as
//! long as the probe: libvirt destroys an autodestroy domain when the
//! connection that created it closes, so an error, a time limit, Ctrl-C
//! (virsh gets the same SIGINT) or even a killed probe (virsh sees its
//! input end) all end the domain. On the normal path the probe destroys it
//! itself.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::ProbeError;
use crate::qemu::{temp_dir, Accel};

/// One libvirt run of the probe image.
#[derive(Clone, Debug)]
pub struct LibvirtProbe {
    /// The connection URI; `None` for virsh's default.
    pub uri: Option<String>,
    /// The domain type: KVM (`kvm`) or TCG (`qemu`); `None` for KVM when
    /// `/dev/kvm` is usable.
    pub accel: Option<Accel>,
    /// The guest `<cpu>` element.
    pub cpu_xml: String,
    /// vCPUs.
    pub vcpus: u32,
    /// How long the domain may run.
    pub timeout: Duration,
    /// The size of the guest's complete output.
    pub expected_bytes: usize,
}

/// What one run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibvirtOutcome {
    /// The bytes the guest wrote to its serial port.
    pub output: Vec<u8>,
    /// QEMU's log for the domain (its warnings), when readable.
    pub stderr: String,
    /// The URI used (`default` for virsh's).
    pub uri: String,
    /// The domain type (`kvm` or `qemu`).
    pub domain_type: &'static str,
}

/// The domain type libvirt calls an accelerator.
pub fn domain_type(accel: Accel) -> &'static str {
    match accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "qemu",
    }
}

/// The transient domain's XML: 16 MiB, the firmware image as its ROM, the
/// serial port into a file, nothing else that could write to it.
pub fn domain_xml(
    name: &str,
    domain_type: &str,
    vcpus: u32,
    cpu_xml: &str,
    image: &Path,
    serial: &Path,
) -> String {
    let cpu: String = cpu_xml.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "<domain type='{domain_type}'>
  <name>{name}</name>
  <memory unit='MiB'>16</memory>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <loader type='rom'>{}</loader>
  </os>
{cpu}  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'>
      <source path='{}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
",
        image.display(),
        serial.display()
    )
}

/// An interactive virsh: commands on its stdin, lines of its stdout and
/// stderr collected.
struct Virsh {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    errors: Arc<Mutex<Vec<String>>>,
    uri: String,
}

/// The marker virsh echoes after each command.
const DONE: &str = "@@cpumodel-probe-done";

impl Virsh {
    fn start(uri: Option<&str>) -> Result<Self, ProbeError> {
        let mut cmd = Command::new("virsh");
        cmd.arg("--quiet");
        if let Some(u) = uri {
            cmd.args(["--connect", u]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ProbeError::VirshMissing {
                virsh: "virsh".to_string(),
                source,
            })?;
        let (tx, lines) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let errors = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let errors = Arc::clone(&errors);
            thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let line = line.trim().to_string();
                    if !line.is_empty() {
                        errors.lock().map(|mut e| e.push(line)).ok();
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Ok(Virsh {
            child,
            stdin,
            lines,
            errors,
            uri: uri.unwrap_or("default").to_string(),
        })
    }

    /// Runs one command; its stdout lines, or virsh's error lines.
    fn run(
        &mut self,
        command: &str,
        action: &'static str,
        limit: Duration,
    ) -> Result<Vec<String>, ProbeError> {
        let libvirt = |message: String| ProbeError::Libvirt {
            uri: self.uri.clone(),
            action,
            message,
        };
        self.errors.lock().map(|mut e| e.clear()).ok();
        let sent = self.stdin.as_mut().map(|s| {
            writeln!(s, "{command}")
                .and_then(|()| writeln!(s, "echo {DONE}"))
                .and_then(|()| s.flush())
        });
        if !matches!(sent, Some(Ok(()))) {
            return Err(libvirt("virsh exited".to_string()));
        }
        let start = Instant::now();
        let mut out = Vec::new();
        loop {
            let left = limit.saturating_sub(start.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim() == DONE => break,
                Ok(line) => out.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(libvirt(format!("no answer within {} s", limit.as_secs())))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let errors = self.error_line();
                    return Err(libvirt(if errors.is_empty() {
                        "virsh exited".to_string()
                    } else {
                        errors
                    }));
                }
            }
        }
        let errors = self.error_line();
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(libvirt(errors))
        }
    }

    fn error_line(&self) -> String {
        self.errors
            .lock()
            .map(|e| {
                e.iter()
                    .map(|l| l.strip_prefix("error: ").unwrap_or(l).to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }
}

impl Drop for Virsh {
    /// Closing virsh's input ends it, and with its connection every
    /// autodestroy domain it created.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LibvirtProbe {
    /// Creates the domain, waits for the guest's complete output, and
    /// destroys the domain (also on every error).
    ///
    /// # Errors
    /// [`ProbeError::VirshMissing`], [`ProbeError::Libvirt`] when libvirt
    /// refuses the connection or the domain (virsh's message on one line),
    /// [`ProbeError::Timeout`] when the output is incomplete at the time
    /// limit.
    pub fn run(&self, image: &[u8]) -> Result<LibvirtOutcome, ProbeError> {
        let dir = TempDir::new()?;
        let file = |name: &str| dir.path.join(name);
        let write = |path: &PathBuf, bytes: &[u8]| {
            std::fs::write(path, bytes).map_err(|source| ProbeError::File {
                path: path.clone(),
                source,
            })
        };
        let rom = file("bios.bin");
        let serial = file("serial.out");
        write(&rom, image)?;
        let dtype = domain_type(
            self.accel
                .unwrap_or_else(|| crate::qemu::default_accel(Path::new("/dev/kvm"))),
        );
        let name = dir.path.file_name().map_or_else(
            || "cpumodel-probe".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let xml_path = file("domain.xml");
        write(
            &xml_path,
            domain_xml(&name, dtype, self.vcpus, &self.cpu_xml, &rom, &serial).as_bytes(),
        )?;
        let mut virsh = Virsh::start(self.uri.as_deref())?;
        let uri = virsh.run("uri", "connect", self.timeout)?;
        let uri = uri
            .first()
            .map_or_else(|| virsh.uri.clone(), |u| u.trim().to_string());
        virsh.uri.clone_from(&uri);
        virsh.run(
            &format!("create {} --autodestroy", xml_path.display()),
            "create",
            self.timeout,
        )?;
        let start = Instant::now();
        let output = loop {
            let bytes = std::fs::read(&serial).unwrap_or_default();
            if bytes.len() >= self.expected_bytes {
                break bytes;
            }
            if start.elapsed() >= self.timeout {
                let _ = virsh.run(
                    &format!("destroy {name}"),
                    "destroy",
                    Duration::from_secs(10),
                );
                return Err(ProbeError::Timeout {
                    cpu: self.cpu_xml.lines().map(str::trim).collect::<String>(),
                    limit: self.timeout,
                });
            }
            thread::sleep(Duration::from_millis(10));
        };
        virsh.run(&format!("destroy {name}"), "destroy", self.timeout)?;
        let stderr = std::fs::read_to_string(format!("/var/log/libvirt/qemu/{name}.log"))
            .unwrap_or_default();
        Ok(LibvirtOutcome {
            output,
            stderr,
            uri,
            domain_type: dtype,
        })
    }
}

/// A temporary directory readable by libvirt's QEMU user, removed when
/// dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<Self, ProbeError> {
        let path = temp_dir()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).map_err(
                |source| ProbeError::File {
                    path: path.clone(),
                    source,
                },
            )?;
        }
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_boots_the_rom_with_the_cpu_and_a_serial_file() {
        let xml = domain_xml(
            "cpumodel-probe-1-0",
            "qemu",
            2,
            "<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>Westmere</model>\n</cpu>\n",
            Path::new("/tmp/d/bios.bin"),
            Path::new("/tmp/d/serial.out"),
        );
        assert!(
            xml.starts_with("<domain type='qemu'>\n  <name>cpumodel-probe-1-0</name>"),
            "{xml}"
        );
        assert!(
            xml.contains("<loader type='rom'>/tmp/d/bios.bin</loader>"),
            "{xml}"
        );
        assert!(xml.contains("\n  <cpu mode='custom' match='exact'>\n    <model fallback='forbid'>Westmere</model>\n  </cpu>\n"), "{xml}");
        assert!(xml.contains("<source path='/tmp/d/serial.out'/>"), "{xml}");
        assert!(xml.contains("<vcpu>2</vcpu>"), "{xml}");
        assert_eq!(domain_type(Accel::Tcg), "qemu");
    }
}
