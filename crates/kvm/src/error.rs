//! Why the KVM view could not be read, and how to fix it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The end of every [`KvmProbeError`] message: the KVM view is optional.
pub const RAW_STILL_WORKS: &str = "the raw CPUID view (--raw) still works";

/// The KVM device could not be probed.
///
/// Every message is one line that names the device, says what is wrong and
/// how to fix it, and ends with `; ` and [`RAW_STILL_WORKS`];
/// [`KvmProbeError::reason`] is the same text without that ending.
#[derive(Debug)]
pub enum KvmProbeError {
    /// The device does not exist (`ENOENT`).
    NoDevice {
        /// The device path.
        path: PathBuf,
    },
    /// Opening the device was refused (`EACCES`, `EPERM`).
    PermissionDenied {
        /// The device path.
        path: PathBuf,
    },
    /// Opening the device failed for another reason.
    Open {
        /// The device path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file answers no KVM ioctl (`KVM_GET_API_VERSION` fails).
    NotKvm {
        /// The device path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// KVM reports an API version other than 12, the only stable one.
    ApiVersion {
        /// The device path.
        path: PathBuf,
        /// The reported version.
        version: i32,
    },
    /// KVM does not know an ioctl (`ENOTTY` or `EINVAL`): the kernel is
    /// older than the feature.
    TooOld {
        /// The device path.
        path: PathBuf,
        /// The ioctl's name, like `KVM_GET_MSR_FEATURE_INDEX_LIST`.
        ioctl: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// An ioctl failed for another reason.
    Ioctl {
        /// The device path.
        path: PathBuf,
        /// The ioctl's name.
        ioctl: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// This build of cpumodel cannot use KVM (it is not for Linux on x86_64).
    Unsupported,
}

impl KvmProbeError {
    /// What went wrong and how to fix it, without the note that the raw
    /// view still works.
    pub fn reason(&self) -> String {
        match self {
            KvmProbeError::NoDevice { path } => format!(
                "{} does not exist: this machine offers no KVM (load the kvm_intel or kvm_amd \
                 module, or enable nested virtualization for this VM)",
                path.display()
            ),
            KvmProbeError::PermissionDenied { path } => format!(
                "permission denied on {0}: add this user to the 'kvm' group (usermod -aG kvm \
                 USER, then log in again) or check the device ACL (getfacl {0})",
                path.display()
            ),
            KvmProbeError::Open { path, source } => {
                format!("cannot open {}: {source}", path.display())
            }
            KvmProbeError::NotKvm { path, source } => format!(
                "{} is not a KVM device (KVM_GET_API_VERSION: {source})",
                path.display()
            ),
            KvmProbeError::ApiVersion { path, version } => format!(
                "{}: unexpected KVM API version {version} (12 expected)",
                path.display()
            ),
            KvmProbeError::TooOld {
                path,
                ioctl,
                source,
            } => format!("{}: KVM too old for {ioctl} ({source})", path.display()),
            KvmProbeError::Ioctl {
                path,
                ioctl,
                source,
            } => format!("{}: {ioctl} failed: {source}", path.display()),
            KvmProbeError::Unsupported => {
                "this build of cpumodel reads KVM only on Linux on x86_64".to_string()
            }
        }
    }

    /// The error for a failed `open` of the device.
    pub(crate) fn open(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::NotFound => KvmProbeError::NoDevice { path },
            io::ErrorKind::PermissionDenied => KvmProbeError::PermissionDenied { path },
            _ => KvmProbeError::Open { path, source },
        }
    }

    /// The error for a failed ioctl: `ENOTTY` and `EINVAL` mean KVM does not
    /// know it.
    #[cfg_attr(
        not(all(target_os = "linux", target_arch = "x86_64")),
        allow(dead_code)
    )]
    pub(crate) fn ioctl(path: &Path, ioctl: &'static str, source: io::Error) -> Self {
        const ENOTTY: i32 = 25;
        const EINVAL: i32 = 22;
        let path = path.to_path_buf();
        match source.raw_os_error() {
            Some(ENOTTY | EINVAL) => KvmProbeError::TooOld {
                path,
                ioctl,
                source,
            },
            _ => KvmProbeError::Ioctl {
                path,
                ioctl,
                source,
            },
        }
    }
}

impl fmt::Display for KvmProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {RAW_STILL_WORKS}", self.reason())
    }
}

impl std::error::Error for KvmProbeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KvmProbeError::Open { source, .. }
            | KvmProbeError::NotKvm { source, .. }
            | KvmProbeError::TooOld { source, .. }
            | KvmProbeError::Ioctl { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn open_errors_say_how_to_fix_the_environment() {
        let dev = Path::new("/dev/kvm");
        assert_eq!(
            KvmProbeError::open(dev, os(2)).to_string(),
            "/dev/kvm does not exist: this machine offers no KVM (load the kvm_intel or kvm_amd \
             module, or enable nested virtualization for this VM); the raw CPUID view (--raw) \
             still works"
        );
        let denied = "permission denied on /dev/kvm: add this user to the 'kvm' group \
                      (usermod -aG kvm USER, then log in again) or check the device ACL \
                      (getfacl /dev/kvm); the raw CPUID view (--raw) still works";
        assert_eq!(KvmProbeError::open(dev, os(13)).to_string(), denied);
        assert_eq!(KvmProbeError::open(dev, os(1)).to_string(), denied);
        assert!(matches!(
            KvmProbeError::open(dev, os(16)),
            KvmProbeError::Open { .. }
        ));
    }

    #[test]
    fn missing_ioctls_mean_an_old_kvm() {
        let dev = Path::new("/dev/kvm");
        let e = KvmProbeError::ioctl(dev, "KVM_GET_MSR_FEATURE_INDEX_LIST", os(25));
        assert!(matches!(e, KvmProbeError::TooOld { .. }));
        assert!(
            e.to_string().starts_with(
                "/dev/kvm: KVM too old for KVM_GET_MSR_FEATURE_INDEX_LIST (Inappropriate ioctl"
            ),
            "{e}"
        );
        assert!(e
            .to_string()
            .ends_with("; the raw CPUID view (--raw) still works"));
        assert!(matches!(
            KvmProbeError::ioctl(dev, "KVM_GET_MSRS", os(22)),
            KvmProbeError::TooOld { .. }
        ));
        assert!(matches!(
            KvmProbeError::ioctl(dev, "KVM_GET_SUPPORTED_CPUID", os(7)),
            KvmProbeError::Ioctl { .. }
        ));
    }

    #[test]
    fn every_message_is_one_line() {
        let dev = Path::new("/dev/kvm");
        for e in [
            KvmProbeError::open(dev, os(2)),
            KvmProbeError::open(dev, os(13)),
            KvmProbeError::open(dev, os(16)),
            KvmProbeError::NotKvm {
                path: dev.into(),
                source: os(25),
            },
            KvmProbeError::ApiVersion {
                path: dev.into(),
                version: 11,
            },
            KvmProbeError::ioctl(dev, "KVM_GET_MSRS", os(22)),
            KvmProbeError::ioctl(dev, "KVM_GET_MSRS", os(7)),
            KvmProbeError::Unsupported,
        ] {
            let s = e.to_string();
            assert!(!s.contains('\n'), "{s}");
            assert!(s.ends_with(RAW_STILL_WORKS), "{s}");
            assert_eq!(s, format!("{}; {RAW_STILL_WORKS}", e.reason()));
        }
    }
}
