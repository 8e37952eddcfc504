//! The device edge: open the KVM device and ask its system ioctls.
//!
//! The ioctls sit behind [`SystemIoctls`] so the order of the questions and
//! the mapping of each failure to a [`KvmProbeError`] are tested with
//! scripted answers, and the real device is only needed for the real answers.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{FromRawFd as _, IntoRawFd as _};
use std::path::Path;

use cpumodel_cpudata::CpuData;
use kvm_bindings::{kvm_cpuid_entry2, kvm_msr_entry, Msrs, KVM_API_VERSION, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::Kvm;

use crate::convert::cpudata_from_kvm;
use crate::error::KvmProbeError;

/// The KVM system ioctls the probe asks, in the order it asks them.
pub(crate) trait SystemIoctls {
    /// `KVM_GET_API_VERSION`.
    fn api_version(&self) -> io::Result<i32>;
    /// `KVM_GET_SUPPORTED_CPUID`.
    fn supported_cpuid(&self) -> io::Result<Vec<kvm_cpuid_entry2>>;
    /// `KVM_GET_MSR_FEATURE_INDEX_LIST`.
    fn msr_feature_index_list(&self) -> io::Result<Vec<u32>>;
    /// `KVM_GET_MSRS` on the system file descriptor; the MSRs it could read.
    fn feature_msrs(&self, indices: &[u32]) -> io::Result<Vec<kvm_msr_entry>>;
}

fn os_error(e: kvm_ioctls::Error) -> io::Error {
    io::Error::from_raw_os_error(e.errno())
}

impl SystemIoctls for Kvm {
    fn api_version(&self) -> io::Result<i32> {
        match self.get_api_version() {
            v if v < 0 => Err(io::Error::last_os_error()),
            v => Ok(v),
        }
    }

    fn supported_cpuid(&self) -> io::Result<Vec<kvm_cpuid_entry2>> {
        self.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map(|c| c.as_slice().to_vec())
            .map_err(os_error)
    }

    fn msr_feature_index_list(&self) -> io::Result<Vec<u32>> {
        self.get_msr_feature_index_list()
            .map(|l| l.as_slice().to_vec())
            .map_err(os_error)
    }

    fn feature_msrs(&self, indices: &[u32]) -> io::Result<Vec<kvm_msr_entry>> {
        let entries: Vec<kvm_msr_entry> = indices
            .iter()
            .map(|&index| kvm_msr_entry {
                index,
                ..Default::default()
            })
            .collect();
        let mut msrs = Msrs::from_entries(&entries)
            .map_err(|e| io::Error::other(format!("{} feature MSRs: {e:?}", entries.len())))?;
        let read = self.get_msrs(&mut msrs).map_err(os_error)?;
        // KVM stops at the first MSR it cannot read; only those before count.
        Ok(msrs.as_slice()[..read.min(entries.len())].to_vec())
    }
}

/// Opens the KVM device at `path`.
pub(crate) fn open(path: &Path) -> Result<Kvm, KvmProbeError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| KvmProbeError::open(path, e))?;
    // SAFETY: the descriptor was just opened and is owned by nobody else;
    // `Kvm` takes it over and closes it when dropped.
    Ok(unsafe { Kvm::from_raw_fd(file.into_raw_fd()) })
}

/// Opens the device at `path` and probes it.
pub(crate) fn probe_at(path: &Path) -> Result<CpuData, KvmProbeError> {
    probe(&open(path)?, path)
}

