//! Checking what a guest's vCPUs read with CPUID against the table they were
//! given.
//!
//! A guest that executes CPUID for every `(leaf, subleaf)` of a table
//! ([`queries`]) should read exactly the table's entries for its vCPU
//! ([`CpuidTable::vcpu_entries`]), except for the bits the processor sets
//! from its own state ([`DYNAMIC_BITS`]), which must hold the values that
//! state gives them ([`expected_entries`]). [`verify`] compares bit by bit
//! and reports, per leaf, OK or the differing bits named as features (from
//! the CPU map) or as `CPUID.(EAX=..,ECX=..):REG[bit]`, and, per vCPU, the
//! topology values the guest read.
//!
//! ```
//! use cpumodel_cpuid::verify::{expected_entries, queries, verify, VcpuObservation};
//! use cpumodel_cpuid::{build, CpuidSpec, Topology};
//! use cpumodel_cpudata::VcpuState;
//! use cpumodel_map::Database;
//!
//! let db = Database::embedded();
//! let spec = CpuidSpec::new(&db, db.find_model("Westmere").unwrap(), Topology::SINGLE).unwrap();
//! let table = build(&db, &spec).unwrap();
//! // A guest that read exactly what it should.
//! let state = VcpuState::REAL_MODE;
//! let seen = expected_entries(&table, 0, &state).iter().map(|e| e.regs()).collect();
//! let obs = VcpuObservation { vcpu: 0, state, seen, stored: Vec::new() };
//! let report = verify(&db, &table, &[obs]);
//! assert!(report.is_ok());
//! assert_eq!(report.leaves.len(), queries(&table).len());
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;

use cpumodel_cpudata::{CpuidBit, CpuidEntry, CpuidKey, ItemKey, Register, VcpuState};
use cpumodel_map::Database;

use crate::table::{CpuidTable, DYNAMIC_BITS};
use crate::topology::ApicIds;

/// Every `(leaf, subleaf)` of the table, in table order: what a guest
/// queries.
pub fn queries(table: &CpuidTable) -> Vec<CpuidKey> {
    table.entries.iter().map(|e| e.key).collect()
}

/// The entries vCPU `vcpu` should read in `state`: its table entries with
/// the run-time bits at the values `state` gives them.
///
/// # Panics
/// When `vcpu` is not below [`CpuidTable::vcpus`].
pub fn expected_entries(table: &CpuidTable, vcpu: u32, state: &VcpuState) -> Vec<CpuidEntry> {
    let mut entries = table.vcpu_entries(vcpu);
    for e in &mut entries {
        let mut regs = e.regs();
        for d in DYNAMIC_BITS.iter().filter(|d| d.key == e.key) {
            let r = &mut regs[d.register.index()];
            *r = (*r & !d.mask) | d.expected(*r, e.eax, state);
        }
        e.set_regs(regs);
    }
    entries
}

/// The names of CPUID bits: the CPU map's features, or
/// `CPUID.(EAX=..,ECX=..):REG[bit]` for bits no feature has.
pub struct BitNames<'a> {
    names: HashMap<CpuidBit, &'a str>,
}

impl<'a> BitNames<'a> {
    /// The CPUID bits of every feature of `db` (the first feature to claim
    /// a bit names it).
    pub fn new(db: &'a Database) -> Self {
        let mut names = HashMap::new();
        for f in db.features() {
            for item in f.data.nonzero_items() {
                let ItemKey::Cpuid(key) = item.key else {
                    continue;
                };
                for (register, bits) in Register::ALL.into_iter().zip(item.regs) {
                    for bit in (0..32).filter(|b| bits & (1 << b) != 0) {
                        names
                            .entry(CpuidBit { key, register, bit })
                            .or_insert(f.name.as_ref());
                    }
                }
            }
        }
        BitNames { names }
    }

    /// The name of `bit`. An XCR0 bit of leaf 0xD without a feature gets
    /// its state component: `CPUID.(EAX=0xd,ECX=0x0):EAX[2](AVX state)`.
    pub fn name(&self, bit: CpuidBit) -> String {
        if let Some(name) = self.names.get(&bit) {
            return (*name).to_string();
        }
        let mut s = bit.to_string();
        // CPUID.(EAX=0xD,ECX=0):EAX and EDX are the XCR0 bits of the state
        // components.
        let xcr0_bit = match (bit.key.leaf, bit.key.subleaf, bit.register) {
            (0xd, 0, Register::Eax) => Some(bit.bit),
            (0xd, 0, Register::Edx) => Some(bit.bit + 32),
            _ => None,
        };
        if let Some(c) = xcr0_bit.and_then(crate::xsave::component) {
            s.push_str(&format!("({} state)", c.name));
        }
        s
    }
}

