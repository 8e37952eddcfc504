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

/// One `virsh` command run to its end: its stdout, or its error lines
/// joined on one line.
fn virsh_once(
    uri: Option<&str>,
    args: &[&str],
    action: &'static str,
) -> Result<String, ProbeError> {
    let mut cmd = Command::new("virsh");
    cmd.arg("--quiet");
    if let Some(u) = uri {
        cmd.args(["--connect", u]);
    }
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ProbeError::VirshMissing {
            virsh: "virsh".to_string(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(ProbeError::Libvirt {
            uri: uri.unwrap_or("default").to_string(),
            action,
            message: error_line(&String::from_utf8_lossy(&out.stderr)),
        })
    }
}

/// virsh's error lines on one line, without their `error: ` prefixes.
fn error_line(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The interactive virsh that creates the domain and holds the connection
/// its autodestroy is tied to. Its stdout is buffered when it is not a
/// terminal, so the probe reads only its stderr (errors arrive at once) and
/// asks everything else with [`virsh_once`].
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Session {
    fn start(uri: Option<&str>) -> Result<Self, ProbeError> {
        let mut cmd = Command::new("virsh");
        cmd.arg("--quiet");
        if let Some(u) = uri {
            cmd.args(["--connect", u]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ProbeError::VirshMissing {
                virsh: "virsh".to_string(),
                source,
            })?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let errors = Arc::clone(&errors);
            thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if !line.trim().is_empty() {
                        errors.lock().map(|mut e| e.push(line)).ok();
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Ok(Session {
            child,
            stdin,
            errors,
        })
    }

    /// Sends one command line.
    fn send(&mut self, command: &str) -> bool {
        self.stdin
            .as_mut()
            .is_some_and(|s| writeln!(s, "{command}").and_then(|()| s.flush()).is_ok())
    }

    /// The error lines so far, on one line.
    fn errors(&self) -> String {
        self.errors
            .lock()
            .map(|e| error_line(&e.join("\n")))
            .unwrap_or_default()
    }
}

impl Drop for Session {
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
        let uri = self.uri.as_deref();
        // The connection first: an unreachable URI is one line.
        let uri_used = virsh_once(uri, &["uri"], "connect")?;
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
        let libvirt = |action: &'static str, message: String| ProbeError::Libvirt {
            uri: uri_used.clone(),
            action,
            message,
        };
        let mut session = Session::start(uri)?;
        if !session.send(&format!("create {} --autodestroy", xml_path.display())) {
            return Err(libvirt("create", "virsh exited".to_string()));
        }
        let start = Instant::now();
        let output = loop {
            let errors = session.errors();
            if !errors.is_empty() {
                return Err(libvirt("create", errors));
            }
            let bytes = std::fs::read(&serial).unwrap_or_default();
            if bytes.len() >= self.expected_bytes {
                break bytes;
            }
            if start.elapsed() >= self.timeout {
                session.send(&format!("destroy {name}"));
                return Err(ProbeError::Timeout {
                    cpu: format!("of libvirt domain {name}"),
                    limit: self.timeout,
                });
            }
            thread::sleep(Duration::from_millis(10));
        };
        session.send(&format!("destroy {name}"));
        drop(session);
        let log = std::fs::read_to_string(format!("/var/log/libvirt/qemu/{name}.log"))
            .unwrap_or_default();
        let stderr = qemu_messages(&log);
        Ok(LibvirtOutcome {
            output,
            stderr,
            uri: uri_used,
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

/// QEMU's own messages in libvirt's log of a domain (which also holds
/// libvirt's start-up lines and the command line), without their time
/// stamps; QEMU's exit on libvirt's signal is left out.
pub fn qemu_messages(log: &str) -> String {
    log.lines()
        .filter_map(|l| l.find("qemu-system-x86_64: ").map(|at| &l[at..]))
        .filter(|l| !l.contains("terminating on signal"))
        .map(|l| format!("{l}\n"))
        .collect()
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

    #[test]
    fn only_qemus_messages_are_kept_from_the_log() {
        let log = "2026-12-07 15:51:34.407+0000: starting up libvirt version: 9.0.0\n\
                   QEMU said: -cpu Westmere \\\n\
                   2026-12-07T15:51:34.600000Z qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.x2apic [bit 21]\n\
                   2026-12-07T15:51:34.658141Z qemu-system-x86_64: terminating on signal 15 from pid 1554 (libvirtd)\n";
        assert_eq!(
            qemu_messages(log),
            "qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.x2apic [bit 21]\n"
        );
    }
}
