//! The machine this program runs on: its raw CPUID, its feature MSRs, and
//! the choice between what KVM offers guests and what the processor says.
//!
//! Executing CPUID and reading `/dev/cpu/0/msr` are machine reads like the
//! KVM ioctls, so they live here, in the one crate at the machine's edge,
//! and the data crate stays pure: [`HostCpuid`] is the
//! [`CpuidReader`] that executes the instruction, and the walk over leaves
//! and subleaves is `cpumodel_cpudata::walk::read_cpuid`, tested on
//! recordings.
//!
//! Which view a command shows is decided once, by [`MachineView`]: KVM's
//! when the device is usable (that is what a guest can get), the raw CPUID
//! otherwise, and then [`ViewSource::Raw`] keeps the typed reason KVM was
//! not used so the output can say it.

use std::io;
use std::path::{Path, PathBuf};

use cpumodel_cpudata::walk::{announces_arch_capabilities, read_cpuid, IA32_ARCH_CAPABILITIES};
use cpumodel_cpudata::{CpuData, CpuidKey, CpuidReader, Item};

use crate::error::KvmProbeError;

/// The processor this program runs on, as a [`CpuidReader`].
#[derive(Clone, Copy, Debug, Default)]
pub struct HostCpuid;

impl CpuidReader for HostCpuid {
    #[cfg(target_arch = "x86_64")]
    #[allow(unused_unsafe)]
    fn cpuid(&self, key: CpuidKey) -> [u32; 4] {
        // SAFETY: the CPUID instruction exists on every x86_64 processor and
        // only reads processor state; any leaf and subleaf may be asked
        // (unknown ones answer zeros or the highest leaf's values). Newer
        // compilers declare the intrinsic safe, hence `unused_unsafe`.
        let r = unsafe { core::arch::x86_64::__cpuid_count(key.leaf, key.subleaf) };
        [r.eax, r.ebx, r.ecx, r.edx]
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn cpuid(&self, _key: CpuidKey) -> [u32; 4] {
        [0; 4]
    }
}

/// True when this build can execute CPUID on the processor it runs on.
pub const HOST_CPUID_AVAILABLE: bool = cfg!(target_arch = "x86_64");

/// The Linux msr device of CPU 0 (root only; `modprobe msr` creates it).
pub const MSR_DEVICE: &str = "/dev/cpu/0/msr";

/// The 64-bit value of MSR `index`, read through a Linux msr device (the
/// file offset is the MSR index).
///
/// # Errors
/// The device cannot be opened (missing, not root) or the MSR cannot be
/// read (it does not exist on this processor).
pub fn read_msr(device: &Path, index: u32) -> io::Result<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt as _;
        let file = std::fs::File::open(device)?;
        let mut buf = [0u8; 8];
        file.read_exact_at(&mut buf, u64::from(index))?;
        Ok(u64::from_le_bytes(buf))
    }
    #[cfg(not(unix))]
    {
        let _ = (device, index);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// The live processor could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MachineViewError {
    /// This processor architecture has no CPUID instruction.
    #[error("this processor architecture has no CPUID")]
    NoCpuid,
    /// KVM is not usable, and the raw view is not there to fall back to.
    #[error(transparent)]
    Kvm(#[from] KvmProbeError),
}

/// Everything libvirt reads from the live host: the CPUID leaves, plus
/// IA32_ARCH_CAPABILITIES when CPUID says the MSR exists and [`MSR_DEVICE`]
/// can read it. Like libvirt, the MSR is best effort: without the device the
/// CPUID leaves are the whole answer.
///
/// # Errors
/// [`MachineViewError::NoCpuid`] on a processor without CPUID.
pub fn read_raw_cpudata() -> Result<CpuData, MachineViewError> {
    if !HOST_CPUID_AVAILABLE {
        return Err(MachineViewError::NoCpuid);
    }
    Ok(raw_cpudata(&HostCpuid, |index| {
        read_msr(Path::new(MSR_DEVICE), index).ok()
    }))
}

/// The CPUID walk over `reader`, plus IA32_ARCH_CAPABILITIES from `msr` when
/// CPUID announces it and `msr` can read it.
fn raw_cpudata(reader: &impl CpuidReader, msr: impl FnOnce(u32) -> Option<u64>) -> CpuData {
    let mut data = read_cpuid(reader);
    if announces_arch_capabilities(&data) {
        if let Some(value) = msr(IA32_ARCH_CAPABILITIES) {
            data.add(Item::msr_value(IA32_ARCH_CAPABILITIES, value));
        }
    }
    data
}

/// Where a [`MachineView`] comes from.
#[derive(Debug)]
pub enum ViewSource {
    /// What KVM can give a guest (`KVM_GET_SUPPORTED_CPUID` and the feature
    /// MSRs).
    Kvm {
        /// The KVM device that answered.
        device: PathBuf,
    },
    /// The processor's own CPUID (and IA32_ARCH_CAPABILITIES when readable).
    Raw {
        /// Why KVM's view was not used: `None` when the raw view was asked
        /// for, the probe's error when KVM was tried and is unusable.
        kvm_unusable: Option<KvmProbeError>,
    },
}

/// This machine's CPU as one view: KVM's offer to guests, or the raw CPUID.
///
/// `cpumodel host`, `cpumodel domcaps` and `cpumodel guest --mode
/// host-model` read the live machine through this type, so the rule "KVM
/// when usable, raw CPUID otherwise" is written once.
#[derive(Debug)]
pub struct MachineView {
    /// The CPU data of the view.
    pub data: CpuData,
    /// Where it comes from (and why KVM was not used).
    pub source: ViewSource,
}

impl MachineView {
    /// KVM's view, read from the KVM device at `device`.
    ///
    /// # Errors
    /// [`KvmProbeError`] when the device is not usable.
    pub fn kvm(device: &Path) -> Result<Self, KvmProbeError> {
        let data = crate::probe_at(device)?;
        Ok(MachineView {
            data,
            source: ViewSource::Kvm {
                device: device.to_path_buf(),
            },
        })
    }

    /// The raw CPUID of this processor, asked for as such.
    ///
    /// # Errors
    /// [`MachineViewError::NoCpuid`] on a processor without CPUID.
    pub fn raw() -> Result<Self, MachineViewError> {
        Ok(MachineView {
            data: read_raw_cpudata()?,
            source: ViewSource::Raw { kvm_unusable: None },
        })
    }

    /// KVM's view when the device at `device` is usable, the raw CPUID
    /// otherwise (with the reason in [`ViewSource::Raw`]).
    ///
    /// # Errors
    /// [`MachineViewError::Kvm`] when KVM is unusable and this processor has
    /// no CPUID to fall back to.
    pub fn detect(device: &Path) -> Result<Self, MachineViewError> {
        Self::detect_with(device, read_raw_cpudata)
    }

    /// [`MachineView::detect`] with the raw read given (for tests).
    fn detect_with(
        device: &Path,
        raw: impl FnOnce() -> Result<CpuData, MachineViewError>,
    ) -> Result<Self, MachineViewError> {
        match Self::kvm(device) {
            Ok(view) => Ok(view),
            Err(e) => match raw() {
                Ok(data) => Ok(MachineView {
                    data,
                    source: ViewSource::Raw {
                        kvm_unusable: Some(e),
                    },
                }),
                Err(MachineViewError::NoCpuid) => Err(MachineViewError::Kvm(e)),
                Err(other) => Err(other),
            },
        }
    }

    /// The KVM device of a KVM view.
    pub fn kvm_device(&self) -> Option<&Path> {
        match &self.source {
            ViewSource::Kvm { device } => Some(device),
            ViewSource::Raw { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msrs_are_read_at_their_index() {
        // A file standing in for the msr device: 8 bytes at offset 0x10a.
        let path = std::env::temp_dir().join(format!("cpumodel-msr-{}", std::process::id()));
        let mut bytes = vec![0u8; 0x10a + 8];
        bytes[0x10a..].copy_from_slice(&0x0000_0001_0000_01ebu64.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(read_msr(&path, 0x10a).unwrap(), 0x0000_0001_0000_01eb);
        assert!(read_msr(&path, 0x200).is_err());
        assert!(read_msr(Path::new("/nonexistent/msr"), 0x10a).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn arch_capabilities_only_when_announced_and_readable() {
        let announced: CpuData = [Item::cpuid(7, 0, 0, 0, 0, 1 << 29)].into_iter().collect();
        let silent: CpuData = [Item::cpuid(7, 0, 0, 0, 0, 0)].into_iter().collect();
        let arch = |data: &CpuData| {
            data.get(cpumodel_cpudata::ItemKey::Msr { index: 0x10a })
                .copied()
        };
        let read = |index: u32| (index == 0x10a).then_some(0x0000_0001_0000_01eb);
        // Leaf 7 is only read below the maximum leaf of leaf 0.
        let with_max = |mut d: CpuData| {
            d.add(Item::cpuid(0, 0, 7, 0, 0, 0));
            d
        };
        let announced = with_max(announced);
        assert_eq!(
            arch(&raw_cpudata(&announced, read)),
            Some(Item::msr(0x10a, 0x1eb, 1))
        );
        assert_eq!(arch(&raw_cpudata(&with_max(silent), read)), None);
        assert_eq!(arch(&raw_cpudata(&announced, |_| None)), None);
    }

    #[test]
    fn detect_falls_back_to_raw_and_keeps_the_reason() {
        let recorded: CpuData = [Item::cpuid(
            0,
            0,
            0xd,
            0x756e_6547,
            0x6c65_746e,
            0x4965_6e69,
        )]
        .into_iter()
        .collect();
        let device = Path::new("/nonexistent/kvm");
        let view = MachineView::detect_with(device, || Ok(recorded.clone())).unwrap();
        assert_eq!(view.data, recorded);
        assert!(view.kvm_device().is_none());
        match view.source {
            ViewSource::Raw {
                kvm_unusable: Some(KvmProbeError::NoDevice { path }),
            } => assert_eq!(path, device),
            other => panic!("{other:?}"),
        }
        // Without CPUID, the KVM error is the answer.
        let e = MachineView::detect_with(device, || Err(MachineViewError::NoCpuid)).unwrap_err();
        assert!(
            matches!(e, MachineViewError::Kvm(KvmProbeError::NoDevice { .. })),
            "{e}"
        );
    }

    #[test]
    fn the_raw_view_of_this_processor() {
        if !HOST_CPUID_AVAILABLE {
            return;
        }
        let view = MachineView::raw().unwrap();
        assert!(view.data.vendor_string().is_some());
        assert!(matches!(
            view.source,
            ViewSource::Raw { kvm_unusable: None }
        ));
    }
}