/// What one vCPU of the guest read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcpuObservation {
    /// The vCPU index (not its APIC ID).
    pub vcpu: u32,
    /// Its state while it ran CPUID (what the run-time bits mirror).
    pub state: VcpuState,
    /// `[eax, ebx, ecx, edx]` for each of [`queries`], in that order.
    pub seen: Vec<[u32; 4]>,
    /// The entries KVM holds for the vCPU (`KVM_GET_CPUID2`); empty when
    /// not read. A mismatch whose seen value is already there was made when
    /// the table was set, not when the guest ran.
    pub stored: Vec<CpuidEntry>,
}

/// The result of checking every leaf on every vCPU.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// One check per table entry, in table order.
    pub leaves: Vec<LeafCheck>,
    /// The topology values each vCPU read, in vCPU order.
    pub vcpus: Vec<VcpuTopology>,
}

/// One `(leaf, subleaf)` on every vCPU.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LeafCheck {
    /// Leaf.
    pub function: u32,
    /// Subleaf.
    pub index: u32,
    /// The run-time bits of this leaf and the values they had to have (on
    /// vCPU 0).
    pub run_time: Vec<RunTimeCheck>,
    /// What differs; empty when every vCPU read what it should.
    pub mismatches: Vec<Mismatch>,
}

/// Run-time bits checked against the vCPU's state rather than the table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RunTimeCheck {
    /// The feature (`osxsave`) or register (`EBX`).
    pub name: String,
    /// The value they had to have (the bit's value for a single bit).
    pub expected: u32,
}

/// One register of one leaf that differs, on one or more vCPUs alike.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    /// `EAX`, `EBX`, `ECX` or `EDX`.
    pub register: &'static str,
    /// The vCPUs that read this.
    pub vcpus: Vec<u32>,
    /// What they should have read.
    pub intended: u32,
    /// What they read.
    pub seen: u32,
    /// Bits read as set that should be clear, by name.
    pub extra: Vec<String>,
    /// Bits read as clear that should be set, by name.
    pub missing: Vec<String>,
    /// KVM already held the seen value after `KVM_SET_CPUID2`: it changed
    /// the table when it was set.
    pub stored_by_kvm: bool,
}

/// The topology values one vCPU read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VcpuTopology {
    /// The vCPU index.
    pub vcpu: u32,
    /// Its intended APIC ID.
    pub apic_id: u32,
    /// Its place: socket, die, cluster, core, thread.
    pub position: [u32; 5],
    /// CPUID.1:EBX\[31:24\], the initial APIC ID it read.
    pub initial_apic_id: Option<u32>,
    /// Leaf 0xB as read: x2APIC ID and levels.
    pub leaf_0b: Option<ExtendedTopology>,
    /// Leaf 0x1F as read.
    pub leaf_1f: Option<ExtendedTopology>,
    /// Leaf 0x8000001E as read.
    pub leaf_8000001e: Option<AmdTopology>,
    /// Every topology leaf it read is the intended one.
    pub ok: bool,
}

/// Leaf 0xB or 0x1F: the x2APIC ID and one entry per level.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExtendedTopology {
    /// EDX of subleaf 0.
    pub x2apic_id: u32,
    /// The levels up to the first invalid one.
    pub levels: Vec<TopologyLevel>,
}

/// One level of leaf 0xB or 0x1F.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TopologyLevel {
    /// `SMT`, `core`, `module`, `tile`, `die` or `type N`.
    pub kind: String,
    /// EAX\[4:0\]: shift the APIC ID right by this to get the next level's ID.
    pub shift: u32,
    /// EBX\[15:0\]: logical processors at this level.
    pub count: u32,
}

/// Leaf 0x8000001E as read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AmdTopology {
    /// EAX: extended APIC ID.
    pub ext_apic_id: u32,
    /// EBX\[7:0\]: core ID.
    pub core_id: u32,
    /// EBX\[15:8\] + 1: threads per core.
    pub threads_per_core: u32,
    /// ECX\[7:0\]: node ID.
    pub node_id: u32,
}

