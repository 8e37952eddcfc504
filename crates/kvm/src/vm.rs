//! The device edge of `verify`: a KVM VM that runs the CPUID guest.
//!
//! One VM, one memory region of [`guest::MEMORY_SIZE`] bytes at guest
//! address 0 holding the program and its queries ([`crate::guest`]), and one
//! vCPU per APIC ID, each given its own CPUID table with `KVM_SET_CPUID2`
//! and started in real mode at the program. The vCPUs run one after the
//! other and share the result area, which is cleared before each run and
//! read after its HLT. There is no in-kernel interrupt controller, so HLT
//! returns to the VMM.

use std::io;
use std::path::{Path, PathBuf};

use cpumodel_cpudata::{CpuidEntry, CpuidKey, VcpuState, APIC_BASE_ENABLE, APIC_DEFAULT_BASE};
use kvm_bindings::{kvm_msr_entry, kvm_userspace_memory_region, Msrs, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};

use crate::convert::{entry_from_kvm, kvm_cpuid};
use crate::error::KvmProbeError;
use crate::guest;
use crate::limits::{VcpuRun, VmLimits};
use crate::run_error::KvmRunError;

/// `IA32_XSS`.
const MSR_IA32_XSS: u32 = 0xda0;
/// `IA32_APIC_BASE`: this is the bootstrap processor.
const APIC_BASE_BSP: u64 = 1 << 8;
/// CPUID.1:EDX\[9\], APIC on chip.
const CPUID_1_EDX_APIC: u32 = 1 << 9;

/// One vCPU of the guest.
#[derive(Clone, Debug)]
pub struct GuestVcpu {
    /// Its APIC ID, used as its KVM vCPU ID as QEMU does.
    pub apic_id: u32,
    /// Its CPUID table (converted for `KVM_SET_CPUID2` by [`kvm_cpuid`]).
    pub cpuid: Vec<CpuidEntry>,
}

/// An open KVM device, ready to run CPUID guests.
pub struct CpuidGuest {
    kvm: Kvm,
    path: PathBuf,
}

fn errno(e: kvm_ioctls::Error) -> io::Error {
    io::Error::from_raw_os_error(e.errno())
}

impl CpuidGuest {
    /// Opens the KVM device at `path`.
    ///
    /// # Errors
    /// [`KvmRunError::Device`] when the device is missing, not accessible,
    /// not KVM or of another API version.
    pub fn open(path: &Path) -> Result<Self, KvmRunError> {
        let kvm = crate::probe::open(path).map_err(KvmRunError::Device)?;
        let version = kvm.get_api_version();
        if version != kvm_bindings::KVM_API_VERSION as i32 {
            return Err(KvmRunError::Device(if version < 0 {
                KvmProbeError::NotKvm {
                    path: path.to_path_buf(),
                    source: io::Error::last_os_error(),
                }
            } else {
                KvmProbeError::ApiVersion {
                    path: path.to_path_buf(),
                    version,
                }
            }));
        }
        Ok(CpuidGuest {
            kvm,
            path: path.to_path_buf(),
        })
    }

    /// The device path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// KVM's vCPU limits.
    pub fn limits(&self) -> VmLimits {
        VmLimits {
            max_vcpus: self.kvm.get_max_vcpus(),
            recommended_vcpus: self.kvm.get_nr_vcpus(),
            max_vcpu_id: self.kvm.get_max_vcpu_id(),
        }
    }