/// Asks the ioctls in turn; `path` names the device in errors.
pub(crate) fn probe(sys: &impl SystemIoctls, path: &Path) -> Result<CpuData, KvmProbeError> {
    let version = sys.api_version().map_err(|source| KvmProbeError::NotKvm {
        path: path.to_path_buf(),
        source,
    })?;
    if version != KVM_API_VERSION as i32 {
        return Err(KvmProbeError::ApiVersion {
            path: path.to_path_buf(),
            version,
        });
    }
    let cpuid = sys
        .supported_cpuid()
        .map_err(|e| KvmProbeError::ioctl(path, "KVM_GET_SUPPORTED_CPUID", e))?;
    let indices = sys
        .msr_feature_index_list()
        .map_err(|e| KvmProbeError::ioctl(path, "KVM_GET_MSR_FEATURE_INDEX_LIST", e))?;
    let msrs = sys
        .feature_msrs(&indices)
        .map_err(|e| KvmProbeError::ioctl(path, "KVM_GET_MSRS", e))?;
    Ok(cpudata_from_kvm(&cpuid, &msrs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpumodel_cpudata::{Item, ItemKey};

    /// Scripted answers: `Err(errno)` fails that ioctl.
    struct Scripted {
        version: Result<i32, i32>,
        cpuid: Result<Vec<kvm_cpuid_entry2>, i32>,
        list: Result<Vec<u32>, i32>,
        msrs: Result<Vec<kvm_msr_entry>, i32>,
    }

    impl Default for Scripted {
        fn default() -> Self {
            Scripted {
                version: Ok(12),
                cpuid: Ok(vec![kvm_cpuid_entry2 {
                    function: 0,
                    eax: 0xd,
                    ebx: 0x756e_6547,
                    ecx: 0x6c65_746e,
                    edx: 0x4965_6e69,
                    ..Default::default()
                }]),
                list: Ok(vec![0x10a]),
                msrs: Ok(vec![kvm_msr_entry {
                    index: 0x10a,
                    reserved: 0,
                    data: 0x2_0000_0001,
                }]),
            }
        }
    }

    fn answer<T: Clone>(r: &Result<T, i32>) -> io::Result<T> {
        r.clone().map_err(io::Error::from_raw_os_error)
    }

    impl SystemIoctls for Scripted {
        fn api_version(&self) -> io::Result<i32> {
            answer(&self.version)
        }
        fn supported_cpuid(&self) -> io::Result<Vec<kvm_cpuid_entry2>> {
            answer(&self.cpuid)
        }
        fn msr_feature_index_list(&self) -> io::Result<Vec<u32>> {
            answer(&self.list)
        }
        fn feature_msrs(&self, indices: &[u32]) -> io::Result<Vec<kvm_msr_entry>> {
            assert_eq!(indices, [0x10a]);
            answer(&self.msrs)
        }
    }

    const DEV: &str = "/dev/kvm";

    fn err(s: Scripted) -> String {
        probe(&s, Path::new(DEV)).unwrap_err().reason()
    }

    #[test]
    fn probe_reads_cpuid_and_feature_msrs() {
        let data = probe(&Scripted::default(), Path::new(DEV)).unwrap();
        assert_eq!(&data.vendor_string().unwrap(), b"GenuineIntel");
        assert_eq!(
            data.get(ItemKey::Msr { index: 0x10a }),
            Some(&Item::msr(0x10a, 1, 2))
        );
    }

    #[test]
    fn each_failing_ioctl_is_named() {
        assert_eq!(
            err(Scripted {
                list: Err(libc::ENOTTY),
                ..Default::default()
            }),
            "/dev/kvm: KVM too old for KVM_GET_MSR_FEATURE_INDEX_LIST \
             (Inappropriate ioctl for device (os error 25))"
        );
        assert_eq!(
            err(Scripted {
                msrs: Err(libc::EINVAL),
                ..Default::default()
            }),
            "/dev/kvm: KVM too old for KVM_GET_MSRS (Invalid argument (os error 22))"
        );
        assert_eq!(
            err(Scripted {
                cpuid: Err(libc::E2BIG),
                ..Default::default()
            }),
            "/dev/kvm: KVM_GET_SUPPORTED_CPUID failed: Argument list too long (os error 7)"
        );
        assert_eq!(
            err(Scripted {
                version: Ok(11),
                ..Default::default()
            }),
            "/dev/kvm: unexpected KVM API version 11 (12 expected)"
        );
    }

    #[test]
    fn a_missing_device_is_enoent() {
        let e = probe_at(Path::new("/nonexistent/kvm")).unwrap_err();
        assert!(matches!(e, KvmProbeError::NoDevice { .. }), "{e}");
        assert!(e.to_string().starts_with("/nonexistent/kvm does not exist"));
    }

    #[test]
    fn files_that_are_not_kvm_fail_the_first_ioctl() {
        // Like kvm-ioctls' bad-fd test, without KVM: /dev/null and a regular
        // file open fine but answer no KVM ioctl.
        let regular =
            std::env::temp_dir().join(format!("cpumodel-kvm-test-{}", std::process::id()));
        std::fs::write(&regular, "not a device").unwrap();
        for path in [Path::new("/dev/null"), regular.as_path()] {
            let e = probe_at(path).unwrap_err();
            assert!(matches!(e, KvmProbeError::NotKvm { .. }), "{e}");
            assert_eq!(
                e.reason(),
                format!(
                    "{} is not a KVM device (KVM_GET_API_VERSION: \
                     Inappropriate ioctl for device (os error 25))",
                    path.display()
                )
            );
        }
        let _ = std::fs::remove_file(&regular);
    }

    #[test]
    fn the_real_device_when_usable() {
        match probe_at(Path::new(DEV)) {
            Ok(data) => {
                assert!(data.vendor_string().is_some());
                assert!(data.signature() != 0);
            }
            Err(e) => cpumodel_testenv::unavailable(
                cpumodel_testenv::Need::Kvm,
                format!("/dev/kvm not usable ({})", e.reason()),
            ),
        }
    }
}