impl VerifyReport {
    /// True when every vCPU read exactly what it should.
    pub fn is_ok(&self) -> bool {
        self.leaves.iter().all(|l| l.mismatches.is_empty())
    }

    /// The leaves with a mismatch.
    pub fn mismatched(&self) -> impl Iterator<Item = &LeafCheck> {
        self.leaves.iter().filter(|l| !l.mismatches.is_empty())
    }

    /// The report as text: one line per leaf (`OK` or `MISMATCH`, one
    /// `MISMATCH` line per differing register and group of vCPUs), one line
    /// per vCPU with its topology values, and a result line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for l in &self.leaves {
            let label = format!("{:#010x}.{:x}", l.function, l.index);
            if l.mismatches.is_empty() {
                let _ = write!(out, "OK        {label}");
                if !l.run_time.is_empty() {
                    let checks: Vec<String> = l
                        .run_time
                        .iter()
                        .map(|c| format!("{}={}", c.name, c.expected))
                        .collect();
                    let _ = write!(out, "  run-time {}", checks.join(" "));
                }
                out.push('\n');
            }
            for m in &l.mismatches {
                let _ = write!(
                    out,
                    "MISMATCH  {label}  {} on vCPU {}: intended {:#010x}, seen {:#010x}{}",
                    m.register,
                    ranges(&m.vcpus),
                    m.intended,
                    m.seen,
                    if m.stored_by_kvm {
                        " (already in KVM_GET_CPUID2)"
                    } else {
                        ""
                    }
                );
                if !m.extra.is_empty() {
                    let _ = write!(out, "; extra: {}", m.extra.join(" "));
                }
                if !m.missing.is_empty() {
                    let _ = write!(out, "; missing: {}", m.missing.join(" "));
                }
                out.push('\n');
            }
        }
        for v in &self.vcpus {
            let _ = writeln!(out, "{}", v.to_text());
        }
        let leaves = self.leaves.len();
        let vcpus = self.vcpus.len();
        if self.is_ok() {
            let _ = writeln!(
                out,
                "result: OK: {vcpus} vCPU{} read the intended {leaves} leaves",
                if vcpus == 1 { "" } else { "s" }
            );
        } else {
            let bad: Vec<&LeafCheck> = self.mismatched().collect();
            let stored = bad
                .iter()
                .filter(|l| l.mismatches.iter().all(|m| m.stored_by_kvm))
                .count();
            let _ = write!(
                out,
                "result: MISMATCH: {} of {leaves} leaves differ from the intended table",
                bad.len()
            );
            if stored > 0 {
                let _ = write!(
                    out,
                    "; KVM_GET_CPUID2 already returns what the guest read for {stored} of them \
                     (KVM changed them when KVM_SET_CPUID2 applied the table)"
                );
            }
            out.push('\n');
        }
        out
    }
}

impl VcpuTopology {
    /// `vCPU 5  APIC ID 5 (socket 1 core 0 thread 1)  0x1 APIC ID 5, ...: OK`.
    pub fn to_text(&self) -> String {
        let [socket, die, cluster, core, thread] = self.position;
        let mut out = format!(
            "vCPU {}  APIC ID {} (socket {socket} die {die} cluster {cluster} core {core} thread {thread})",
            self.vcpu, self.apic_id
        );
        let mut parts = Vec::new();
        if let Some(id) = self.initial_apic_id {
            parts.push(format!("0x1 APIC ID {id}"));
        }
        for (leaf, t) in [("0xB", &self.leaf_0b), ("0x1F", &self.leaf_1f)] {
            if let Some(t) = t {
                let levels: Vec<String> = t
                    .levels
                    .iter()
                    .map(|l| {
                        let s = if l.count == 1 { "" } else { "s" };
                        format!("{} shift {} ({} CPU{s})", l.kind, l.shift, l.count)
                    })
                    .collect();
                parts.push(format!(
                    "{leaf} x2APIC ID {}, {}",
                    t.x2apic_id,
                    levels.join(", ")
                ));
            }
        }
        if let Some(a) = &self.leaf_8000001e {
            parts.push(format!(
                "0x8000001E ext APIC ID {}, core {}, {} threads per core, node {}",
                a.ext_apic_id, a.core_id, a.threads_per_core, a.node_id
            ));
        }
        if !parts.is_empty() {
            out.push_str(": ");
            out.push_str(&parts.join("; "));
        }
        out.push_str(if self.ok { ": OK" } else { ": MISMATCH" });
        out
    }
}