    /// Runs the CPUID guest on one VM with `vcpus`, each executing CPUID for
    /// every `(leaf, subleaf)` of `queries`, and returns what each read.
    ///
    /// A vCPU's local APIC is enabled (in `IA32_APIC_BASE`) when its CPUID
    /// says it has one, as a VMM would do.
    ///
    /// # Errors
    /// [`KvmRunError`]: a limit is exceeded (the message gives it), an ioctl
    /// fails, or a guest stops before its last query.
    pub fn run(
        &self,
        vcpus: &[GuestVcpu],
        queries: &[CpuidKey],
    ) -> Result<Vec<VcpuRun>, KvmRunError> {
        let apic_ids: Vec<u32> = vcpus.iter().map(|v| v.apic_id).collect();
        self.limits().check(&self.path, &apic_ids, queries.len())?;
        let vm_error = |ioctl: &'static str| {
            let path = self.path.clone();
            move |e: kvm_ioctls::Error| KvmRunError::Vm {
                path,
                ioctl,
                source: errno(e),
            }
        };
        let mut memory = GuestMemory::new(guest::MEMORY_SIZE)?;
        memory.write(usize::from(guest::CODE), &guest::code());
        memory.write(
            usize::from(guest::QUERY_COUNT),
            &guest::encode_queries(queries),
        );
        // Declared after the memory, so dropped (and unmapped by KVM) first.
        let vm = self.kvm.create_vm().map_err(vm_error("KVM_CREATE_VM"))?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: guest::MEMORY_SIZE as u64,
            userspace_addr: memory.addr(),
        };
        // SAFETY: the region is a live anonymous mapping of exactly
        // `memory_size` bytes that outlives the VM (`memory` is dropped
        // after `vm`), and no other slot overlaps it.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(vm_error("KVM_SET_USER_MEMORY_REGION"))?;

        let mut fds = Vec::with_capacity(vcpus.len());
        for (n, v) in vcpus.iter().enumerate() {
            fds.push(self.setup_vcpu(&vm, n, v)?);
        }
        let mut runs = Vec::with_capacity(vcpus.len());
        for (n, fd) in fds.iter_mut().enumerate() {
            memory.fill(usize::from(guest::END_MARK), 2, 0);
            memory.fill(
                usize::from(guest::RESULTS),
                queries.len() * guest::RESULT_SIZE,
                0,
            );
            self.run_to_hlt(fd, n)?;
            let end_mark = u16::from_le_bytes(
                memory
                    .read(usize::from(guest::END_MARK), 2)
                    .try_into()
                    .expect("two bytes"),
            );
            let expected = guest::expected_end_mark(queries.len());
            if end_mark != expected {
                return Err(KvmRunError::Incomplete {
                    vcpu: n,
                    end_mark,
                    expected,
                });
            }
            let results = guest::decode_results(
                memory.read(
                    usize::from(guest::RESULTS),
                    queries.len() * guest::RESULT_SIZE,
                ),
                queries.len(),
            );
            let stored = fd
                .get_cpuid2(KVM_MAX_CPUID_ENTRIES)
                .map_err(self.vcpu_error("KVM_GET_CPUID2", n))?
                .as_slice()
                .iter()
                .map(entry_from_kvm)
                .collect();
            let (cr0, state) = self.control_state(fd, n)?;
            runs.push(VcpuRun {
                apic_id: vcpus[n].apic_id,
                results,
                cr0,
                state,
                stored,
            });
        }
        Ok(runs)
    }

    fn vcpu_error(
        &self,
        ioctl: &'static str,
        vcpu: usize,
    ) -> impl Fn(kvm_ioctls::Error) -> KvmRunError {
        let path = self.path.clone();
        move |e| KvmRunError::Vcpu {
            path: path.clone(),
            ioctl,
            vcpu,
            source: errno(e),
        }
    }

    /// Creates vCPU `n`, applies its CPUID and puts it in real mode at the
    /// program with every segment based at 0.
    fn setup_vcpu(&self, vm: &VmFd, n: usize, v: &GuestVcpu) -> Result<VcpuFd, KvmRunError> {
        let fd = vm
            .create_vcpu(u64::from(v.apic_id))
            .map_err(self.vcpu_error("KVM_CREATE_VCPU", n))?;
        fd.set_cpuid2(&kvm_cpuid(&v.cpuid)?)
            .map_err(self.vcpu_error("KVM_SET_CPUID2", n))?;
        let mut sregs = fd
            .get_sregs()
            .map_err(self.vcpu_error("KVM_GET_SREGS", n))?;
        for seg in [
            &mut sregs.cs,
            &mut sregs.ds,
            &mut sregs.es,
            &mut sregs.ss,
            &mut sregs.fs,
            &mut sregs.gs,
        ] {
            seg.base = 0;
            seg.selector = 0;
        }
        // Real mode: protection and paging off; no OS bits in CR4.
        sregs.cr0 &= !1;
        sregs.cr4 = 0;
        let has_apic = v
            .cpuid
            .iter()
            .any(|e| e.key.leaf == 1 && e.edx & CPUID_1_EDX_APIC != 0);
        sregs.apic_base = if has_apic {
            APIC_DEFAULT_BASE | APIC_BASE_ENABLE | if n == 0 { APIC_BASE_BSP } else { 0 }
        } else {
            0
        };
        fd.set_sregs(&sregs)
            .map_err(self.vcpu_error("KVM_SET_SREGS", n))?;
        let mut regs = fd.get_regs().map_err(self.vcpu_error("KVM_GET_REGS", n))?;
        regs.rip = u64::from(guest::CODE);
        regs.rflags = 0x2;
        regs.rsp = u64::from(guest::CODE);
        fd.set_regs(&regs)
            .map_err(self.vcpu_error("KVM_SET_REGS", n))?;
        Ok(fd)
    }

    /// Runs vCPU `n` until its HLT.
    fn run_to_hlt(&self, fd: &mut VcpuFd, n: usize) -> Result<(), KvmRunError> {
        loop {
            let exit = match fd.run() {
                Ok(VcpuExit::Hlt) => return Ok(()),
                Ok(VcpuExit::Intr) => continue,
                Ok(other) => format!("{other:?}"),
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
                Err(e) => return Err(self.vcpu_error("KVM_RUN", n)(e)),
            };
            let rip = fd.get_regs().map(|r| r.rip).unwrap_or(0);
            return Err(KvmRunError::UnexpectedExit { vcpu: n, exit, rip });
        }
    }

    /// CR0, and the CR4, XCR0, `IA32_XSS` and `IA32_APIC_BASE` of vCPU `n`.
    fn control_state(&self, fd: &VcpuFd, n: usize) -> Result<(u64, VcpuState), KvmRunError> {
        let sregs = fd
            .get_sregs()
            .map_err(self.vcpu_error("KVM_GET_SREGS", n))?;
        let xcrs = fd.get_xcrs().map_err(self.vcpu_error("KVM_GET_XCRS", n))?;
        // Without XSAVE on the host KVM reports no XCR; XCR0 keeps its reset
        // value, x87 only.
        let xcr0 = xcrs.xcrs[..(xcrs.nr_xcrs as usize).min(xcrs.xcrs.len())]
            .iter()
            .find(|x| x.xcr == 0)
            .map_or(1, |x| x.value);
        let mut msrs = Msrs::from_entries(&[kvm_msr_entry {
            index: MSR_IA32_XSS,
            ..Default::default()
        }])
        .expect("one MSR fits");
        // KVM reads no MSR it does not know (a host without XSAVES): the
        // guest's IA32_XSS is then its reset value, 0.
        let read = fd
            .get_msrs(&mut msrs)
            .map_err(self.vcpu_error("KVM_GET_MSRS", n))?;
        let xss = if read == 1 {
            msrs.as_slice()[0].data
        } else {
            0
        };
        Ok((
            sregs.cr0,
            VcpuState {
                cr4: sregs.cr4,
                xcr0,
                xss,
                apic_base: sregs.apic_base,
            },
        ))
    }
}

/// Anonymous memory for the guest, unmapped on drop.
struct GuestMemory {
    ptr: *mut u8,
    len: usize,
}

impl GuestMemory {
    fn new(len: usize) -> Result<Self, KvmRunError> {
        // SAFETY: an anonymous private mapping with no address hint touches
        // no existing memory; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(KvmRunError::Memory {
                size: len,
                source: io::Error::last_os_error(),
            });
        }
        Ok(GuestMemory {
            ptr: ptr.cast(),
            len,
        })
    }

    fn addr(&self) -> u64 {
        self.ptr as u64
    }

    fn slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is a live mapping of `len` readable and writable
        // bytes owned by `self`; the guest only writes it while a vCPU runs,
        // which never overlaps a borrow (runs are sequential and synchronous).
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    fn write(&mut self, at: usize, bytes: &[u8]) {
        self.slice()[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn fill(&mut self, at: usize, len: usize, value: u8) {
        self.slice()[at..at + len].fill(value);
    }

    fn read(&mut self, at: usize, len: usize) -> &[u8] {
        &self.slice()[at..at + len]
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are exactly the mapping made in `new`,
        // and nothing borrows it any more.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_the_probe_error() {
        let e = CpuidGuest::open(Path::new("/nonexistent/kvm"))
            .err()
            .expect("no device");
        assert!(
            matches!(e, KvmRunError::Device(KvmProbeError::NoDevice { .. })),
            "{e}"
        );
        let e = CpuidGuest::open(Path::new("/dev/null"))
            .err()
            .expect("not KVM");
        assert!(
            matches!(e, KvmRunError::Device(KvmProbeError::NotKvm { .. })),
            "{e}"
        );
    }

    /// Two vCPUs with APIC IDs 0 and 2 and a small hand-made table: each
    /// reads its own APIC ID and the table's values. (Leaf 1 ECX and EDX
    /// are left out of the comparison: some KVM variants rewrite them, which
    /// is what `verify` reports.)
    #[test]
    fn the_guest_reads_each_vcpus_table_when_kvm_is_usable() {
        let kvm = match CpuidGuest::open(Path::new(crate::DEFAULT_DEVICE)) {
            Ok(k) => k,
            Err(e) => {
                cpumodel_testenv::unavailable(
                    cpumodel_testenv::Need::Kvm,
                    format!("/dev/kvm not usable ({e})"),
                );
                return;
            }
        };
        let entry = |leaf: u32, subleaf: u32, regs: [u32; 4]| {
            CpuidEntry::new(CpuidKey::new(leaf, subleaf), regs)
        };
        let table = |apic: u32| {
            vec![
                entry(0, 0, [0xb, 0x756e_6547, 0x6c65_746e, 0x4965_6e69]),
                entry(1, 0, [0x0005_06e3, apic << 24, 0x8000_0000, 0x0000_0201]),
                entry(0xb, 0, [1, 2, 0x100, apic]),
                entry(0xb, 1, [2, 4, 0x201, apic]),
                entry(0xb, 2, [0, 0, 2, apic]),
                entry(0x8000_0000, 0, [0x8000_0008, 0, 0, 0]),
                entry(0x8000_0008, 0, [0x3028, 0, 0, 0]),
            ]
        };
        let vcpus = [
            GuestVcpu {
                apic_id: 0,
                cpuid: table(0),
            },
            GuestVcpu {
                apic_id: 2,
                cpuid: table(2),
            },
        ];
        let queries = [
            (0, 0),
            (1, 0),
            (0xb, 0),
            (0xb, 1),
            (0xb, 2),
            (0xb, 3),
            (0x8000_0000, 0),
            (0x8000_0008, 0),
        ]
        .map(|(leaf, subleaf)| CpuidKey::new(leaf, subleaf));
        let runs = kvm.run(&vcpus, &queries).unwrap();
        assert_eq!(runs.len(), 2);
        for run in &runs {
            let a = run.apic_id;
            let mut seen = run.results.clone();
            seen[1][2..].fill(0);
            assert_eq!(
                seen,
                [
                    [0xb, 0x756e_6547, 0x6c65_746e, 0x4965_6e69],
                    [0x0005_06e3, a << 24, 0, 0],
                    [1, 2, 0x100, a],
                    [2, 4, 0x201, a],
                    [0, 0, 2, a],
                    // KVM answers a leaf 0xB subleaf the table lacks with the
                    // subleaf in ECX and the x2APIC ID in EDX.
                    [0, 0, 3, a],
                    [0x8000_0008, 0, 0, 0],
                    [0x3028, 0, 0, 0],
                ],
                "APIC ID {a}"
            );
            assert_eq!(run.state.cr4, 0);
            assert_eq!(run.cr0 & 1, 0);
            assert_ne!(run.state.apic_base & APIC_BASE_ENABLE, 0);
            assert!(run
                .stored
                .iter()
                .any(|e| e.key == CpuidKey::new(0xb, 1) && e.regs() == [2, 4, 0x201, a]));
        }
        assert_eq!(runs[1].apic_id, 2);
    }
}