/// `0-3,5,7-8`.
fn ranges(v: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Compares what every vCPU read with what it should have read.
///
/// # Panics
/// When an observation has another number of results than the table has
/// entries, or names a vCPU the table does not have.
pub fn verify(db: &Database, table: &CpuidTable, observations: &[VcpuObservation]) -> VerifyReport {
    let names = BitNames::new(db);
    let expected: Vec<Vec<CpuidEntry>> = observations
        .iter()
        .map(|o| {
            assert_eq!(
                o.seen.len(),
                table.entries.len(),
                "vCPU {}: one result per table entry",
                o.vcpu
            );
            expected_entries(table, o.vcpu, &o.state)
        })
        .collect();
    let mut leaves = Vec::with_capacity(table.entries.len());
    for (k, entry) in table.entries.iter().enumerate() {
        let key = entry.key;
        let run_time = run_time_checks(&names, entry, observations.first(), table);
        let mut mismatches: Vec<Mismatch> = Vec::new();
        for register in Register::ALL {
            let r = register.index();
            for (o, exp) in observations.iter().zip(&expected) {
                let intended = exp[k].regs()[r];
                let seen = o.seen[k][r];
                if intended == seen {
                    continue;
                }
                let stored_by_kvm = o
                    .stored
                    .iter()
                    .find(|s| s.answers(key))
                    .is_some_and(|s| s.regs()[r] == seen);
                if let Some(m) = mismatches.iter_mut().find(|m| {
                    m.register == register.upper_name()
                        && m.intended == intended
                        && m.seen == seen
                        && m.stored_by_kvm == stored_by_kvm
                }) {
                    m.vcpus.push(o.vcpu);
                    continue;
                }
                let bit_names = |bits: u32| -> Vec<String> {
                    (0..32)
                        .filter(|b| bits & (1 << b) != 0)
                        .map(|bit| names.name(CpuidBit { key, register, bit }))
                        .collect()
                };
                mismatches.push(Mismatch {
                    register: register.upper_name(),
                    vcpus: vec![o.vcpu],
                    intended,
                    seen,
                    extra: bit_names(seen & !intended),
                    missing: bit_names(intended & !seen),
                    stored_by_kvm,
                });
            }
        }
        leaves.push(LeafCheck {
            function: key.leaf,
            index: key.subleaf,
            run_time,
            mismatches,
        });
    }
    let vcpus = observations
        .iter()
        .zip(&expected)
        .map(|(o, exp)| vcpu_topology(table, o, exp))
        .collect();
    VerifyReport { leaves, vcpus }
}

/// The run-time bits of `entry` and their expected values on the first
/// observed vCPU.
fn run_time_checks(
    names: &BitNames<'_>,
    entry: &CpuidEntry,
    first: Option<&VcpuObservation>,
    table: &CpuidTable,
) -> Vec<RunTimeCheck> {
    let Some(o) = first else {
        return Vec::new();
    };
    let regs = table.vcpu_entries(o.vcpu);
    let Some(e) = regs.iter().find(|e| e.key == entry.key) else {
        return Vec::new();
    };
    DYNAMIC_BITS
        .iter()
        .filter(|d| d.key == entry.key)
        .filter(|d| d.varies(e.get(d.register), e.eax))
        .map(|d| {
            let value = d.expected(e.get(d.register), e.eax, &o.state);
            if d.mask.count_ones() == 1 {
                let bit = d.mask.trailing_zeros();
                RunTimeCheck {
                    name: names.name(CpuidBit {
                        key: entry.key,
                        register: d.register,
                        bit,
                    }),
                    expected: value >> bit,
                }
            } else {
                RunTimeCheck {
                    name: d.register.upper_name().to_string(),
                    expected: value,
                }
            }
        })
        .collect()
}

fn level_kind(t: u32) -> String {
    match t {
        1 => "SMT".into(),
        2 => "core".into(),
        3 => "module".into(),
        4 => "tile".into(),
        5 => "die".into(),
        t => format!("type {t}"),
    }
}

/// The levels of leaf 0xB or 0x1F in `regs` (subleaf order) up to the
/// first invalid one.
fn extended(entries: &[(u32, [u32; 4])]) -> Option<ExtendedTopology> {
    let first = entries.first()?;
    let levels = entries
        .iter()
        .map(|(_, r)| r)
        .take_while(|r| (r[2] >> 8) & 0xff != 0)
        .map(|r| TopologyLevel {
            kind: level_kind((r[2] >> 8) & 0xff),
            shift: r[0] & 0x1f,
            count: r[1] & 0xffff,
        })
        .collect();
    Some(ExtendedTopology {
        x2apic_id: first.1[3],
        levels,
    })
}

/// The topology values in one vCPU's results (seen or expected).
fn topology_values(
    table: &CpuidTable,
    regs: &[[u32; 4]],
) -> (
    Option<u32>,
    Option<ExtendedTopology>,
    Option<ExtendedTopology>,
    Option<AmdTopology>,
) {
    let leaf = |f: u32| -> Vec<(u32, [u32; 4])> {
        table
            .entries
            .iter()
            .zip(regs)
            .filter(|(e, _)| e.key.leaf == f)
            .map(|(e, r)| (e.key.subleaf, *r))
            .collect()
    };
    let initial = leaf(1).first().map(|(_, r)| r[1] >> 24);
    let amd = leaf(0x8000_001e).first().map(|(_, r)| AmdTopology {
        ext_apic_id: r[0],
        core_id: r[1] & 0xff,
        threads_per_core: ((r[1] >> 8) & 0xff) + 1,
        node_id: r[2] & 0xff,
    });
    (initial, extended(&leaf(0xb)), extended(&leaf(0x1f)), amd)
}

fn vcpu_topology(table: &CpuidTable, o: &VcpuObservation, expected: &[CpuidEntry]) -> VcpuTopology {
    let p = table.topology.position(o.vcpu);
    let seen = topology_values(table, &o.seen);
    let want_regs: Vec<[u32; 4]> = expected.iter().map(CpuidEntry::regs).collect();
    let want = topology_values(table, &want_regs);
    // Every topology leaf, whole, as well as the values shown.
    let topology_leaves_match = table
        .entries
        .iter()
        .zip(o.seen.iter().zip(&want_regs))
        .filter(|(e, _)| matches!(e.key.leaf, 0xb | 0x1f | 0x8000_001e))
        .all(|(_, (s, w))| s == w);
    let ok = seen == want && topology_leaves_match;
    let (initial_apic_id, leaf_0b, leaf_1f, leaf_8000001e) = seen;
    VcpuTopology {
        vcpu: o.vcpu,
        apic_id: table.topology.apic_id(o.vcpu),
        position: [p.socket, p.die, p.cluster, p.core, p.thread],
        initial_apic_id,
        leaf_0b,
        leaf_1f,
        leaf_8000001e,
        ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{build, CpuidSpec, Topology};

    fn table(model: &str, sockets: u32, cores: u32, threads: u32) -> (Database, CpuidTable) {
        let db = Database::embedded();
        let topo = Topology::new(sockets, 1, 1, cores, threads).unwrap();
        let spec = CpuidSpec::new(&db, db.find_model(model).unwrap(), topo).unwrap();
        let t = build(&db, &spec).unwrap();
        (db, t)
    }

    /// Every vCPU reading exactly what it should.
    fn faithful(table: &CpuidTable, state: VcpuState) -> Vec<VcpuObservation> {
        (0..table.vcpus())
            .map(|vcpu| VcpuObservation {
                vcpu,
                state,
                seen: expected_entries(table, vcpu, &state)
                    .iter()
                    .map(CpuidEntry::regs)
                    .collect(),
                stored: Vec::new(),
            })
            .collect()
    }

    fn bit(leaf: u32, subleaf: u32, register: Register, bit: u32) -> CpuidBit {
        CpuidBit {
            key: CpuidKey::new(leaf, subleaf),
            register,
            bit,
        }
    }

    fn position(t: &CpuidTable, leaf: u32, sub: u32) -> usize {
        t.entries
            .iter()
            .position(|e| e.key == CpuidKey::new(leaf, sub))
            .unwrap()
    }

    #[test]
    fn real_mode_clears_osxsave_and_shrinks_the_xsave_sizes() {
        let (_, t) = table("Skylake-Client-IBRS", 1, 1, 1);
        let e = expected_entries(&t, 0, &VcpuState::REAL_MODE);
        let get = |leaf, sub| e[position(&t, leaf, sub)].regs();
        // The table has XSAVE, and OSXSAVE is never in it.
        assert_eq!(get(1, 0)[2] & (1 << 26), 1 << 26);
        assert_eq!(get(1, 0)[2] & (1 << 27), 0);
        // APIC stays while IA32_APIC_BASE enables it.
        assert_eq!(get(1, 0)[3] & (1 << 9), 1 << 9);
        // XCR0 = x87 only: 576 bytes, standard and compacted (XSAVEC).
        assert_eq!(get(0xd, 0), [0x7, 576, 832, 0]);
        assert_eq!(get(0xd, 1), [0x7, 576, 0, 0]);
    }

    #[test]
    fn os_bits_follow_cr4_and_apic_follows_apic_base() {
        let (_, t) = table("Cascadelake-Server", 1, 1, 1);
        let state = VcpuState {
            cr4: (1 << 18) | (1 << 22),
            xcr0: 0b111,
            xss: 0,
            apic_base: 0xfee0_0000,
        };
        let e = expected_entries(&t, 0, &state);
        let get = |leaf, sub| e[position(&t, leaf, sub)].regs();
        assert_eq!(get(1, 0)[2] & (1 << 27), 1 << 27);
        assert_eq!(get(7, 0)[2] & (1 << 4), 1 << 4);
        assert_eq!(get(1, 0)[3] & (1 << 9), 0);
        assert_eq!(get(0xd, 0)[1], 832);
    }

    #[test]
    fn a_faithful_guest_is_ok_on_every_leaf_and_vcpu() {
        let (db, t) = table("EPYC-Rome", 1, 4, 2);
        let report = verify(&db, &t, &faithful(&t, VcpuState::REAL_MODE));
        assert!(report.is_ok());
        assert_eq!(report.leaves.len(), t.entries.len());
        assert_eq!(report.vcpus.len(), 8);
        assert!(report.vcpus.iter().all(|v| v.ok));
        let text = report.to_text();
        assert!(text.contains("\nOK        0x00000001.0  run-time osxsave=0 apic=1\n"));
        assert!(text.contains("\nOK        0x0000000d.0  run-time EBX=576\n"));
        assert!(
            text.ends_with("result: OK: 8 vCPUs read the intended 55 leaves\n"),
            "{text}"
        );
    }

    #[test]
    fn differing_bits_are_named_as_features_or_as_cpuid_bits() {
        let (db, t) = table("Skylake-Client-IBRS", 1, 2, 1);
        let mut obs = faithful(&t, VcpuState::REAL_MODE);
        let k7 = position(&t, 7, 0);
        let k1 = position(&t, 1, 0);
        for o in &mut obs {
            // The guest lacks avx2 (EBX[5]) and sees an extra unnamed bit.
            o.seen[k7][1] &= !(1 << 5);
            o.seen[k7][1] |= 1 << 15;
            // OSXSAVE set although CR4.OSXSAVE is clear.
            o.seen[k1][2] |= 1 << 27;
        }
        // KVM_GET_CPUID2 held the leaf 7 value on vCPU 1 only.
        obs[1].stored = vec![CpuidEntry::new(CpuidKey::new(7, 0), obs[1].seen[k7])];
        let report = verify(&db, &t, &obs);
        assert!(!report.is_ok());
        let l7 = &report.leaves[k7];
        assert_eq!(l7.mismatches.len(), 2, "{:?}", l7.mismatches);
        let m = &l7.mismatches[0];
        assert_eq!((m.register, m.vcpus.as_slice()), ("EBX", &[0][..]));
        assert_eq!(m.extra, ["CPUID.(EAX=0x7,ECX=0x0):EBX[15]"]);
        assert_eq!(m.missing, ["avx2"]);
        assert!(!m.stored_by_kvm);
        assert!(l7.mismatches[1].stored_by_kvm);
        let l1 = &report.leaves[k1];
        assert_eq!(l1.mismatches[0].extra, ["osxsave"]);
        assert_eq!(l1.mismatches[0].vcpus, [0, 1]);
        let text = report.to_text();
        assert!(
            text.contains(
                "\nMISMATCH  0x00000001.0  ECX on vCPU 0-1: intended 0xf7fa3203, seen 0xfffa3203; \
                 extra: osxsave\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "\nMISMATCH  0x00000007.0  EBX on vCPU 1: intended 0x001c0fb9, seen 0x001c8f99 \
             (already in KVM_GET_CPUID2); extra: CPUID.(EAX=0x7,ECX=0x0):EBX[15]; missing: avx2\n"
        ));
        assert!(
            text.ends_with("result: MISMATCH: 2 of 33 leaves differ from the intended table\n"),
            "{text}"
        );
    }

    #[test]
    fn topology_lines_show_what_each_vcpu_read() {
        let (db, t) = table("Skylake-Client-IBRS", 2, 2, 2);
        let mut obs = faithful(&t, VcpuState::REAL_MODE);
        let report = verify(&db, &t, &obs);
        assert_eq!(
            report.vcpus[5].to_text(),
            "vCPU 5  APIC ID 5 (socket 1 die 0 cluster 0 core 0 thread 1): 0x1 APIC ID 5; \
             0xB x2APIC ID 5, SMT shift 1 (2 CPUs), core shift 2 (4 CPUs): OK"
        );
        // vCPU 6 reads vCPU 2's x2APIC ID.
        let kb = position(&t, 0xb, 0);
        obs[6].seen[kb][3] = 2;
        let report = verify(&db, &t, &obs);
        assert!(!report.vcpus[6].ok);
        assert!(report.vcpus[6]
            .to_text()
            .ends_with("0xB x2APIC ID 2, SMT shift 1 (2 CPUs), core shift 2 (4 CPUs): MISMATCH"));
        assert_eq!(
            report.leaves[kb].mismatches[0].missing,
            ["CPUID.(EAX=0xb,ECX=0x0):EDX[2]"]
        );
    }

    #[test]
    fn amd_topology_comes_from_leaf_8000001e() {
        let (db, t) = table("EPYC", 1, 4, 2);
        let report = verify(&db, &t, &faithful(&t, VcpuState::REAL_MODE));
        assert_eq!(
            report.vcpus[7].to_text(),
            "vCPU 7  APIC ID 7 (socket 0 die 0 cluster 0 core 3 thread 1): 0x1 APIC ID 7; \
             0xB x2APIC ID 7, SMT shift 1 (2 CPUs), core shift 3 (8 CPUs); \
             0x8000001E ext APIC ID 7, core 3, 2 threads per core, node 0: OK"
        );
    }

    #[test]
    fn xsave_component_bits_carry_the_component_name() {
        let db = Database::embedded();
        let names = BitNames::new(&db);
        assert_eq!(
            names.name(bit(0xd, 0, Register::Eax, 2)),
            "CPUID.(EAX=0xd,ECX=0x0):EAX[2](AVX state)"
        );
        assert_eq!(
            names.name(bit(0xd, 0, Register::Edx, 0)),
            "CPUID.(EAX=0xd,ECX=0x0):EDX[0]"
        );
        assert_eq!(
            names.name(bit(0xd, 0, Register::Ecx, 7)),
            "CPUID.(EAX=0xd,ECX=0x0):ECX[7]"
        );
        assert_eq!(names.name(bit(1, 0, Register::Ecx, 0)), "pni");
    }

    #[test]
    fn run_time_notes_only_where_the_state_matters() {
        // Intel: no APIC copy in 0x80000001 EDX, so no note there.
        let (db, t) = table("Westmere", 1, 1, 1);
        let report = verify(&db, &t, &faithful(&t, VcpuState::REAL_MODE));
        let text = report.to_text();
        assert!(text.contains("\nOK        0x80000001.0\n"), "{text}");
        // AMD copies the APIC bit.
        let (db, t) = table("EPYC", 1, 1, 1);
        let report = verify(&db, &t, &faithful(&t, VcpuState::REAL_MODE));
        let text = report.to_text();
        assert!(
            text.contains(
                "\nOK        0x80000001.0  run-time CPUID.(EAX=0x80000001,ECX=0x0):EDX[9]=1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn vcpu_lists_are_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 3, 5, 7, 8]), "0-3,5,7-8");
        assert_eq!(ranges(&[4]), "4");
    }
}
